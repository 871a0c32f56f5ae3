"""pandera schemas: the raw source shape and the outgoing payload shape (quirks 2-5)."""

from __future__ import annotations

import polars as pl
import pytest

from etl.mapping import Mapping
from etl.schemas import LeadSchemaViolation, validate_leads, validate_source
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
