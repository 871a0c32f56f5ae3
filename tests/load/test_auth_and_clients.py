import base64
import json
import stat
from pathlib import Path

import anyio
import pytest

from etl.errors import CredentialsRejected
from etl.load.auth import TokenKeeper, jwt_claims, read_auth_file, refresh_margin_s, write_auth_file
from etl.load.clients import match_client


def jwt(claims: dict) -> str:
    enc = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()  # noqa: E731
    return f"{enc({'alg': 'HS256'})}.{enc(claims)}.sig"


def test_jwt_claims_and_refresh_margin() -> None:
    tok = jwt({"sub": "u1", "exp": 1100, "iat": 1000})
    assert jwt_claims(tok)["sub"] == "u1"
    assert jwt_claims("not-a-jwt") == {}
    assert refresh_margin_s({"iat": 0, "exp": 3600}) == 60.0
    assert refresh_margin_s({"iat": 0, "exp": 4}) == 1.0


def test_auth_file_is_0600_and_keeps_seed_keys(tmp_path: Path) -> None:
    path = tmp_path / "auth.json"
    write_auth_file(path, {"token": "t" * 10, "email": "a@b.c", "api_key": "k" * 10})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_auth_file(path)["email"] == "a@b.c"
    assert read_auth_file(tmp_path / "missing.json") == {}


def test_keeper_refreshes_before_expiry_then_logs_in_when_refresh_is_refused(tmp_path: Path) -> None:
    now = [1000.0]
    path = tmp_path / "auth.json"
    write_auth_file(path, {"token": jwt({"sub": "u", "iat": 900, "exp": 1010}), "refresh_token": "r" * 8,
                           "base_url": "http://h"})
    calls: list[str] = []
    fresh = jwt({"sub": "u", "iat": 1000, "exp": 4600})

    async def post(p: str, body: dict) -> tuple[int, dict]:
        calls.append(p)
        if p == "/api/auth/refresh":
            return 401, {"success": False}
        return 200, {"tokens": {"accessToken": fresh, "refreshToken": "r2" * 4, "idToken": "i"}}

    keeper = TokenKeeper(auth_file=path, base_url="http://h", email="e@x.io", password="pw-secret", clock=lambda: now[0])
    token = anyio.run(keeper.token, post)
    assert token == fresh and calls == ["/api/auth/refresh", "/api/auth"]
    assert read_auth_file(path)["token"] == fresh  # persisted in the seeds' format
    assert anyio.run(keeper.token, post) == fresh and len(calls) == 2  # still valid: no new call


def test_keeper_without_credentials_says_what_to_do(tmp_path: Path) -> None:
    keeper = TokenKeeper(auth_file=tmp_path / "none.json", base_url="http://h", email=None, password=None)

    async def post(p: str, body: dict) -> tuple[int, dict]:
        raise AssertionError("no call expected")

    with pytest.raises(CredentialsRejected, match="auth login"):
        anyio.run(keeper.token, post)


CLIENTS = [
    {"id": "edd5c738-a1b2-4c3d-8e9f-0123456789ab", "client_id": "acme-corp", "clientName": "Acme Corp"},
    {"id": "11111111-2222-4333-8444-555555555555", "client_id": "historic-leads", "clientName": "Old Stuff"},
]


@pytest.mark.parametrize(
    ("wanted", "slug"),
    [
        ("acme-corp", "acme-corp"),
        ("Acme Corp", "acme-corp"),
        ("ACME corp", "acme-corp"),
        ("old stuff", "historic-leads"),
        ("Historic Leads", "historic-leads"),  # slug of the name
        ("edd5c738-a1b2-4c3d-8e9f-0123456789ab", "acme-corp"),  # UUID translated (quirk 5)
        ("nobody", None),
    ],
)
def test_match_client(wanted: str, slug: str | None) -> None:
    found = match_client(CLIENTS, wanted)
    assert (found["client_id"] if found else None) == slug
