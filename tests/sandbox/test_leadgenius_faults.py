"""Injected faults (next-N, seeded probability, per route), latency, silent drops, and their stats."""

from __future__ import annotations

import time

import httpx
import pytest
import requests

from etl.sandbox.leadgenius.faults import parse_fault_spec


def new_lead(i: int) -> dict[str, str]:
    return {"client_id": "acme-corp", "email": f"f{i}@acme.com", "lastName": "Doe"}


def test_next_n_500_on_one_route_changes_nothing(lg_sandbox, http, demo) -> None:
    rule = lg_sandbox.fault("500", next=2, route="POST /api/leads")
    assert rule["rule"]["route"] == "POST /api/leads"
    assert http.get("/api/clients", headers=demo).status_code == 200  # other routes untouched
    for i in range(2):
        r = http.post("/api/leads", headers=demo, json=new_lead(i))
        assert r.status_code == 500 and r.json()["errorType"] == "internal_error"
    assert lg_sandbox.state()["leads"] == []
    assert http.post("/api/leads", headers=demo, json=new_lead(9)).status_code == 201
    assert [x["email"] for x in lg_sandbox.state()["leads"]] == ["f9@acme.com"]
    stats = lg_sandbox.stats()
    assert stats["injected"]["500"] == 2
    assert sum(stats["quirk_500"].values()) == 0
    assert stats["requests"]["POST /api/leads"] == {"500": 2, "201": 1}


def test_injected_429_and_503(lg_sandbox, http, demo) -> None:
    lg_sandbox.fault("429", next=1, retry_after=3)
    lg_sandbox.fault("503", next=1)
    r = http.get("/api/clients", headers=demo)
    assert r.status_code == 429 and r.json()["errorType"] == "rate_limit_exceeded"
    assert r.headers["Retry-After"] == "3"
    assert r.headers["X-RateLimit-Remaining"] == "0" and "X-RateLimit-Limit" in r.headers
    assert int(r.headers["X-RateLimit-Reset"]) >= int(time.time())
    r = http.get("/api/clients", headers=demo)
    assert r.status_code == 503 and r.json()["success"] is False
    assert r.headers["X-RateLimit-Limit"] == "1000000"  # headers on every answer, budget untouched
    assert http.get("/api/clients", headers=demo).status_code == 200
    stats = lg_sandbox.stats()
    assert stats["injected"]["429"] == 1 and stats["injected"]["503"] == 1 and stats["rate_limited"] == 0


def test_quirk_500s_are_counted_apart_from_injected_ones(lg_sandbox, http, demo) -> None:
    http.post("/api/leads", headers=demo, json=new_lead(1) | {"phone": "1"})
    http.post("/api/leads", headers=demo, json=new_lead(2) | {"lastName": "."})
    lg_sandbox.fault("500", next=1)
    http.post("/api/leads", headers=demo, json=new_lead(3))
    stats = lg_sandbox.stats()
    assert stats["quirk_500"]["unknown_field"] == 1 and stats["quirk_500"]["punctuation_last_name"] == 1
    assert stats["injected"]["500"] == 1
    assert stats["requests"]["POST /api/leads"] == {"500": 3}
    assert stats["total"] == 4  # with the login of the `demo` fixture


def test_probability_faults_are_deterministic_for_a_seed(lg_sandbox, http) -> None:
    def run() -> list[int]:
        lg_sandbox.reset()
        headers = lg_sandbox.bearer()
        lg_sandbox.fault("500", probability=0.3, seed=7, route="GET /api/clients")
        return [http.get("/api/clients", headers=headers).status_code for _ in range(40)]

    first, second = run(), run()
    assert first == second
    assert set(first) == {200, 500}
    lg_sandbox.reset()
    lg_sandbox.fault("500", probability=0.3, seed=8, route="GET /api/clients")
    headers = lg_sandbox.bearer()
    assert [http.get("/api/clients", headers=headers).status_code for _ in range(40)] != first


def test_drop_kills_the_connection_for_httpx_and_requests(lg_sandbox, demo) -> None:
    lg_sandbox.fault("drop", next=2, route="POST /api/leads")
    with httpx.Client(base_url=lg_sandbox.base_url) as client, pytest.raises(httpx.RemoteProtocolError):
        client.post("/api/leads", headers=demo, json=new_lead(1))
    with pytest.raises(requests.ConnectionError):
        requests.post(lg_sandbox.base_url + "/api/leads", headers=demo, json=new_lead(2), timeout=10)
    assert lg_sandbox.state()["leads"] == []
    with httpx.Client(base_url=lg_sandbox.base_url) as client:
        assert client.post("/api/leads", headers=demo, json=new_lead(3)).status_code == 201
    stats = lg_sandbox.stats()
    assert stats["injected"]["drop"] == 2
    assert stats["requests"]["POST /api/leads"] == {"drop": 2, "201": 1}


