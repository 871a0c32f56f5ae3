"""Unit tests for each transform step, on small frames and on sample_data/."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from etl.errors import ConfigError
from etl.extract.csv import open_csv
from etl.fields import LEAD_FIELDS
from etl.mapping import Mapping
from etl.schemas import validate_leads
from etl.transform import Deduper, fill_rates, to_payload, transform
from etl.transform.steps import fill_names, normalise_email, strip_values

SAMPLES = Path(__file__).resolve().parents[2] / "sample_data"
CSV = Mapping.builtin("csv")


def frame(**cols: list[str | None]) -> pl.DataFrame:
    n = len(next(iter(cols.values())))
    return pl.DataFrame({"_row": list(range(1, n + 1)), **cols}, schema_overrides=dict.fromkeys(cols, pl.String))


def one(result_leads: pl.DataFrame, row: int) -> dict[str, object]:
    return result_leads.filter(pl.col("_row") == row).row(0, named=True)


def test_strip_values_trims_and_nulls_blanks() -> None:
    df = frame(a=[" x ", "", "   ", "\u00a0\u200b", None, "a b"])
    assert strip_values(df, ["a"])["a"].to_list() == ["x", None, None, None, None, "a b"]


def test_phone_becomes_phone_number_and_never_leaves() -> None:
    r = transform(frame(email=["a.b@x.io"], phone=["+1 555"], Mobile=["+2 666"]), CSV, "acme")
    assert "phone" not in r.leads.columns and r.leads["phoneNumber"].to_list() == ["+1 555"]
    assert r.leads.columns == ["_row", "_key", *LEAD_FIELDS]


def test_first_non_empty_fallback_wins() -> None:
    r = transform(frame(email=["a@x.io", "b@x.io"], phone=["  ", "1"], mobile=["2", "3"]), CSV, "acme")
    assert r.leads["phoneNumber"].to_list() == ["2", "1"]


def test_email_normalised_and_key() -> None:
    df = normalise_email(frame(email=["  John.Smith@ACME.com ", "mailto:A@B.io", None]))
    assert df["email"].to_list() == ["john.smith@acme.com", "a@b.io", None]
    assert df["_key"].to_list() == df["email"].to_list()


@pytest.mark.parametrize(
    ("email", "rule"),
    [
        ("", "missing_email"),
        ("   ", "missing_email"),
        ("john", "invalid_email"),
        ("a@@b.com", "invalid_email"),
        ("a b@c.com", "invalid_email"),
        ("a@b", "invalid_email"),
        ("a..b@c.com", "invalid_email"),
    ],
)
def test_rejects_without_usable_email(email: str, rule: str) -> None:
    r = transform(frame(email=[email], firstName=["Ann"]), CSV, "acme")
    assert r.leads.is_empty()
    assert r.rejects["_rule"].to_list() == [rule]
    assert r.rejects.columns[:3] == ["_row", "_reason", "_rule"]
    assert r.rejects["email"].to_list() == [email]  # the ORIGINAL value, untrimmed


def test_empty_row_rule() -> None:
    r = transform(frame(email=[" "], firstName=[""]), CSV, "acme")
    assert r.rejects["_rule"].to_list() == ["empty_row"]


def test_a_value_in_a_column_no_field_reads_makes_a_row_not_empty() -> None:
    # Unmapped columns are never cleaned (they cost nothing), but they still count as values.
    df = frame(email=[" ", None, "\u200b"], firstName=["", None, None], Keywords=["saas", " \t", None])
    r = transform(df, CSV, "acme")
    assert r.rejects["_rule"].to_list() == ["missing_email", "empty_row", "empty_row"]
    assert r.rejects["Keywords"].to_list() == ["saas", " \t", None]  # the rejects keep the row as it was


@pytest.mark.parametrize(
    ("first", "last", "email", "expected"),
    [
        (None, None, "john.smith@x.io", ("John", "Smith")),
        (None, ".", "mary_jones+crm@x.io", ("Mary", "Jones")),
        ("Ann", None, "john.smith@x.io", ("Ann", "-")),  # other name disagrees: no invention
        ("john", None, "john.smith@x.io", ("john", "Smith")),
        (None, "Smith", "john.smith@x.io", ("John", "Smith")),
        (None, None, "info@x.io", ("-", "-")),
        (None, None, "sales.team@x.io", ("-", "-")),  # role words
        (None, None, "jsmith@x.io", ("-", "-")),  # one word: ambiguous
        (None, None, "john.smith2@x.io", ("-", "-")),  # digits
        (None, None, "j.smith@x.io", ("-", "-")),  # initial
        ("Tom", "..", "tom.becker@x.io", ("Tom", "Becker")),
        ("Tom", ", ", "t@x.io", ("Tom", "-")),
        ("Tom", "-", "t@x.io", ("Tom", "-")),
        ("Tom", "O'Brien", "t@x.io", ("Tom", "O'Brien")),
        ("Zoë", "Ødegaard", "z@x.io", ("Zoë", "Ødegaard")),
    ],
)
def test_name_fallback(first: str | None, last: str | None, email: str, expected: tuple[str, str]) -> None:
    df = pl.DataFrame({"firstName": [first], "lastName": [last], "email": [email]}, schema=dict.fromkeys(
        ["firstName", "lastName", "email"], pl.String))  # fmt: skip
    out = fill_names(df)
    assert (out["firstName"][0], out["lastName"][0]) == expected


def test_notes_seed_layout_and_existing_notes_first() -> None:
    r = transform(
        frame(
            email=["a.b@x.io", "c.d@x.io"],
            notes=["Met at SaaStr", None],
            industry=["Fintech", None],
            aiLeadScore=["A", None],
            leadScore=["92", "40/100"],
            justification=["Budget approved", None],
            sdr_synthesis=["Warm", None],
        ),
        CSV,
        "acme",
    )
    assert r.leads["notes"][0] == (
        "Met at SaaStr\n\n**Industry:** Fintech\n\n## 🎯 AI SCORE: A (92/100)\n### 🧐 JUSTIFICATION\n"
        "Budget approved\n### 📝 SDR SYNTHESIS\nWarm"
    )
    assert r.leads["notes"][1] == "## 🎯 AI SCORE: 40/100"
    assert r.leads["aiLeadScore"].to_list() == ["A", None]


def test_notes_not_duplicated_when_already_present() -> None:
    first = transform(frame(email=["a.b@x.io"], industry=["Fintech"], justification=["Fit"]), CSV, "acme")
    again = transform(
        frame(email=["a.b@x.io"], notes=[first.leads["notes"][0]], industry=["Fintech"], justification=["Fit"]),
        CSV,
        "acme",
    )
    assert again.leads["notes"].to_list() == first.leads["notes"].to_list()


def test_constants_and_client_id() -> None:
    r = transform(frame(email=["a@x.io", "b@x.io"], source=[None, "webinar"]), CSV, "acme-corp")
    assert r.leads["source"].to_list() == ["csv-import", "webinar"]
    assert r.leads["client_id"].to_list() == ["acme-corp", "acme-corp"]


@pytest.mark.parametrize("bad", ["Acme Corp", "0c7e4c1e-5a8a-4a3e-9d7f-1b2c3d4e5f60", ""])
def test_client_id_must_be_a_slug(bad: str) -> None:
    with pytest.raises(ConfigError):
        transform(frame(email=["a@x.io"]), CSV, bad)


def test_no_email_column_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="finds no e-mail column"):
        transform(frame(name=["x"]), CSV, "acme")


def test_duplicates_within_batch_first_wins() -> None:
    r = transform(frame(email=["A@x.io", "b@x.io", " a@X.IO "]), CSV, "acme")
    assert r.leads["_row"].to_list() == [1, 2]
    assert r.duplicates.rows() == [(3, "a@x.io", "duplicate e-mail of row 1")]


def test_deduper_across_batches() -> None:
    d = Deduper()
    a = transform(frame(email=["a@x.io", "b@x.io"]), CSV, "acme").leads
    b = transform(frame(email=["c@x.io", "A@x.io"]), CSV, "acme").leads.with_columns(pl.col("_row") + 10)
    kept1, dup1 = d(a)
    kept2, dup2 = d(b)
    assert kept1["_key"].to_list() == ["a@x.io", "b@x.io"] and dup1.is_empty()
    assert kept2["_key"].to_list() == ["c@x.io"]
    assert dup2.rows() == [(12, "a@x.io", "duplicate e-mail of row 1")]
    assert d.seen == 3


def test_to_payload_and_fill_rates() -> None:
    r = transform(frame(email=["a.b@x.io", "c@x.io"], title=["CTO", None]), CSV, "acme")
    payload = to_payload(r.leads.row(0, named=True))
    assert payload["email"] == "a.b@x.io" and "_row" not in payload and "_key" not in payload
    assert None not in payload.values() and "phoneNumber" not in payload
    rates = fill_rates(r.leads)
    assert rates["title"] == 0.5 and rates["email"] == 1.0 and set(rates) == set(LEAD_FIELDS)
    assert fill_rates(r.leads.head(0))["email"] == 0.0


def test_leads_csv_sample_end_to_end() -> None:
    batch = next(open_csv(SAMPLES / "leads.csv").batches())
    r = transform(batch.frame, CSV, "acme-corp")
    validate_leads(r.leads)
    assert r.leads.height + r.rejects.height + r.duplicates.height == 40
    assert sorted(r.rejects["_rule"].to_list()) == ["empty_row", "invalid_email", "invalid_email", "missing_email"]
    assert r.duplicates["_reason"].to_list() == ["duplicate e-mail of row 1", "duplicate e-mail of row 2"]
    tom = one(r.leads, 4)
    assert (tom["firstName"], tom["lastName"], tom["phoneNumber"]) == ("Tom", "Becker", "+4930901820")  # "+" numbers: E.164
    assert one(r.leads, 12)["lastName"] == "-"  # info@ is a role address
    assert one(r.leads, 38)["title"] == "General Manager"


def test_hubspot_export_sample() -> None:
    batch = next(open_csv(SAMPLES / "hubspot_export.csv").batches())
    r = transform(batch.frame, Mapping.builtin("hubspot-csv"), "acme-corp")
    validate_leads(r.leads)
    victor = one(r.leads, 2)
    assert victor["email"] == "victor.nguyen@lotus-freight.com"
    assert victor["phoneNumber"] == "+14085550199"  # Mobile Phone Number as fallback, to E.164
    assert "**Lifecycle stage:** Lead" in str(victor["notes"])
    assert "**HubSpot record ID:** 51234002" in str(victor["notes"])
    assert one(r.leads, 3)["lastName"] == "Holm"  # "." -> from ingrid.holm@
    assert r.rejects["_rule"].to_list() == ["missing_email"]
    assert r.duplicates["_row"].to_list() == [6]


@pytest.mark.parametrize("name", ["excel_unicode.txt", "latin1.csv"])
def test_other_encodings_transform_cleanly(name: str) -> None:
    batch = next(open_csv(SAMPLES / name).batches())
    r = transform(batch.frame, CSV, "acme-corp")
    validate_leads(r.leads)
    assert r.leads.height >= 4


def test_apollo_placeholder_address_is_no_address() -> None:
    """Apollo writes email_not_unlocked@domain.com for a locked address: the secondary address stands
    in, and a row with nothing else is rejected saying so (never one lead for every locked contact)."""
    apollo = Mapping.builtin("apollo")
    df = frame(
        **{
            "First Name": ["Ann", "Bob", "Cy"],
            "Last Name": ["Lee", "Roe", "Poe"],
            "Email": ["email_not_unlocked@domain.com", " EMAIL_NOT_UNLOCKED@domain.com ", "cy@poe.io"],
            "Secondary Email": ["ann@lee.io", None, None],
        }
    )
    r = transform(df, apollo, "acme")
    assert r.leads.select("_row", "email").rows() == [(1, "ann@lee.io"), (3, "cy@poe.io")]
    assert r.rejects["_row"].to_list() == [2]
    assert r.rejects["_rule"].to_list() == ["placeholder_email"]
    assert "placeholder" in r.rejects["_reason"][0] and "Secondary Email" in r.rejects["_reason"][0]
