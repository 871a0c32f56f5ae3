"""Which mapping a CSV file gets: an export format recognised by its headers, or a mapping
guessed from header synonyms and then from the values (a column of e-mails is the e-mail).

`decide(columns, sample, formats)` is pure: the file's header, a small sample frame and the
built-in formats in, a `Mapping` resolved to the file's own columns out, with its
`Provenance` (detected or guessed, which expected columns are missing, which columns nothing
uses, one sample value each). The CLI does the I/O: it reads the header and a few hundred
rows, prints the decision, and can save the resolved mapping (`to_toml`), which `--mapping`
loads again.

Detection: each built-in mapping with a `[detect]` table scores the share of its signature
headers present in the file (names compared after `normalise_header`); it is a candidate when
at least one of its `any_of` headers is there, the share is >= MIN_SCORE and at least
MIN_MATCHED headers matched. The best share wins (ties: more matched headers).

Guessing (no format matched): header synonyms are every built-in format's aliases per field,
the seeds' format (`csv`) first. Person fields never take a company column: company-ish
aliases are dropped from `linkedinUrl` and moved last for the phone. Fields still unmapped
are then sniffed from the sample's values: e-mail, LinkedIn profile URL, website, phone.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import polars as pl

from etl.errors import ConfigError, InputFileError
from etl.fields import LEAD_FIELDS
from etl.mapping import Mapping, NoteColumn, Provenance, builtin_names, header_keys, normalise_header
from etl.transform.steps import used_columns

MIN_SCORE = 0.5
"""Share of a format's signature headers a file must have to be recognised as that format."""
MIN_MATCHED = 3
SNIFF_SHARE = 0.6
"""Share of a column's non-empty sample values that must look right for value sniffing."""
PREAMBLE_MAX_LINES = 50
"""How far down a known export's header is looked for when line 1 is not one."""
GUESS_SOURCE = "csv"
"""The built-in mapping whose aliases lead the synonyms, and whose notes a guessed mapping keeps."""

_COMPANY_WORDS = ("company", "corporate", "organization", "organisation", "account", "hq", "business main")
_PERSON_FIELDS = ("email", "firstName", "lastName", "fullName", "title", "phoneNumber", "linkedinUrl")

# Value shapes for sniffing (on trimmed values). The e-mail shape allows a `mailto:` and a
# second address after `;` or `,` (exports write several in one cell).
_EMAIL_VALUE = r"^(?i:mailto:)?[^@\s,;<>]+@[^@\s,;<>]+\.[A-Za-z]{2,}(?:\s*[,;].*)?$"
_LINKEDIN_PROFILE = r"(?i)linkedin\.com/(?:in|pub)/"
_LINKEDIN_COMPANY = r"(?i)linkedin\.com/(?:company|school|showcase)/"
_WEBSITE = r"(?i)^(?:https?://|www\.)?[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}(?:[/?#]\S*)?$"
_SOCIAL = r"(?i)(?:linkedin|facebook|twitter|x|instagram|youtube)\.com"
_PHONE = r"^'?\+?[\d\s().\-/]{7,24}$"


@dataclass(frozen=True)
class Candidate:
    """How well one format's signature fits a header (pure data, for tests and reports)."""

    name: str
    score: float
    matched: int
    missing: tuple[str, ...]
    eligible: bool


def score_format(columns: list[str], mapping: Mapping) -> Candidate:
    """Score `mapping`'s `[detect]` signature against the file's columns."""
    return _score(_keys(columns), mapping)


def _score(keys: set[str], mapping: Mapping) -> Candidate:
    detect = mapping.detect
    if detect is None:
        return Candidate(mapping.name, 0.0, 0, (), False)
    matched = [s for s in detect.signature if _norm(s) in keys]
    missing = tuple(s for s in detect.signature if _norm(s) not in keys)
    score = len(matched) / len(detect.signature)
    any_ok = not detect.any_of or any(_norm(a) in keys for a in detect.any_of)
    eligible = any_ok and score >= MIN_SCORE and len(matched) >= MIN_MATCHED
    return Candidate(mapping.name, round(score, 3), len(matched), missing, eligible)


