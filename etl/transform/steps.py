"""The individual transforms. Each is pure `DataFrame -> DataFrame` (or builds expressions):
no I/O, no clock, no per-row Python. `etl.transform.transform` chains them with `.pipe`.
"""

from __future__ import annotations

import string

import polars as pl

from etl.fields import LEAD_FIELDS
from etl.mapping import Mapping
from etl.transform.notes import MORE_EMAILS
from etl.transform.values import COUNTRY_COLUMN

# Whitespace the API's trim would also remove, plus zero-width characters that make a value
# look empty to a human (quirk 3: a whitespace-only value is a 500).
BLANK_CHARS = (
    " \t\n\r\v\f\x1c\x1d\x1e\x1f"
    "\u0085\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000\u200b\u200c\u200d\u2060\ufeff"
)

_NON_ASCII = r"\x{80}-\x{10FFFF}"
_ATOM = r"[a-z0-9!#$%&'*+/=?^_`{|}~" + _NON_ASCII + r"-]+"
_LABEL = r"[a-z0-9" + _NON_ASCII + r"](?:[a-z0-9" + _NON_ASCII + r"-]{0,61}[a-z0-9" + _NON_ASCII + r"])?"
EMAIL_PATTERN = rf"^{_ATOM}(?:\.{_ATOM})*@(?:{_LABEL}\.)+[a-z{_NON_ASCII}]{{2,63}}$"
"""A practical address check on the lower-cased e-mail: dot-atom local part, dotted host, a
letter TLD. Non-ASCII is allowed as a byte range rather than `\\p{L}`: the Unicode classes
made this one regex 40x slower (benchmark), and the API stores such addresses as given."""

NAME_USABLE_PATTERN = r"[\p{L}\p{N}]"
"""A name is usable when it has a letter or digit; punctuation/space-only is not (quirk 4)."""

ROLE_WORDS: tuple[str, ...] = (
    "info", "sales", "contact", "contacts", "admin", "administrator", "support", "hello", "hi", "team",
    "office", "marketing", "noreply", "no", "reply", "donotreply", "billing", "accounts", "accounting",
    "finance", "hr", "jobs", "careers", "recruiting", "enquiries", "enquiry", "inquiries", "inquiry",
    "mail", "email", "webmaster", "postmaster", "hostmaster", "help", "helpdesk", "service", "services",
    "customer", "customers", "care", "press", "media", "news", "newsletter", "abuse", "security",
    "privacy", "legal", "orders", "order", "booking", "bookings", "reception", "general", "partners",
    "partner", "dev", "it", "ops", "tech", "welcome", "team", "staff", "all", "everyone", "test", "user",
    "demo", "example", "mailer", "daemon", "bounce", "bounces", "notifications", "alerts", "community",
    "growth", "ceo", "founder", "founders", "investors", "ir", "pr", "purchasing", "procurement",
)  # fmt: skip
"""Local-part words that name a mailbox, not a person: never turned into a name."""

_ASCII_BLANK = "".join(c for c in BLANK_CHARS if c.isascii())

# The e-mail local part shapes we trust to be "first<sep>last": two letter-only words of 2+.
_NAME_PARTS = r"^(\p{L}{2,})[._-](\p{L}{2,})$"
_NAME_PARTS_IN_EMAIL = r"^(\p{L}{2,})[._-](\p{L}{2,})(?:[@+]|$)"


ASCII_ALNUM = [*string.ascii_letters, *string.digits]


def with_letter_or_digit(frame: pl.DataFrame, columns: dict[str, str]) -> pl.DataFrame:
    """Add, for each `{source: target}`, `source.str.contains(NAME_USABLE_PATTERN)` as `target`
    (null for null). An ASCII letter or digit settles most values with one multi-needle scan
    (~2x cheaper than the Unicode regex, benchmark); the regex runs only on the rest (nulls
    elsewhere cost nothing)."""
    hits = {t: f"{t}_ascii" for t in columns.values()}
    staged = frame.with_columns(pl.col(c).str.contains_any(ASCII_ALNUM).alias(hits[t]) for c, t in columns.items())
    rest = [
        (pl.col(hits[t]) | pl.when(~pl.col(hits[t])).then(pl.col(c)).str.contains(NAME_USABLE_PATTERN)).alias(t)
        for c, t in columns.items()
    ]
    return staged.with_columns(rest).drop(hits.values())


