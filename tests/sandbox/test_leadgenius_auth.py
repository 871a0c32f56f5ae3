"""SPEC A1: authentication, tokens, which credential goes where."""

from __future__ import annotations

import base64
import json
import time

import httpx

from etl.sandbox.leadgenius.store import DEMO_TENANT, OTHER_TENANT

ERROR_KEYS = {"success", "error", "errorType", "details", "recommendation"}


def _payload(token: str) -> dict[str, object]:
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def assert_error(response: httpx.Response, status: int, error_type: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == ERROR_KEYS
    assert body["success"] is False
    assert body["errorType"] == error_type


def test_login_returns_jwt_shaped_tokens(lg_sandbox, http) -> None:
    r = http.post("/api/auth", json={"username": DEMO_TENANT.email, "password": DEMO_TENANT.password})
    assert r.status_code == 200
    body = r.json()
    assert body["success"] is True
    tokens = body["tokens"]
    assert set(tokens) == {"accessToken", "idToken", "refreshToken", "expiresIn"}
    assert tokens["expiresIn"] == 3600
    for name in ("accessToken", "idToken"):
        assert tokens[name].count(".") == 2
        payload = _payload(tokens[name])
        assert payload["sub"] == DEMO_TENANT.user_id
        assert payload["email"] == DEMO_TENANT.email
        assert isinstance(payload["iat"], int) and isinstance(payload["exp"], int)
        assert 3600 <= payload["exp"] - payload["iat"] <= 3601


def test_login_failures(http) -> None:
    assert_error(http.post("/api/auth", json={"username": DEMO_TENANT.email, "password": "nope"}),
                 401, "no_valid_credentials")
    assert_error(http.post("/api/auth", json={"username": "who@example.com", "password": "x"}),
                 401, "no_valid_credentials")
    assert_error(http.post("/api/auth", json={}), 401, "no_valid_credentials")


def test_expires_in_follows_config(lg_sandbox, http) -> None:
    lg_sandbox.config(token_ttl_s=120)
    tokens = lg_sandbox.login()
    assert tokens["expiresIn"] == 120
    payload = _payload(tokens["accessToken"])
    assert 120 <= int(payload["exp"]) - int(payload["iat"]) <= 121


def test_token_expires_mid_test_then_refresh_works(lg_sandbox, http) -> None:
    lg_sandbox.config(token_ttl_s=1)
    tokens = lg_sandbox.login()
    headers = {"Authorization": f"Bearer {tokens['accessToken']}"}
    assert http.get("/api/company", headers=headers).status_code == 200
    time.sleep(max(0.0, int(_payload(tokens["accessToken"])["exp"]) - time.time()) + 0.05)
    assert_error(http.get("/api/company", headers=headers), 401, "token_expired")

    r = http.post("/api/auth/refresh", json={"refreshToken": tokens["refreshToken"]})
    assert r.status_code == 200
    fresh = r.json()["tokens"]
    assert set(fresh) == {"accessToken", "idToken", "refreshToken", "expiresIn"}
    assert fresh["accessToken"] != tokens["accessToken"]
    r = http.get("/api/company", headers={"Authorization": f"Bearer {fresh['accessToken']}"})
    assert r.status_code == 200


def test_admin_clock_expires_tokens_without_sleeping(lg_sandbox, http) -> None:
    headers = lg_sandbox.bearer()
    assert http.get("/api/company", headers=headers).status_code == 200
    lg_sandbox.admin("POST", "clock", {"advance": 3601})
    assert_error(http.get("/api/company", headers=headers), 401, "token_expired")


def test_refresh_with_unknown_token_is_401(http) -> None:
    r = http.post("/api/auth/refresh", json={"refreshToken": "lgr_not-a-token"})
    assert r.status_code == 401
    assert r.json()["success"] is False


def test_bad_bearer_tokens(lg_sandbox, http) -> None:
    good = lg_sandbox.login()["accessToken"]
    head, payload, _sig = good.split(".")
    forged_payload = base64.urlsafe_b64encode(
        json.dumps({**_payload(good), "sub": OTHER_TENANT.user_id}).encode()
    ).decode().rstrip("=")
    for token in ("garbage", "a.b.c", f"{head}.{payload}.AAAA", f"{head}.{forged_payload}.{_sig}"):
        assert_error(http.get("/api/clients", headers={"Authorization": f"Bearer {token}"}), 401, "no_valid_tokens")
    assert_error(http.get("/api/clients"), 401, "no_valid_credentials")
    assert_error(http.get("/api/clients", headers={"Authorization": "Basic abc"}), 401, "no_valid_credentials")


def test_id_token_is_accepted_as_bearer(lg_sandbox, http) -> None:
    tokens = lg_sandbox.login()
    r = http.get("/api/company", headers={"Authorization": f"Bearer {tokens['idToken']}"})
    assert r.status_code == 200


def test_api_key_only_on_bulk_lists_and_bearer_everywhere_else(lg_sandbox, http, demo) -> None:
    key = lg_sandbox.api_key_headers()
    assert_error(http.get("/api/clients", headers=key), 401, "no_valid_credentials")
    params = {"companyId": DEMO_TENANT.company_id}
    assert_error(http.get("/api/enrich-leads/list", params=params, headers=demo), 401, "no_valid_credentials")
    assert http.get("/api/enrich-leads/list", params=params, headers=key).status_code == 200


def test_company(lg_sandbox, http, demo, other) -> None:
    r = http.get("/api/company", headers=demo)
    assert r.json() == {"success": True, "company": {"company_id": "company-demo", "name": "Demo Company",
                                                     "owner": DEMO_TENANT.user_id}}
    assert http.get("/api/company", headers=other).json()["company"]["company_id"] == "company-other"
