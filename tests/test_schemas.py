"""pandera schemas: the raw source shape and the outgoing payload shape (quirks 2-5)."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pandera.errors import SchemaErrors

from etl.mapping import Mapping
from etl.schemas import LeadPayloadSchema, LeadSchemaViolation, payload_checks_pass, validate_leads, validate_source
from etl.transform import transform


def good_leads() -> pl.DataFrame:
    src = pl.DataFrame({"_row": [1, 2], "email": ["A.b@x.io", "c@x.io"], "title": ["CTO", None]})
    return transform(src, Mapping.builtin("csv"), "acme-corp").leads


def test_valid_leads_pass_unchanged() -> None:
    leads = good_leads()
    assert validate_leads(leads).equals(leads)


@pytest.mark.parametrize(
    ("change", "check"),
    [
        (pl.lit("1").alias("phone"), "column_in_schema"),  # quirk 2
        (pl.lit("").alias("title"), "trimmed_non_empty"),  # quirk 3
        (pl.lit("   ").alias("title"), "trimmed_non_empty"),
        (pl.lit(" CTO").alias("title"), "trimmed_non_empty"),
        (pl.lit(".").alias("lastName"), "name_not_punctuation_only"),  # quirk 4
        (pl.lit(", ").alias("lastName"), "name_not_punctuation_only"),
        (pl.lit("not-an-email").alias("email"), "email_pattern"),
        (pl.lit("A@X.IO").alias("email"), "email_pattern"),
        (pl.lit("Acme Corp").alias("client_id"), "client_id_slug"),
        (pl.lit(None, dtype=pl.String).alias("email"), "not_nullable"),
    ],
)
def test_violations_are_reported_as_transform_bugs(change: pl.Expr, check: str) -> None:
    with pytest.raises(LeadSchemaViolation, match=check) as err:
        validate_leads(good_leads().with_columns(change))
    assert "transform bug" in str(err.value)


def test_all_dash_last_name_is_allowed() -> None:
    validate_leads(good_leads().with_columns(lastName=pl.lit("--")))


def test_raw_source_schema() -> None:
    ok = pl.DataFrame({"_row": [1, 2], "Email": ["a", None]}, schema={"_row": pl.Int64, "Email": pl.String})
    assert validate_source(ok).equals(ok)
    with pytest.raises(LeadSchemaViolation):
        validate_source(ok.with_columns(n=pl.lit(1)))
    with pytest.raises(LeadSchemaViolation):
        validate_source(ok.with_columns(_row=pl.lit(1, dtype=pl.Int64)))  # not unique


# --- the one-pass pre-check must never pass a frame that pandera would fail -------------------

_VALUES = st.sampled_from(
    ["", " ", "x", " x", "x ", "a@b.io", "A@b.io", "john.smith@acme.com", "li.wei@例え.jp", "ÉCOLE@x.fr", ".", "-",
     "--", ", ", "Zoë", "李", "\u200bx", "x\u200b", "acme-corp", "Acme", "a\nb", "\u00a0x", "x\u3000"]
) | st.text(max_size=5)  # fmt: skip
_COLUMNS = ["_row", "_key", "client_id", "email", "firstName", "lastName", "notes", "title", "phone"]


@st.composite
def _lead_frames(draw: st.DrawFn) -> pl.DataFrame:
    if draw(st.booleans()):  # near-valid leads, then one random change
        df = good_leads()
        column = draw(st.sampled_from(_COLUMNS[1:]))
        value = draw(st.one_of(st.none(), _VALUES))
        return df.with_columns(pl.lit(value, dtype=pl.String).alias(column))
    columns = draw(st.lists(st.sampled_from(_COLUMNS), unique=True, max_size=len(_COLUMNS)))
    n = draw(st.integers(0, 6))
    data: dict[str, pl.Series] = {}
    for c in columns:
        if c == "_row":
            ints = [draw(st.one_of(st.none(), st.integers(-2, 5))) for _ in range(n)]
            data[c] = pl.Series(c, ints, dtype=draw(st.sampled_from([pl.Int64, pl.Int32])))
        else:
            data[c] = pl.Series(c, [draw(st.one_of(st.none(), _VALUES)) for _ in range(n)], dtype=pl.String)
    return pl.DataFrame(data)


def _pandera_passes(df: pl.DataFrame) -> bool:
    try:
        LeadPayloadSchema.validate(df, lazy=True)
    except SchemaErrors:
        return False
    return True


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_lead_frames())
def test_fast_precheck_agrees_with_pandera(df: pl.DataFrame) -> None:
    # True must imply pandera passes (validate_leads then skips pandera); in practice they agree.
    assert payload_checks_pass(df) == _pandera_passes(df)


def test_precheck_passes_real_leads() -> None:
    assert payload_checks_pass(good_leads())


@settings(max_examples=300, deadline=None)
@given(st.from_regex(r"[a-zA-Z0-9._+-]{1,12}@[a-zA-Z0-9-]{1,10}\.[a-zA-Z]{2,4}", fullmatch=True))
def test_email_pattern_implies_lower_case_on_ascii(address: str) -> None:
    # The pre-check relies on this to skip its lower-case pass for ASCII e-mails.
    from etl.transform.steps import EMAIL_PATTERN

    matches = pl.Series([address, "ok.name@x.io"]).str.contains(EMAIL_PATTERN).to_list()
    assert matches[1]
    if address != address.lower():
        assert not matches[0]
