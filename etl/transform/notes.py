"""Notes aggregation: extra columns and the AI block into `notes`, as Markdown.

The seeds (002 guide) advise aggregating AI data into notes because structured AI fields
may not show in the LeadGenius UI. Layout, sections only when they have data:

    ## 🎯 AI SCORE: {score} ({score_100}/100)
    ### 🧐 JUSTIFICATION
    {justification}
    ### 💡 STRATEGIC RECOMMENDATIONS
    {recommendations}
    ### 📝 SDR SYNTHESIS
    {sdr_synthesis}

Order in the final notes: the existing notes, a blank line, the `**Label:** value` lines of
the mapping's [[notes]] columns and then `**Other e-mails:** b@y.com` (the rest of an e-mail
cell that held several), a blank line, the AI block.

Idempotency: every piece (each label line, each AI section) is appended only when the
existing notes do not already contain it verbatim. Feeding a transformed lead back in with
the same extra columns therefore changes nothing (tests/transform/test_properties.py).
"""

from __future__ import annotations

import polars as pl

from etl.mapping import Mapping

MORE_EMAILS = "_more_emails"
"""The second and later addresses of a cell that held several (`etl.transform.steps.normalise_email`)."""
MORE_EMAILS_LABEL = "Other e-mails"

AI_SECTIONS: tuple[tuple[str, str], ...] = (
    ("justification", "### 🧐 JUSTIFICATION"),
    ("recommendations", "### 💡 STRATEGIC RECOMMENDATIONS"),
    ("sdr_synthesis", "### 📝 SDR SYNTHESIS"),
)
SCORE_HEADING = "## 🎯 AI SCORE: "


def _lf(expr: pl.Expr) -> pl.Expr:
    """One line-ending convention inside notes, so re-imports compare equal."""
    return expr.str.replace_all("\r\n", "\n", literal=True).str.replace_all("\r", "\n", literal=True)


def _if_new(piece: str, existing: str = "_existing") -> pl.Expr:
    """Column `piece`, or null when it is null or already contained in column `existing`."""
    seen = pl.col(existing).str.contains(pl.col(piece), literal=True).fill_null(False)
    return pl.when(pl.col(piece).is_not_null() & ~seen).then(pl.col(piece)).alias(piece)


def _join(columns: list[str], separator: str) -> pl.Expr:
    """Join the non-null columns; null when all are null."""
    if not columns:
        return pl.lit(None, dtype=pl.String)
    if len(columns) == 1:
        return pl.col(columns[0])  # a piece is never "": nothing to join, nothing to null
    # `when(joined != "")` here would evaluate the concatenation twice (eager frame): the
    # caller nulls "" in a separate cheap pass (`_null_if_empty`) instead.
    return pl.concat_str([pl.col(c) for c in columns], separator=separator, ignore_nulls=True)


def _null_if_empty(columns: list[str]) -> list[pl.Expr]:
    """`""` -> null for already materialised columns (see `_join`)."""
    return [pl.when(pl.col(c) != "").then(pl.col(c)).alias(c) for c in columns]


_OUT_OF_100 = r"\s*/\s*100\s*$"


def score_heading(score: pl.Expr, score_100: pl.Expr, has_slash: bool = True) -> pl.Expr:
    """`## 🎯 AI SCORE: A (87/100)`; `A` or `87/100` alone when only one is known.

    One `concat_str` (the optional pieces are null when absent) instead of a when/then chain
    whose branches an eager frame evaluates in full. `has_slash=False` (no value of `score_100`
    holds a `/`) skips the "/100" clean-up regex, which cannot match without a `/`.
    """
    cleaned = score_100.str.replace(_OUT_OF_100, "") if has_slash else score_100
    both = score.is_not_null() & score_100.is_not_null()
    body = pl.concat_str(
        [
            pl.lit(SCORE_HEADING),
            score,
            pl.when(both).then(pl.lit(" (")),
            cleaned,
            pl.when(score_100.is_not_null()).then(pl.lit("/100")),
            pl.when(both).then(pl.lit(")")),
        ],
        ignore_nulls=True,
    )
    return pl.when(score.is_not_null() | score_100.is_not_null()).then(body)


