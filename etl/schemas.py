"""pandera (polars backend) schemas at the stage boundaries.

- `RawSourceSchema`: what any extractor hands to `transform`: `_row` (Int64, >= 1, unique)
  and source columns, all String.
- `LeadPayloadSchema`: what may leave for the API. Strict (only `_row`, `_key` and the
  LeadGenius lead fields: quirk 2), every value a trimmed non-empty string or null
  (null = omitted by `to_payload`; quirk 3), `email` a lower-case address, `client_id` a
  slug (quirk 5), firstName/lastName with a letter or digit, or all "-" (quirk 4).

`validate_leads` is an assertion, not a filter: the transforms reject bad rows *before* this
point, so a failure here means a bug in `etl.transform` and must stop the run before any
POST. It raises `LeadSchemaViolation` (a RuntimeError, not a user error) naming the failed
checks. Validation runs on collected frames with `lazy=True` so all failures are reported.

Speed: pandera runs each check as its own pass with its own bookkeeping (1.9 s of a 1M-row
run). `validate_leads` first evaluates the same checks as one vectorised select over the
frame (`payload_checks_pass`: columns, dtypes, nulls, and every per-value check, each at
least as strict as pandera's); only when that finds a problem does pandera run, so the
verdict and the error message are always pandera's own.
"""

from __future__ import annotations

import pandera.polars as pa
import polars as pl
from pandera.errors import SchemaError, SchemaErrors

from etl.fields import LEAD_FIELDS
from etl.transform.steps import (
    ASCII_ALNUM,
    BLANK_CHARS,
    EMAIL_PATTERN,
    NAME_USABLE_PATTERN,
    ascii_columns,
    strip_chars_expr,
)

SLUG_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
_BLANK_CLASS = "".join(f"\\x{{{ord(c):x}}}" for c in BLANK_CHARS)
TRIMMED_NON_EMPTY = f"^[^{_BLANK_CLASS}](?s:.*[^{_BLANK_CLASS}])?$"
"""Non-empty, and neither starts nor ends with whitespace (so not whitespace-only: quirk 3)."""

NAME_PATTERN = f"(?:{NAME_USABLE_PATTERN})|^-+$"
"""Quirk 4: a name of punctuation and spaces is a 500 unless every character is `-`."""


class RawSourceSchema(pa.DataFrameModel):
    """An extractor's frame: `_row` + source columns as String."""

    row: pl.Int64 = pa.Field(alias="_row", ge=1, unique=True, nullable=False)
    source: str = pa.Field(alias="^[^_].*$", regex=True, nullable=True)

    class Config:
        strict = False