def detect_format(columns: list[str], formats: Iterable[Mapping]) -> tuple[Mapping, Candidate] | None:
    """The best-fitting built-in format for these headers, or None when none fits."""
    keys = _keys(columns)  # once per header, not once per format
    best: tuple[Mapping, Candidate] | None = None
    for mapping in formats:
        cand = _score(keys, mapping)
        if not cand.eligible:
            continue
        if best is None or (cand.score, cand.matched) > (best[1].score, best[1].matched):
            best = (mapping, cand)
    return best


@dataclass(frozen=True)
class HeaderFound:
    """Where a known export's header is: `skip` lines come before it (a preamble), `label` says whose."""

    skip: int
    label: str


def find_header(
    lines: Sequence[list[str]], formats: Iterable[Mapping], *, source: str = "the file"
) -> HeaderFound | None:
    """The line holding a known export's header when line 1 is not one (pure).

    `lines`: the file's first lines, each split into fields (a blank line is `[""]`). None when
    line 1 already is a header of a known format, or when no line is (a layout we don't know:
    the header is line 1, as always). A line below counts only if every non-blank line above it
    has fewer fields than it: prose before a header, not a table whose rows happen to name
    columns. A file that begins with a format's own preamble (`[detect] preamble`, LinkedIn's
    `Notes:`) but has no header after it raises `InputFileError`: it is cut off, not a guess.
    """
    formats = [m for m in formats if m.detect is not None]
    if not lines or detect_format(lines[0], formats) is not None:
        return None
    widest = 0
    for i in range(min(len(lines), PREAMBLE_MAX_LINES)):
        fields = lines[i]
        if i and len(fields) > widest and len(fields) >= MIN_MATCHED:
            hit = detect_format(fields, formats)
            if hit is not None:
                detect = hit[0].detect
                return HeaderFound(skip=i, label=detect.label if detect else hit[0].name)
        if any(f.strip() for f in fields):
            widest = max(widest, len(fields))
    first = ",".join(lines[0]).strip()
    for mapping in formats:
        d = mapping.detect
        if d is not None and d.preamble and first.startswith(d.preamble):
            seen = min(len(lines), PREAMBLE_MAX_LINES)
            raise InputFileError(
                f"{source} begins like a {d.label} ({first[:40]!r}) but none of its first {seen} line(s) is "
                f"the export's header ({','.join(d.signature)}): the file looks cut off; download the export again"
            )
    return None


def decide(
    columns: list[str],
    sample: pl.DataFrame | None,
    formats: list[Mapping],
    *,
    given: Mapping | None = None,
    source: str = "the file",
) -> Mapping:
    """The mapping this file gets, resolved to its columns, with its `Provenance`.

    `given` (from `--mapping`) overrides detection. Raises `ConfigError` (one line, exit 2)
    when no column can be the e-mail: a run would only reject every row.
    """
    if sample is None:
        sample = pl.DataFrame(schema=dict.fromkeys(columns, pl.String))
    samples = first_values(sample, columns)
    guessed: dict[str, str] = {}
    missing: tuple[str, ...] = ()
    score = 0.0
    if given is not None:
        chosen, how, label = given, "given", f"mapping file {given.name!r}"
    elif (hit := detect_format(columns, formats)) is not None:
        chosen, cand = hit
        how, label, score = "detected", (chosen.detect.label if chosen.detect else chosen.name), cand.score
    else:
        chosen, guessed = guess_mapping(columns, sample, formats)
        how, label = "guessed", "not a known export format: mapped by header synonyms and values"
    resolved = resolve(chosen, columns)
    if "email" not in resolved.fields and how == "detected":
        # A known layout plus an e-mail column of its own (an enrichment step's): found as a
        # guess would find it, and reported as guessed.
        free = [c for c in columns if c not in used_columns(resolved, columns)]
        found = find_email(free, sample, formats)
        if found is not None:
            resolved = replace(resolved, fields={"email": (found[0],), **resolved.fields})
            guessed = {"email": found[1]}
    if "email" not in resolved.fields:
        raise ConfigError(no_email_message(columns, chosen, label, source))
    if how == "detected":
        missing = _missing_expected(chosen, resolved, columns)
    used = set(used_columns(resolved, columns))
    unmapped = tuple(c for c in columns if c not in used)
    return replace(
        resolved,
        provenance=Provenance(
            label=label, how=how, score=score, missing=missing, unmapped=unmapped, guessed=guessed,
            samples={c: v for c, v in samples.items() if v is not None},
        ),
    )


