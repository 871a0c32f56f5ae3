"""Real export layouts (headers as the tools write them; sources cited in each etl/mappings/*.toml)
and a builder of realistic files in those layouts, with the messy values exports really hold.

`build(fmt, n)` returns (header, rows, expected): `expected` is, per lead e-mail, the fields a
run must store, field by field. Phones are given raw; `expected_phone` states the contract
(E.164 when the number or its region is known, else the trimmed value without the `'` prefix).
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from pathlib import Path


def columns(header: str) -> list[str]:
    """A header line as the export writes it -> its column names."""
    return header.split(",")


APOLLO = columns(
    "First Name,Last Name,Title,Company Name,Company Name for Emails,Email,Email Status,Primary Email Source,"
    "Primary Email Verification Source,Email Confidence,Primary Email Catch-all Status,Primary Email Last Verified At,"
    "Seniority,Departments,Contact Owner,Work Direct Phone,Home Phone,Mobile Phone,Corporate Phone,Other Phone,Stage,"
    "Lists,Last Contacted,Account Owner,# Employees,Industry,Keywords,Person Linkedin Url,Website,Company Linkedin Url,"
    "Facebook Url,Twitter Url,City,State,Country,Company Address,Company City,Company State,Company Country,"
    "Company Phone,Technologies,Annual Revenue,Total Funding,Latest Funding,Latest Funding Amount,Last Raised At,"
    "Subsidiary of,Email Sent,Email Open,Email Bounced,Replied,Demoed,Number of Retail Locations,Apollo Contact Id,"
    "Apollo Account Id,Secondary Email,Secondary Email Source,Secondary Email Status,"
    "Secondary Email Verification Source,Tertiary Email,Tertiary Email Source,Tertiary Email Status,"
    "Tertiary Email Verification Source,Primary Intent Topic,Primary Intent Score,Secondary Intent Topic,"
    "Secondary Intent Score,Qualify Contact"
)
"""sidmohan0/kanbun apollo-contacts-export.csv (68 columns)."""

APOLLO_2024 = columns(
    "First Name,Last Name,Title,Company,Company Name for Emails,Email,Email Status,Email Confidence,Seniority,"
    "Departments,Contact Owner,First Phone,Work Direct Phone,Home Phone,Mobile Phone,Corporate Phone,Other Phone,Stage,"
    "Lists,Last Contacted,Account Owner,# Employees,Industry,Keywords,Person Linkedin Url,Website,Company Linkedin Url,"
    "Facebook Url,Twitter Url,City,State,Country,Company Address,Company City,Company State,Company Country,"
    "Company Phone,SEO Description,Technologies,Annual Revenue,Total Funding,Latest Funding,Latest Funding Amount,"
    "Last Raised At,Email Sent,Email Open,Email Bounced,Replied,Demoed,Number of Retail Locations,Apollo Contact Id,"
    "Apollo Account Id"
)
"""sarthakjdev/apollo-to-listmonk-csv apollo-contacts-export.csv (52 columns)."""

HUBSPOT = [
    "Record ID", "First Name", "Last Name", "Email", "Phone Number", "Contact owner", "Primary Associated Company ID",
    "Last Activity Date", "Lead Status", "Marketing contact status", "Create Date", "Associated Company",
    "Job Title", "Mobile Phone Number", "Lifecycle Stage", "Associated Company", 'Lead "Grade"', "LinkedIn URL",
]
"""HubSpot's default export columns, then chosen properties; an association repeats
"Associated Company", and a custom property label holds quotes."""

SALESFORCE_LEADS = [
    "Lead Owner", "First Name", "Last Name", "Title", "Company / Account", "Email", "Phone", "Mobile", "Lead Source",
    "Lead Status", "Rating", "Street", "City", "State/Province", "Zip/Postal Code", "Country", "Website", "Lead ID",
]
PIPEDRIVE = [
    "Person - ID", "Person - Name", "Person - First name", "Person - Last name", "Person - Organization",
    "Person - Job title", "Person - Email - Work", "Person - Email - Home", "Person - Email - Other",
    "Person - Phone - Work", "Person - Phone - Home", "Person - Phone - Mobile", "Person - Phone - Other",
    "Person - Owner", "Person - Label", "Person - Marketing status", "Person - LinkedIn profile",
]
ZOOMINFO = [
    "ZoomInfo Contact ID", "Last Name", "First Name", "Middle Name", "Salutation", "Suffix", "Job Title",
    "Management Level", "Job Function", "Department", "Direct Phone Number", "Email Address", "Email Domain",
    "Mobile phone", "Contact Accuracy Score", "ZoomInfo Contact Profile URL", "LinkedIn Contact Profile URL",
    "Person Street", "Person City", "Person State", "Person Zip Code", "Country", "ZoomInfo Company ID",
    "Company Name", "Website", "Company HQ Phone", "Revenue (in 000s USD)", "Employees",
    "LinkedIn Company Profile URL", "Company City", "Company State", "Company Country",
]
PHANTOMBUSTER = [
    "profileUrl", "fullName", "firstName", "lastName", "companyName", "title", "companyId", "companyUrl",
    "regularCompanyUrl", "summary", "titleDescription", "industry", "companyLocation", "location", "durationInRole",
    "durationInCompany", "pastExperienceCompanyName", "pastExperienceCompanyUrl", "pastExperienceCompanyTitle",
    "pastExperienceDate", "pastExperienceDuration", "connectionDegree", "profileImageUrl", "sharedConnectionsCount",
    "name", "vmid", "linkedInProfileUrl", "isPremium", "isOpenLink", "query", "timestamp", "defaultProfileUrl",
]
DROPCONTACT = ["mailFromDropcontact", "qualificationFromDropContact", "civilityFromDropContact", "websiteFromDropContact"]
LEMLIST = ["email", "firstName", "lastName", "companyName", "companyDomain", "icebreaker", "picture", "phone",
           "linkedinUrl", "jobTitle"]
INSTANTLY = ["Email", "First Name", "Last Name", "Company Name", "Personalization", "Phone", "Website", "Location",
             "Job Title", "LinkedIn", "Lead Status"]
OUTLOOK_DE = [
    "Anrede", "Vorname", "Weitere Vornamen", "Nachname", "Suffix", "Firma", "Abteilung", "Position",
    "Straße geschäftlich", "Ort geschäftlich", "Postleitzahl geschäftlich", "Land/Region geschäftlich",
    "Telefon geschäftlich", "Telefon geschäftlich 2", "Mobiltelefon", "E-Mail-Adresse", "E-Mail-Typ",
    "E-Mail: Angezeigter Name", "Webseite",
]
GOOGLE_CONTACTS = [
    "First Name", "Middle Name", "Last Name", "Phonetic First Name", "Phonetic Middle Name", "Phonetic Last Name",
    "Name Prefix", "Name Suffix", "Nickname", "File As", "Organization Name", "Organization Title",
    "Organization Department", "Birthday", "Notes", "Photo", "Labels", "E-mail 1 - Label", "E-mail 1 - Value",
    "E-mail 2 - Label", "E-mail 2 - Value", "Phone 1 - Label", "Phone 1 - Value",
]
LINKEDIN_CONNECTIONS = ["First Name", "Last Name", "URL", "Email Address", "Company", "Position", "Connected On"]
LINKEDIN_NOTES = (
    # The lines a current Connections.csv starts with, verbatim (sources in etl/mappings/linkedin-connections.toml).
    'Notes:\n"When exporting your connection data, you may notice that some of the email addresses are missing. '
    "You will only see email addresses for connections who have allowed their connections to see or download "
    "their email address using this setting https://www.linkedin.com/psettings/privacy/email. You can learn more "
    'here https://www.linkedin.com/help/linkedin/answer/261"\n\n'
)
SEEDS = ["firstName", "lastName", "email", "companyName", "companyDomain", "title", "linkedinUrl", "notes"]

FORMAT_HEADERS: dict[str, list[str]] = {
    "apollo": APOLLO, "apollo-2024": APOLLO_2024, "hubspot-csv": HUBSPOT, "salesforce-leads": SALESFORCE_LEADS,
    "pipedrive": PIPEDRIVE, "zoominfo": ZOOMINFO, "phantombuster-salesnav": PHANTOMBUSTER + DROPCONTACT,
    "lemlist": LEMLIST, "instantly": INSTANTLY, "outlook-de": OUTLOOK_DE, "csv": SEEDS,
    "google-contacts": GOOGLE_CONTACTS, "linkedin-connections": LINKEDIN_CONNECTIONS,
}

FIRST = ["Sarah", "Jürgen", "Aoife", "Mohammed", "Li", "José", "Anne-Marie", "O'Brien", "Zoë", "Raj", "Kim", "Lucas"]
LAST = ["Chen", "Müller", "Ní Bhriain", "Al-Farsi", "Wang", "García", "Dupont", "Smith", "Ødegaard", "Patel", "Lee"]
TITLES = ["VP Sales", "Head of RevOps", "Chief Executive Officer", "Founder & CEO", "Directeur commercial",
          "Geschäftsführer", "SDR, EMEA", "CTO"]
COMPANIES = ["Northwind Analytics", "Müller & Söhne GmbH", "Acme, Inc.", "Reveal HealthTech", "Café Olé SARL",
             "Globex \"Holdings\"", "Initech"]
PHONES = ["+1 415-555-{:04d}", "+44 20 7946 {:04d}", "+49 30 1234{:04d}", "+33 1 42 68 {:04d}"]


@dataclass(frozen=True)
class Person:
    i: int
    first: str
    last: str
    email: str
    title: str
    company: str
    linkedin: str
    phone: str  # as the person's own number, international form
    website: str


def people(n: int, seed: int = 7) -> list[Person]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        first, last = rnd.choice(FIRST), rnd.choice(LAST)
        slug = f"{first}-{last}-{i}".lower().replace(" ", "-").replace("'", "")
        company = rnd.choice(COMPANIES)
        out.append(Person(
            i=i, first=first, last=last, email=f"lead{i}.x@company{i % 17}.example", title=rnd.choice(TITLES),
            company=company, linkedin=f"https://www.linkedin.com/in/{slug}",
            phone=rnd.choice(PHONES).format(i % 10000), website=f"https://www.company{i % 17}.example",
        ))
    return out


def expected_phone(raw: str, region: str | None = None) -> str:
    """The phone contract (`values`): E.164 when the number says its region (`+…`) or the row's
    country column does, else the value trimmed, without the spreadsheet `'`. The national
    numbers these files hold are US ones (region "US") or German ones with no country column."""
    cleaned = raw.strip().lstrip("'").strip()
    if cleaned.startswith("+"):
        return "+" + "".join(ch for ch in cleaned if ch.isdigit())
    if region == "US":
        return "+1" + "".join(ch for ch in cleaned if ch.isdigit())
    return cleaned


def build(fmt: str, n: int = 200) -> tuple[list[str], list[dict[str, str]], dict[str, dict[str, str]]]:
    """A file's header, its rows and the expected stored leads (by e-mail) for format `fmt`."""
    header = FORMAT_HEADERS[fmt]
    rows: list[dict[str, str]] = []
    expected: dict[str, dict[str, str]] = {}
    for p in people(n):
        row, exp = _row(fmt, p)
        rows.append(row)
        if exp is not None:
            expected[exp["email"]] = exp
    return header, rows, expected


