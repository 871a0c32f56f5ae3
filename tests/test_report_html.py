"""The self-contained HTML report: content, escaping, no external assets."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from etl.extract.csv import open_csv
from etl.formats import builtin_formats, decide
from etl.report_html import render_html
from etl.transform import fill_rates, transform
from tests.exports import FORMAT_HEADERS

SAMPLES = Path(__file__).resolve().parents[1] / "sample_data"


def report(**extra: object) -> dict[str, object]:
    base: dict[str, object] = {
        "dry_run": True,
        "client_id": "acme-corp",
        "mode": "insert",
        "counts": {"extracted": 40, "valid": 34, "rejected": 4, "duplicates": 2, "created": 34},
        "requests": {"total": 3, "by_status": {"200": 3}},
        "duration_s": 0.42,
    }
    base.update(extra)
    return base


def test_renders_sample_run() -> None:
    source = open_csv(SAMPLES / "leads.csv")
    batch = next(source.batches())
    mapping = decide(source.columns, batch.frame.drop("_row"), builtin_formats())
    r = transform(batch.frame, mapping, "acme-corp")
    page = render_html(report(), r.rejects, fill_rates(r.leads), mapping.report_dict())
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "Dry-run validation report" in page and "acme-corp" in page
    assert "32 valid lead(s) would be imported; 4 row(s) rejected" in page  # 34 valid less 2 duplicates
    for rule in ("invalid_email", "missing_email", "empty_row"):
        assert rule in page
    assert "phoneNumber" in page and "width:" in page  # fill-rate bars
    assert "Mapping: LeadGenius seeds CSV format" in page and "(detected)" in page
    for col in mapping.provenance.unmapped if mapping.provenance else ():
        assert f"<td>{col}</td>" in page  # every column nothing reads is listed, with a sample
    assert not re.search(r"(src|href)\s*=", page)  # no external assets
    assert "<script" not in page


def test_everything_is_escaped() -> None:
    rejects = pl.DataFrame(
        {"_row": [1], "_reason": ["<b>bad</b>"], "_rule": ["<script>"], "Email<x>": ['"><img src=x>']}
    )
    page = render_html(
        report(client_id="<i>x</i>"), rejects, {"email": 1.0}, {"name": "<m>", "fields": {"email": ["<c>"]}}
    )
    assert "<script>" not in page and "<img" not in page and "<b>bad" not in page and "<i>x" not in page
    assert "&lt;script&gt;" in page and "&lt;img src=x&gt;" in page


def test_verdicts() -> None:
    empty = pl.DataFrame(
        {"_row": [], "_reason": [], "_rule": []}, schema=dict.fromkeys(["_row", "_reason", "_rule"], pl.String)
    )
    ok = render_html(report(counts={"extracted": 2, "valid": 2, "rejected": 0}), empty, {}, {})
    assert "Ready to import: 2 valid lead(s)" in ok and "None." in ok
    down = render_html(report(target={"reachable": False, "reason": "connection refused"}), empty, {}, {})
    assert "Target not reachable (connection refused)" in down
    failed = render_html(report(dry_run=False, counts={"valid": 2, "failed": 1, "missing": 0}), empty, {}, {})
    assert "1 lead(s) failed" in failed


def test_samples_are_capped_per_rule() -> None:
    rejects = pl.DataFrame(
        {"_row": list(range(1, 101)), "_reason": ["r"] * 100, "_rule": ["ragged_row"] * 100, "a": ["v"] * 100}
    )
    page = render_html(report(), rejects, {}, {})
    assert "first 5 of 100" in page


def test_the_mapping_section_names_missing_and_unread_columns_with_a_sample() -> None:
    header = [h for h in FORMAT_HEADERS["apollo"] if h != "Person Linkedin Url"]
    sample = pl.DataFrame({h: [f"<{h}>"] for h in header})
    mapping = decide(header, sample, builtin_formats())
    page = render_html(report(), pl.DataFrame(), {}, mapping.report_dict())
    assert "Mapping: Apollo contacts export <small>(detected)</small>" in page
    assert "Expected column(s) missing from this file: Person Linkedin Url" in page
    assert "<td>Keywords</td><td>&lt;Keywords&gt;</td>" in page  # an unread column and its sample, escaped
    assert "<td>&lt;Email&gt;</td>" in page  # the e-mail field's sample