def resolve(mapping: Mapping, columns: list[str]) -> Mapping:
    """`mapping` with every alias list replaced by the file columns it names (in the order the
    run tries them); fields, notes and AI sections that name no column of the file are dropped.
    Loading the result again (`to_toml`, `--mapping`) maps the same file the same way."""
    fields = {
        f: tuple(cols) for f, aliases in mapping.fields.items() if (cols := mapping.source_columns(columns, aliases))
    }
    notes = tuple(
        NoteColumn(columns=tuple(cols), label=n.label)
        for n in mapping.notes
        if (cols := mapping.source_columns(columns, n.columns))
    )
    ai_notes = {k: tuple(cols) for k, a in mapping.ai_notes.items() if (cols := mapping.source_columns(columns, a))}
    hints = {k: tuple(cols) for k, a in mapping.hints.items() if (cols := mapping.source_columns(columns, a))}
    return replace(mapping, fields=fields, notes=notes, ai_notes=ai_notes, hints=hints, detect=None)


def guess_mapping(
    columns: list[str], sample: pl.DataFrame, formats: list[Mapping]
) -> tuple[Mapping, dict[str, str]]:
    """Header synonyms first, then value sniffing for the fields still unmapped.
    Returns the mapping (aliases = the file's columns) and, per mapped field, how it was found."""
    synonyms = synonym_table(formats)
    base = next((m for m in formats if m.name == GUESS_SOURCE), None)
    probe = Mapping(name="guessed", fields={"email": ("email",)})
    fields: dict[str, tuple[str, ...]] = {}
    guessed: dict[str, str] = {}
    taken: set[str] = set()
    for target, aliases in synonyms.items():
        cols = [c for c in probe.source_columns(columns, aliases) if c not in taken]
        if target == "linkedinUrl":
            # A column just named "LinkedIn" may hold company pages: never the person's profile.
            cols = [c for c in cols if sniff_column(sample, [c], _LINKEDIN_COMPANY) is None]
        if cols:
            fields[target] = tuple(cols)
            guessed[target] = "header"
            taken.update(cols)
    notes = base.notes if base else ()
    taken.update(c for n in notes for c in probe.source_columns(columns, n.columns))
    for target, pattern, exclude in (
        ("email", _EMAIL_VALUE, None),
        ("linkedinUrl", _LINKEDIN_PROFILE, None),
        ("companyUrl", _WEBSITE, _SOCIAL),
        ("phoneNumber", _PHONE, None),
    ):
        if target in fields:
            continue
        free = [c for c in columns if c not in taken]
        col = sniff_column(sample, free, pattern, exclude, digits=target == "phoneNumber")
        if col is not None:
            fields[target] = (col,)
            guessed[target] = "values"
            taken.add(col)
    order = ["email", *(f for f in LEAD_FIELDS if f != "email")]
    fields = {f: fields[f] for f in order if f in fields}  # e-mail first, then the API's field order
    constants = dict(base.constants) if base else {}
    mapping = Mapping(
        name="guessed",
        description="Guessed from header synonyms and values; check it, then keep it with --save-mapping",
        fields=fields, notes=tuple(notes), ai_notes=dict(base.ai_notes) if base else {}, constants=constants,
        hints=dict(base.hints) if base else {},
    )
    return mapping, guessed