class LeadPayloadSchema(pa.DataFrameModel):
    """The outgoing lead frame (`TransformResult.leads`). Strict: no other column may exist."""

    row: pl.Int64 = pa.Field(alias="_row", ge=1, nullable=False, required=False)
    key: str = pa.Field(alias="_key", nullable=False, required=False)
    client_id: str = pa.Field(nullable=False)
    email: str = pa.Field(nullable=False)
    firstName: str = pa.Field(nullable=True, required=False)
    lastName: str = pa.Field(nullable=True, required=False)
    fullName: str = pa.Field(nullable=True, required=False)
    phoneNumber: str = pa.Field(nullable=True, required=False)
    title: str = pa.Field(nullable=True, required=False)
    companyName: str = pa.Field(nullable=True, required=False)
    companyDomain: str = pa.Field(nullable=True, required=False)
    companyUrl: str = pa.Field(nullable=True, required=False)
    linkedinUrl: str = pa.Field(nullable=True, required=False)
    notes: str = pa.Field(nullable=True, required=False)
    status: str = pa.Field(nullable=True, required=False)
    source: str = pa.Field(nullable=True, required=False)
    aiLeadScore: str = pa.Field(nullable=True, required=False)
    aiQualification: str = pa.Field(nullable=True, required=False)
    aiNextAction: str = pa.Field(nullable=True, required=False)
    aiColdEmail: str = pa.Field(nullable=True, required=False)
    aiInterest: str = pa.Field(nullable=True, required=False)
    aiLinkedinConnect: str = pa.Field(nullable=True, required=False)
    aiCompetitorAnalysis: str = pa.Field(nullable=True, required=False)
    aiEngagementLevel: str = pa.Field(nullable=True, required=False)
    aiPurchaseWindow: str = pa.Field(nullable=True, required=False)
    aiDecisionMakerRole: str = pa.Field(nullable=True, required=False)
    aiSentiment: str = pa.Field(nullable=True, required=False)
    aiSocialEngagement: str = pa.Field(nullable=True, required=False)
    aiNurturingStage: str = pa.Field(nullable=True, required=False)
    aiBudgetEstimation: str = pa.Field(nullable=True, required=False)
    aiRiskScore: str = pa.Field(nullable=True, required=False)
    aiProductFitScore: str = pa.Field(nullable=True, required=False)

    class Config:
        strict = True  # quirk 2: any field outside the list is a 500
        coerce = False

    @pa.check("^[^_].*$", regex=True, name="trimmed_non_empty")
    @classmethod
    def _trimmed_non_empty(cls, data: pa.PolarsData) -> pl.LazyFrame:
        # quirk 3: "" or whitespace-only is a 500; null is fine (omitted by to_payload)
        return data.lazyframe.select(pl.col(data.key).str.contains(TRIMMED_NON_EMPTY).fill_null(True))

    @pa.check("email", name="email_pattern")
    @classmethod
    def _email(cls, data: pa.PolarsData) -> pl.LazyFrame:
        col = pl.col(data.key)
        return data.lazyframe.select(col.str.contains(EMAIL_PATTERN) & (col == col.str.to_lowercase()))

    @pa.check("_key", name="key_is_email")
    @classmethod
    def _key_is_email(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col(data.key).str.contains(EMAIL_PATTERN))

    @pa.check("client_id", name="client_id_slug")
    @classmethod
    def _client_slug(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col(data.key).str.contains(SLUG_PATTERN))

    @pa.check("firstName", "lastName", name="name_not_punctuation_only")
    @classmethod
    def _name(cls, data: pa.PolarsData) -> pl.LazyFrame:
        # quirk 4: "." or ", " is a 500; "-" (all dashes) is the accepted placeholder
        return data.lazyframe.select(pl.col(data.key).str.contains(NAME_PATTERN).fill_null(True))


class LeadSchemaViolation(RuntimeError):
    """Leads that the transforms let through broke the payload schema: a bug, not bad input."""


def validate_leads(leads: pl.DataFrame) -> pl.DataFrame:
    """Check the outgoing leads (lazy=True: every failure at once); return them unchanged.

    Raises `LeadSchemaViolation` with the failed checks and up to 5 failing values each. The
    transforms must have moved every bad row to the rejects already (see module docstring).
    """
    if payload_checks_pass(leads):
        return leads
    try:
        LeadPayloadSchema.validate(leads, lazy=True)
    except SchemaErrors as exc:
        raise LeadSchemaViolation(f"transform bug: leads failed the payload schema: {_summary(exc)}") from exc
    except SchemaError as exc:  # pragma: no cover - lazy=True reports SchemaErrors
        raise LeadSchemaViolation(f"transform bug: leads failed the payload schema: {exc}") from exc
    return leads


_PAYLOAD_DTYPES: dict[str, pl.DataType] = {"_row": pl.Int64(), "_key": pl.String()}
_PAYLOAD_DTYPES.update({f: pl.String() for f in LEAD_FIELDS})
_PAYLOAD_REQUIRED = ("client_id", "email")
_NOT_NULL = ("_row", "_key", "client_id", "email")