def _exp(p: Person, *, email: str | None = None, phone: str | None = None, linkedin: str | None = None,
         title: str | None = None, region: str | None = None) -> dict[str, str]:
    out = {"email": (email or p.email).strip().lower(), "firstName": p.first, "lastName": p.last,
           "title": title if title is not None else p.title, "companyName": p.company}
    if linkedin is not None:
        out["linkedinUrl"] = linkedin
    if phone is not None:
        out["phoneNumber"] = expected_phone(phone, region)
    return out


def _row(fmt: str, p: Person) -> tuple[dict[str, str], dict[str, str] | None]:
    i = p.i
    corporate = "+1 212-555-0000"
    if fmt in ("apollo", "apollo-2024"):
        own = i % 4 != 0  # a quarter have no number of their own: the company's is used
        row = {
            "First Name": p.first, "Last Name": p.last, "Title": p.title,
            "Company Name" if fmt == "apollo" else "Company": p.company, "Company Name for Emails": p.company.split(",")[0],
            "Email": p.email.upper() if i % 9 == 0 else p.email, "Email Status": "Verified",
            "Work Direct Phone": f"'{p.phone}" if own and i % 2 else "",
            "Mobile Phone": f"'{p.phone}" if own and not i % 2 else "",
            "Corporate Phone": f"'{corporate}", "Company Phone": f"'{corporate}",
            "Person Linkedin Url": p.linkedin.replace("https://www.", "http://www."),
            "Company Linkedin Url": f"http://www.linkedin.com/company/company{i % 17}",
            "Website": p.website, "Country": "United States", "Apollo Contact Id": f"6963d2da61201a{i:010d}",
            "Apollo Account Id": f"6963d2db61201a{i % 17:010d}", "Seniority": "Vp", "# Employees": str(10 + i),
        }
        if fmt == "apollo-2024":
            row["First Phone"] = row["Work Direct Phone"] or row["Mobile Phone"] or row["Corporate Phone"]
        phone = p.phone if own else corporate
        email = p.email
        if fmt == "apollo" and i % 10 == 3:  # the only address is the secondary one
            row["Email"], row["Email Status"], row["Secondary Email"] = "", "Unavailable", p.email
        return row, _exp(p, email=email, phone=phone, linkedin=row["Person Linkedin Url"])
    if fmt == "hubspot-csv":
        row = {
            "Record ID": str(1000 + i), "First Name": p.first, "Last Name": p.last, "Email": f" {p.email} ",
            "Phone Number": p.phone if i % 3 else "", "Mobile Phone Number": p.phone if not i % 3 else "",
            "Contact owner": "Dana Rep", "Associated Company": p.company, "Job Title": p.title,
            "Lifecycle Stage": "lead", 'Lead "Grade"': "A", "LinkedIn URL": p.linkedin,
            "Associated Company_2": "Parent Holdings",
        }
        return row, _exp(p, phone=p.phone, linkedin=p.linkedin)
    if fmt == "salesforce-leads":
        # A third are US numbers written nationally: the region comes from the Country column.
        phone = f"(415) 555-{i % 10000:04d}" if i % 3 == 0 else p.phone
        row = {"Lead Owner": "Dana Rep", "First Name": p.first, "Last Name": p.last, "Title": p.title,
               "Company / Account": p.company, "Email": p.email, "Phone": phone if i % 2 else "",
               "Mobile": phone if not i % 2 else "", "Lead Status": "Open - Not Contacted", "Country": "US",
               "Website": p.website, "Lead ID": f"00Q5g00000{i:08d}"}
        return row, _exp(p, phone=phone, region="US")
    if fmt == "pipedrive":
        work = i % 5 != 0
        row = {"Person - ID": str(i + 1), "Person - Name": f"{p.first} {p.last}", "Person - First name": p.first,
               "Person - Last name": p.last, "Person - Organization": p.company, "Person - Job title": p.title,
               "Person - Email - Work": p.email if work else "", "Person - Email - Other": "" if work else p.email,
               "Person - Phone - Work": p.phone if i % 2 else "", "Person - Phone - Mobile": p.phone if not i % 2 else "",
               "Person - Owner": "Dana Rep", "Person - LinkedIn profile": p.linkedin}
        return row, _exp(p, phone=p.phone, linkedin=p.linkedin)
    if fmt == "zoominfo":
        own = i % 4 != 0
        row = {"ZoomInfo Contact ID": str(900000 + i), "Last Name": p.last, "First Name": p.first,
               "Job Title": p.title, "Management Level": "VP-Level", "Direct Phone Number": p.phone if own and i % 2 else "",
               "Email Address": p.email, "Mobile phone": p.phone if own and not i % 2 else "",
               "LinkedIn Contact Profile URL": p.linkedin, "Country": "United States", "Company Name": p.company,
               "Website": p.website.removeprefix("https://"), "Company HQ Phone": corporate,
               "LinkedIn Company Profile URL": f"https://www.linkedin.com/company/company{i % 17}"}
        return row, _exp(p, phone=p.phone if own else corporate, linkedin=p.linkedin)
    if fmt == "phantombuster-salesnav":
        found = i % 6 != 0  # Dropcontact found no address for some: those rows are rejected
        row = {"profileUrl": f"https://www.linkedin.com/sales/lead/ACwAA{i:06d},NAME_SEARCH", "fullName": f"{p.first} {p.last}",
               "firstName": p.first, "lastName": p.last, "companyName": p.company, "title": p.title,
               "companyUrl": f"https://www.linkedin.com/sales/company/{i % 17}",
               "regularCompanyUrl": f"https://www.linkedin.com/company/company{i % 17}", "vmid": f"ACwAA{i:06d}",
               "linkedInProfileUrl": p.linkedin, "defaultProfileUrl": f"https://www.linkedin.com/in/ACwAA{i:06d}",
               "mailFromDropcontact": p.email if found else "",
               "qualificationFromDropContact": "nominative@pro" if found else ""}
        return row, (_exp(p, linkedin=p.linkedin) if found else None)
    if fmt == "lemlist":
        row = {"email": p.email, "firstName": p.first, "lastName": p.last, "companyName": p.company,
               "companyDomain": f"company{i % 17}.example", "icebreaker": "Loved your talk", "phone": p.phone,
               "linkedinUrl": p.linkedin, "jobTitle": p.title}
        return row, _exp(p, phone=p.phone, linkedin=p.linkedin)
    if fmt == "instantly":
        row = {"Email": p.email, "First Name": p.first, "Last Name": p.last, "Company Name": p.company,
               "Personalization": "Saw your post", "Phone": p.phone, "Website": p.website, "Job Title": p.title,
               "LinkedIn": p.linkedin, "Lead Status": "Active"}
        return row, _exp(p, phone=p.phone, linkedin=p.linkedin)
    if fmt == "outlook-de":
        # A third written nationally, and no country column: kept as written (trimmed).
        phone = f" 030 1234{i % 10000:04d} " if i % 3 == 0 else p.phone
        row = {"Anrede": "Herr", "Vorname": p.first, "Nachname": p.last, "Firma": p.company, "Position": p.title,
               "Telefon geschäftlich": phone, "E-Mail-Adresse": p.email, "E-Mail-Typ": "SMTP",
               "E-Mail: Angezeigter Name": f"{p.first} {p.last} ({p.email})", "Webseite": p.website}
        return row, _exp(p, phone=phone)
    if fmt == "google-contacts":
        home = i % 4 == 0  # the work address second
        row = {"First Name": p.first, "Last Name": p.last, "File As": f"{p.last}, {p.first}",
               "Organization Name": p.company, "Organization Title": p.title, "Labels": "* myContacts ::: Leads",
               "E-mail 1 - Label": "* Home" if home else "* Work", "E-mail 1 - Value": "" if home else p.email,
               "E-mail 2 - Label": "* Work" if home else "", "E-mail 2 - Value": p.email if home else "",
               "Phone 1 - Label": "Mobile", "Phone 1 - Value": p.phone}
        return row, _exp(p, phone=p.phone)
    if fmt == "linkedin-connections":
        shared = i % 5 != 0  # most members hide their address: those rows are rejected
        row = {"First Name": p.first, "Last Name": p.last, "URL": p.linkedin, "Email Address": p.email if shared else "",
               "Company": p.company, "Position": p.title, "Connected On": "14 Mar 2024"}
        return row, (_exp(p, linkedin=p.linkedin) if shared else None)
    if fmt == "csv":
        row = {"firstName": p.first, "lastName": p.last, "email": p.email, "companyName": p.company,
               "companyDomain": f"company{i % 17}.example", "title": p.title, "linkedinUrl": p.linkedin, "notes": ""}
        return row, _exp(p, linkedin=p.linkedin)
    raise ValueError(fmt)


def write(path: Path, header: list[str], rows: list[dict[str, str]], *, encoding: str = "utf-8",
          delimiter: str = ",", quote_all: bool = False, footer: str = "", preamble: str = "") -> Path:
    """Write a file the way the exporting tool does (duplicate headers as `X_2` keys in rows;
    `preamble`: the lines it writes before the header)."""
    keys = []
    seen: dict[str, int] = {}
    for h in header:
        seen[h] = seen.get(h, 0) + 1
        keys.append(h if seen[h] == 1 else f"{h}_{seen[h]}")
    with path.open("w", newline="", encoding=encoding) as fh:
        fh.write(preamble)
        w = csv.writer(fh, delimiter=delimiter, quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL)
        w.writerow(header)
        for row in rows:
            w.writerow([row.get(k, "") for k in keys])
        fh.write(footer)
    return path
