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
the mapping's [[notes]] columns, a blank line, the AI block.

Idempotency: every piece (each label line, each AI section) is appended only when the
existing notes do not already contain it verbatim. Feeding a transformed lead back in with
the same extra columns therefore changes nothing (tests/transform/test_properties.py).
"""

from __future__ import annotations

import polars as pl

from etl.mapping import Mapping

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
    joined = pl.concat_str([pl.col(c) for c in columns], separator=separator, ignore_nulls=True)
    return pl.when(joined != "").then(joined)


def score_heading(score: pl.Expr, score_100: pl.Expr) -> pl.Expr:
    """`## 🎯 AI SCORE: A (87/100)`; `A` or `87/100` alone when only one is known."""
    out_of_100 = score_100.str.replace(r"\s*/\s*100\s*$", "") + pl.lit("/100")
    body = (
        pl.when(score.is_not_null() & score_100.is_not_null())
        .then(score + pl.lit(" (") + out_of_100 + pl.lit(")"))
        .when(score.is_not_null())
        .then(score)
        .otherwise(out_of_100)
    )
    return pl.when(score.is_not_null() | score_100.is_not_null()).then(pl.lit(SCORE_HEADING) + body)


def aggregate_notes(frame: pl.DataFrame, mapping: Mapping) -> pl.DataFrame:
    """Rebuild `notes` from the existing notes, `_note_<i>` and `_ai_<key>` columns; drop those.

    Built in flat `with_columns` stages on purpose: nesting the when/then expressions made
    polars evaluate the shared sub-expressions many times (10x slower on the benchmark).
    """

    def ai(key: str) -> pl.Expr:
        return _lf(pl.col(f"_ai_{key}")) if key in mapping.ai_notes else pl.lit(None, dtype=pl.String)

    lines = [f"_pl_{i}" for i in range(len(mapping.notes))]
    sections = ["_ps_score", *[f"_ps_{key}" for key, _ in AI_SECTIONS]]
    staged = frame.with_columns(
        _lf(pl.col("notes")).alias("_existing"),
        *[
            (pl.lit(f"**{n.label}:** ") + _lf(pl.col(f"_note_{i}"))).alias(lines[i])
            for i, n in enumerate(mapping.notes)
        ],
        score_heading(ai("score"), ai("score_100")).alias("_ps_score"),
        *[(pl.lit(heading + "\n") + ai(key)).alias(f"_ps_{key}") for key, heading in AI_SECTIONS],
    )
    staged = staged.with_columns(*[_if_new(c) for c in [*lines, *sections]])
    staged = staged.with_columns(_join(lines, "\n").alias("_lines"), _join(sections, "\n").alias("_ai"))
    staged = staged.with_columns(_join(["_existing", "_lines", "_ai"], "\n\n").alias("notes"))
    helpers = [c for c in staged.columns if c.startswith(("_note_", "_ai_", "_pl_", "_ps_"))]
    return staged.drop([*helpers, "_existing", "_lines", "_ai"])
