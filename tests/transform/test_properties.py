"""Property tests (hypothesis) for the pure transforms.

- every input row ends in exactly one of leads / rejects / duplicates (by `_row`);
- the same input gives the same output;
- twice changes nothing: with `to_source(leads)` = the original source frame with the
  mapped columns replaced by the lead values under their LeadGenius names (the extra
  notes / AI columns kept), `transform(to_source(transform(x))).leads == transform(x).leads`;
- no lead passing LeadPayloadSchema can trigger quirks 2-4 once turned into a payload.
"""

from __future__ import annotations

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from etl.fields import LEAD_FIELD_SET, LEAD_FIELDS
from etl.mapping import Mapping
from etl.schemas import validate_leads
from etl.transform import TransformResult, to_payload, transform

CSV = Mapping.builtin("csv")
SOURCE_COLUMNS = ["First Name", "lastName", "E-mail", "phone", "Title", "notes", "industry", "aiLeadScore",
                  "leadScore", "justification", "Country", "Website", "LinkedIn"]  # fmt: skip

names = st.sampled_from(["", " ", ".", "..", ", ", "-", "—", "John", " Mary ", "O'Brien", "Zoë", "李", "\u200b", "x y"])
emails = st.sampled_from(
    ["", " ", "john.smith@acme.com", "JOHN.SMITH@ACME.COM", " mary_jones@x.io ", "info@x.io", "bad", "a@b",
     "mailto:Zed.Ray@Q.co", "li.wei@例え.jp", "a..b@x.com", "sales.team@x.io", "j@x.io", "k@x.io",
     "j@x.io; k@x.io", "k@x.io, J@X.io ,", "mailto:a@b.io mailto:c@d.io", "john smith@x.com", ";", "<j@x.io>;"]
)  # fmt: skip
texts = st.sampled_from(["", "  ", "CTO", " VP, Sales ", "line\r\nbreak", "**Industry:** Fintech", "é", "\t",
                         "'=1+1", "' '", "'t Hooft", "'-"])  # fmt: skip
phones = st.sampled_from(["", " ", "'+1 415 555 0100", "(415) 555-0101", "' 030 1234567", "+44 (0) 20 7946 0000",
                          "415.555.0102 x7", "12", "'", "''+49 30 901820", "tel", "+1 555 0100"])  # fmt: skip
countries = st.sampled_from(["", "United States", "Germany", "DE", "USA", "uk", "Atlantis", " de "])
urls = st.sampled_from(["", "http://www.acme.io", "acme.co.uk/about", "//x.org", "N/A", "https://shop.bbc.co.uk",
                        "www.linkedin.com/in/jo", "192.168.0.1", "'=cmd"])  # fmt: skip
cells = {"First Name": names, "lastName": names, "E-mail": emails, "Title": texts,
         "notes": texts, "industry": texts, "aiLeadScore": texts, "leadScore": texts, "justification": texts,
         "phone": phones, "Country": countries, "Website": urls, "LinkedIn": urls}  # fmt: skip


@st.composite
def source_frames(draw: st.DrawFn) -> pl.DataFrame:
    n = draw(st.integers(min_value=0, max_value=25))
    data: dict[str, list[str | None]] = {
        c: [draw(st.one_of(st.none(), cells[c])) for _ in range(n)] for c in SOURCE_COLUMNS
    }
    rows = sorted(draw(st.sets(st.integers(min_value=1, max_value=10_000), min_size=n, max_size=n)))
    return pl.DataFrame({"_row": rows, **data}, schema={"_row": pl.Int64, **dict.fromkeys(SOURCE_COLUMNS, pl.String)})


def run(df: pl.DataFrame, default_region: str | None = None) -> TransformResult:
    return transform(df, CSV, "acme-corp", default_region=default_region)


@settings(max_examples=80, deadline=None)
@given(source_frames())
def test_every_row_accounted_for_exactly_once(df: pl.DataFrame) -> None:
    r = run(df)
    out = r.leads["_row"].to_list() + r.rejects["_row"].to_list() + r.duplicates["_row"].to_list()
    assert sorted(out) == df["_row"].to_list()


@settings(max_examples=100, deadline=None)
@given(source_frames())
def test_same_input_same_output(df: pl.DataFrame) -> None:
    a, b = run(df), run(df.clone())
    assert a.leads.equals(b.leads) and a.rejects.equals(b.rejects) and a.duplicates.equals(b.duplicates)


def to_source(original: pl.DataFrame, leads: pl.DataFrame) -> pl.DataFrame:
    """Feed the leads back in: LeadGenius-named columns replace the mapped source columns."""
    mapped = {c for f in CSV.fields.values() for c in CSV.source_columns(original.columns, f)}
    kept = original.select("_row", *[c for c in original.columns if c != "_row" and c not in mapped])
    lead_cols = leads.select("_row", *[f for f in LEAD_FIELDS if f not in {"client_id"}])
    return lead_cols.join(kept, on="_row", how="left", maintain_order="left")


@settings(max_examples=80, deadline=None)
@given(source_frames(), st.sampled_from([None, "US", "DE"]))
def test_twice_changes_nothing(df: pl.DataFrame, region: str | None) -> None:
    once = run(df, region)
    twice = run(to_source(df, once.leads), region)
    assert twice.leads.equals(once.leads)
    assert twice.rejects.is_empty() and twice.duplicates.is_empty()


@settings(max_examples=80, deadline=None)
@given(source_frames())
def test_valid_leads_cannot_trigger_quirks_2_to_4(df: pl.DataFrame) -> None:
    leads = validate_leads(run(df).leads)  # raises if a transform let a bad row through
    for row in leads.iter_rows(named=True):
        payload = to_payload(row)
        assert set(payload) <= LEAD_FIELD_SET  # quirk 2: no unknown field (no `phone`)
        assert "phone" not in payload
        for value in payload.values():  # quirk 3 (+ null is a 500): no empty/blank/None
            assert isinstance(value, str) and value.strip() and value == value.strip()
        for name in ("firstName", "lastName"):  # quirk 4
            v = payload.get(name)
            assert v is None or any(ch.isalnum() for ch in v) or set(v) == {"-"}
        assert payload["client_id"] == "acme-corp" and payload["email"] == payload["email"].lower()
