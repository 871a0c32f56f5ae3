"""JWT-shaped tokens (`header.payload.signature`, base64url JSON, HMAC-SHA256) for the sandbox.

Real LeadGenius tokens are Cognito JWTs; clients only decode the payload (`sub`, `email`, `iat`,
`exp`) without checking the signature, so an HS256 token signed with a server secret is faithful
enough and lets the sandbox tell forged or unknown tokens (`no_valid_tokens`) from expired ones
(`token_expired`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import secrets
from typing import Any

_HEADER = {"alg": "HS256", "typ": "JWT", "kid": "leadgenius-sandbox"}


def b64url_encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode(payload: dict[str, Any], secret: bytes) -> str:
    """Sign `payload` as a compact JWT."""
    head = b64url_encode(json.dumps(_HEADER, separators=(",", ":")).encode())
    body = b64url_encode(json.dumps(payload, separators=(",", ":")).encode())
    signing_input = f"{head}.{body}".encode("ascii")
    sig = hmac.new(secret, signing_input, hashlib.sha256).digest()
    return f"{head}.{body}.{b64url_encode(sig)}"


def decode_unverified(token: str) -> dict[str, Any] | None:
    """The payload, without checking the signature (what a client does to read `exp`)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(b64url_decode(parts[1]))
    except (ValueError, UnicodeDecodeError):
        return None
    return payload if isinstance(payload, dict) else None


def verify(token: str, secret: bytes) -> dict[str, Any] | None:
    """The payload if the token is well-formed and signed with `secret`, else None (expiry not checked)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        sig = b64url_decode(parts[2])
    except ValueError:
        return None
    expected = hmac.new(secret, f"{parts[0]}.{parts[1]}".encode("ascii", "replace"), hashlib.sha256).digest()
    if not hmac.compare_digest(sig, expected):
        return None
    return decode_unverified(token)


def issue(*, sub: str, email: str, company_id: str, token_use: str, now: float, ttl_s: int, secret: bytes) -> str:
    """A fresh token; `exp` is rounded up so the token lives at least `ttl_s` seconds."""
    payload = {
        "sub": sub,
        "email": email,
        "iat": int(now),
        "exp": math.ceil(now + ttl_s),
        "token_use": token_use,
        "custom:company_id": company_id,
        "jti": secrets.token_hex(8),
    }
    return encode(payload, secret)
