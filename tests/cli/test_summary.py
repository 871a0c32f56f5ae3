"""The summary table's requests rows (pure)."""

from __future__ import annotations

from etl.report import RunReport, request_rows


def test_one_requests_row_per_api_the_targets_first() -> None:
    report = RunReport(dry_run=False, client_id="acme", mode="insert", source="csv")
    report.requests = {"total": 1234, "by_status": {"201": 1234}}
    assert request_rows(report) == [("LeadGenius requests", 1234)]  # a file source sends nothing
    report.source_requests = {"api": "HubSpot", "total": 17, "search": 2, "retries": 3}
    assert request_rows(report) == [("LeadGenius requests", 1234), ("HubSpot requests (source)", 17)]
    assert "requests" in report.to_dict() and report.to_dict()["source_requests"]["total"] == 17
