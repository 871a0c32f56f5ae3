import io
import json

from etl import log
from etl.report import RunReport, decide_exit_code


def test_redaction_masks_known_secrets_jwts_and_secret_keys() -> None:
    log.register_secret("hunter2-password")
    out = io.StringIO()
    log.configure(json=True, stream=out)
    log.get_logger().info(
        "login hunter2-password",
        password="hunter2-password",
        api_key="lgk_abcdef",
        header="Bearer eyJhbGciOi.eyJzdWIiOiJ1In0.c2ln",
        email="a@b.c",
    )
    line = json.loads(out.getvalue())
    text = out.getvalue()
    assert "hunter2" not in text and "lgk_abcdef" not in text and "eyJzdWIi" not in text
    assert line["email"] == "a@b.c"


def test_exit_codes() -> None:
    r = RunReport(dry_run=False, client_id="c", mode="insert", source="csv")
    r.counts.valid, r.counts.duplicates, r.counts.confirmed = 10, 2, 8
    assert decide_exit_code(r, strict=False) == 0
    r.counts.rejected = 1
    assert decide_exit_code(r, strict=False) == 0
    assert decide_exit_code(r, strict=True) == 1
    r.counts.missing = 1
    assert decide_exit_code(r, strict=False) == 1
    r.counts.missing, r.counts.confirmed = 0, 7
    assert decide_exit_code(r, strict=False) == 1
    dry = RunReport(dry_run=True, client_id="c", mode="insert", source="csv")
    assert decide_exit_code(dry, strict=False) == 0


def test_logging_follows_sys_stderr_when_a_host_swaps_and_closes_it(monkeypatch) -> None:
    # CliRunner, pytest and Dagster swap sys.stderr; a logger bound to the stream current at configure
    # time failed the next warning with "I/O operation on closed file" once that stream was closed.
    first = io.StringIO()
    monkeypatch.setattr("sys.stderr", first)
    log.configure(json=True)
    log.get_logger().warning("one")
    first.close()
    second = io.StringIO()
    monkeypatch.setattr("sys.stderr", second)
    log.get_logger(stage="load").warning("two")
    assert json.loads(second.getvalue())["event"] == "two"