def test_async_client_sees_a_transport_error_on_drop(lg_sandbox, demo) -> None:
    import anyio

    lg_sandbox.fault("drop", next=1)

    async def main() -> type[BaseException]:
        async with httpx.AsyncClient(base_url=lg_sandbox.base_url) as client:
            try:
                await client.get("/api/clients", headers=demo)
            except httpx.TransportError as exc:
                return type(exc)
            raise AssertionError("no transport error")

    assert issubclass(anyio.run(main), httpx.TransportError)


def test_slow_fault_times_out_the_client_but_the_work_is_done(lg_sandbox, demo) -> None:
    lg_sandbox.fault("slow", next=1, slow_ms=800, route="POST /api/leads")
    with httpx.Client(base_url=lg_sandbox.base_url, timeout=0.2) as client, pytest.raises(httpx.ReadTimeout):
        client.post("/api/leads", headers=demo, json=new_lead(1))
    deadline = time.monotonic() + 10
    while not lg_sandbox.state()["leads"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [x["email"] for x in lg_sandbox.state()["leads"]] == ["f1@acme.com"]  # answer unknown, lead stored
    assert lg_sandbox.stats()["injected"]["slow"] == 1


def test_latency_is_added_to_api_answers(lg_sandbox, http, demo) -> None:
    lg_sandbox.config(latency_ms=60)
    started = time.perf_counter()
    assert http.get("/api/clients", headers=demo).status_code == 200
    assert time.perf_counter() - started >= 0.05


def test_admin_is_never_faulted(lg_sandbox, http, demo) -> None:
    before = lg_sandbox.stats()
    lg_sandbox.fault("drop", probability=1.0)
    lg_sandbox.fault("500", probability=1.0)
    lg_sandbox.config(latency_ms=0)
    assert lg_sandbox.state()["leads"] == []
    assert lg_sandbox.stats() == before
    assert len(lg_sandbox.admin("GET", "faults")["rules"]) == 2
    lg_sandbox.admin("DELETE", "faults")
    assert http.get("/api/clients", headers=demo).status_code == 200


def test_silent_drop_of_single_posts(lg_sandbox, http, demo) -> None:
    lg_sandbox.config(drop_probability=1.0)
    r = http.post("/api/leads", headers=demo, json=new_lead(1))
    assert r.status_code == 201 and r.json()["lead"]["email"] == "f1@acme.com"
    assert lg_sandbox.state()["leads"] == []
    assert lg_sandbox.stats()["silently_dropped"] == 1

    def run() -> list[str]:
        lg_sandbox.reset()
        lg_sandbox.config(drop_probability=0.5)
        headers = lg_sandbox.bearer()
        for i in range(20):
            http.post("/api/leads", headers=headers, json=new_lead(i))
        return [x["email"] for x in lg_sandbox.state()["leads"]]

    first = run()
    assert 0 < len(first) < 20 and run() == first
    assert lg_sandbox.stats()["silently_dropped"] == 20 - len(first)


def test_a_fault_keyed_to_a_query_parameter_waits_for_that_page(lg_sandbox, http, demo) -> None:
    """`query` pins a fault to one page (its nextToken), whatever order the requests come in."""
    lg_sandbox.seed("Acme Corp", n=25)
    first = http.get("/api/leads", headers=demo, params={"client_id": "acme-corp", "limit": 10}).json()
    token = first["nextToken"]
    rule = lg_sandbox.fault("503", next=1, route="GET /api/leads", query={"nextToken": token})
    assert rule["rule"]["query"] == {"nextToken": token}
    lg_sandbox.fault("500", next=1, route="GET /api/leads", query={"nextToken": None})  # the first page only
    # Other pages and the other route pass untouched, however often they are asked for before it.
    other = http.get("/api/leads", headers=demo, params={"client_id": "acme-corp", "limit": 10, "nextToken": "x"})
    assert other.status_code == 400  # the API's own answer to a bad token: the keyed 503 did not fire
    assert http.get("/api/leads", headers=demo, params={"client_id": "acme-corp", "limit": 10}).status_code == 500
    assert http.get("/api/leads", headers=demo, params={"client_id": "acme-corp", "limit": 10}).status_code == 200
    page = {"client_id": "acme-corp", "limit": 10, "nextToken": token}
    assert http.get("/api/leads", headers=demo, params=page).status_code == 503
    assert http.get("/api/leads", headers=demo, params=page).status_code == 200
    assert [r["fired"] for r in lg_sandbox.admin("GET", "faults")["rules"]] == [1, 1]
    assert http.post("/__admin/faults", json={"kind": "500", "next": 1, "query": {"nextToken": 3}}).status_code == 400


def test_bad_fault_rules_are_400(lg_sandbox, http) -> None:
    for body in ({"kind": "418", "next": 1}, {"kind": "500"}, {"kind": "500", "next": 1, "probability": 0.5},
                 {"kind": "500", "probability": 2}):
        r = http.post("/__admin/faults", json=body)
        assert r.status_code == 400, body


def test_cli_fault_spec_parsing() -> None:
    rules = parse_fault_spec("429:0.05, 500:0.02,drop:0.01,next:3:503@POST /api/leads,slow:0.1:3000", seed=4)
    assert [(r.kind, r.probability, r.next, r.route) for r in rules] == [
        ("429", 0.05, None, None), ("500", 0.02, None, None), ("drop", 0.01, None, None),
        ("503", None, 3, "POST /api/leads"), ("slow", 0.1, None, None)]
    assert rules[-1].slow_ms == 3000
    assert parse_fault_spec("next:1:drop@GET:/api/clients")[0].route == "GET /api/clients"
    for bad in ("bogus", "500", "next:x:500", "teapot:0.1", "500:1.5"):
        with pytest.raises(ValueError):
            parse_fault_spec(bad)


def test_faults_given_at_start_come_back_after_reset() -> None:
    from etl.sandbox.leadgenius.app import create_app
    from etl.sandbox.server import serving

    with serving(create_app(faults=parse_fault_spec("next:1:503@GET /api/company"))) as server, \
            httpx.Client(base_url=server.base_url) as client:
        from etl.sandbox.leadgenius.store import DEMO_TENANT

        for _ in range(2):
            tokens = client.post("/api/auth", json={"username": DEMO_TENANT.email,
                                                    "password": DEMO_TENANT.password}).json()["tokens"]
            headers = {"Authorization": f"Bearer {tokens['accessToken']}"}
            assert client.get("/api/company", headers=headers).status_code == 503
            assert client.get("/api/company", headers=headers).status_code == 200
            client.post("/__admin/reset")


def test_batch_keep_answers_the_full_count_but_keeps_some_leads(lg_sandbox, http, demo) -> None:
    ids = [http.post("/api/leads", headers=demo, json=new_lead(i)).json()["lead"]["id"] for i in range(10)]
    rule = lg_sandbox.fault("batch_keep", next=1, keep_ratio=0.3, seed=7)["rule"]
    assert rule["route"] == "DELETE /api/leads"
    # a single-id delete is not the batch form: it neither draws the fault nor spends its `next`
    assert http.request("DELETE", "/api/leads", params={"id": ids[0]}, headers=demo).status_code == 200
    r = http.request("DELETE", "/api/leads", json={"ids": ids[1:]}, headers=demo)
    assert r.status_code == 200 and r.json() == {"success": True, "deleted": 9}  # the lie
    kept = [lead["id"] for lead in lg_sandbox.state()["leads"]]
    assert 1 <= len(kept) < 9 and set(kept) <= set(ids[1:])
    stats = lg_sandbox.stats()
    assert stats["injected"]["batch_keep"] == 1 and stats["batch_delete_kept"] == len(kept)
    # spent: the next batch delete does what it says
    assert http.request("DELETE", "/api/leads", json={"ids": kept}, headers=demo).json()["deleted"] == len(kept)
    assert lg_sandbox.state()["leads"] == []


def test_batch_keep_only_applies_to_the_batch_delete(lg_sandbox, http) -> None:
    r = http.post("/__admin/faults", json={"kind": "batch_keep", "next": 1, "route": "POST /api/leads"})
    assert r.status_code == 400 and "DELETE /api/leads" in r.json()["error"]
    [rule] = parse_fault_spec("next:2:batch_keep:0.25")
    assert (rule.kind, rule.next, rule.keep_ratio, rule.route) == ("batch_keep", 2, 0.25, "DELETE /api/leads")
    assert parse_fault_spec("slow:0.5:300")[0].slow_ms == 300.0