def aggregate_notes(frame: pl.DataFrame, mapping: Mapping) -> pl.DataFrame:
    """Rebuild `notes` from the existing notes, `_note_<i>` and `_ai_<key>` columns; drop those.

    Built in flat `with_columns` stages on purpose: nesting the when/then expressions made
    polars evaluate the shared sub-expressions many times (10x slower on the benchmark).
    Column-level shortcuts (same output, measured on the benchmark): a source column that is
    null in every row contributes no piece and is left out of every stage; the line-ending
    rewrite runs only on columns that hold a `\r` at all.
    """
    ai_present = {k for k in mapping.ai_notes if _has_values(frame, f"_ai_{k}")}
    labelled = [(f"_note_{i}", note.label) for i, note in enumerate(mapping.notes)]
    labelled.append((MORE_EMAILS, MORE_EMAILS_LABEL))
    note_present = [(i, column, label) for i, (column, label) in enumerate(labelled) if _has_values(frame, column)]
    cr = _columns_with_cr(frame, ["notes", *[c for _, c, _ in note_present], *[f"_ai_{k}" for k in ai_present]])

    def text(column: str) -> pl.Expr:
        return _lf(pl.col(column)) if column in cr else pl.col(column)

    def ai(key: str) -> pl.Expr:
        return text(f"_ai_{key}") if key in ai_present else pl.lit(None, dtype=pl.String)

    lines = [f"_pl_{i}" for i, _, _ in note_present]
    pieces: list[pl.Expr] = [
        (pl.lit(f"**{label}:** ") + text(column)).alias(f"_pl_{i}") for i, column, label in note_present
    ]
    sections: list[str] = []
    if "score" in ai_present or "score_100" in ai_present:
        # The "/100" clean-up is a regex: run it once, in the stage before the heading.
        sections.append("_ps_score")
    for key, heading in AI_SECTIONS:
        if key in ai_present:
            sections.append(f"_ps_{key}")
            pieces.append((pl.lit(heading + "\n") + ai(key)).alias(f"_ps_{key}"))
    helpers = [c for c in frame.columns if c.startswith(("_note_", "_ai_")) or c == MORE_EMAILS]
    if not lines and not sections:
        existing = frame.with_columns(text("notes").alias("notes"))
        return existing.with_columns(pl.when(pl.col("notes") != "").then(pl.col("notes"))).drop(helpers)

    staged = frame.with_columns(
        text("notes").alias("_existing"),
        *pieces,
        *([ai("score").alias("_sc"), ai("score_100").alias("_sc100")] if "_ps_score" in sections else []),
    )
    if "_ps_score" in sections:
        has_slash = "score_100" in ai_present and bool(
            staged.select(pl.col("_sc100").str.contains("/", literal=True).any()).item()
        )
        staged = staged.with_columns(score_heading(pl.col("_sc"), pl.col("_sc100"), has_slash).alias("_ps_score"))
    has_existing = staged.get_column("_existing").null_count() < staged.height
    if has_existing:
        staged = staged.with_columns(*[_if_new(c) for c in [*lines, *sections]])
    staged = staged.with_columns(_join(lines, "\n").alias("_lines"), _join(sections, "\n").alias("_ai"))
    joined = [c for c, parts in (("_lines", lines), ("_ai", sections)) if len(parts) > 1]
    staged = staged.with_columns(_null_if_empty(joined))
    staged = staged.with_columns(_join(["_existing", "_lines", "_ai"], "\n\n").alias("notes"))
    staged = staged.with_columns(_null_if_empty(["notes"]))
    temp = [c for c in staged.columns if c.startswith(("_pl_", "_ps_"))] + [
        c for c in ("_sc", "_sc100") if c in staged.columns
    ]
    return staged.drop([*helpers, *temp, "_existing", "_lines", "_ai"])


def _has_values(frame: pl.DataFrame, column: str) -> bool:
    """Does `column` exist with at least one non-null value? (`null_count` is O(1).)"""
    return column in frame.columns and frame.get_column(column).null_count() < frame.height


def _columns_with_cr(frame: pl.DataFrame, columns: list[str]) -> set[str]:
    """The columns in which some value contains a carriage return."""
    present = [c for c in columns if c in frame.columns]
    if not present or frame.height == 0:
        return set()
    row = frame.select([pl.col(c).str.contains("\r", literal=True).any().alias(c) for c in present]).row(0)
    return {c for c, hit in zip(present, row, strict=True) if hit}
