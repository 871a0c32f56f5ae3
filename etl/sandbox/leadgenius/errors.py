"""Typed errors of the LeadGenius sandbox store; the HTTP layer maps each to a status and error body.

Every error carries what the SPEC Part A error body needs: `error`, `errorType`, `details`,
`recommendation`, plus the HTTP status the real service answers with.
"""

from __future__ import annotations

from typing import Any


class SandboxError(Exception):
    """An API error answer: status + the SPEC error body."""

    status: int = 500
    error_type: str = "internal_error"
    recommendation: str = "Retry with exponential backoff."

    def __init__(self, error: str, *, details: str = "", recommendation: str | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.details = details
        if recommendation is not None:
            self.recommendation = recommendation

    def body(self) -> dict[str, Any]:
        """The JSON error body every LeadGenius error uses."""
        return {
            "success": False,
            "error": self.error,
            "errorType": self.error_type,
            "details": self.details,
            "recommendation": self.recommendation,
        }


class MissingField(SandboxError):
    status = 400
    error_type = "missing_required_field"
    recommendation = "Add the missing field to the request."


class InvalidFormat(SandboxError):
    status = 400
    error_type = "invalid_format"
    recommendation = "Validate the request payload."


class InvalidValue(SandboxError):
    status = 400
    error_type = "invalid_value"
    recommendation = "Use a value inside the documented range."


class NoValidCredentials(SandboxError):
    status = 401
    error_type = "no_valid_credentials"
    recommendation = "Authenticate with POST /api/auth, or check the API key and x-user-id."


class TokenExpired(SandboxError):
    status = 401
    error_type = "token_expired"
    recommendation = "Refresh the token with POST /api/auth/refresh and retry once."


class NoValidTokens(SandboxError):
    status = 401
    error_type = "no_valid_tokens"
    recommendation = "Authenticate again with POST /api/auth."


class InsufficientPermissions(SandboxError):
    status = 403
    error_type = "insufficient_permissions"
    recommendation = "Use the companyId of the API key's owner."


class OwnerMismatch(SandboxError):
    status = 403
    error_type = "owner_mismatch"
    recommendation = "Send the x-user-id of the API key's owner."


class NotFound(SandboxError):
    status = 404
    error_type = "not_found"
    recommendation = "Verify the ID or slug is correct."


class AlreadyExists(SandboxError):
    status = 409
    error_type = "already_exists"
    recommendation = "Check for existing records; reuse the existing client."


class RateLimited(SandboxError):
    status = 429
    error_type = "rate_limit_exceeded"
    recommendation = "Implement exponential backoff; honour Retry-After."


class InternalError(SandboxError):
    status = 500
    error_type = "internal_error"


class PurgeTimeout(SandboxError):
    """`DELETE /api/clients?purge=true` on a client with more than 1,000 leads (seed 002)."""

    status = 504
    error_type = "internal_error"
    recommendation = "Delete the leads first in batches of 50 IDs, then delete the client."


class QuirkError(InternalError):
    """A 500 the real service answers for a documented quirk; `quirk` names it in the stats."""

    def __init__(self, quirk: str, details: str) -> None:
        super().__init__("Internal server error", details=details)
        self.quirk = quirk
