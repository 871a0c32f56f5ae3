"""Declarative mappings: which source columns become which LeadGenius lead fields.

A mapping is a TOML file (see etl/mappings/csv.toml for a commented example). Format:

    name = "csv"                       # optional; defaults to the file's stem
    description = "…"                  # optional, shown in reports

    [fields]                           # LeadGenius field = source column, or ordered fallbacks
    email       = ["email", "e-mail", "email address"]
    phoneNumber = ["phone number", "phone", "mobile phone"]   # first NON-EMPTY value wins, per row
    title       = "job title"

    [constants]                        # a fixed value for every lead (applied when the
    source = "csv-import"              # mapped columns give nothing for that row)

    [[notes]]                          # extra columns appended to `notes` as Markdown lines
    column = "Lifecycle Stage"         #   "**Lifecycle stage:** lead"
    label  = "Lifecycle stage"         # optional; defaults to the column name as written
    # `column` may also be a list of fallbacks, like a [fields] entry.

    [detect]                           # optional: how `import csv` recognises this export
    label     = "Apollo contacts export"
    signature = ["First Name", "Apollo Contact Id", …]   # score = share of these present
    any_of    = ["Apollo Contact Id", "Person Linkedin Url"]   # at least one must be present

    [ai_notes]                         # the seeds' AI block in notes (002 guide, "notes" section)
    score           = ["aiLeadScore", "ai score"]    # "## 🎯 AI SCORE: {score} ({score_100}/100)"
    score_100       = ["leadScore", "score"]
    justification   = ["justification"]              # "### 🧐 JUSTIFICATION"
    recommendations = ["recommendations"]            # "### 💡 STRATEGIC RECOMMENDATIONS"
    sdr_synthesis   = ["sdr synthesis"]              # "### 📝 SDR SYNTHESIS"

    [hints]                            # columns that are no lead field but help clean one
    country = ["country", "country/region"]          # the region phone numbers are read in

Rules:
- Keys of [fields] and [constants] must be LeadGenius lead fields (etl.fields.LEAD_FIELDS);
  anything else is a `ConfigError` (quirk 2: an unknown field is a 500 on the API).
  `client_id` cannot be mapped: the run sets it from --client.
- Column names match after normalisation: case, spaces, `_`, `-`, `.` and other
  punctuation are ignored, so `First Name`, `first_name`, `firstName` and `FIRST-NAME`
  are the same column. If several file columns normalise alike, all are tried in file order;
  a repeated header (which the CSV reader renames `Email_2`, `Email_3`) counts as the same name.
- A column listed nowhere is ignored (it never reaches the API: field allowlist).
- `notes` mapped in [fields] is the existing notes text; [[notes]] lines and the AI block
  are appended after it, each only if it is not already there (re-imports stay idempotent).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from etl.errors import ConfigError
from etl.fields import LEAD_FIELD_SET, LEAD_FIELDS

BUILTIN_MAPPINGS: Traversable = files("etl") / "mappings"
"""The shipped mappings (etl/mappings/*.toml), package data: found the same way in a wheel, a zip or a checkout."""

AI_NOTE_KEYS: tuple[str, ...] = ("score", "score_100", "justification", "recommendations", "sdr_synthesis")

HINT_KEYS: tuple[str, ...] = ("country",)
"""`[hints]` keys: `country` names the column whose value (a name such as "Germany", or a
code such as "DE" / "DEU") is the region a phone number without `+` is read in."""

_TOP_KEYS = {"name", "description", "fields", "constants", "notes", "ai_notes", "hints", "detect"}
_DETECT_KEYS = {"label", "signature", "any_of", "preamble"}
_RENAMED_REPEAT = re.compile(r"^(.*)_([2-9]|[1-9][0-9]+)$", re.S)
_NON_ALNUM = re.compile(r"[\W_]+", re.UNICODE)


def normalise_header(name: str) -> str:
    """`First Name`, `first_name`, `firstName`, `E-mail` -> `firstname`, `email`."""
    return _NON_ALNUM.sub("", name.lstrip("\ufeff")).casefold()


def header_keys(columns: list[str]) -> dict[str, str]:
    """Each file column -> the normalised name it answers to.

    A header repeated in the file (HubSpot exports repeat some) reaches us renamed by the
    CSV reader (`Email`, `Email_2`): the copies answer to the original name, so a mapping
    naming `Email` tries both, in file order, instead of ignoring the second one.
    """
    present = set(columns)
    keys: dict[str, str] = {}
    for col in columns:
        m = _RENAMED_REPEAT.match(col)
        base = m.group(1) if m and m.group(1) in present else col
        keys[col] = normalise_header(base)
    return keys


@dataclass(frozen=True)
class Detect:
    """How a built-in format is recognised from a file's headers (see `etl.formats`)."""

    label: str
    signature: tuple[str, ...]
    any_of: tuple[str, ...] = ()
    preamble: str | None = None
    """How the export's own lines before the header begin (LinkedIn: `Notes:`), when it writes
    some: a file that begins so but has no header is reported as cut off (etl.formats)."""


@dataclass(frozen=True)
class Provenance:
    """Where a run's mapping came from (set by `etl.formats.decide`), for the terminal and reports."""

    label: str  # "Apollo contacts export", "mapping file 'crm'", …
    how: str  # "detected" | "guessed" | "given"
    score: float = 0.0  # share of the format's signature headers found (detected only)
    missing: tuple[str, ...] = ()  # expected headers of the detected format that the file lacks
    unmapped: tuple[str, ...] = ()  # file columns nothing reads
    guessed: dict[str, str] = field(default_factory=dict)  # field -> "header" | "values" (guessed only)
    samples: dict[str, str] = field(default_factory=dict)  # column -> first non-empty sample value


@dataclass(frozen=True)
class NoteColumn:
    """A source column appended to notes as `**label:** value`."""

    columns: tuple[str, ...]
    label: str


@dataclass(frozen=True)
class Mapping:
    """A parsed, checked mapping. Build with `Mapping.load` or `Mapping.builtin`."""

    name: str
    fields: dict[str, tuple[str, ...]]
    notes: tuple[NoteColumn, ...] = ()
    ai_notes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    constants: dict[str, str] = field(default_factory=dict)
    description: str = ""
    hints: dict[str, tuple[str, ...]] = field(default_factory=dict)
    detect: Detect | None = None
    provenance: Provenance | None = field(default=None, compare=False)

    @classmethod
    def load(cls, path: str | Path) -> Mapping:
        """Read and check a mapping TOML file. `ConfigError` with one clear line otherwise."""
        from etl.config import read_toml

        p = Path(path)
        return cls.from_dict(read_toml(p, "mapping file"), default_name=p.stem, where=str(p))

    @classmethod
    def builtin(cls, name: str) -> Mapping:
        """One of the shipped mappings: "csv", "hubspot-csv", … (etl/mappings/<name>.toml)."""
        from etl.config import read_toml

        resource = BUILTIN_MAPPINGS / f"{name}.toml"
        if not resource.is_file():
            raise ConfigError(f"no built-in mapping named {name!r} (known: {', '.join(builtin_names()) or 'none'})")
        return cls.from_dict(read_toml(resource, "mapping file"), default_name=name, where=f"built-in mapping {name}")

    @classmethod
    def from_dict(cls, raw: dict[str, Any], *, default_name: str = "mapping", where: str = "mapping") -> Mapping:
        """Check the shape of a parsed TOML document and build the mapping."""
        unknown = sorted(set(raw) - _TOP_KEYS)
        if unknown:
            raise ConfigError(
                f"{where}: unknown top-level key(s) {', '.join(unknown)} (expected: {', '.join(sorted(_TOP_KEYS))})"
            )
        name = raw.get("name", default_name)
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"{where}: 'name' must be a non-empty string")
        description = raw.get("description", "")
        if not isinstance(description, str):
            raise ConfigError(f"{where}: 'description' must be a string")

        raw_fields = raw.get("fields", {})
        if not isinstance(raw_fields, dict):
            raise ConfigError(f"{where}: [fields] must be a table of field = column(s)")
        fields: dict[str, tuple[str, ...]] = {}
        for target, value in raw_fields.items():
            _check_target(target, where, "[fields]")
            fields[target] = _columns(value, where, f"fields.{target}")
        if "email" not in fields:
            raise ConfigError(f"{where}: [fields] must map 'email' (every lead needs one)")

        raw_constants = raw.get("constants", {})
        if not isinstance(raw_constants, dict):
            raise ConfigError(f'{where}: [constants] must be a table of field = "value"')
        constants: dict[str, str] = {}
        for target, value in raw_constants.items():
            _check_target(target, where, "[constants]")
            if target == "email":
                raise ConfigError(f"{where}: [constants] cannot set 'email'")
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"{where}: constants.{target} must be a non-empty string (quirk 3)")
            constants[target] = value.strip()

        raw_notes = raw.get("notes", [])
        if not isinstance(raw_notes, list):
            raise ConfigError(f"{where}: notes must be an array of tables: [[notes]] column = …, label = …")
        notes: list[NoteColumn] = []
        for i, item in enumerate(raw_notes, start=1):
            if not isinstance(item, dict) or "column" not in item:
                raise ConfigError(f"{where}: [[notes]] entry {i} needs a 'column'")
            extra = sorted(set(item) - {"column", "label"})
            if extra:
                raise ConfigError(f"{where}: [[notes]] entry {i} has unknown key(s) {', '.join(extra)}")
            cols = _columns(item["column"], where, f"notes[{i}].column")
            label = item.get("label", cols[0])
            if not isinstance(label, str) or not label.strip():
                raise ConfigError(f"{where}: [[notes]] entry {i} label must be a non-empty string")
            notes.append(NoteColumn(columns=cols, label=label.strip()))

        raw_ai = raw.get("ai_notes", {})
        if not isinstance(raw_ai, dict):
            raise ConfigError(f"{where}: [ai_notes] must be a table")
        ai_notes: dict[str, tuple[str, ...]] = {}
        for key, value in raw_ai.items():
            if key not in AI_NOTE_KEYS:
                raise ConfigError(f"{where}: [ai_notes] has unknown key {key!r} (expected: {', '.join(AI_NOTE_KEYS)})")
            ai_notes[key] = _columns(value, where, f"ai_notes.{key}")

        raw_hints = raw.get("hints", {})
        if not isinstance(raw_hints, dict):
            raise ConfigError(f"{where}: [hints] must be a table")
        hints: dict[str, tuple[str, ...]] = {}
        for key, value in raw_hints.items():
            if key not in HINT_KEYS:
                raise ConfigError(f"{where}: [hints] has unknown key {key!r} (expected: {', '.join(HINT_KEYS)})")
            hints[key] = _columns(value, where, f"hints.{key}")
        detect = _detect(raw["detect"], name.strip(), where) if "detect" in raw else None
        return cls(
            name=name.strip(),
            fields=fields,
            notes=tuple(notes),
            ai_notes=ai_notes,
            constants=constants,
            description=description.strip(),
            hints=hints,
            detect=detect,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the reports (and a TOML-shaped round trip: `from_dict(to_dict())`)."""
        out: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "fields": {k: list(v) for k, v in self.fields.items()},
            "constants": dict(self.constants),
            "notes": [{"column": list(n.columns), "label": n.label} for n in self.notes],
            "ai_notes": {k: list(v) for k, v in self.ai_notes.items()},
            "hints": {k: list(v) for k, v in self.hints.items()},
        }
        if self.detect:
            out["detect"] = {"label": self.detect.label, "signature": list(self.detect.signature),
                             "any_of": list(self.detect.any_of)}
            if self.detect.preamble:
                out["detect"]["preamble"] = self.detect.preamble
        return out

    def report_dict(self) -> dict[str, Any]:
        """The run report's `mapping` object: name, detected, fields (field -> columns), unmapped,
        plus how it was chosen, the expected columns the file lacks and one sample value per column."""
        p = self.provenance
        samples = p.samples if p else {}
        fields = {k: list(v) for k, v in self.fields.items()}
        return {
            "name": self.name,
            "label": p.label if p else self.description or self.name,
            "detected": bool(p and p.how == "detected"),
            "how": p.how if p else "builtin",
            "score": p.score if p else None,
            "fields": fields,
            "samples": {
                k: next((samples[c] for c in cols if c in samples), None) for k, cols in fields.items()
            },
            "guessed": dict(p.guessed) if p else {},
            "missing": list(p.missing) if p else [],
            "unmapped": list(p.unmapped) if p else [],
            "unmapped_samples": {c: samples.get(c) for c in (p.unmapped if p else ())},
            "notes": [{"column": list(n.columns), "label": n.label} for n in self.notes],
            "constants": dict(self.constants),
            "hints": {k: list(v) for k, v in self.hints.items()},
        }

    def source_columns(self, available: list[str], aliases: tuple[str, ...]) -> list[str]:
        """The file columns that `aliases` name, in alias order then file order."""
        by_norm: dict[str, list[str]] = {}
        for col, key in header_keys(available).items():
            by_norm.setdefault(key, []).append(col)
            own = normalise_header(col)
            if own != key:  # a renamed repeat also answers to its own name (`Email_2`)
                by_norm.setdefault(own, []).append(col)
        out: list[str] = []
        for alias in aliases:
            for col in by_norm.get(normalise_header(alias), []):
                if col not in out:
                    out.append(col)
        return out

    def check_columns(self, available: list[str]) -> None:
        """Raise `ConfigError` when the file has no column for `email` under this mapping."""
        if not self.source_columns(available, self.fields["email"]):
            shown = ", ".join(available[:20]) + (" …" if len(available) > 20 else "")
            raise ConfigError(
                f"mapping {self.name!r} finds no e-mail column in this file "
                f"(looked for: {', '.join(self.fields['email'])}; file has: {shown})"
            )


def builtin_names() -> list[str]:
    """The names `Mapping.builtin` knows, sorted."""
    if not BUILTIN_MAPPINGS.is_dir():
        return []
    return sorted(r.name.removesuffix(".toml") for r in BUILTIN_MAPPINGS.iterdir() if r.name.endswith(".toml"))


def _check_target(target: str, where: str, section: str) -> None:
    if target not in LEAD_FIELD_SET:
        hint = " (the phone field is 'phoneNumber', quirk 2)" if target.lower() == "phone" else ""
        raise ConfigError(
            f"{where}: {section} names {target!r}, which is not a LeadGenius lead field{hint}; "
            f"allowed: {', '.join(f for f in LEAD_FIELDS if f != 'client_id')}"
        )
    if target == "client_id":
        raise ConfigError(f"{where}: {section} cannot set 'client_id'; the run sets it from --client")


def _detect(raw: Any, name: str, where: str) -> Detect:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: [detect] must be a table (label, signature, any_of, preamble)")
    unknown = sorted(set(raw) - _DETECT_KEYS)
    if unknown:
        raise ConfigError(f"{where}: [detect] has unknown key(s) {', '.join(unknown)}")
    label = raw.get("label", name)
    if not isinstance(label, str) or not label.strip():
        raise ConfigError(f"{where}: detect.label must be a non-empty string")
    if "signature" not in raw:
        raise ConfigError(f"{where}: [detect] needs a signature (the headers that identify the export)")
    signature = _columns(raw["signature"], where, "detect.signature")
    any_of = _columns(raw["any_of"], where, "detect.any_of") if "any_of" in raw else ()
    preamble = raw.get("preamble")
    if preamble is not None and (not isinstance(preamble, str) or not preamble.strip()):
        raise ConfigError(f"{where}: detect.preamble must be a non-empty string (the start of the notes line)")
    return Detect(label=label.strip(), signature=signature, any_of=any_of, preamble=preamble)


def _columns(value: Any, where: str, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and normalise_header(v) for v in value):
        raise ConfigError(f"{where}: {key} must be a column name or a non-empty list of column names")
    return tuple(value)