def find_email(columns: list[str], sample: pl.DataFrame, formats: list[Mapping]) -> tuple[str, str] | None:
    """An e-mail column among `columns`: by a synonym of its header, else by its values.
    Returns (column, "header" | "values") or None."""
    probe = Mapping(name="probe", fields={"email": ("email",)})
    named = probe.source_columns(columns, synonym_table(formats).get("email", ()))
    if named:
        return named[0], "header"
    col = sniff_column(sample, columns, _EMAIL_VALUE)
    return (col, "values") if col is not None else None


def synonym_table(formats: list[Mapping]) -> dict[str, tuple[str, ...]]:
    """Per LeadGenius field, every built-in format's aliases, the seeds' format first.

    Person fields never reach for a company column: company-ish aliases are dropped from
    `linkedinUrl` (`Company Linkedin Url` is the company's page) and e-mail, and put last for
    the phone (`Corporate Phone` only when the person has no number)."""
    ordered = sorted(formats, key=lambda m: (m.name != GUESS_SOURCE, m.name))
    table: dict[str, list[str]] = {}
    seen: dict[str, set[str]] = {}
    for mapping in ordered:
        for target, aliases in mapping.fields.items():
            for alias in aliases:
                key = normalise_header(alias)
                if key in seen.setdefault(target, set()):
                    continue
                seen[target].add(key)
                table.setdefault(target, []).append(alias)
    out: dict[str, tuple[str, ...]] = {}
    for target, names in table.items():
        if target in _PERSON_FIELDS:
            person = [a for a in names if not _company_ish(a)]
            company = [a for a in names if _company_ish(a)] if target == "phoneNumber" else []
            names = person + company
        out[target] = tuple(names)
    return out


def sniff_column(
    sample: pl.DataFrame, candidates: list[str], pattern: str, exclude: str | None = None, *, digits: bool = False
) -> str | None:
    """The candidate column whose non-empty sample values most often match `pattern`
    (at least SNIFF_SHARE of them), or None. `digits`: also 7-15 digits per value (phones)."""
    best: tuple[float, str] | None = None
    for col in candidates:
        if col not in sample.columns:
            continue
        values = sample.get_column(col).cast(pl.String).str.strip_chars()
        values = values.filter(values.is_not_null() & (values != ""))
        if values.len() == 0:
            continue
        ok = values.str.contains(pattern)
        if exclude is not None:
            ok = ok & ~values.str.contains(exclude)
        if digits:
            n = values.str.count_matches(r"\d")
            ok = ok & (n >= 7) & (n <= 15)
        share = int(ok.sum()) / ok.len()
        if share >= SNIFF_SHARE and (best is None or share > best[0]):
            best = (share, col)
    return best[1] if best else None


def first_values(sample: pl.DataFrame, columns: list[str]) -> dict[str, str | None]:
    """Per column, its first non-empty value in the sample (trimmed), for display."""
    out: dict[str, str | None] = {}
    for col in columns:
        if col not in sample.columns:
            out[col] = None
            continue
        values = sample.get_column(col).cast(pl.String).str.strip_chars()
        values = values.filter(values.is_not_null() & (values != ""))
        out[col] = values[0] if values.len() else None
    return out


def no_email_message(columns: list[str], mapping: Mapping, label: str, source: str) -> str:
    """One line: which columns were looked at, and what to do."""
    shown = ", ".join(columns[:40]) + (f", … ({len(columns) - 40} more)" if len(columns) > 40 else "")
    named = ", ".join(mapping.fields.get("email", ())[:6])
    if len(columns) <= 1:
        # Lines above the header (a title, notes) that no known format explains.
        return (
            f"no e-mail column in {source}: its header line has {len(columns)} column(s) [{shown}], so it is "
            "probably not the header; if lines above the header hold a title or notes, pass --skip-rows N "
            "(the number of lines before the header; `skip_rows` in a job file)"
        )
    return (
        f"no e-mail column in {source} ({label}): looked at its {len(columns)} column(s) [{shown}] "
        f"for a header like {named or 'Email'} and for values that are e-mail addresses, and found none; "
        "every lead needs an e-mail: add the column (e.g. from an enrichment step) or pass --mapping FILE.toml"
    )


