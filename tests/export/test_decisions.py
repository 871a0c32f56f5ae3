"""The pure decisions of export and migration: format, columns, neutralisation, typing, framing."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from etl.cli.export_cmd import parse_fields
from etl.cli.import_lg_cmd import target_auth_path, target_settings
from etl.config import Settings
from etl.errors import UsageError
from etl.extract.leadgenius import MIGRATED_FIELDS, migration_frame, with_bulk_credentials
from etl.fields import EXPORT_COLUMNS, SERVER_FIELDS
from etl.sinks import (
    export_columns,
    format_for,
    neutralise_formulas,
    open_sink,
    page_frame,
    typed_frame,
)

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("a.csv", "csv"), ("a.CSV", "csv"), ("x/y.parquet", "parquet"), ("a.jsonl", "jsonl"), ("a.ndjson", "jsonl")],
)
def test_format_comes_from_the_suffix(name: str, fmt: str) -> None:
    assert format_for(Path(name)) == fmt


@pytest.mark.parametrize("name", ["a.xlsx", "a", "a.csv.gz", "a.json"])
def test_unknown_suffix_is_a_usage_error(name: str) -> None:
    with pytest.raises(UsageError) as exc:
        format_for(Path(name))
    assert exc.value.exit_code == 2


def test_columns_default_to_every_export_column_in_order() -> None:
    assert export_columns(None) == list(EXPORT_COLUMNS)
    assert export_columns([]) == list(EXPORT_COLUMNS)


def test_fields_give_exactly_those_columns_plus_id_first() -> None:
    assert export_columns(["email", "aiLeadScore"]) == ["id", "email", "aiLeadScore"]
    assert export_columns(["email", "id", "email"]) == ["id", "email"]


def test_unknown_field_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="phone"):
        export_columns(["email", "phone"])


def test_parse_fields() -> None:
    assert parse_fields(" email, firstName ,") == ["email", "firstName"]
    assert parse_fields(None) is None
    with pytest.raises(UsageError):
        parse_fields(" , ")


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+cmd", "'+cmd"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("a=1", "a=1"),
        ("'=1", "'=1"),
        ("", ""),
        (None, None),
        ("Ada", "Ada"),
    ],
)
def test_neutralise_formulas(cell: str | None, expected: str | None) -> None:
    frame = pl.DataFrame({"c": [cell]}, schema={"c": pl.String})
    assert neutralise_formulas(frame).item() == expected


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(max_size=12)), max_size=20))
def test_neutralised_cells_never_start_a_formula_and_lose_nothing(cells: list[str | None]) -> None:
    out = neutralise_formulas(pl.DataFrame({"c": cells}, schema={"c": pl.String})).get_column("c").to_list()
    for before, after in zip(cells, out, strict=True):
        if before is None:
            assert after is None
            continue
        assert not after.startswith(FORMULA_STARTS)
        assert after == ("'" + before if before.startswith(FORMULA_STARTS) else before)


def test_page_frame_is_string_columns_in_order() -> None:
    cols = ["id", "email", "aiLeadScore"]
    frame = page_frame([{"email": "a@x.io", "id": "lead-1", "aiLeadScore": 87, "extra": "x"}, {"id": "lead-2"}], cols)
    assert frame.columns == cols
    assert all(t == pl.String for t in frame.dtypes)
    assert frame.rows() == [("lead-1", "a@x.io", "87"), ("lead-2", None, None)]
    assert page_frame([], cols).schema == {c: pl.String for c in cols}


def test_timestamps_become_utc_timestamps() -> None:
    frame = pl.DataFrame({"createdAt": ["2026-02-03T10:11:12.345Z", "2026-02-03T12:11:12+02:00", None]})
    typed = typed_frame(frame)
    assert typed.schema["createdAt"] == pl.Datetime("us", "UTC")
    values = typed.get_column("createdAt").to_list()
    assert values[0].isoformat() == "2026-02-03T10:11:12.345000+00:00"
    assert values[1].isoformat() == "2026-02-03T10:11:12+00:00"
    assert values[2] is None


def test_migration_frame_drops_server_fields_and_numbers_rows_across_pages() -> None:
    lead = {f: f"v-{f}" for f in (*MIGRATED_FIELDS, *SERVER_FIELDS, "client_id")}
    frame = migration_frame([lead, lead], first_row=5001)
    assert frame.get_column("_row").to_list() == [5001, 5002]
    assert frame.columns == ["_row", *MIGRATED_FIELDS]
    assert not set(SERVER_FIELDS) & set(frame.columns) and "client_id" not in frame.columns
    assert frame.row(0, named=True)["aiColdEmail"] == "v-aiColdEmail"
    assert migration_frame([], first_row=1).height == 0


def test_bulk_credentials_come_from_the_auth_file_when_not_in_env(tmp_path: Path) -> None:
    auth = tmp_path / "auth.json"
    auth.write_text('{"api_key": "k1", "user_id": "u1", "base_url": "http://127.0.0.1:1"}')
    s = with_bulk_credentials(Settings(base_url="http://127.0.0.1:1", auth_file=auth))
    assert (s.api_key, s.user_id) == ("k1", "u1")
    other = with_bulk_credentials(Settings(base_url="http://127.0.0.1:2", auth_file=auth))
    assert other.api_key is None  # a file of another deployment is not used
    env = with_bulk_credentials(Settings(base_url="http://127.0.0.1:1", auth_file=auth, api_key="k2", user_id="u2"))
    assert (env.api_key, env.user_id) == ("k2", "u2")


def test_target_is_the_source_account_unless_overridden(tmp_path: Path) -> None:
    src = Settings(
        base_url="http://127.0.0.1:1",
        auth_file=tmp_path / "a.json",
        api_key="k",
        user_id="u",
        email="s@x.io",
        password="p",
    )
    assert target_settings(src, base_url=None, auth_file=None, env={}) is src
    other = target_settings(
        src,
        base_url=None,
        auth_file=None,
        env={"LEADGENIUS_TARGET_EMAIL": "t@x.io", "LEADGENIUS_TARGET_PASSWORD": "tp"},
    )
    assert (other.email, other.password, other.api_key, other.user_id) == ("t@x.io", "tp", None, None)
    assert other.auth_file == tmp_path / "a.target.json" != src.auth_file
    moved = target_settings(src, base_url="http://127.0.0.1:2/", auth_file=tmp_path / "t.json", env={})
    assert (moved.base_url, moved.auth_file, moved.api_key) == ("http://127.0.0.1:2", tmp_path / "t.json", None)
    with pytest.raises(UsageError):
        target_settings(src, base_url="http://example.com", auth_file=None, env={})
    assert target_auth_path(Path("/h/.leadgenius_auth.json")) == Path("/h/.leadgenius_auth.target.json")


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_interrupted_sink_leaves_nothing(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"out{suffix}"
    cols = ["id", "email"]
    with pytest.raises(KeyboardInterrupt), open_sink(out, cols) as sink:
        sink.write(page_frame([{"id": "1", "email": "a@x.io"}], cols))
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_interrupted_sink_keeps_a_previous_file(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    out.write_text("old\n")
    with pytest.raises(RuntimeError), open_sink(out, ["id"]) as sink:
        sink.write(page_frame([{"id": "1"}], ["id"]))
        raise RuntimeError("boom")
    assert out.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_parquet_streams_row_groups_and_empty_exports_have_headers(tmp_path: Path) -> None:
    from etl.sinks import ParquetSink

    cols = ["id", "createdAt"]
    sink = ParquetSink(tmp_path / "p.parquet", cols, row_group_rows=10)
    for page in range(5):
        sink.write(page_frame([{"id": f"{page}-{i}", "createdAt": "2026-01-01T00:00:00Z"} for i in range(6)], cols))
    sink.commit()
    meta = pq.ParquetFile(tmp_path / "p.parquet").metadata
    assert (meta.num_rows, meta.num_row_groups) == (30, 3)  # 12 + 12 + 6: bounded buffers, not one blob
    for suffix in (".csv", ".parquet", ".jsonl"):
        with open_sink(tmp_path / f"empty{suffix}", cols):
            pass
    assert (tmp_path / "empty.csv").read_text() == "id,createdAt\n"
    assert pl.read_parquet(tmp_path / "empty.parquet").schema == {
        "id": pl.String,
        "createdAt": pl.Datetime("us", "UTC"),
    }
    assert (tmp_path / "empty.jsonl").read_text() == ""
