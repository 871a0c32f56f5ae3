"""SPEC A5: per-credential budget, X-RateLimit-* headers, 429 with Retry-After, recovery."""

from __future__ import annotations

import time

import httpx

from etl.sandbox.leadgenius.store import DEMO_TENANT


def rl(response: httpx.Response) -> tuple[int, int, int]:
    h = response.headers
    return int(h["X-RateLimit-Limit"]), int(h["X-RateLimit-Remaining"]), int(h["X-RateLimit-Reset"])


def test_headers_on_every_answer_including_errors(lg_sandbox, http, demo) -> None:
    lg_sandbox.config(rate_limit_per_min=10)
    ok = http.get("/api/clients", headers=demo)
    limit, remaining, reset = rl(ok)
    assert (limit, remaining) == (10, 9)
    assert time.time() < reset <= time.time() + 61
    not_found = http.get("/api/clients", headers=demo, params={"clientId": "nope"})
    assert not_found.status_code == 404 and rl(not_found)[:2] == (10, 8)
    unauth = http.get("/api/clients")
    assert unauth.status_code == 401 and "X-RateLimit-Limit" in unauth.headers


def test_unlimited_still_sends_headers(http, demo) -> None:
    r = http.get("/api/clients", headers=demo)
    assert rl(r)[0] == 1_000_000


def test_429_with_retry_after_and_no_budget_consumed(lg_sandbox, http, demo) -> None:
    lg_sandbox.config(rate_limit_per_min=3)
    statuses = [http.get("/api/clients", headers=demo).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    for _ in range(3):
        r = http.get("/api/clients", headers=demo)
        assert r.status_code == 429
        body = r.json()
        assert body["success"] is False and body["errorType"] == "rate_limit_exceeded"
        retry_after = int(r.headers["Retry-After"])
        assert 1 <= retry_after <= 60
        assert rl(r)[:2] == (3, 0)
    stats = lg_sandbox.stats()
    assert stats["rate_limited"] == 3 and stats["requests"]["GET /api/clients"] == {"200": 3, "429": 3}
    assert stats["injected"]["429"] == 0

    # a new window restores the full budget: the 429s consumed none of it
    lg_sandbox.admin("POST", "clock", {"advance": 61})
    results = [http.get("/api/clients", headers=demo) for _ in range(4)]
    assert [r.status_code for r in results] == [200, 200, 200, 429]
    assert [rl(r)[1] for r in results[:3]] == [2, 1, 0]


def test_budget_recovers_after_a_short_window(lg_sandbox, http, demo) -> None:
    lg_sandbox.config(rate_limit_per_min=2, rate_window_s=1.0)
    responses = [http.get("/api/company", headers=demo) for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 429]
    time.sleep(int(responses[-1].headers["Retry-After"]))  # rounded up: the window is over by then
    r = http.get("/api/company", headers=demo)
    assert r.status_code == 200 and rl(r)[:2] == (2, 1)


def test_budget_is_per_credential(lg_sandbox, http, demo, other) -> None:
    lg_sandbox.config(rate_limit_per_min=2)
    assert [http.get("/api/company", headers=demo).status_code for _ in range(3)] == [200, 200, 429]
    assert http.get("/api/company", headers=other).status_code == 200  # other tenant: own budget
    key = lg_sandbox.api_key_headers()
    params = {"companyId": DEMO_TENANT.company_id}
    assert http.get("/api/enrich-leads/list", params=params, headers=key).status_code == 200  # API key: own budget
    # a second token of the same user shares the owner's budget
    assert http.get("/api/company", headers=lg_sandbox.bearer()).status_code == 429


def test_auth_and_admin_are_not_limited(lg_sandbox, http, demo) -> None:
    lg_sandbox.config(rate_limit_per_min=1)
    for _ in range(3):
        lg_sandbox.login()
        lg_sandbox.stats()
    assert http.get("/api/company", headers=demo).status_code == 200
    assert http.get("/api/company", headers=demo).status_code == 429