def ascii_columns(frame: pl.DataFrame, columns: list[str]) -> set[str]:
    """The String `columns` whose values are all ASCII (no value has more bytes than characters).

    One cheap column-level scan that lets the steps pick the fast form of an operation that is
    only different for non-ASCII text (e.g. `strip_chars()` vs `strip_chars(BLANK_CHARS)`).
    """
    if not columns or frame.height == 0:
        return set(columns)
    text = [pl.col(c).cast(pl.String) for c in columns]
    row = frame.select(
        [(t.str.len_bytes().sum() == t.str.len_chars().sum()).alias(c) for t, c in zip(text, columns, strict=True)]
    ).row(0)
    return {c for c, ok in zip(columns, row, strict=True) if ok}


def strip_chars_expr(column: str, ascii_only: bool, extra: str = "") -> pl.Expr:
    """`str.strip_chars(BLANK_CHARS + extra)`, in its fast form when the column is all ASCII.

    On an ASCII column the short ASCII part of the set does the same job
    (tests/transform/test_fast_paths.py). Not `strip_chars()`: Unicode White_Space leaves the
    separators U+001C-U+001F, which Python's `str.strip()` (the API's trim) removes.
    """
    col = pl.col(column).cast(pl.String)
    return col.str.strip_chars((_ASCII_BLANK if ascii_only else BLANK_CHARS) + extra)


def nullify_empty(columns: list[str]) -> list[pl.Expr]:
    """`""` -> null for each column (a separate pass: `when(e != "").then(e)` on a computed `e`
    would evaluate `e` twice in an eager frame)."""
    return [pl.when(pl.col(c) != "").then(pl.col(c)).alias(c) for c in columns]


TEXT_PREFIX = r"^'([=+\-@])"
"""A spreadsheet's text prefix: `'` before a value it would otherwise run as a formula or read as
a number. Apollo writes phones as `'+1 415 555 0100`; our own CSV export (and OWASP's advice)
prefixes `'` to cells starting with `=`, `+`, `-`, `@`. Only that `'` goes: `'t Hooft` stays."""


PLACEHOLDER_EMAILS = ("email_not_unlocked@domain.com",)
"""Addresses an export writes where it has none: Apollo fills `Email` with this one for contacts
whose address was not unlocked. Treated as no address, so `Secondary Email` can stand in."""


def drop_placeholder_emails(frame: pl.DataFrame, email_columns: list[str]) -> pl.DataFrame:
    """A placeholder address (`PLACEHOLDER_EMAILS`, any case) in an e-mail column becomes null."""
    placeholder = [c for c in email_columns if c in frame.columns]
    return frame.with_columns(
        pl.when(pl.col(c).str.to_lowercase().is_in(PLACEHOLDER_EMAILS)).then(None).otherwise(pl.col(c)).alias(c)
        for c in placeholder
    )


def strip_values(frame: pl.DataFrame, columns: list[str], phone_columns: frozenset[str] = frozenset()) -> pl.DataFrame:
    """Trim every value; empty or whitespace-only becomes null (quirk 3: never send "").

    The spreadsheet text prefix goes too (`TEXT_PREFIX`); in `phone_columns` every leading or
    trailing `'` does (a phone never starts with one). The prefix regex runs only on columns
    where some value starts with `'` (one cheap scan per column).

    Always the full BLANK_CHARS set: the all-ASCII scan that would allow the short set costs
    more than it saves here (7.7 vs ~3 ms per 200k rows x 14 columns, benchmark)."""
    stripped = frame.with_columns([strip_chars_expr(c, False, "'" if c in phone_columns else "") for c in columns])
    others = [c for c in columns if c not in phone_columns]
    if others and stripped.height:
        quoted = stripped.select(pl.col(c).str.starts_with("'").any() for c in others).row(0)
        prefixed = [c for c, hit in zip(others, quoted, strict=True) if hit]
        if prefixed:
            stripped = stripped.with_columns(pl.col(c).str.replace(TEXT_PREFIX, "$1") for c in prefixed)
    return stripped.with_columns(nullify_empty(columns))


