"""The state URL is judged before any connection (pure: no server)."""

from __future__ import annotations

import pytest

from etl.errors import UsageError
from etl.state.location import CHOICES, check_state_url

URL = "postgresql://etl:Pw-Secret-9@db.internal:5432/leads"


@pytest.mark.parametrize("name", sorted(CHOICES))
def test_every_word_libpq_takes_passes_and_any_other_is_named(name: str) -> None:
    variable, valid = CHOICES[name]
    for value in valid:
        assert check_state_url(f"{URL}?{name}={value}", {}) == f"{URL}?{name}={value}"
    with pytest.raises(UsageError) as bad:
        check_state_url(f"{URL}?{name}=Bogus", {})
    message = str(bad.value)
    assert f"{name}='Bogus'" in message and ", ".join(valid) in message and "Pw-Secret-9" not in message
    with pytest.raises(UsageError, match=variable):
        check_state_url(URL, {variable: "Bogus"})
    assert check_state_url(f"{URL}?{name}={valid[0]}", {variable: "Bogus"})  # the URL's own value wins


def test_urls_libpq_takes_pass_unchanged() -> None:
    for url in (URL, "postgresql://etl@h1:5432,h2:5433/leads?target_session_attrs=read-write",
                "postgresql:///leads?host=/var/run/postgresql", "postgres://localhost/leads?sslmode=verify-full"):
        assert check_state_url(url, {}) == url
    assert check_state_url("postgresql+psycopg://localhost/leads", {}) == "postgresql://localhost/leads"
