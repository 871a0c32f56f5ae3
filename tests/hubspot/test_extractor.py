"""HubSpotExtractor against the sandbox over real HTTP: the frames it produces, the requests it
spends, and how it survives rate limits, faults and bad credentials. Outcomes, not mocks."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from etl.errors import CredentialsRejected, TargetUnreachable
from etl.extract.hubspot import FRAME_SCHEMA, HubSpotBatch, HubSpotExtractor, datetime_to_ms, iso_to_ms
from etl.sandbox.server import free_port
from tests.hubspot.conftest import HSSandbox, company_floor, expected_frame


def concat(batches: list[HubSpotBatch]) -> pl.DataFrame:
    frames = [b.frame for b in batches]
    return pl.concat(frames) if frames else pl.DataFrame(schema=FRAME_SCHEMA)


def high_water(state: dict[str, Any]) -> datetime:
    """The newest modification (contact or company) in the portal: what a previous run would have stored."""
    stamps = [iso_to_ms(c["properties"]["lastmodifieddate"]) for c in state["contacts"]]
    stamps += [iso_to_ms(c["properties"]["hs_lastmodifieddate"]) for c in state["companies"]]
    return datetime.fromtimestamp(max(stamps) / 1000, UTC)


def test_full_read_of_adversarial_contacts_is_exact_and_at_the_request_floor(hs_sandbox: HSSandbox) -> None:
    hs_sandbox.unlimited()
    summary = hs_sandbox.seed(3_000, seed=11)
    # the data really is adversarial
    for quirk in ("without_email", "duplicate_emails", "dot_lastname", "primary_company_deleted", "without_company"):
        assert summary[quirk] > 0, quirk
    state = hs_sandbox.state()
    ex = hs_sandbox.extractor()

    batches = list(ex.full())
    got = concat(batches)

    assert got["_row"].to_list() == list(range(1, 3_001))
    assert_frame_equal(got.drop("_row"), expected_frame(state))
    statuses = dict(got.group_by("company_status").len().iter_rows())
    assert set(statuses) == {"ok", "none", "deleted"}  # a deleted company does not fail the run
    # seed bug #5: the contact's own `company` property never leaks into company_name
    typed = {c["id"] for c in state["contacts"] if (c["properties"].get("company") or "").endswith("(typed by hand)")}
    assert not got.filter(pl.col("hs_object_id").is_in(list(typed)))["company_name"].str.contains("typed by hand").any()

    assert ex.stats["contacts_page"] == math.ceil(3_000 / 100)
    assert ex.stats["companies_batch"] == company_floor(state)  # each company read once, 100 at a time
    assert ex.stats["search"] == ex.stats["assoc_batch"] == ex.stats["retries"] == 0
    requests = hs_sandbox.stats()["requests"]
    assert sum(requests["contacts_page"].values()) == ex.stats["contacts_page"]
    assert sum(requests["companies_batch_read"].values()) == ex.stats["companies_batch"]
    assert requests["companies_batch_read"].get("207", 0) >= 1  # deleted companies answered as multi-status
    assert batches[-1].max_modified == max(got["lastmodifieddate"].to_list(), key=iso_to_ms)


def test_full_read_skips_archived_contacts_and_an_empty_portal(hs_sandbox: HSSandbox) -> None:
    assert concat(list(hs_sandbox.extractor().full())).height == 0
    hs_sandbox.seed(250, seed=3)
    archived = hs_sandbox.admin("POST", "archive", {"ids": ["151", "200", "399"]})["ids"]
    got = concat(list(hs_sandbox.extractor().full()))
    assert got.height == 250 - len(archived)
    assert not set(archived) & set(got["hs_object_id"].to_list())


def test_changed_since_returns_exactly_the_touched_contacts(hs_sandbox: HSSandbox) -> None:
    hs_sandbox.unlimited()
    hs_sandbox.seed(2_000, seed=5)
    since = high_water(hs_sandbox.state())
    touched = hs_sandbox.touch(n=50, seed=9)
    hs_sandbox.admin("POST", "archive", {"ids": [touched[0], "151"]})  # archived: counted, not in the frame
    state = hs_sandbox.state()
    ex = hs_sandbox.extractor()

    batches = list(ex.changed_since(since, inclusive=False))
    got = concat(batches)

    live = set(touched) - {touched[0]}
    assert sorted(got["hs_object_id"].to_list()) == sorted(live)
    expected = expected_frame(state, ids=live)
    assert_frame_equal(got.drop("_row"), expected, check_row_order=False)
    assert sum(b.archived for b in batches) == 2
    assert {i for b in batches for i in b.archived_ids} == {touched[0], "151"}
    # oldest change first: the high-water mark only moves forward
    stamps = [iso_to_ms(s) for s in got["lastmodifieddate"].to_list()]
    assert stamps == sorted(stamps)
    assert ex.stats["search"] == 1 and ex.stats["assoc_batch"] == 1
    assert ex.stats["companies_batch"] == company_floor(state, live)
    assert ex.stats["contacts_page"] == 0


def test_more_than_10k_changes_in_shared_timestamps_read_exactly_once(hs_sandbox: HSSandbox) -> None:
    hs_sandbox.unlimited()
    hs_sandbox.config(shuffle_ties=1)  # ties come back in a different order on every request
    hs_sandbox.seed(25_000, seed=21)
    since = high_water(hs_sandbox.state())
    # 13,000 changed in one millisecond (past the cap by itself), the rest in groups of 400
    big = hs_sandbox.touch(n=13_000, seed=1, group=13_000, change=False)
    rest = hs_sandbox.touch(ids=[str(i) for i in range(151, 25_151) if str(i) not in set(big)], seed=2, group=400)
    assert len(big) + len(rest) == 25_000
    ex = hs_sandbox.extractor()

    got = concat(list(ex.changed_since(since, inclusive=False)))

    ids = got["hs_object_id"].to_list()
    assert len(ids) == len(set(ids)) == 25_000  # no miss, no double
    assert got["_row"].to_list() == list(range(1, 25_001))
    stamps = [iso_to_ms(s) for s in got["lastmodifieddate"].to_list()]
    assert stamps == sorted(stamps)
    search = hs_sandbox.stats()["requests"]["contacts_search"]
    assert set(search) == {"200"}  # never paged into the 400 past 10,000
    assert ex.stats["search"] <= 25_000 // 200 + 10
    assert ex.stats["assoc_batch"] == 25
    assert ex.stats["companies_batch"] == company_floor(hs_sandbox.state())


def test_429_storms_on_search_and_batch_endpoints_are_survived_honouring_retry_after(hs_sandbox: HSSandbox) -> None:
    hs_sandbox.unlimited()
    hs_sandbox.seed(600, seed=8)
    since = high_water(hs_sandbox.state())
    touched = hs_sandbox.touch(n=300, seed=4)
    hs_sandbox.fault("429", next=2, route="contacts_search")
    hs_sandbox.fault("429", next=1, route="assoc_batch_read")
    hs_sandbox.fault("429", next=2, route="companies_batch_read")
    ex = hs_sandbox.extractor()

    got = concat(list(ex.changed_since(since, inclusive=False)))

    assert sorted(got["hs_object_id"].to_list()) == sorted(touched)
    stats = hs_sandbox.stats()
    assert stats["faults_fired"] == {"429": 5}
    assert stats["retry_after_violations"] == 0  # every retry waited the Retry-After it was given
    assert (ex.stats["throttled_429"], ex.stats["retries"]) == (5, 0)  # 429s are waited out, not retried


def test_5xx_and_dropped_connections_on_reads_are_retried(hs_sandbox: HSSandbox) -> None:
    hs_sandbox.unlimited()
    hs_sandbox.seed(450, seed=6)
    state = hs_sandbox.state()
    hs_sandbox.fault("500", next=2, route="contacts_page")
    hs_sandbox.fault("drop", next=1, route="contacts_page")
    hs_sandbox.fault("502", next=1, route="companies_batch_read")
    ex = hs_sandbox.extractor()

    got = concat(list(ex.full()))

    assert_frame_equal(got.drop("_row"), expected_frame(state))
    assert ex.stats["retries"] == 4
    assert ex.stats["contacts_page"] == 5  # retries happen under one logical request


def test_search_pacing_stays_under_the_per_second_search_limit(hs_sandbox: HSSandbox) -> None:
    hs_sandbox.config(search_per_s=5)  # HubSpot's search limit, on
    hs_sandbox.seed(1_500, seed=2)
    since = high_water(hs_sandbox.state())
    hs_sandbox.touch(n=1_400, seed=3, group=1)
    ex = hs_sandbox.extractor(search_per_second=4)
    got = concat(list(ex.changed_since(since, inclusive=False)))
    assert got.height == 1_400
    assert set(hs_sandbox.stats()["requests"]["contacts_search"]) == {"200"}  # not one 429


def test_wrong_token_raises_credentials_rejected_without_the_token(hs_sandbox: HSSandbox) -> None:
    hs_sandbox.seed(10)
    token = "pat-na1-00000000-dead-beef-0000-000000000000"
    with pytest.raises(CredentialsRejected) as info:
        list(hs_sandbox.extractor(token=token).full())
    assert token not in str(info.value)
    with pytest.raises(CredentialsRejected):
        list(hs_sandbox.extractor(token=token).changed_since(datetime(2024, 1, 1, tzinfo=UTC)))


def test_persistent_5xx_and_a_dead_host_raise_target_unreachable(hs_sandbox: HSSandbox) -> None:
    hs_sandbox.seed(10)
    hs_sandbox.fault("500", probability=1.0, route="contacts_page")
    with pytest.raises(TargetUnreachable):
        list(hs_sandbox.extractor(retry_total=2).full())
    dead = HubSpotExtractor("pat-x", host=f"http://127.0.0.1:{free_port()}", retry_total=1, backoff_factor=0.01)
    with pytest.raises(TargetUnreachable):
        list(dead.full())


# --- issue 13: company changes, archives and merges, HubSpot's clock, the search limit -------------------


def test_renamed_companies_bring_exactly_their_primary_contacts_at_the_request_floor(hs_sandbox: HSSandbox) -> None:
    hs_sandbox.unlimited()
    hs_sandbox.seed(1_200, seed=21, adversarial=False)
    since = high_water(hs_sandbox.state())
    touched = set(hs_sandbox.touch(n=20, seed=5))
    state = hs_sandbox.state()
    live = [co for co in state["companies"] if not co["deleted"]]
    renamed = {co["id"]: f"Renamed {i}" for i, co in enumerate(live[:3])}
    hs_sandbox.admin("POST", "companies/rename",
                     {"inputs": [{"id": cid, "properties": {"name": name}} for cid, name in renamed.items()]})
    ex = hs_sandbox.extractor()

    batches = list(ex.changed_since(since, inclusive=False))
    got = concat(batches)

    primary_contacts = {c["id"] for c in state["contacts"] if c["primary"] in renamed}
    assert primary_contacts and not primary_contacts <= touched
    # every touched contact once, and every primary contact of a renamed company once, with the new name
    ids = got["hs_object_id"].to_list()
    assert len(ids) == len(set(ids)) and set(ids) == touched | primary_contacts
    for row in got.filter(pl.col("company_id").is_in(list(renamed))).iter_rows(named=True):
        assert row["company_name"] == renamed[row["company_id"]]
    # contacts associated with a renamed company but whose PRIMARY is another one are not read
    others = {c["id"] for c in state["contacts"] if set(c["companies"]) & set(renamed)} - primary_contacts - touched
    assert not others & set(ids)
    assert sum(b.refreshed for b in batches) == len(primary_contacts - touched)
    assert sum(b.changed_companies for b in batches) == 3
    assert ex.stats["company_search"] == 1 and ex.stats["company_assoc_batch"] == 1
    assert ex.stats["contacts_batch"] == math.ceil(len(primary_contacts - touched) / 100)


def test_archived_listing_and_merges_come_with_ids_emails_and_times(hs_sandbox: HSSandbox) -> None:
    hs_sandbox.unlimited()
    hs_sandbox.seed(300, seed=22, adversarial=False)
    hs_sandbox.admin("POST", "archive", {"ids": ["160"]})  # archived before the mark: not new
    time.sleep(0.01)
    state = {c["id"]: c for c in hs_sandbox.state()["contacts"]}
    since = max(high_water(hs_sandbox.state()), datetime.fromtimestamp(iso_to_ms(state["160"]["archivedAt"]) / 1000, UTC))
    hs_sandbox.admin("POST", "archive", {"ids": ["170", "171"]})
    hs_sandbox.admin("POST", "merge", {"pairs": [["180", "181"], ["182", "183"]]})
    ex = hs_sandbox.extractor()

    batches = list(ex.changed_since(since, inclusive=False))

    archived = {a.id: a for b in batches for a in b.archived_contacts}
    assert set(archived) == {"170", "171"}
    assert archived["170"].email == state["170"]["properties"]["email"]
    assert all(a.archived_at and iso_to_ms(a.archived_at) > datetime_to_ms(since) for a in archived.values())
    merges = {m.survivor: m for b in batches for m in b.merges}
    assert set(merges) == {"180", "182"}
    assert merges["180"].merged_ids == ("181",)
    assert merges["180"].emails == (state["181"]["properties"]["email"],)
    assert not {"181", "183"} & set(concat(batches)["hs_object_id"].to_list())  # vanished from every read
    # a full read sees the same survivors and, asked to, the same archived contacts
    full = list(hs_sandbox.extractor().full(archived_since=since))
    assert {a.id for b in full for a in b.archived_contacts} == {"170", "171"}
    assert {m.survivor for b in full for m in b.merges} == {"180", "182"}


def test_server_time_is_hubspots_clock_from_the_date_header(hs_sandbox: HSSandbox) -> None:
    hs_sandbox.seed(20, seed=1)
    hs_sandbox.config(clock_offset_s=-7200)
    ex = hs_sandbox.extractor()
    list(ex.changed_since(datetime(2024, 1, 1, tzinfo=UTC)))
    assert ex.server_time is not None
    assert -7300 < (ex.server_time - datetime.now(UTC)).total_seconds() < -7100


def test_search_limit_is_learned_from_secondly_429s_and_never_ends_the_read(hs_sandbox: HSSandbox) -> None:
    hs_sandbox.config(rate_limit_per_10s=0, search_per_s=2)  # a portal stricter than HubSpot's 4-5/s
    hs_sandbox.seed(2_000, seed=23, adversarial=False)
    since = high_water(hs_sandbox.state())
    touched = hs_sandbox.touch(n=1_800, seed=6, group=1)
    ex = hs_sandbox.extractor(search_per_second=5)

    got = concat(list(ex.changed_since(since, inclusive=False)))

    assert sorted(got["hs_object_id"].to_list()) == sorted(touched)
    searches = hs_sandbox.stats()["requests"]["contacts_search"]
    assert searches.get("429", 0) == ex.stats["throttled_429"] >= 1
    assert ex.search_per_second == 2  # learned, then kept: later searches are not refused
    assert searches.get("429", 0) <= 3


def test_a_long_429_storm_waits_past_the_retry_budget(hs_sandbox: HSSandbox) -> None:
    hs_sandbox.unlimited()
    hs_sandbox.seed(300, seed=24)
    hs_sandbox.config(retry_after_s=0)
    hs_sandbox.fault("429", next=20, route="contacts_page")  # more than retry_total, which used to end the run
    waits: list[float] = []
    ex = hs_sandbox.extractor(retry_total=3, sleep=waits.append)
    got = concat(list(ex.full()))
    assert got.height == 300 and ex.stats["throttled_429"] == 20 and len(waits) == 20
    hs_sandbox.fault("429", probability=1.0, route="contacts_page")
    hs_sandbox.config(retry_after_s=5)
    with pytest.raises(TargetUnreachable, match="kept answering 429"):
        list(hs_sandbox.extractor(throttle_budget_s=12, sleep=waits.append).full())


def test_non_search_reads_are_paced_from_the_rate_headers_and_meet_no_429(hs_sandbox: HSSandbox) -> None:
    # 4 requests per 0.5 s (the sandbox's window is shortened; the extractor learns it from
    # Interval-Milliseconds): the same read, paced from the headers and the old way (429s only).
    hs_sandbox.unlimited()
    hs_sandbox.seed(700, seed=31, adversarial=False)
    truth = concat(list(hs_sandbox.extractor().full()))
    hs_sandbox.config(rate_limit_per_10s=4, rate_window_ms=500, retry_after_s=1)
    waits: list[float] = []
    paced = hs_sandbox.extractor(sleep=lambda s: (waits.append(s), time.sleep(s)))
    got = concat(list(paced.full()))
    assert_frame_equal(got, truth)
    requests = sum(v for k, v in paced.stats.items() if k not in ("retries", "throttled_429"))
    assert requests > 4 and paced.stats["throttled_429"] == 0 and paced.paced_s > 0
    assert all(w <= 0.5 + paced._budget.margin for w in waits)  # never longer than one window
    assert not [route for route, codes in hs_sandbox.stats()["requests"].items() if "429" in codes]
    unpaced = hs_sandbox.extractor(pace_from_headers=False)
    assert_frame_equal(concat(list(unpaced.full())), truth)
    assert unpaced.stats["throttled_429"] > 0  # the control: the same read without pacing meets the limit


def test_two_contacts_sharing_an_e_mail_in_other_case_feed_the_lead_from_the_newest_in_every_read(
    hs_sandbox: HSSandbox,
) -> None:
    from hubspot.crm.contacts import BatchInputSimplePublicObjectBatchInput, SimplePublicObjectBatchInput

    from etl.extract.hubspot import HubSpotSource

    hs_sandbox.unlimited()
    hs_sandbox.seed(30, seed=3, adversarial=False)
    old, new = (
        hs_sandbox.admin("POST", "contacts", {"inputs": [{"properties": {"firstname": n, "email": e}}]})["ids"][0]
        for n, e in (("Old", "Ann@Example.io"), ("New", "ann@example.IO"))
    )

    def feeder() -> tuple[set[str], set[str]]:
        """(who feeds the lead, who was skipped) in a full read and in a search read of everything."""
        found = []
        for since in (None, datetime(2000, 1, 1, tzinfo=UTC)):
            batches = list(HubSpotSource(hs_sandbox.token, hs_sandbox.base_url, since=since).batches())
            sent = {c for b in batches for c in b.frame.get_column("hs_object_id").to_list() if c in (old, new)}
            rejects = pl.concat([b.rejects for b in batches], how="diagonal")
            reasons = {r["hs_object_id"]: r["_reason"] for r in rejects.iter_rows(named=True)}
            assert set(reasons) == {old, new} - sent and rejects["_rule"].to_list() == ["shared_email"]
            assert all(old in why and new in why for why in reasons.values())  # both ids named
            found.append((sent, set(reasons)))
        assert found[0] == found[1]  # id order (full) and modification order (search) agree
        return found[0]

    assert feeder() == ({new}, {old})  # created last: the newest
    edit = BatchInputSimplePublicObjectBatchInput(inputs=[SimplePublicObjectBatchInput(id=old, properties={"jobtitle": "CTO"})])
    hs_sandbox.client().crm.contacts.batch_api.update(edit)
    assert feeder() == ({old}, {new})  # edited since: now it is the newest