def coalesce_columns(columns: list[str]) -> pl.Expr:
    """First non-null of `columns` per row (ordered fallbacks); null when there are none."""
    if not columns:
        return pl.lit(None, dtype=pl.String)
    return pl.coalesce([pl.col(c) for c in columns])


def used_columns(mapping: Mapping, available: list[str]) -> list[str]:
    """The columns of `available` that the mapping reads (fields, notes, AI block, hints), in
    file order. The others reach only the rejects file, untouched: an Apollo export's 60 unmapped
    columns cost nothing in the transform."""
    aliases = [*mapping.fields.values(), *(n.columns for n in mapping.notes), *mapping.ai_notes.values(),
               *mapping.hints.values()]  # fmt: skip
    wanted = {c for a in aliases for c in mapping.source_columns(available, a)}
    return [c for c in available if c in wanted]


def map_fields(
    frame: pl.DataFrame, mapping: Mapping, client_id: str, stripped: list[str] | None = None
) -> pl.DataFrame:
    """Source columns -> every LeadGenius field (null where nothing maps), plus `_note_<i>` and
    `_ai_<key>` helper columns for notes aggregation. Expects `strip_values` first, on
    `stripped` (default: every source column): `_empty` says they are all null.

    `phone` and any other unlisted column simply never make it out (field allowlist, quirk 2).
    """
    available = [c for c in frame.columns if not c.startswith("_")]
    exprs: list[pl.Expr] = [pl.col("_row")]
    for name in LEAD_FIELDS:
        if name == "client_id":
            exprs.append(pl.lit(client_id, dtype=pl.String).alias(name))
            continue
        cols = mapping.source_columns(available, mapping.fields.get(name, ()))
        expr = coalesce_columns(cols)
        if name in mapping.constants:
            expr = pl.coalesce([expr, pl.lit(mapping.constants[name], dtype=pl.String)])
        exprs.append(expr.alias(name))
    for i, note in enumerate(mapping.notes):
        exprs.append(coalesce_columns(mapping.source_columns(available, note.columns)).alias(f"_note_{i}"))
    for key, aliases in mapping.ai_notes.items():
        exprs.append(coalesce_columns(mapping.source_columns(available, aliases)).alias(f"_ai_{key}"))
    country = mapping.source_columns(available, mapping.hints.get("country", ()))
    if country:
        exprs.append(coalesce_columns(country).alias(COUNTRY_COLUMN))
    checked = available if stripped is None else stripped
    exprs.append(
        pl.all_horizontal([pl.col(c).is_null() for c in checked]).alias("_empty") if checked else pl.lit(True)
    )
    return frame.select(exprs)


_EMAIL_SEPARATORS = [";", ",", " ", "\t", "\n", "\r"]