def _missing_expected(chosen: Mapping, resolved: Mapping, columns: list[str]) -> tuple[str, ...]:
    """Signature headers absent from the file, except those whose field found one of its other
    spellings (Apollo's `Company Name` when the file has `Company`, which the signature lacks)."""
    if chosen.detect is None:
        return ()
    keys = _keys(columns)
    signature = {normalise_header(s) for s in chosen.detect.signature}
    satisfied = {
        normalise_header(a)
        for f, aliases in chosen.fields.items()
        if f in resolved.fields and normalise_header(resolved.fields[f][0]) not in signature
        for a in aliases
    }
    return tuple(
        s for s in chosen.detect.signature if normalise_header(s) not in keys and normalise_header(s) not in satisfied
    )


_norm = functools.lru_cache(maxsize=4096)(normalise_header)
"""The formats' signature names, normalised once per process (every header is scored against them)."""


def _keys(columns: list[str]) -> set[str]:
    keys = set(header_keys(columns).values())
    keys.update(normalise_header(c) for c in columns)
    return keys


def _company_ish(alias: str) -> bool:
    key = normalise_header(alias)
    return any(normalise_header(w) in key for w in _COMPANY_WORDS)


# --- I/O at the edge: the shipped formats, and writing a mapping back as TOML -------------------

_FORMATS: list[Mapping] | None = None


def builtin_formats() -> list[Mapping]:
    """Every shipped mapping (etl/mappings/*.toml), loaded once per process."""
    global _FORMATS
    if _FORMATS is None:
        _FORMATS = [Mapping.builtin(n) for n in builtin_names()]
    return _FORMATS


def to_toml(mapping: Mapping, *, header: str = "") -> str:
    """`mapping` as a TOML file that `Mapping.load` reads back to an equal mapping."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()] if header else []
    lines += [f"name = {_q(mapping.name)}"]
    if mapping.description:
        lines.append(f"description = {_q(mapping.description)}")
    lines += ["", "[fields]"]
    lines += [f"{k} = {_arr(v)}" for k, v in mapping.fields.items()]
    if mapping.constants:
        lines += ["", "[constants]"] + [f"{k} = {_q(v)}" for k, v in mapping.constants.items()]
    for note in mapping.notes:
        lines += ["", "[[notes]]", f"column = {_arr(note.columns)}", f"label = {_q(note.label)}"]
    if mapping.ai_notes:
        lines += ["", "[ai_notes]"] + [f"{k} = {_arr(v)}" for k, v in mapping.ai_notes.items()]
    if mapping.hints:
        lines += ["", "[hints]"] + [f"{k} = {_arr(v)}" for k, v in mapping.hints.items()]
    if mapping.detect:
        d = mapping.detect
        lines += ["", "[detect]", f"label = {_q(d.label)}", f"signature = {_arr(d.signature)}"]
        if d.any_of:
            lines.append(f"any_of = {_arr(d.any_of)}")
        if d.preamble:
            lines.append(f"preamble = {_q(d.preamble)}")
    return "\n".join(lines) + "\n"


def _q(text: str) -> str:
    # A JSON string is a TOML basic string, except that TOML also wants DEL escaped.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _arr(values: Iterable[str]) -> str:
    return "[" + ", ".join(_q(v) for v in values) + "]"


def report_fields(mapping: Mapping) -> dict[str, list[str]]:
    return {k: list(v) for k, v in mapping.fields.items()}


__all__ = [
    "Candidate",
    "HeaderFound",
    "builtin_formats",
    "decide",
    "detect_format",
    "find_email",
    "find_header",
    "first_values",
    "guess_mapping",
    "no_email_message",
    "report_fields",
    "resolve",
    "score_format",
    "sniff_column",
    "synonym_table",
    "to_toml",
]
