"""The self-contained HTML dry-run report: one file, inline CSS, no scripts, no external assets.

Everything that comes from the input (values, column names, reasons, mapping entries) goes
through `html.escape`, so a hostile CSV cannot inject markup into the report.
"""

from __future__ import annotations

import html
import json
from typing import Any

import polars as pl

SAMPLES_PER_RULE = 5
MAX_CELL_CHARS = 120

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;
color:#1f2933;padding:0 1rem}
h1{font-size:1.5rem;margin-bottom:.25rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #e4e7eb}
.meta{color:#616e7c}.verdict{padding:.8rem 1rem;border-radius:6px;font-weight:600;margin:1rem 0}
.ok{background:#e3f9e5;color:#05400a}.warn{background:#fffbea;color:#8d2b0b}.bad{background:#ffe3e3;color:#610316}
table{border-collapse:collapse;width:100%;margin:.5rem 0}th,td{border:1px solid #e4e7eb;padding:.3rem .5rem;
text-align:left;vertical-align:top}th{background:#f5f7fa}td.num{text-align:right;font-variant-numeric:tabular-nums}
.bar{background:#e4e7eb;border-radius:3px;height:.8rem;width:240px;display:inline-block;vertical-align:middle}
.bar span{display:block;height:100%;border-radius:3px;background:#3e7bfa}
.cards{display:flex;flex-wrap:wrap;gap:.6rem}.card{border:1px solid #e4e7eb;border-radius:6px;padding:.5rem .8rem;
min-width:110px}.card b{display:block;font-size:1.3rem}code,pre{font-family:ui-monospace,Menlo,Consolas,monospace;
font-size:12px}pre{background:#f5f7fa;padding:.6rem;overflow:auto}.rule{font-family:ui-monospace,monospace}
"""

_COUNT_ORDER = (
    "extracted",
    "valid",
    "rejected",
    "duplicates",
    "created",
    "updated",
    "unchanged",
    "failed",
    "confirmed",
    "missing",
)


def _e(value: Any) -> str:
    text = "" if value is None else str(value)
    if len(text) > MAX_CELL_CHARS:
        text = text[: MAX_CELL_CHARS - 1] + "…"
    return html.escape(text, quote=True)


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def verdict(report: dict[str, Any]) -> tuple[str, str]:
    """(css class, sentence) summarising the run for a human."""
    counts: dict[str, Any] = report.get("counts", {}) or {}
    target = report.get("target") or {}
    rejected, valid = _int(counts.get("rejected")), _int(counts.get("valid")) - _int(counts.get("duplicates"))
    failed, missing = _int(counts.get("failed")), _int(counts.get("missing"))
    dry = bool(report.get("dry_run"))
    if isinstance(target, dict) and target.get("reachable") is False:
        reason = target.get("reason") or "unknown reason"
        return "warn", f"Target not reachable ({reason}): create/update predictions are missing."
    if failed or missing:
        return "bad", f"{failed} lead(s) failed and {missing} are missing in the target."
    if valid == 0:
        return "bad", "No valid leads: nothing would be imported."
    if rejected:
        verb = "would be imported" if dry else "were imported"
        return "warn", f"{valid} valid lead(s) {verb}; {rejected} row(s) rejected — see below."
    verb = "Ready to import" if dry else "Imported"
    return "ok", f"{verb}: {valid} valid lead(s), no rejected rows."


def render_html(
    report: dict[str, Any],
    rejects: pl.DataFrame,
    fill_rates: dict[str, float],
    mapping: dict[str, Any],
) -> str:
    """Render the run report, rejects (grouped by rule, a few samples each), fill rates and
    the mapping as one self-contained HTML page."""
    cls, sentence = verdict(report)
    title = "Dry-run validation report" if report.get("dry_run") else "Import report"
    meta = " · ".join(
        f"{_e(k)}: <b>{_e(report.get(k))}</b>" for k in ("client_id", "mode", "duration_s") if report.get(k) is not None
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        f"<title>{_e(title)} — {_e(report.get('client_id', ''))}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="meta">{meta}</p>',
        f'<div class="verdict {cls}">{_e(sentence)}</div>',
        _counts_section(report),
        _rejects_section(rejects),
        _fill_section(fill_rates),
        _mapping_section(mapping),
        _requests_section(report),
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p)


def _counts_section(report: dict[str, Any]) -> str:
    counts: dict[str, Any] = report.get("counts", {}) or {}
    keys = [k for k in _COUNT_ORDER if k in counts] + sorted(k for k in counts if k not in _COUNT_ORDER)
    if report.get("dry_run"):
        # a dry run predicts; it confirms nothing
        keys = [k for k in keys if k not in ("failed", "confirmed", "missing")]
    label = {"created": "would create", "updated": "would update"} if report.get("dry_run") else {}
    cards = "".join(f'<div class="card"><b>{_int(counts[k]):,}</b>{_e(label.get(k, k))}</div>' for k in keys)
    target = report.get("target")
    extra = ""
    if isinstance(target, dict):
        state = "reachable" if target.get("reachable") else "not reachable"
        reason = f" — {_e(target.get('reason'))}" if target.get("reason") else ""
        extra = f'<p class="meta">Target: {state}{reason}</p>'
    return f'<h2>Counts</h2><div class="cards">{cards}</div>{extra}'


def _rejects_section(rejects: pl.DataFrame) -> str:
    if rejects.is_empty():
        return "<h2>Rejected rows</h2><p>None.</p>"
    rule_col = "_rule" if "_rule" in rejects.columns else None
    frame = rejects if rule_col else rejects.with_columns(_rule=pl.lit("rejected"))
    data_cols = [c for c in frame.columns if not c.startswith("_")]
    summary = (
        frame.group_by("_rule")
        .agg(pl.len().alias("n"), pl.col("_row").min().alias("first"))
        .sort(["n", "_rule"], descending=[True, False])
    )
    out = [f"<h2>Rejected rows ({rejects.height:,})</h2>", "<table><tr><th>rule</th><th>rows</th></tr>"]
    for rule, n, _first in summary.iter_rows():  # one line per rule, not per row
        out.append(f'<tr><td class="rule">{_e(rule)}</td><td class="num">{n:,}</td></tr>')
    out.append("</table>")
    header = "".join(f"<th>{_e(c)}</th>" for c in ["row", "reason", *data_cols])
    for rule, n, _first in summary.iter_rows():
        sample = frame.filter(pl.col("_rule") == rule).sort("_row").head(SAMPLES_PER_RULE)
        shown = f"first {sample.height} of {n:,}" if n > sample.height else f"{n:,}"
        out.append(f'<h3><span class="rule">{_e(rule)}</span> — {shown}</h3>')
        out.append(f"<table><tr>{header}</tr>")
        for rec in sample.iter_rows(named=True):  # at most SAMPLES_PER_RULE rows
            cells = "".join(f"<td>{_e(rec.get(c))}</td>" for c in ["_row", "_reason", *data_cols])
            out.append(f"<tr>{cells}</tr>")
        out.append("</table>")
    return "\n".join(out)


def _fill_section(fill_rates: dict[str, float]) -> str:
    if not fill_rates:
        return ""
    rows = []
    for name, rate in fill_rates.items():
        pct = max(0.0, min(1.0, float(rate))) * 100
        rows.append(
            f"<tr><td><code>{_e(name)}</code></td>"
            f'<td><span class="bar"><span style="width:{pct:.1f}%"></span></span></td>'
            f'<td class="num">{pct:.1f}%</td></tr>'
        )
    return (
        "<h2>Fill rate per field</h2><table><tr><th>field</th><th></th><th>filled</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _mapping_section(mapping: dict[str, Any]) -> str:
    """The mapping used (`Mapping.report_dict()`): how it was chosen, LeadGenius field <- source
    column(s) with a sample value, the expected columns the file lacks, and every column that
    nothing reads with a sample value (so a dropped column is seen, not silently lost)."""
    if not mapping:
        return ""
    how = mapping.get("how")
    state = {"detected": "detected", "guessed": "guessed — check it", "given": "from --mapping",
             "builtin": "built-in"}.get(str(how), "")
    out = [f"<h2>Mapping: {_e(mapping.get('label') or mapping.get('name', ''))}"
           + (f" <small>({_e(state)})</small>" if state else "") + "</h2>"]
    if mapping.get("description"):
        out.append(f'<p class="meta">{_e(mapping["description"])}</p>')
    fields = mapping.get("fields") or {}
    samples = mapping.get("samples") or {}
    guessed = mapping.get("guessed") or {}
    if fields:
        out.append("<table><tr><th>LeadGenius field</th><th>← source column(s), first non-empty wins</th>"
                   "<th>sample value</th></tr>")
        for target, cols in fields.items():
            shown = ", ".join(_e(c) for c in (cols if isinstance(cols, list) else [cols]))
            how_found = f' <span class="meta">(guessed from {_e(guessed[target])})</span>' if target in guessed else ""
            out.append(f"<tr><td><code>{_e(target)}</code></td><td>{shown}{how_found}</td>"
                       f"<td>{_e(samples.get(target))}</td></tr>")
        out.append("</table>")
    missing = mapping.get("missing") or []
    if missing:
        out.append(f'<p class="verdict warn">Expected column(s) missing from this file: {_e(", ".join(missing))}. '
                   "The rest is mapped.</p>")
    unmapped = mapping.get("unmapped") or []
    if unmapped:
        unmapped_samples = mapping.get("unmapped_samples") or {}
        out.append(f"<h3>Columns not imported ({len(unmapped):,})</h3>")
        out.append("<table><tr><th>column</th><th>sample value</th></tr>")
        for col in unmapped:
            out.append(f"<tr><td>{_e(col)}</td><td>{_e(unmapped_samples.get(col))}</td></tr>")
        out.append("</table>")
    rest = {k: mapping[k] for k in ("notes", "constants", "ai_notes", "hints") if mapping.get(k)}
    if rest:
        out.append(f"<pre>{html.escape(json.dumps(rest, indent=2, ensure_ascii=False))}</pre>")
    return "\n".join(out)


def _requests_section(report: dict[str, Any]) -> str:
    requests = report.get("requests")
    if not isinstance(requests, dict):
        return ""
    by_status = requests.get("by_status") or {}
    cells = "".join(f"<tr><td>{_e(k)}</td><td class='num'>{_int(v):,}</td></tr>" for k, v in sorted(by_status.items()))
    total = _int(requests.get("total"))
    return f"<h2>Requests ({total:,})</h2><table><tr><th>status</th><th>count</th></tr>{cells}</table>"