def normalise_email(frame: pl.DataFrame) -> pl.DataFrame:
    """Trim, drop a `mailto:` prefix, lower-case; `_key` is the result (the dedupe key).

    A cell holding several addresses separated by `;`, `,` or blanks (every piece has an `@`):
    the first is the e-mail, the others go to `MORE_EMAILS` (then notes). A cell with a piece
    that is no address (`john smith@x.com`) is left whole, to be rejected as written.

    Lower-cased first, then the prefix: the same as removing `(?i)^mailto:` first (no other
    character lower-cases to one of `mailto:`), without a case-insensitive regex.
    """
    lowered = frame.with_columns(pl.col("email").str.to_lowercase())
    several = lowered.get_column("email").str.contains_any(_EMAIL_SEPARATORS)
    if several.any():
        pieces = (
            pl.when(pl.lit(several))
            .then(pl.col("email"))
            .str.replace_all(r"[;,\s]+", " ")
            .str.strip_chars(" ")
            .str.split(" ")
            .list.eval(pl.element().str.strip_prefix("mailto:").str.strip_chars("<>"))
        )
        staged = lowered.with_columns(pieces.alias("_pieces"))
        usable = pl.col("_pieces").list.eval(pl.element().str.contains("@", literal=True)).list.all()
        staged = staged.with_columns(pl.when(usable).then(pl.col("_pieces").list.unique(maintain_order=True)))
        more = pl.col("_pieces").list.slice(1).list.join(", ")
        lowered = staged.with_columns(
            pl.coalesce(pl.col("_pieces").list.first(), pl.col("email")).alias("email"),
            pl.when(more != "").then(more).alias(MORE_EMAILS),
        ).drop("_pieces")
    lowered = lowered.with_columns(pl.col("email").str.strip_prefix("mailto:"))
    # The full blank set: the all-ASCII scan that would allow the short one costs more than it
    # saves (as in `strip_values`).
    frame = lowered.with_columns(strip_chars_expr("email", False, "<>"))
    return frame.with_columns(nullify_empty(["email"])).with_columns(pl.col("email").alias("_key"))


def classify_rows(frame: pl.DataFrame) -> pl.DataFrame:
    """Add `_rule` (null when the row is fine). Needs `normalise_email` first.

    Rules: `empty_row` (no value at all), `missing_email` (no usable e-mail: a lead without one
    cannot be matched or deduplicated; the seeds skip such contacts), `invalid_email`.
    The reasons are worded by `explain_rejects`, for the rejected rows only.
    """
    valid = pl.col("email").str.contains(EMAIL_PATTERN) & (pl.col("email").str.len_chars() <= 254)
    rule = (
        pl.when(pl.col("_empty"))
        .then(pl.lit("empty_row"))
        .when(pl.col("email").is_null())
        .then(pl.lit("missing_email"))
        .when(~valid)
        .then(pl.lit("invalid_email"))
        .otherwise(pl.lit(None, dtype=pl.String))
    )
    return frame.with_columns(rule.alias("_rule"))


def explain_rejects(rejected: pl.DataFrame, email_columns: list[str]) -> pl.DataFrame:
    """Add `_reason` to rows that `classify_rows` gave a `_rule`.

    Run on the rejected rows alone: an eager when/then evaluates every branch for every row,
    and wording the few rejects is cheap where wording (and nulling) every row was not (about
    a quarter of the transform on the benchmark).
    """
    # Contiguous columns: polars 2.1.0 was seen to panic here (`assertion failed: i < self.len()`,
    # issue 10) on the multi-chunk frames the CSV parser hands on, never on a rechunked copy.
    # Only the rejected rows are copied, so this costs next to nothing.
    rejected = rejected.rechunk()
    looked = ", ".join(email_columns) if email_columns else "no e-mail column"
    shown = pl.col("email").str.replace_all(r"[\r\n\t]+", " ").str.slice(0, 80)
    reason = (
        pl.when(pl.col("_rule") == "empty_row")
        .then(pl.lit("row has no values"))
        .when(pl.col("_rule") == "missing_email")
        .then(pl.lit(f"no e-mail address (looked in: {looked})"))
        .when(pl.col("_rule") == "placeholder_email")
        .then(pl.lit(f"only a placeholder e-mail address, e.g. Apollo's not-unlocked one (looked in: {looked})"))
        .when(pl.col("_rule") == "invalid_email")
        .then(pl.format('not a valid e-mail address: "{}"', shown))
        .otherwise(pl.lit(None, dtype=pl.String))
    )
    return rejected.with_columns(reason.alias("_reason"))


