"""LeadScraper -> LeadGenius over real HTTP, both sandboxes: filters, exact fields, pagination,
the hourly budget, incremental jobs, server errors, secrets."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import pytest

from etl.config import Settings
from etl.errors import CredentialsRejected, UsageError
from etl.extract.leadscraper import LeadScraperClient, SourceUnavailable
from etl.jobs import JobSpec, default_job_name, run_spec
from etl.report import RunReport
from etl.sandbox.leadscraper.app import READONLY_KEY
from tests.integration.helpers import assert_no_quirk_500, email_counts, settings_for, stored
from tests.leadscraper.conftest import LSSandbox

CLIENT = "Scraped Leads"
SLUG = "scraped-leads"


def settings_of(lg: Any, ls: LSSandbox, tmp_path: Path, **kw: Any) -> Settings:
    return replace(settings_for(lg.base_url, tmp_path), leadscraper_api_key=ls.key,
                   leadscraper_base_url=ls.base_url, **kw)


def run_ls(lg: Any, ls: LSSandbox, tmp_path: Path, *, settings: Settings | None = None, **spec: Any) -> RunReport:
    params = spec.pop("params", {})
    job = JobSpec(name=spec.pop("name", default_job_name("leadscraper", CLIENT)), source="leadscraper",
                  client=CLIENT, params=params, **spec)
    return anyio.run(lambda: run_spec(job, settings or settings_of(lg, ls, tmp_path)))


def expected_keys(ls: LSSandbox, keep: Any = lambda lead: True) -> set[str]:
    return {str(lead["email"]).strip().lower() for lead in ls.leads() if lead["email"] and keep(lead)}


def test_server_side_filters_select_exactly_the_matching_leads(lg_sandbox, ls_sandbox, tmp_path: Path) -> None:
    ls_sandbox.seed(400, seed=3)
    report = run_ls(lg_sandbox, ls_sandbox, tmp_path,
                    params={"job_id": "job_0000000002", "score_min": 50, "score_max": 95, "status": "hot"})
    want = expected_keys(ls_sandbox, lambda lead: lead["job_id"] == "job_0000000002" and lead["lead_status"] == "hot"
                         and 50 <= lead["lead_score"] <= 95)
    got = email_counts(stored(lg_sandbox, SLUG))
    assert want and set(got) == want and max(got.values()) == 1
    assert report.exit_code == 0 and report.counts.confirmed == len(want)
    assert report.source_info["filters"] == {"job_id": "job_0000000002", "score_min": "50", "score_max": "95",
                                             "status": "hot"}
    # only the matching leads crossed the wire: one or two list pages, no details
    assert ls_sandbox.stats()["by_route"] == {"list": report.source_info["leadscraper_requests"]["list"]}
    assert report.counts.extracted == sum(1 for lead in ls_sandbox.leads() if lead["job_id"] == "job_0000000002"
                                          and lead["lead_status"] == "hot" and 50 <= lead["lead_score"] <= 95)


def test_each_lead_is_imported_field_by_field(lg_sandbox, ls_sandbox, tmp_path: Path) -> None:
    ls_sandbox.add(
        {"email": "john.doe@example.com", "phone": "+1-555-0100", "full_name": "John Doe", "job_title": "VP of Sales",
         "company_name": "Example Corp", "linkedin_url": "https://linkedin.com/in/johndoe",
         "twitter_url": "https://twitter.com/johndoe", "lead_score": 85, "lead_status": "hot",
         "qualification_notes": "Company recently raised Series A funding.", "source_url": "https://example.com/about",
         "job_id": "job_1", "created_at": "2026-02-10T10:35:12Z"},
        {"email": "  CHER@Music.IO ", "phone": None, "full_name": "Cher", "lead_score": 12, "lead_status": "cold",
         "job_id": "job_1", "created_at": "2026-02-10T10:36:00Z"},
        {"email": None, "full_name": "No Mail", "job_id": "job_1", "created_at": "2026-02-10T10:37:00Z"},
        {"email": "cher@music.io", "full_name": "Cher Again", "job_id": "job_2", "created_at": "2026-02-10T10:38:00Z"},
        {"email": "dr.who@tardis.uk", "full_name": "Dr. Jane van der Berg Jr.", "lead_score": 55, "lead_status": "warm",
         "job_id": "job_2", "created_at": "2026-02-10T10:39:00Z"},
    )
    ids = {lead["full_name"]: lead["id"] for lead in ls_sandbox.leads()}
    rejects = tmp_path / "rejects.csv"
    report = run_ls(lg_sandbox, ls_sandbox, tmp_path, rejects=rejects)
    leads = {lead["email"]: lead for lead in stored(lg_sandbox, SLUG)}
    server_set = {"id", "owner", "company_id", "createdAt", "updatedAt", "client_id"}
    assert {k: v for k, v in leads["john.doe@example.com"].items() if k not in server_set} == {
        "email": "john.doe@example.com", "firstName": "John", "lastName": "Doe", "fullName": "John Doe",
        "phoneNumber": "+1-555-0100", "title": "VP of Sales", "companyName": "Example Corp",
        "linkedinUrl": "https://linkedin.com/in/johndoe", "source": "leadscraper", "aiLeadScore": "hot",
        "notes": "**Qualification:** Company recently raised Series A funding.\n"
                 "**Source URL:** https://example.com/about\n**Twitter:** https://twitter.com/johndoe\n"
                 f"**LeadScraper job:** job_1\n**LeadScraper ID:** {ids['John Doe']}\n\n"
                 "## 🎯 AI SCORE: hot (85/100)",
    }
    assert {k: v for k, v in leads["cher@music.io"].items() if k not in server_set} == {
        "email": "cher@music.io", "firstName": "Cher", "lastName": "-", "fullName": "Cher", "source": "leadscraper",
        "aiLeadScore": "cold",
        "notes": f"**LeadScraper job:** job_1\n**LeadScraper ID:** {ids['Cher']}\n\n## 🎯 AI SCORE: cold (12/100)",
    }  # upper-case and spaced e-mail normalised; null phone omitted; one word -> lastName "-"
    who = leads["dr.who@tardis.uk"]
    assert (who["firstName"], who["lastName"], who["fullName"]) == ("Jane", "van der Berg", "Dr. Jane van der Berg Jr.")
    assert len(leads) == 3 and report.exit_code == 0
    c = report.counts
    assert (c.extracted, c.valid, c.rejected, c.duplicates, c.created, c.confirmed) == (5, 4, 1, 1, 3, 3)
    text = rejects.read_text()
    assert "No Mail" in text and "no e-mail address" in text  # the lead without e-mail, with its reason
    assert_no_quirk_500(lg_sandbox)


def test_pagination_reads_to_the_end_with_opaque_cursors(lg_sandbox, ls_sandbox, tmp_path: Path) -> None:
    ls_sandbox.seed(1234, seed=9)
    report = run_ls(lg_sandbox, ls_sandbox, tmp_path)
    assert report.counts.extracted == 1234
    assert report.source_info["leadscraper_requests"]["list"] == 13  # ceil(1234 / 100), nothing more
    assert report.source_info["leadscraper_pages"] == 13
    assert set(email_counts(stored(lg_sandbox, SLUG))) == expected_keys(ls_sandbox)
    assert report.exit_code == 0


def test_the_hourly_budget_is_honoured_with_no_unrecovered_429(lg_sandbox, ls_sandbox, tmp_path: Path) -> None:
    # A short "hour": 6 requests per 2 s. 1,000 leads = 10 list pages + 3 injected 429s.
    ls_sandbox.config(limit=6, window_s=2.0)
    ls_sandbox.seed(1000, seed=4)
    ls_sandbox.fault("429", route="list", next=3)
    report = run_ls(lg_sandbox, ls_sandbox, tmp_path)
    stats = ls_sandbox.stats()
    assert report.exit_code == 0 and report.counts.extracted == 1000
    assert stats["max_in_one_window"] <= 6
    assert stats["sent_429"] == 3  # only the injected ones: the client never ran past the budget itself
    requests = report.source_info["leadscraper_requests"]
    assert requests["throttled_429"] == 3 and requests["list"] == 13
    assert set(email_counts(stored(lg_sandbox, SLUG))) == expected_keys(ls_sandbox)


def test_details_are_fetched_and_paced_only_when_the_mapping_asks(lg_sandbox, ls_sandbox, tmp_path: Path) -> None:
    ls_sandbox.config(limit=25, window_s=2.0)
    ls_sandbox.seed(40, seed=2)
    mapping = tmp_path / "ls-signals.toml"
    mapping.write_text(Path("etl/mappings/leadscraper.toml").read_text(encoding="utf-8") +
                       '\n[[notes]]\ncolumn = "signals_detected"\nlabel = "Signals"\n\n'
                       '[[notes]]\ncolumn = "enrichment_industry"\nlabel = "Industry"\n', encoding="utf-8")
    dry = run_ls(lg_sandbox, ls_sandbox, tmp_path, mapping=mapping, dry_run=True)
    assert ls_sandbox.stats()["by_route"] == {"list": 1}  # the dry run states the cost, it does not spend it
    assert dry.source_info["budget"]["detail_requests"] == 40 and dry.source_info["budget"]["needed"] == 41
    report = run_ls(lg_sandbox, ls_sandbox, tmp_path, mapping=mapping)
    stats = ls_sandbox.stats()
    assert stats["by_route"] == {"list": 2, "detail": 40} and stats["max_in_one_window"] <= 25
    assert stats["sent_429"] == 0 and report.exit_code == 0
    truth: dict[str, dict[str, Any]] = {}
    for src in sorted(ls_sandbox.leads(), key=lambda lead: lead["created_at"]):
        if src["email"]:
            truth.setdefault(str(src["email"]).strip().lower(), src)  # the first of a repeated e-mail wins
    for lead in stored(lg_sandbox, SLUG):
        src = truth[lead["email"]]
        assert f"**Industry:** {src['enrichment_data']['industry']}" in lead["notes"]
        if src["signals_detected"]:
            assert f"**Signals:** {', '.join(src['signals_detected'])}" in lead["notes"]


def test_a_dry_run_says_when_the_hour_cannot_cover_the_read(lg_sandbox, ls_sandbox, tmp_path: Path) -> None:
    ls_sandbox.config(limit=4, window_s=3600.0)
    ls_sandbox.seed(900, seed=1)
    report = run_ls(lg_sandbox, ls_sandbox, tmp_path, dry_run=True)
    budget = report.source_info["budget"]
    assert budget["partial"] and budget["covered"] is False and budget["list_requests"] == 4
    assert "does not cover the read" in budget["message"]
    assert ls_sandbox.stats()["sent_429"] == 0 and report.counts.extracted == 400
    assert stored(lg_sandbox, SLUG) == []


def test_an_incremental_job_reads_only_what_is_new(lg_sandbox, ls_sandbox, tmp_path: Path) -> None:
    ls_sandbox.seed(250, seed=8)
    first = run_ls(lg_sandbox, ls_sandbox, tmp_path, mode="upsert")
    assert first.exit_code == 0 and first.source_info["read"] == "full"
    mark = first.source_info["mark_after"]
    assert mark == max(lead["created_at"] for lead in ls_sandbox.leads()).replace("Z", "+00:00")
    ls_sandbox.add(*({"email": f"new{i}@fresh.io", "full_name": f"New Person{i}", "lead_score": 80,
                      "lead_status": "hot"} for i in range(7)))
    before = ls_sandbox.stats()["by_route"]["list"]
    second = run_ls(lg_sandbox, ls_sandbox, tmp_path, mode="upsert")
    assert second.source_info["read"].startswith("changed since")
    assert ls_sandbox.stats()["by_route"]["list"] - before == 1  # one page: only what is new (plus the overlap)
    assert second.counts.created == 7 and second.counts.extracted <= 7 + 3  # the 2-minute overlap re-reads <= 3
    assert second.source_info["mark_after"] > mark
    before = ls_sandbox.stats()["by_route"]["list"]
    third = run_ls(lg_sandbox, ls_sandbox, tmp_path, mode="upsert")  # nothing new: the overlap only, unchanged
    assert ls_sandbox.stats()["by_route"]["list"] - before == 1
    assert third.counts.created == third.counts.updated == 0
    assert third.counts.unchanged == third.counts.extracted <= 7
    assert third.source_info["mark_after"] == second.source_info["mark_after"]
    assert max(email_counts(stored(lg_sandbox, SLUG)).values()) == 1


def test_the_mark_stays_when_a_lead_is_not_confirmed(lg_sandbox, ls_sandbox, tmp_path: Path) -> None:
    ls_sandbox.seed(30, seed=5)
    lg_sandbox.fault("500", route="POST /api/leads", next=200)  # every create refused
    failed = run_ls(lg_sandbox, ls_sandbox, tmp_path)
    assert failed.exit_code == 1 and failed.source_info["mark_after"] is None


def test_server_errors_are_named_by_what_to_do(ls_sandbox) -> None:
    async def get(key: str, **params: str) -> Any:
        async with LeadScraperClient(key, ls_sandbox.base_url) as api:
            return await api.get("/leads", params, route="list")

    with pytest.raises(CredentialsRejected, match="refused the API key"):
        anyio.run(lambda: get("ls_wrong_key"))
    with pytest.raises(CredentialsRejected, match="403"):
        anyio.run(lambda: get(READONLY_KEY))
    with pytest.raises(UsageError, match="Invalid limit"):
        anyio.run(lambda: get(ls_sandbox.key, limit="500"))
    ls_sandbox.fault("503", route="list", next=2)
    assert anyio.run(lambda: get(ls_sandbox.key))["pagination"]["has_more"] is False  # 5xx retried
    ls_sandbox.fault("500", route="list", next=50)
    with pytest.raises(SourceUnavailable, match="stayed unavailable"):
        anyio.run(lambda: get(ls_sandbox.key))


def test_a_repeated_cursor_stops_the_run(lg_sandbox, ls_sandbox, tmp_path: Path) -> None:
    ls_sandbox.seed(350, seed=6)
    ls_sandbox.fault("repeat_cursor", route="list", probability=1.0)
    with pytest.raises(SourceUnavailable, match="same cursor twice"):
        run_ls(lg_sandbox, ls_sandbox, tmp_path)
    assert ls_sandbox.stats()["by_route"]["list"] == 2  # the second page handed back the first cursor


def test_the_report_never_holds_the_key(lg_sandbox, ls_sandbox, tmp_path: Path) -> None:
    ls_sandbox.seed(20, seed=1)
    report_path = tmp_path / "r.json"
    run_ls(lg_sandbox, ls_sandbox, tmp_path, report=report_path, report_html=tmp_path / "r.html")
    for path in (report_path, tmp_path / "r.html"):
        assert ls_sandbox.key not in path.read_text()
    assert json.loads(report_path.read_text())["source"] == "leadscraper"
