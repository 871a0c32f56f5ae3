"""When the client takes its token, and how often it renews one (issue 10, item 4).

A fake LeadGenius on an httpx MockTransport that checks `exp` itself: it answers 401
`token_expired` to a token past its `exp`, as the real service does.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from etl.config import Settings
from etl.errors import CredentialsRejected, unwrapped_errors
from etl.load.api import LeadGeniusApi
from etl.load.auth import write_auth_file
from etl.load.classify import MAX_TOKEN_RENEWALS, renew_after_401

BASE = "http://127.0.0.1:9"


def jwt(n: int, lifetime_s: float) -> str:
    now = time.time()
    claims = {"sub": "u-1", "iat": now, "exp": now + lifetime_s, "n": n}
    enc = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()  # noqa: E731
    return f"{enc({'alg': 'HS256'})}.{enc(claims)}.sig"


def claims(request: httpx.Request) -> dict[str, Any]:
    payload = request.headers["authorization"].removeprefix("Bearer ").split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


class FakeLeadGenius:
    """Issues tokens living `lifetime_s`; `refuse(request)` may answer an API call with a 401 errorType."""

    def __init__(self, lifetime_s: float = 3600.0, *, refresh_ok: bool = True, slow_s: float = 0.0) -> None:
        self.lifetime_s, self.refresh_ok, self.slow_s = lifetime_s, refresh_ok, slow_s
        self.issued = 0
        self.sent_tokens: list[int] = []
        self.refuse: Any = lambda request: None

    def tokens(self) -> dict[str, Any]:
        self.issued += 1
        return {"success": True, "tokens": {"accessToken": jwt(self.issued, self.lifetime_s), "refreshToken": "r-1"}}

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/api/auth/refresh":
            return httpx.Response(200 if self.refresh_ok else 401, json=self.tokens() if self.refresh_ok else {})
        if path == "/api/auth":
            return httpx.Response(200, json=self.tokens())
        token = claims(request)
        self.sent_tokens.append(int(token["n"]))
        error_type = self.refuse(request) or ("token_expired" if time.time() >= token["exp"] else None)
        if error_type:
            return httpx.Response(401, json={"success": False, "error": "Unauthorized", "errorType": error_type})
        if self.slow_s:
            await anyio.sleep(self.slow_s)
        return httpx.Response(200, json={"success": True, "company": {"company_id": "c-1"}})


def api_for(tmp_path: Path, fake: FakeLeadGenius, *, password: str | None = "pw", concurrency: int = 8) -> LeadGeniusApi:
    auth = tmp_path / "auth.json"
    write_auth_file(auth, {"token": jwt(0, fake.lifetime_s), "refresh_token": "r-0", "base_url": BASE})
    settings = Settings(base_url=BASE, auth_file=auth, email="e@x.io", password=password, state_path=tmp_path / "s.db")
    return LeadGeniusApi(settings, transport=httpx.MockTransport(fake), concurrency=concurrency,
                         jitter=lambda: 0.0)


def run(api: LeadGeniusApi, calls: int = 1) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []

    async def main() -> None:
        with unwrapped_errors():
            async with api, anyio.create_task_group() as tg:
                for _ in range(calls):
                    async def one() -> None:
                        results.append(await api.company())

                    tg.start_soon(one)

    anyio.run(main)
    return results


def test_renew_after_401_is_bounded_and_by_error_type() -> None:
    assert renew_after_401("token_expired", 0) and renew_after_401("token_expired", MAX_TOKEN_RENEWALS - 1)
    assert not renew_after_401("token_expired", MAX_TOKEN_RENEWALS)
    assert renew_after_401("no_valid_tokens", 0) and not renew_after_401("no_valid_tokens", 1)
    assert not renew_after_401("no_valid_credentials", 0) and not renew_after_401(None, 0)


def test_token_is_taken_after_the_wait_for_a_slot(tmp_path: Path) -> None:
    # One slot; each answer takes 0.7 s, tokens live 1 s. The last of three requests waits 1.4 s
    # for the slot: a token taken before that wait was expired when it went out.
    fake = FakeLeadGenius(lifetime_s=1.0, slow_s=0.7)
    api = api_for(tmp_path, fake, concurrency=1)
    assert len(run(api, calls=3)) == 3
    assert api.stats.resent_after_401 == 0 and api.stats.by_status.get("401", 0) == 0
    assert api.stats.token_refreshes >= 1


def test_token_expired_is_renewed_every_time_and_counted(tmp_path: Path) -> None:
    fake = FakeLeadGenius()
    answers = iter(["token_expired"] * 3)
    fake.refuse = lambda request: next(answers, None)
    api = api_for(tmp_path, fake)
    assert run(api) == [{"company_id": "c-1"}]
    assert (api.stats.resent_after_401, api.stats.token_refreshes, api.stats.logins) == (3, 3, 0)
    assert fake.sent_tokens == [0, 1, 2, 3]  # each resend carried the renewed token
    assert api.stats.to_dict()["token_refreshes"] == 3


def test_concurrent_requests_refused_the_same_token_renew_it_once(tmp_path: Path) -> None:
    fake = FakeLeadGenius()
    fake.refuse = lambda request: "token_expired" if claims(request)["n"] == 0 else None
    api = api_for(tmp_path, fake)
    assert len(run(api, calls=8)) == 8
    assert api.stats.token_refreshes == 1 and api.stats.resent_after_401 == 8


def test_a_server_that_calls_every_fresh_token_expired_stops_the_run(tmp_path: Path) -> None:
    fake = FakeLeadGenius()
    fake.refuse = lambda request: "token_expired"
    api = api_for(tmp_path, fake)
    with pytest.raises(CredentialsRejected, match="clock"):
        run(api)
    assert api.stats.resent_after_401 == MAX_TOKEN_RENEWALS


def test_no_valid_tokens_after_a_renewal_is_the_credentials(tmp_path: Path) -> None:
    fake = FakeLeadGenius()
    fake.refuse = lambda request: "no_valid_tokens"
    api = api_for(tmp_path, fake)
    with pytest.raises(CredentialsRejected, match="no_valid_tokens"):
        run(api)
    assert fake.sent_tokens == [0, 1]


def test_refused_refresh_and_no_password_is_the_credentials(tmp_path: Path) -> None:
    fake = FakeLeadGenius(refresh_ok=False)
    fake.refuse = lambda request: "token_expired" if claims(request)["n"] == 0 else None
    api = api_for(tmp_path, fake, password=None)
    with pytest.raises(CredentialsRejected, match="auth login"):
        run(api)
