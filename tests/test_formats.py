"""Format detection and mapping decisions (etl.formats): pure, on real export headers."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from etl.errors import ConfigError, InputFileError
from etl.formats import (
    HeaderFound,
    builtin_formats,
    decide,
    detect_format,
    find_header,
    score_format,
    synonym_table,
    to_toml,
)
from etl.mapping import Mapping
from tests.exports import FORMAT_HEADERS, OUTLOOK_DE, PHANTOMBUSTER, columns

FORMATS = builtin_formats()

# Layouts seen in real files that are not the ones tests/exports.py builds.
APOLLO_2025_COMPANY = columns(  # FelixvanDijk/COLD_EMAILER apollo-contacts-export.csv: "Company", Secondary Email
    "First Name,Last Name,Title,Company,Company Name for Emails,Email,Email Status,Primary Email Source,"
    "Email Confidence,Primary Email Catch-all Status,Primary Email Last Verified At,Seniority,Departments,"
    "Contact Owner,Work Direct Phone,Home Phone,Mobile Phone,Corporate Phone,Other Phone,Stage,Lists,"
    "Last Contacted,Account Owner,# Employees,Industry,Keywords,Person Linkedin Url,Website,Company Linkedin Url,"
    "Facebook Url,Twitter Url,City,State,Country,Company Address,Company City,Company State,Company Country,"
    "Company Phone,Technologies,Annual Revenue,Total Funding,Latest Funding,Latest Funding Amount,Last Raised At,"
    "Subsidiary of,Email Sent,Email Open,Email Bounced,Replied,Demoed,Number of Retail Locations,Apollo Contact Id,"
    "Apollo Account Id,Secondary Email,Secondary Email Source,Tertiary Email,Tertiary Email Source,"
    "Primary Intent Topic,Primary Intent Score,Secondary Intent Topic,Secondary Intent Score"
)
SALESFORCE_CONTACTS = [
    "Contact Owner", "Salutation", "First Name", "Last Name", "Title", "Account Name", "Email", "Phone", "Mobile",
    "Mailing City", "Mailing State/Province", "Mailing Country", "Lead Source", "Contact ID", "Account ID",
]
GOOGLE_LEGACY = [
    "Name", "Given Name", "Additional Name", "Family Name", "Yomi Name", "Name Prefix", "Name Suffix", "Nickname",
    "Birthday", "Notes", "Group Membership", "E-mail 1 - Type", "E-mail 1 - Value", "Phone 1 - Type",
    "Phone 1 - Value", "Organization 1 - Type", "Organization 1 - Name", "Organization 1 - Title",
]
OUTLOOK_EN = [
    "First Name", "Middle Name", "Last Name", "Title", "Suffix", "Company", "Department", "Job Title",
    "Business Street", "Business City", "Business Phone", "Business Phone 2", "Mobile Phone", "E-mail Address",
    "E-mail Type", "E-mail Display Name", "E-mail 2 Address", "Web Page",
]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        *[(h, name) for name, h in FORMAT_HEADERS.items()],
        (APOLLO_2025_COMPANY, "apollo"),
        (SALESFORCE_CONTACTS, "salesforce-contacts"),
        (OUTLOOK_EN, "outlook"),
        (PHANTOMBUSTER, "phantombuster-salesnav"),  # without Dropcontact's columns
        (GOOGLE_LEGACY, "google-contacts-legacy"),
    ],
)
def test_each_real_header_is_recognised_as_its_format(header: list[str], expected: str) -> None:
    hit = detect_format(header, FORMATS)
    assert hit is not None, [score_format(header, m) for m in FORMATS]
    assert hit[0].name == expected, [(m.name, score_format(header, m)) for m in FORMATS if score_format(header, m).eligible]


@pytest.mark.parametrize("name", [m.name for m in FORMATS if m.detect])
def test_every_shipped_format_recognises_its_own_signature(name: str) -> None:
    mapping = next(m for m in FORMATS if m.name == name)
    assert mapping.detect is not None
    hit = detect_format(list(mapping.detect.signature), FORMATS)
    assert hit is not None and hit[0].name == name


def test_a_generic_file_is_guessed_by_synonyms_then_by_values() -> None:
    header = ["Full Name", "Work e-mail?", "Org", "Position", "col_a", "col_b", "col_c", "Company Linkedin Url"]
    sample = pl.DataFrame({
        "Full Name": ["Ann Lee", "Bo Li", "Cy Wu"],
        "Work e-mail?": ["", "", ""],  # named like an e-mail, but empty in the sample: still the header's pick
        "Org": ["Acme", "Globex", "Initech"],
        "Position": ["CEO", "CTO", "VP"],
        "col_a": ["https://www.linkedin.com/in/ann", "linkedin.com/in/bo", "http://linkedin.com/in/cy"],
        "col_b": ["'+1 415-555-0100", "+44 20 7946 0958", "(415) 555-0101"],
        "col_c": ["acme.io", "https://globex.example", "www.initech.example"],
        "Company Linkedin Url": ["https://www.linkedin.com/company/acme"] * 3,
    })
    m = decide(header, sample, FORMATS)
    assert m.provenance is not None and m.provenance.how == "guessed"
    assert m.report_dict()["detected"] is False
    assert m.fields["email"] == ("Work e-mail?",) and m.provenance.guessed["email"] == "header"
    assert m.fields["fullName"] == ("Full Name",) and m.fields["title"] == ("Position",)
    assert m.fields["linkedinUrl"] == ("col_a",) and m.provenance.guessed["linkedinUrl"] == "values"
    assert m.fields["phoneNumber"] == ("col_b",) and m.fields["companyUrl"] == ("col_c",)
    assert "Company Linkedin Url" in m.provenance.unmapped  # never the person's LinkedIn


def test_a_column_of_emails_is_the_email_when_no_header_says_so() -> None:
    header = ["Nom", "Adresse électronique ", "Société"]
    sample = pl.DataFrame({"Nom": ["A", "B"], "Adresse électronique ": ["mailto:a@x.fr", "b@y.fr; c@y.fr"],
                           "Société": ["X", "Y"]})
    m = decide(header, sample, FORMATS)
    assert m.fields["email"] == ("Adresse électronique ",)
    assert m.provenance is not None and m.provenance.guessed["email"] == "values"


def test_no_email_column_is_one_clear_error_naming_the_columns() -> None:
    sample = pl.DataFrame({c: ["x"] for c in PHANTOMBUSTER})
    with pytest.raises(ConfigError) as err:
        decide(PHANTOMBUSTER, sample, FORMATS, source="salesnav.csv")
    text = str(err.value)
    assert "\n" not in text and "salesnav.csv" in text and "Sales Navigator list (PhantomBuster)" in text
    assert "profileUrl" in text and "linkedInProfileUrl" in text and "mailFromDropcontact" in text


def test_person_columns_win_over_company_columns() -> None:
    apollo = decide(APOLLO_2025_COMPANY, None, FORMATS)
    assert apollo.fields["linkedinUrl"] == ("Person Linkedin Url",)
    phones = apollo.fields["phoneNumber"]
    assert phones.index("Work Direct Phone") < phones.index("Mobile Phone") < phones.index("Corporate Phone")
    assert phones.index("Corporate Phone") < phones.index("Company Phone")
    assert apollo.fields["email"] == ("Email", "Secondary Email", "Tertiary Email")
    assert apollo.fields["companyName"][0] == "Company"
    zoom = decide(FORMAT_HEADERS["zoominfo"], None, FORMATS)
    assert zoom.fields["phoneNumber"] == ("Direct Phone Number", "Mobile phone", "Company HQ Phone")
    assert zoom.fields["linkedinUrl"] == ("LinkedIn Contact Profile URL",)
    table = synonym_table(FORMATS)
    assert not any("company" in a.lower() for a in table["linkedinUrl"])
    company_phones = [i for i, a in enumerate(table["phoneNumber"]) if "corporate" in a.lower() or "company" in a.lower()]
    assert company_phones and min(company_phones) > table["phoneNumber"].index("Work Direct Phone")


def test_repeated_and_quoted_headers_are_kept_apart_and_mapped() -> None:
    # The CSV reader renames a repeated header `X_2`; a label may hold quotes.
    header = ["Record ID", "First Name", "Last Name", "Email", "Phone Number", "Contact owner", "Lead Status",
              "Associated Company", 'Lead "Grade"', "Associated Company_2", "Email_2", "Marketing contact status"]
    m = decide(header, None, FORMATS)
    assert m.name == "hubspot-csv"
    assert m.fields["email"] == ("Email", "Email_2")  # the second copy is the fallback, in file order
    assert m.fields["companyName"] == ("Associated Company", "Associated Company_2")
    assert m.provenance is not None and 'Lead "Grade"' in m.provenance.unmapped


def test_a_detected_file_missing_an_expected_column_maps_the_rest_and_says_which() -> None:
    header = [h for h in FORMAT_HEADERS["apollo"] if h not in ("Person Linkedin Url", "Work Direct Phone")]
    m = decide(header, None, FORMATS)
    assert m.name == "apollo" and m.provenance is not None
    assert set(m.provenance.missing) == {"Person Linkedin Url", "Work Direct Phone"}
    assert "linkedinUrl" not in m.fields and m.fields["title"] == ("Title",)
    assert m.report_dict()["missing"] == ["Work Direct Phone", "Person Linkedin Url"]


def test_given_mapping_overrides_detection() -> None:
    given = Mapping.from_dict({"name": "mine", "fields": {"email": "Secondary Email", "title": "Seniority"}})
    m = decide(FORMAT_HEADERS["apollo"], None, FORMATS, given=given)
    assert m.name == "mine" and m.fields == {"email": ("Secondary Email",), "title": ("Seniority",)}
    assert m.report_dict()["how"] == "given" and m.report_dict()["detected"] is False


@pytest.mark.parametrize("fmt", ["apollo", "hubspot-csv", "outlook-de", "phantombuster-salesnav"])
def test_saved_mapping_loads_back_equal_and_maps_the_file_the_same(tmp_path: Path, fmt: str) -> None:
    header = FORMAT_HEADERS[fmt]
    m = decide(header, None, FORMATS)
    path = tmp_path / "saved.toml"
    path.write_text(to_toml(m, header='used for "x.csv"\nsecond line'), encoding="utf-8")
    again = Mapping.load(path)
    assert again == m
    assert decide(header, None, FORMATS, given=again).fields == m.fields


def test_report_dict_has_the_fields_the_reports_promise() -> None:
    sample = pl.DataFrame({h: [f"v-{h}"] for h in OUTLOOK_DE})
    info = decide(OUTLOOK_DE, sample, FORMATS).report_dict()
    assert info["name"] == "outlook-de" and info["detected"] is True
    assert info["fields"]["email"] == ["E-Mail-Adresse"] and info["samples"]["email"] == "v-E-Mail-Adresse"
    assert "Anrede" in info["unmapped"] and info["unmapped_samples"]["Anrede"] == "v-Anrede"


def test_a_known_layout_with_an_extra_email_column_keeps_its_format() -> None:
    header = [*PHANTOMBUSTER, "Work Email (Hunter)", "hunter_score"]
    sample = pl.DataFrame({h: ["x"] for h in PHANTOMBUSTER} | {"Work Email (Hunter)": ["ann@acme.io"],
                                                               "hunter_score": ["91"]})
    m = decide(header, sample, FORMATS)
    assert m.name == "phantombuster-salesnav" and m.fields["email"] == ("Work Email (Hunter)",)
    assert m.provenance is not None and m.provenance.guessed == {"email": "values"}


def test_the_terminal_table_shows_file_text_as_text() -> None:
    from rich.console import Console

    from etl.report import mapping_table

    header = ["Name", "[bold]Email[/bold]", "[x"]
    sample = pl.DataFrame({"Name": ["A B"], "[bold]Email[/bold]": ["a@b.com"], "[x": ["[/red]"]})
    info = decide(header, sample, FORMATS).report_dict()
    console = Console(record=True, width=200)
    console.print(mapping_table(info))
    text = console.export_text()
    assert "[bold]Email[/bold] (by values)" in text and "a@b.com" in text
    assert next(iter(info["fields"])) == "email"


def test_headers_in_other_languages_are_guessed_by_their_synonyms() -> None:
    header = ["Prénom", "Nom de famille", "Société", "Fonction", "Adresse de messagerie", "Titre"]
    m = decide(header, None, FORMATS)
    assert m.provenance is not None and m.provenance.how == "guessed"
    assert m.fields == {"email": ("Adresse de messagerie",), "firstName": ("Prénom",),
                        "lastName": ("Nom de famille",), "title": ("Fonction",), "companyName": ("Société",)}
    assert m.provenance.unmapped == ("Titre",)  # Outlook's "Titre" is the salutation


def test_a_linkedin_column_of_company_pages_is_not_the_persons_profile() -> None:
    header = ["Email", "LinkedIn", "Profile"]
    sample = pl.DataFrame({"Email": ["a@x.io", "b@y.io"],
                           "LinkedIn": ["https://www.linkedin.com/company/x", "linkedin.com/company/y"],
                           "Profile": ["https://www.linkedin.com/in/a", "https://www.linkedin.com/in/b"]})
    m = decide(header, sample, FORMATS)
    assert m.fields["linkedinUrl"] == ("Profile",)
    assert m.provenance is not None and "LinkedIn" in m.provenance.unmapped


def test_a_header_that_is_no_header_points_at_skip_rows() -> None:
    # Lines above the header that no known format explains (a report title): one column, no e-mail.
    with pytest.raises(ConfigError, match=r"probably not the header.*--skip-rows N") as err:
        decide(["Quarterly leads"], pl.DataFrame({"Quarterly leads": ["Prepared by Ann"]}), FORMATS,
               source="q3.csv")
    assert "\n" not in str(err.value)


LINKEDIN_NOTES = [
    ["Notes:"],
    ["When exporting your connection data, you may notice that some of the email addresses are missing."],
    [""],
]


def test_linkedins_notes_before_its_header_are_found() -> None:
    lines = [*LINKEDIN_NOTES, FORMAT_HEADERS["linkedin-connections"], ["Ann", "Lee", "u", "", "Acme", "CTO", "1 Jan"]]
    found = find_header(lines, FORMATS)
    assert found == HeaderFound(skip=3, label="LinkedIn connections export")


def test_a_header_on_line_1_or_an_unknown_layout_skips_nothing() -> None:
    data = [["Ann", "Lee", "u", "", "Acme", "CTO", "1 Jan"]]
    assert find_header([FORMAT_HEADERS["linkedin-connections"], *data], FORMATS) is None
    assert find_header([["Contact", "Org", "Reach me at"], ["Ann", "Acme", "a@x.io"]], FORMATS) is None
    # A table whose later row happens to spell a known header is still a table: the lines above
    # it are as wide as it, so they are no preamble.
    wide = [["a", "b", "c", "d", "e", "f", "g"], ["1", "2", "3", "4", "5", "6", "7"], FORMAT_HEADERS["linkedin-connections"]]
    assert find_header(wide, FORMATS) is None


def test_a_file_of_nothing_but_linkedins_notes_is_cut_off() -> None:
    with pytest.raises(InputFileError, match=r"begins like a LinkedIn connections export .* looks cut off") as err:
        find_header(LINKEDIN_NOTES, FORMATS, source="Connections.csv")
    assert "Connections.csv" in str(err.value) and "\n" not in str(err.value)