def payload_checks_pass(leads: pl.DataFrame) -> bool:
    """True when `leads` certainly passes `LeadPayloadSchema` (one vectorised pass).

    Each condition is the same as, or stricter than, the pandera check it stands for, so True
    implies pandera would pass; False only means "let pandera decide" (tests/test_schemas.py
    checks both agree on random frames).
    """
    schema = leads.schema
    if any(name not in _PAYLOAD_DTYPES or dtype != _PAYLOAD_DTYPES[name] for name, dtype in schema.items()):
        return False  # strict (quirk 2) and coerce=False: unknown column or wrong dtype
    if any(name not in schema for name in _PAYLOAD_REQUIRED):
        return False
    if leads.height == 0:
        return True
    # A column of nulls passes every nullable check: only columns with values are scanned.
    fields = [c for c in leads.columns if not c.startswith("_") and leads.get_column(c).null_count() < leads.height]
    # Only the e-mail's ASCII-ness is worth a scan (it picks the cheap lower-case check); the
    # trim check uses the full BLANK_CHARS set everywhere (the scan costs more than it saves).
    ascii_only = ascii_columns(leads, ["email"]) if "email" in fields else set()
    checks: list[pl.Expr] = [pl.col(c).is_not_null() for c in _NOT_NULL if c in schema]
    if "_row" in schema:
        checks.append(pl.col("_row") >= 1)
    for c in fields:  # trimmed_non_empty: "" or a blank at either end fails; null passes
        size = pl.col(c).str.len_bytes()
        checks.append(((size > 0) & (strip_chars_expr(c, False).str.len_bytes() == size)).fill_null(True))
    email = pl.col("email")
    # email_pattern: the pattern, and lower-case. EMAIL_PATTERN is case-sensitive and has no
    # A-Z, so on ASCII text it implies lower-case (tests/test_schemas.py); only non-ASCII text
    # (É is allowed by its byte range) needs the lowered copy.
    pattern = email.str.contains(EMAIL_PATTERN)
    checks.append(pattern if "email" in ascii_only else pattern & (email == email.str.to_lowercase()))
    if "_key" in schema and not leads.select((pl.col("_key") == email).all()).item():
        checks.append(pl.col("_key").str.contains(EMAIL_PATTERN))  # key_is_email (else key == email)
    names = [c for c in ("firstName", "lastName") if c in fields]
    if names:  # an ASCII letter or digit settles a name (one cheap scan); the regex checks the rest
        ascii_hits = leads.select(pl.col(c).str.contains_any(ASCII_ALNUM).fill_null(False) for c in names)
        for c in names:
            hit = pl.lit(ascii_hits.get_column(c))
            checks.append(hit | pl.when(~hit).then(pl.col(c)).str.contains(NAME_PATTERN).fill_null(True))
    verdicts = leads.select([check.fill_null(False).all().alias(str(i)) for i, check in enumerate(checks)]).row(0)
    if not all(verdicts):
        return False
    slugs = leads.get_column("client_id").unique()  # one value in practice: check it once
    return bool(slugs.str.contains(SLUG_PATTERN).all())


def validate_source(frame: pl.DataFrame) -> pl.DataFrame:
    """Check an extractor's frame against `RawSourceSchema`; `LeadSchemaViolation` otherwise
    (an extractor producing a bad frame is a bug too)."""
    try:
        RawSourceSchema.validate(frame, lazy=True)
    except SchemaErrors as exc:
        raise LeadSchemaViolation(f"extractor bug: source frame failed the raw schema: {_summary(exc)}") from exc
    return frame


def _summary(exc: SchemaErrors) -> str:
    cases = exc.failure_cases
    if not isinstance(cases, pl.DataFrame) or cases.is_empty():
        return str(exc).splitlines()[0]
    parts: list[str] = []
    grouped = cases.group_by(["column", "check"], maintain_order=True).agg(pl.col("failure_case").head(5))
    for column, check, samples in grouped.iter_rows():
        shown = ", ".join(repr(s)[:60] for s in samples)
        parts.append(f"{column}: {check} (e.g. {shown})")
    return "; ".join(parts)
