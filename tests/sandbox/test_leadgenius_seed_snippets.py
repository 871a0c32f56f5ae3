"""Seed 002's own example client code (verbatim, base URL swapped) against the sandbox, with `requests`."""

from __future__ import annotations

import importlib.util
import json
import types
from pathlib import Path
from typing import Any

import pytest

_spec = importlib.util.spec_from_file_location("seed_snippets", Path(__file__).with_name("seed_snippets.py"))
assert _spec and _spec.loader
seed_snippets = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(seed_snippets)


@pytest.fixture
def seed_code(lg_sandbox) -> types.ModuleType:  # type: ignore[no-untyped-def]
    module: types.ModuleType = seed_snippets.load(lg_sandbox.base_url)
    return module


class _FakeTime:
    """Stands in for the `time` module inside the seed code only, recording the backoff waits."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)


def test_snippets_are_the_seed_text_with_only_the_url_swapped(shared_seeds: Path) -> None:
    seed_text = shared_seeds / "002_d6d055bc8472d98b.txt"
    assert seed_text.is_file(), f"seed 002 is missing from {shared_seeds}"
    flat = {line.strip() for line in seed_text.read_text().splitlines() if line.strip()}
    for snippet in (seed_snippets._REFRESH_SNIPPET, seed_snippets._RETRY_SNIPPET):
        for line in snippet.splitlines():
            if line.strip():
                assert line.strip() in flat, line


def test_get_valid_token_refreshes_an_expired_token(lg_sandbox, seed_code, tmp_path: Path) -> None:
    lg_sandbox.config(token_ttl_s=1)
    tokens = lg_sandbox.login()
    auth_file = tmp_path / "leadgenius_auth.json"
    auth_file.write_text(json.dumps({
        "token": tokens["accessToken"], "id_token": tokens["idToken"], "refresh_token": tokens["refreshToken"],
        "email": lg_sandbox.tenant.email, "user_id": lg_sandbox.tenant.user_id, "base_url": lg_sandbox.base_url,
    }))
    assert seed_code.get_valid_token(str(auth_file)) == tokens["accessToken"]  # still valid: unchanged

    lg_sandbox.admin("POST", "clock", {"advance": 2})  # the 1 s token is now expired, no sleeping
    fresh = seed_code.get_valid_token(str(auth_file))
    assert fresh != tokens["accessToken"]
    assert json.loads(auth_file.read_text())["token"] == fresh
    headers = {"Authorization": f"Bearer {fresh}"}
    clients = seed_code.make_request_with_retry(lg_sandbox.base_url + "/api/clients", headers)
    assert clients == {"success": True, "clients": []}
    stats = lg_sandbox.stats()["requests"]
    assert stats["GET /api/clients"] == {"200": 2, "401": 1} and stats["POST /api/auth/refresh"] == {"200": 1}


def test_make_request_with_retry_lists_clients_and_creates(lg_sandbox, seed_code) -> None:
    headers = lg_sandbox.bearer()
    url = lg_sandbox.base_url
    created = seed_code.make_request_with_retry(url + "/api/clients", headers, method="POST",
                                                json_data={"clientName": "Historic Leads"})
    assert created["client"]["client_id"] == "historic-leads"
    listed = seed_code.make_request_with_retry(url + "/api/clients", headers)
    assert [c["client_id"] for c in listed["clients"]] == ["historic-leads"]


def test_make_request_with_retry_retries_500s(lg_sandbox, seed_code, monkeypatch, capsys) -> None:
    fake = _FakeTime()
    monkeypatch.setattr(seed_code, "time", fake)  # the seed module's `time` only, not ours
    headers = lg_sandbox.bearer()
    lg_sandbox.fault("500", next=2, route="GET /api/clients")
    result: Any = seed_code.make_request_with_retry(lg_sandbox.base_url + "/api/clients", headers)
    assert result == {"success": True, "clients": []}
    assert fake.waits == [10, 20]  # the seed's own backoff: min(10 * 2**attempt, 60)
    assert "Server error" in capsys.readouterr().out
    assert lg_sandbox.stats()["requests"]["GET /api/clients"] == {"500": 2, "200": 1}


def test_make_request_with_retry_gives_up_and_backs_off_on_429(lg_sandbox, seed_code, monkeypatch) -> None:
    fake = _FakeTime()
    monkeypatch.setattr(seed_code, "time", fake)
    headers = lg_sandbox.bearer()
    lg_sandbox.fault("429", next=5)
    with pytest.raises(Exception, match=r"Max retries \(5\) exceeded"):
        seed_code.make_request_with_retry(lg_sandbox.base_url + "/api/clients", headers)
    assert fake.waits == [60, 120, 240, 300, 300]
