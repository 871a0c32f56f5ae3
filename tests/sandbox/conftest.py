"""Fixtures for the sandbox tests: an HTTP client on the `lg_sandbox` and ready-made credentials."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest


@pytest.fixture
def http(lg_sandbox) -> Iterator[httpx.Client]:  # type: ignore[no-untyped-def]
    """A plain httpx client on the sandbox (no credentials)."""
    with httpx.Client(base_url=lg_sandbox.base_url, timeout=30) as client:
        yield client


@pytest.fixture
def demo(lg_sandbox) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Bearer headers of the demo tenant."""
    return lg_sandbox.bearer()


@pytest.fixture
def other(lg_sandbox) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Bearer headers of the other tenant."""
    return lg_sandbox.bearer(lg_sandbox.other_tenant)
