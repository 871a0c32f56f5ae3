"""The fast forms used by the transforms give exactly what the plain forms give.

Each fast path (chosen for speed on the benchmark) is compared with the straightforward
expression it replaces, on adversarial strings: zero-width and Unicode blanks, mixed case
`mailto:`, dotted capitals, non-ASCII letters, CR/LF.
"""

from __future__ import annotations

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from etl.transform import Deduper
from etl.transform.dedupe import split_duplicates
from etl.transform.steps import BLANK_CHARS, normalise_email, strip_values

_TRICKY = [
    *" \t\r\n\x0b\x0c\x1c\x1f\u0085\u00a0\u2000\u3000\u200b\u200c\u200d\u2060\ufeff<>@+.-_\"'=",
    "mailto:", "MAILTO:", "MaİlTo:", "İ", "K", "ß", "é", "李", "x", "John", "a.b", "@x.io",
]  # fmt: skip
texts = st.lists(st.sampled_from(_TRICKY) | st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=8).map(
    "".join
)


def _frame(values: list[str | None]) -> pl.DataFrame:
    return pl.DataFrame(
        {"_row": list(range(1, len(values) + 1)), "v": values}, schema={"_row": pl.Int64, "v": pl.String}
    )


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), texts), max_size=20), st.booleans())
def test_strip_values_equals_strip_of_blank_chars(values: list[str | None], ascii_only: bool) -> None:
    from etl.transform.steps import strip_chars_expr

    if ascii_only:  # an all-ASCII column may take the short-set path of strip_chars_expr
        values = [v.encode("ascii", "ignore").decode() if v is not None else None for v in values]
    got = strip_values(_frame(values), ["v"])["v"].to_list()
    plain = [v.strip(BLANK_CHARS) if v is not None else None for v in values]
    # The spreadsheet text prefix: one `'` before a formula character goes.
    unprefixed = [v[1:] if v is not None and v[:1] == "'" and v[1:2] in ("=", "+", "-", "@") else v for v in plain]
    assert got == [v or None for v in unprefixed]
    short = _frame(values).select(strip_chars_expr("v", ascii_only))["v"].to_list()
    assert short == plain


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), texts), max_size=20))
def test_normalise_email_equals_regex_form(values: list[str | None]) -> None:
    df = _frame(values).rename({"v": "email"})
    several = [v is not None and any(c in v.lower() for c in ";, \t\n\r") for v in values]
    got = [v for v, many in zip(normalise_email(df)["email"].to_list(), several, strict=True) if not many]
    df = df.filter(~pl.Series(several, dtype=pl.Boolean))  # a cell with separators: test_values.py
    plain = df.select(
        pl.col("email").str.replace(r"(?i)^mailto:", "").str.strip_chars(BLANK_CHARS + "<>").str.to_lowercase()
    )["email"].to_list()
    assert got == [v or None for v in plain]