def fill_names(frame: pl.DataFrame) -> pl.DataFrame:
    """firstName / lastName fallback (quirk 4: a punctuation-only lastName is a 500).

    A name is *usable* when it contains a letter or digit. An unusable (missing, ".", "-",
    ", ") firstName or lastName is replaced by:
      1. the matching part of the e-mail's local part (a `+tag` dropped), title-cased, when
         that local part is exactly two letter-only words of 2+ letters joined by `.`, `_`
         or `-` (`john.smith@` -> John / Smith), neither word is a role word (`info`,
         `sales`, `team`, … see ROLE_WORDS), and the *other* name is missing or equals its
         e-mail part (case-insensitive) — so a contact named "Bob" at `john.smith@` does not
         become "Bob Smith";
      2. otherwise `"-"` (the API's accepted placeholder).
    A usable name is never changed. Applied to both fields, independently.
    """
    # Materialised in stages: shared sub-expressions nested in when/then get re-evaluated.
    # One regex on the address: its local part (up to the first `@` or `+`) is `_NAME_PARTS`.
    # Same groups as extracting the local part first (letters never include `@` `+` `.` `_`
    # `-`), without a capture-group pass over every address (the slow part).
    # The address is only looked at for rows with an unusable name (the regex runs on the
    # others' nulls for free); a row with both names usable never reads `_fp` / `_lp`.
    staged = with_letter_or_digit(frame, {"firstName": "_uf", "lastName": "_ul"})
    staged = staged.with_columns(pl.col("_uf").fill_null(False), pl.col("_ul").fill_null(False))
    needed = pl.when(~(pl.col("_uf") & pl.col("_ul"))).then(pl.col("email"))
    staged = staged.with_columns(needed.str.extract_groups(_NAME_PARTS_IN_EMAIL).alias("_parts"))
    staged = staged.with_columns(
        pl.col("_parts").struct.field("1").alias("_fp"),
        pl.col("_parts").struct.field("2").alias("_lp"),
    )
    role = pl.col("_fp").is_in(list(ROLE_WORDS)) | pl.col("_lp").is_in(list(ROLE_WORDS))
    staged = staged.with_columns((pl.col("_fp").is_not_null() & ~role.fill_null(False)).alias("_derivable"))
    # The other name is lower-cased only where it decides something (derivable rows).
    other_last = pl.when(pl.col("_derivable") & pl.col("_ul")).then(pl.col("lastName")).str.to_lowercase()
    other_first = pl.when(pl.col("_derivable") & pl.col("_uf")).then(pl.col("firstName")).str.to_lowercase()
    first_ok = pl.col("_derivable") & (~pl.col("_ul") | (other_last == pl.col("_lp")).fill_null(False))
    last_ok = pl.col("_derivable") & (~pl.col("_uf") | (other_first == pl.col("_fp")).fill_null(False))
    first_name = (
        pl.when(pl.col("_uf"))
        .then(pl.col("firstName"))
        .when(first_ok)
        .then(pl.col("_fp").str.to_titlecase())
        .otherwise(pl.lit("-"))
    )
    last_name = (
        pl.when(pl.col("_ul"))
        .then(pl.col("lastName"))
        .when(last_ok)
        .then(pl.col("_lp").str.to_titlecase())
        .otherwise(pl.lit("-"))
    )
    return staged.with_columns(first_name.alias("firstName"), last_name.alias("lastName")).drop(
        "_parts", "_fp", "_lp", "_uf", "_ul", "_derivable"
    )


def select_lead_columns(frame: pl.DataFrame) -> pl.DataFrame:
    """The field allowlist: `_row`, `_key`, then exactly LEAD_FIELDS (quirk 2)."""
    return frame.select(
        pl.col("_row").cast(pl.Int64), pl.col("_key").cast(pl.String), *[pl.col(f).cast(pl.String) for f in LEAD_FIELDS]
    )
