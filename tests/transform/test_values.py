"""Values as exports write them (issue 11, part 3): text prefixes, several e-mails in a cell,
URL schemes, phones to E.164, the company's domain from its website.

Expected values are written out by hand (from the libraries' documented behaviour), not computed
by the code under test."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import phonenumbers
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from etl.errors import UsageError
from etl.mapping import Mapping
from etl.transform import transform
from etl.transform import values as v
from etl.transform.values import phone_e164, region_option, registered_domain, resolve_region

CSV = Mapping.builtin("csv")


def frame(**cols: list[str | None]) -> pl.DataFrame:
    n = len(next(iter(cols.values())))
    return pl.DataFrame({"_row": list(range(1, n + 1)), **cols}, schema_overrides=dict.fromkeys(cols, pl.String))


def lead(df: pl.DataFrame, row: int = 1, region: str | None = None) -> dict[str, Any]:
    leads = transform(df, CSV, "acme", default_region=region).leads
    return leads.filter(pl.col("_row") == row).row(0, named=True)


# --- the spreadsheet text prefix, blanks, mailto: ----------------------------------------------


def test_apollo_phone_loses_its_text_prefix() -> None:
    # Apollo writes phones as text: '+1 415 555 0100 (issue 11)
    got = lead(frame(email=["a@x.io"], phone=["'+1 415 555 0100"]))
    assert got["phoneNumber"] == "+14155550100"


def test_phone_without_region_keeps_its_value_trimmed() -> None:
    got = lead(frame(email=["a@x.io"], phone=["  '(415) 555-0100 "]))
    assert got["phoneNumber"] == "(415) 555-0100"


@pytest.mark.parametrize(
    ("cell", "stored"),
    [("'=HYPERLINK(1)", "=HYPERLINK(1)"), ("'+ Sales", "+ Sales"), ("'-", "-"), ("'@team", "@team"),
     ("'t Hooft", "'t Hooft"), ("  'CTO ", "'CTO"), ("''=x", "''=x")],
)  # fmt: skip
def test_text_prefix_goes_only_before_a_formula_character(cell: str, stored: str) -> None:
    # Our own CSV export neutralises formulas with a `'`; a re-import gets the value back.
    assert lead(frame(email=["a@x.io"], title=[cell]))["title"] == stored


def test_a_lone_text_prefix_in_a_phone_column_is_empty_and_falls_back() -> None:
    got = lead(frame(email=["a@x.io"], phone=["'"], mobile=["+49 30 901820"]))
    assert got["phoneNumber"] == "+4930901820"


# --- several e-mails in one cell ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "email", "more"),
    [
        ("a@x.com; b@y.com", "a@x.com", "b@y.com"),
        ("A@X.com,b@y.com, C@z.io", "a@x.com", "b@y.com, c@z.io"),
        ("a@x.com b@y.com", "a@x.com", "b@y.com"),
        ("mailto:a@x.com;mailto:b@y.com", "a@x.com", "b@y.com"),
        ("<a@x.com>; <b@y.com>", "a@x.com", "b@y.com"),
        ("a@x.com;", "a@x.com", None),
        ("a@x.com; A@x.com", "a@x.com", None),
    ],
)
def test_several_emails_first_wins_the_rest_go_to_notes(cell: str, email: str, more: str | None) -> None:
    got = lead(frame(email=[cell], notes=["met at SaaStr"]))
    assert got["email"] == email
    if more is None:
        assert got["notes"] == "met at SaaStr"
    else:
        assert got["notes"] == f"met at SaaStr\n\n**Other e-mails:** {more}"


def test_a_cell_with_a_piece_that_is_no_address_is_rejected_as_written() -> None:
    r = transform(frame(email=["john smith@x.com"]), CSV, "acme")
    assert r.leads.height == 0
    assert r.rejects["_reason"].to_list() == ['not a valid e-mail address: "john smith@x.com"']


@settings(max_examples=150, deadline=None)
@given(st.lists(st.from_regex(r"[a-z]{1,6}@[a-z]{1,6}\.(io|com)", fullmatch=True), min_size=1, max_size=4),
       st.sampled_from(["; ", ",", " ", " , ", ";\n"]))  # fmt: skip
def test_every_address_of_a_cell_is_kept(addresses: list[str], sep: str) -> None:
    got = lead(frame(email=[sep.join(addresses)]))
    kept = [got["email"]]
    if got["notes"]:
        kept += got["notes"].removeprefix("**Other e-mails:** ").split(", ")
    assert kept == list(dict.fromkeys(addresses))


# --- URLs and the company's domain -------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "stored"),
    [("www.acme.io", "https://www.acme.io"), ("acme.io/about", "https://acme.io/about"),
     ("//acme.io", "https://acme.io"), ("http://acme.io", "http://acme.io"), ("HTTPS://Acme.io", "HTTPS://Acme.io"),
     ("N/A", "N/A"), ("Acme Inc.", "Acme Inc.")],
)  # fmt: skip
def test_urls_gain_a_scheme(cell: str, stored: str) -> None:
    got = lead(frame(email=["a@x.io"], website=[cell], linkedin=["linkedin.com/in/jo"]))
    assert got["companyUrl"] == stored
    assert got["linkedinUrl"] == "https://linkedin.com/in/jo"


@pytest.mark.parametrize(
    ("url", "domain"),
    [("http://www.acme.io", "acme.io"), ("https://shop.bbc.co.uk/x?y=1", "bbc.co.uk"), ("acme.com.au", "acme.com.au"),
     ("https://WWW.Acme.IO:8443/", "acme.io"), ("https://acme.github.io", "acme.github.io"),
     ("https://www.linkedin.com/company/acme", None), ("192.168.0.1", None), ("localhost", None), ("acme", None)],
)  # fmt: skip
def test_registered_domain(url: str, domain: str | None) -> None:
    assert registered_domain(url) == domain


def test_company_domain_derived_only_where_empty() -> None:
    df = frame(email=["a@x.io", "b@x.io", "c@x.io"], website=["http://www.acme.io", "beta.co.uk", None],
               domain=[None, "given.example", None])  # fmt: skip
    leads = transform(df, CSV, "acme").leads
    assert leads["companyDomain"].to_list() == ["acme.io", "given.example", None]


def test_the_public_suffix_list_is_read_without_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_a: object, **_k: object) -> None:
        raise AssertionError("network used")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(v, "_TLD", [])  # a fresh extractor, built with sockets refused
    assert registered_domain("https://news.bbc.co.uk") == "bbc.co.uk"
    assert registered_domain("https://acme.github.io") == "acme.github.io"


# --- phones ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "code"),
    [("United States", "US"), ("USA", "US"), ("us", "US"), ("U.S.A.", "US"), ("Germany", "DE"), ("DE", "DE"),
     ("DEU", "DE"), ("Deutschland", "DE"), ("United Kingdom", "GB"), ("UK", "GB"), ("the Netherlands", "NL"),
     (" france ", "FR"), ("Atlantis", None), ("", None), ("Antarctica", None)],
)  # fmt: skip
def test_resolve_region(name: str, code: str | None) -> None:
    assert resolve_region(name) == code


def test_default_region_option() -> None:
    assert region_option("us") == "US" and region_option("Germany") == "DE" and region_option(None) is None
    with pytest.raises(UsageError, match="--default-region 'Atlantis'"):
        region_option("Atlantis")


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [("(415) 555-0100", "US", "+14155550100"), ("415.555.0100 x23", "US", "+14155550100 ext. 23"),
     ("+44 (0) 20 7946 0000", None, "+442079460000"), ("030 901820", "DE", "+4930901820"),
     ("0171 1234567", "DE", "+491711234567"), ("030 1234567", "US", "030 1234567"), ("12", "US", "12"),
     ("call me", "US", "call me"), ("(415) 555-0100", None, "(415) 555-0100")],
)  # fmt: skip
def test_phone_e164(raw: str, region: str | None, e164: str) -> None:
    assert phone_e164(raw, region) == e164


def test_phone_region_from_the_country_column_then_the_default() -> None:
    df = frame(email=["a@x.io", "b@x.io", "c@x.io", "d@x.io"],
               phone=["030 901820", "(415) 555-0100", "020 7946 0000", "+33 1 42 68 53 00"],
               country=["Germany", "", "UK", "United States"])  # fmt: skip
    leads = transform(df, CSV, "acme", default_region="US").leads
    assert leads["phoneNumber"].to_list() == ["+4930901820", "+14155550100", "+442079460000", "+33142685300"]
    no_default = transform(df, CSV, "acme").leads
    assert no_default["phoneNumber"].to_list() == ["+4930901820", "(415) 555-0100", "+442079460000", "+33142685300"]


def test_unique_values_only_and_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = v.phone_e164

    def counting(raw: str, region: str | None) -> str:
        calls.append(raw)
        return real(raw, region)

    monkeypatch.setattr(v, "phone_e164", counting)
    monkeypatch.setattr(v, "_PHONES", v._Cache())
    # German numbers: the North American fast path does not carry them
    df = frame(email=[f"p{i}@x.io" for i in range(300)], phone=["030 901820", "0171 1234567", None] * 100)
    leads = transform(df, CSV, "acme", default_region="DE").leads
    assert sorted(calls) == ["0171 1234567", "030 901820"]
    assert leads["phoneNumber"].drop_nulls().unique().sort().to_list() == ["+491711234567", "+4930901820"]
    transform(df, CSV, "acme", default_region="DE")  # a second batch with the same numbers: from the cache
    assert len(calls) == 2


@settings(max_examples=200, deadline=None)
@given(st.from_regex(r"[+']?[0-9 ().\-]{3,18}", fullmatch=True), st.sampled_from([None, "US", "DE", "GB", "FR"]))
def test_phone_normalisation_is_idempotent(raw: str, region: str | None) -> None:
    once = phone_e164(raw, region)
    assert phone_e164(once, region) == once
    if once != raw:  # only ever a number phonenumbers itself calls valid
        assert phonenumbers.is_valid_number(phonenumbers.parse(once.split(" ext. ")[0], None))


# --- the North American fast path equals phonenumbers --------------------------------------------

_NANP_LIKE = r"(\+1|1|\+ 1|\+44)?[ .\-]{0,2}\(?[0-9]{3}\)?[ .\-]{0,2}[0-9]{3}[ .\-/]{0,2}[0-9]{4}( ?x[0-9]{1,3})?"


@settings(max_examples=150, deadline=None)
@given(st.lists(st.from_regex(_NANP_LIKE, fullmatch=True), min_size=1, max_size=10),
       st.sampled_from([None, "US", "CA", "DE", "GB", "AG"]))  # fmt: skip
def test_nanp_fast_path_equals_phonenumbers(raws: list[str], region: str | None) -> None:
    fast = v.nanp_fast(pl.Series(raws), pl.Series([region] * len(raws), dtype=pl.String)).to_list()
    for raw, got in zip(raws, fast, strict=True):
        if got is not None:  # where it answers, it answers as phonenumbers does
            assert got == phone_e164(raw, region), raw


def test_nanp_fast_path_on_random_numbers_equals_phonenumbers() -> None:
    import random

    rng = random.Random(11)
    numbers = [f"{rng.randint(2000000000, 9999999999)}" for _ in range(3000)]
    raws = [f"({n[:3]}) {n[3:6]}-{n[6:]}" if i % 2 else f"+1 {n[:3]} {n[3:6]} {n[6:]}" for i, n in enumerate(numbers)]
    fast = v.nanp_fast(pl.Series(raws), pl.Series(["US"] * len(raws))).to_list()
    slow = [phone_e164(raw, "US") for raw in raws]
    answered = [(f, s) for f, s in zip(fast, slow, strict=True) if f is not None]
    assert len(answered) > 1000  # the fast path carries most valid US numbers
    assert all(f == s for f, s in answered)
    # and it misses no number that is valid by the US rules alone
    missed = [s for f, s in zip(fast, slow, strict=True) if f is None and s.startswith("+1")]
    assert all(not phonenumbers.is_valid_number_for_region(phonenumbers.parse(s), "US") for s in missed)


def test_job_file_default_region(tmp_path: Path) -> None:
    from etl.errors import ConfigError
    from etl.jobs import JobSpec

    job = tmp_path / "job.toml"
    job.write_text('source = "csv"\npath = "in.csv"\nclient = "Acme"\ndefault_region = "Germany"\n')
    assert JobSpec.load(job).default_region == "DE"
    job.write_text('source = "csv"\npath = "in.csv"\nclient = "Acme"\ndefault_region = "Atlantis"\n')
    with pytest.raises(ConfigError, match="default_region"):
        JobSpec.load(job)


def test_cli_default_region_reads_national_numbers(lg_sandbox: Any, tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.cli_helpers import cli_env
    from tests.integration.helpers import stored

    src = tmp_path / "in.csv"
    src.write_text("email,phone\na@x.io,'(415) 555-0100\nb@x.io,030 901820\n", encoding="utf-8")
    env = cli_env(lg_sandbox.base_url, tmp_path)
    bad = subprocess.run([sys.executable, "-m", "etl", "import", "csv", str(src), "--client", "Acme",
                          "--default-region", "Atlantis"], env=env, capture_output=True, text=True)  # fmt: skip
    assert bad.returncode == 2 and "--default-region 'Atlantis'" in bad.stderr and "Traceback" not in bad.stderr
    ok = subprocess.run([sys.executable, "-m", "etl", "import", "csv", str(src), "--client", "Acme",
                         "--default-region", "US"], env=env, capture_output=True, text=True)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    phones = {lead["email"]: lead.get("phoneNumber") for lead in stored(lg_sandbox, "acme")}
    assert phones == {"a@x.io": "+14155550100", "b@x.io": "030 901820"}  # not a valid US number: as written