def _reference_split(leads: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The plain form: a window for the first row of every key."""
    with_first = leads.with_columns(_first_row=pl.col("_row").first().over("_key"))
    is_first = pl.col("_key").is_first_distinct()
    reason = pl.format("duplicate e-mail of row {}", pl.col("_first_row")).alias("_reason")
    return (
        with_first.filter(is_first).drop("_first_row"),
        with_first.filter(~is_first).select("_row", "_key", reason),
    )


keys = st.lists(st.one_of(st.none(), st.sampled_from(["a@x.io", "b@x.io", "c@x.io", "d@x.io", "e@x.io"])), max_size=12)


@settings(max_examples=200, deadline=None)
@given(st.lists(keys, min_size=1, max_size=5))
def test_dedupe_matches_reference(batches: list[list[str | None]]) -> None:
    """Within a batch like the window form; across batches the first kept row wins (null never
    matches across batches), whatever the hashes do."""
    dedupe, seen, start = Deduper(), {}, 1
    for batch in batches:
        leads = pl.DataFrame(
            {"_row": list(range(start, start + len(batch))), "_key": batch},
            schema={"_row": pl.Int64, "_key": pl.String},
        )
        start += len(batch)
        kept_ref, dups_ref = _reference_split(leads)
        kept_within, dups_within = split_duplicates(leads)
        assert kept_within.equals(kept_ref) and dups_within.equals(dups_ref)
        kept, dups = dedupe(leads)
        expected_kept = [r for r in kept_ref.rows() if r[1] is None or r[1] not in seen]
        across = [
            (r, k, f"duplicate e-mail of row {seen[k]}") for r, k in kept_ref.rows() if k is not None and k in seen
        ]
        assert kept.rows() == expected_kept
        assert dups.rows() == sorted(dups_ref.rows() + across)
        seen.update({k: r for r, k in expected_kept if k is not None})


local_parts = st.lists(
    st.sampled_from(["john", "Zoë", "李伟", "a", ".", "_", "-", "+", "@", "x.io", "İ", "1"]), max_size=6
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), local_parts.map("".join)), max_size=20))
def test_name_parts_regex_on_address_equals_local_part_first(values: list[str | None]) -> None:
    from etl.transform.steps import _NAME_PARTS, _NAME_PARTS_IN_EMAIL

    s = pl.Series("email", values, dtype=pl.String)
    two_step = s.str.extract(r"^([^@+]*)").str.extract_groups(_NAME_PARTS)
    assert s.str.extract_groups(_NAME_PARTS_IN_EMAIL).to_list() == two_step.to_list()


scores = st.one_of(st.none(), st.sampled_from(["A", "B+", "87", "87/100", "87 / 100 ", "9/10", "/100", "x/1000"]))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(scores, scores), max_size=12))
def test_score_heading_equals_when_then_form(pairs: list[tuple[str | None, str | None]]) -> None:
    """The one-`concat_str` heading (and its no-`/` shortcut) equals the when/then chain."""
    from etl.transform.notes import SCORE_HEADING, score_heading

    df = pl.DataFrame(
        {"s": [p[0] for p in pairs], "h": [p[1] for p in pairs]}, schema={"s": pl.String, "h": pl.String}
    )
    score, score_100 = pl.col("s"), pl.col("h")
    out_of_100 = score_100.str.replace(r"\s*/\s*100\s*$", "") + pl.lit("/100")
    body = (
        pl.when(score.is_not_null() & score_100.is_not_null())
        .then(score + pl.lit(" (") + out_of_100 + pl.lit(")"))
        .when(score.is_not_null())
        .then(score)
        .otherwise(out_of_100)
    )
    plain = df.select(pl.when(score.is_not_null() | score_100.is_not_null()).then(pl.lit(SCORE_HEADING) + body))
    has_slash = any(h is not None and "/" in h for _, h in pairs)
    assert df.select(score_heading(score, score_100)).to_series().to_list() == plain.to_series().to_list()
    got = df.select(score_heading(score, score_100, has_slash)).to_series().to_list()
    assert got == plain.to_series().to_list()


def test_python_whitespace_is_blank() -> None:
    """Everything Python's `str.strip()` (the API's trim) removes counts as blank (U+001C-U+001F
    are whitespace to Python but not Unicode White_Space: a `\x1f` value was a 500)."""
    python_ws = [chr(i) for i in range(0x3001) if chr(i).isspace()]
    assert set(python_ws) <= set(BLANK_CHARS)
    got = strip_values(_frame(["\x1f", " \x1c a \x1e", "\x1d"]), ["v"])["v"].to_list()
    assert got == [None, "a", None]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), texts, st.sampled_from(["-", ".", ", ", "Zoë", "李", "٣", "Ⅻ", "a"])), max_size=8))
def test_letter_or_digit_equals_the_unicode_regex(values: list[str | None]) -> None:
    from etl.transform.steps import NAME_USABLE_PATTERN, with_letter_or_digit

    frame = _frame(values)
    fast = with_letter_or_digit(frame, {"v": "ok"}).get_column("ok")
    plain = frame.select(pl.col("v").str.contains(NAME_USABLE_PATTERN)).to_series()
    assert fast.to_list() == plain.to_list()
