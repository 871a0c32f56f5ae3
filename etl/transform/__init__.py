"""Transforms: a source frame (`_row` + source columns, all String) -> leads, rejects, duplicates.

Pure and vectorised (DESIGN.md): no I/O, no clock, polars expressions only, steps chained
with `.pipe`. Every input row ends in exactly one of `leads`, `rejects` or `duplicates`.

    transform(frame, mapping, client_id)
      strip_values      trim, spreadsheet text prefix `'`; "" / whitespace -> null (quirk 3)
      map_fields        ordered fallbacks; constants; allowlist   (quirk 2: phone -> phoneNumber)
      normalise_email   trim, mailto:, lower-case -> `_key`; several in a cell: first wins
      classify_rows     empty_row / missing_email / invalid_email -> rejects
      explain_rejects   the reason of each reject (rejected rows only)
      add_url_schemes   `www.acme.io` -> `https://www.acme.io`
      derive_company_domain  companyDomain from companyUrl where empty (public suffixes)
      normalise_phones  E.164 where the region is known (country column, default region)
      fill_names        firstName / lastName fallback             (quirk 4)
      aggregate_notes   [[notes]] lines + seeds' AI block, idempotent
      select_lead_columns, split_duplicates (first row wins)      (quirk 7)
"""

from __future__ import annotations

from collections.abc import Mapping as AbcMapping
from dataclasses import dataclass
from typing import Any

import polars as pl

from etl.errors import ConfigError
from etl.fields import LEAD_FIELDS
from etl.mapping import Mapping
from etl.report import REJECT_COLUMNS
from etl.slug import looks_like_uuid
from etl.transform.dedupe import DUPLICATES_SCHEMA, Deduper, split_duplicates
from etl.transform.notes import aggregate_notes
from etl.transform.steps import (
    PLACEHOLDER_EMAILS,
    classify_rows,
    drop_placeholder_emails,
    explain_rejects,
    fill_names,
    map_fields,
    normalise_email,
    select_lead_columns,
    strip_chars_expr,
    strip_values,
    used_columns,
)
from etl.transform.values import add_url_schemes, derive_company_domain, normalise_phones

__all__ = [
    "DUPLICATES_SCHEMA",
    "Deduper",
    "TransformResult",
    "fill_rates",
    "to_payload",
    "transform",
]

_SLUG = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"


@dataclass(frozen=True)
class TransformResult:
    """`leads`: `_row`, `_key`, then LEAD_FIELDS (String; null = omit). `rejects`: `_row`,
    `_reason`, `_rule` + original source columns. `duplicates`: `_row`, `_key`, `_reason`."""

    leads: pl.DataFrame
    rejects: pl.DataFrame
    duplicates: pl.DataFrame


def check_client_id(client_id: str) -> None:
    """A lead's client_id must be the client's slug, never its UUID (quirk 5)."""
    import re

    if looks_like_uuid(client_id):
        raise ConfigError(f"client_id {client_id!r} is a client UUID; leads need the slug (invisible leads, quirk 5)")
    if not re.match(_SLUG, client_id):
        raise ConfigError(f"client_id {client_id!r} is not a slug (lower-case letters, digits and '-')")


def transform(
    frame: pl.DataFrame, mapping: Mapping, client_id: str, *, default_region: str | None = None
) -> TransformResult:
    """Map, clean and check one source frame. Pure: same input, same output.

    `default_region` (a phonenumbers region code such as "US", see
    `etl.transform.values.region_option`) reads phone numbers written without `+` in rows whose
    `[hints] country` column gives no region.

    Raises `ConfigError` when the mapping finds no e-mail column in the frame, or when
    `client_id` is not a slug.
    """
    check_client_id(client_id)
    source_columns = [c for c in frame.columns if c != "_row"]
    mapping.check_columns(source_columns)
    frame = frame.with_columns(pl.col("_row").cast(pl.Int64), *[pl.col(c).cast(pl.String) for c in source_columns])
    email_columns = mapping.source_columns(source_columns, mapping.fields["email"])
    phone_columns = frozenset(mapping.source_columns(source_columns, mapping.fields.get("phoneNumber", ())))
    used = used_columns(mapping, source_columns)

    staged = (
        frame.pipe(strip_values, used, phone_columns)
        .pipe(drop_placeholder_emails, email_columns)
        .pipe(map_fields, mapping, client_id, used)
        .pipe(normalise_email)
        .pipe(classify_rows)
    )
    bad = staged.get_column("_rule").is_not_null()
    explained = staged.select("_row", "email", "_rule").filter(bad)
    unused = [c for c in source_columns if c not in set(used)]
    if unused and explained.height:
        # Empty in every column the mapping reads, but a value elsewhere: not an empty row, a row
        # without an e-mail (looked at for the rejected rows only).
        elsewhere = frame.filter(bad).select(
            pl.any_horizontal(strip_chars_expr(c, False) != "" for c in unused).fill_null(False)
        )
        explained = explained.with_columns(
            pl.when((pl.col("_rule") == "empty_row") & elsewhere.to_series())
            .then(pl.lit("missing_email"))
            .otherwise(pl.col("_rule"))
            .alias("_rule")
        )
    if email_columns and explained.height:
        # Rows whose only address was a placeholder say so, not just "no e-mail address".
        lowered = frame.filter(bad).select(
            pl.any_horizontal(pl.col(c).str.strip_chars().str.to_lowercase().is_in(PLACEHOLDER_EMAILS)
                              for c in email_columns).fill_null(False)
        )
        explained = explained.with_columns(
            pl.when((pl.col("_rule") == "missing_email") & lowered.to_series())
            .then(pl.lit("placeholder_email"))
            .otherwise(pl.col("_rule"))
            .alias("_rule")
        )
    explained = explained.pipe(explain_rejects, email_columns)
    rejects = pl.concat(
        [explained.select(*REJECT_COLUMNS), frame.filter(bad).drop("_row")], how="horizontal"
    )
    good = (
        (staged.filter(~bad) if bad.any() else staged)
        .pipe(add_url_schemes)
        .pipe(derive_company_domain)
        .pipe(normalise_phones, default_region)
        .pipe(fill_names)
        .pipe(aggregate_notes, mapping)
        .pipe(select_lead_columns)
    )
    leads, duplicates = split_duplicates(good)
    return TransformResult(leads=leads, rejects=rejects, duplicates=duplicates)


def to_payload(row: AbcMapping[str, Any]) -> dict[str, str]:
    """What gets POSTed for one lead: no None (a null is a 500), no `_`-prefixed internals.

    The one per-lead function, run at the HTTP boundary. Values are already trimmed and
    non-empty (quirk 3) and keys already allowlisted (quirk 2) by the transforms.
    """
    return {k: str(v) for k, v in row.items() if v is not None and not k.startswith("_")}


def fill_rates(leads: pl.DataFrame) -> dict[str, float]:
    """Per lead field present in `leads`, the share of rows with a value (0.0 when empty)."""
    fields = [f for f in LEAD_FIELDS if f in leads.columns]
    if leads.height == 0:
        return dict.fromkeys(fields, 0.0)
    row = leads.select([pl.col(f).is_not_null().mean().alias(f) for f in fields]).row(0, named=True)
    return {f: float(row[f] or 0.0) for f in fields}
