import polars as pl

from etl.load.plan import action_counts, plan, target_frame
from etl.state import LEDGER_COLUMNS

TARGET = target_frame(
    [
        {"id": "lead-old", "email": "A@x.com", "firstName": "A", "title": "CTO", "createdAt": "2026-01-01T00:00:00Z"},
        {"id": "lead-new", "email": "a@x.com", "firstName": "Z", "createdAt": "2026-02-01T00:00:00Z"},
        {"id": "lead-c", "email": "c@x.com", "firstName": "C", "createdAt": "2026-01-01T00:00:00Z"},
    ]
)


def leads(**over: list[str | None]) -> pl.DataFrame:
    base: dict[str, list] = {
        "_row": [1, 2, 3],
        "_key": ["a@x.com", "b@x.com", "c@x.com"],
        "client_id": ["acme"] * 3,
        "email": ["a@x.com", "b@x.com", "c@x.com"],
        "firstName": ["A", "B", "C"],
        "title": ["CTO", None, "CEO"],
    }
    base.update(over)
    return pl.DataFrame(base)


def no_ledger() -> pl.DataFrame:
    return pl.DataFrame(schema=LEDGER_COLUMNS)


def test_target_keeps_the_oldest_lead_per_email() -> None:
    assert TARGET.filter(pl.col("_key") == "a@x.com")["_tid"].to_list() == ["lead-old"]


def test_insert_never_touches_existing_leads() -> None:
    p = plan(leads(), TARGET, no_ledger(), "insert")
    assert dict(zip(p["_key"], p["_action"], strict=True)) == {
        "a@x.com": "unchanged",
        "b@x.com": "create",
        "c@x.com": "unchanged",
    }


def test_upsert_sends_only_changed_fields_and_ignores_email_case() -> None:
    p = plan(leads(), TARGET, no_ledger(), "upsert")
    rows = {r["_key"]: r for r in p.to_dicts()}
    assert rows["a@x.com"]["_action"] == "unchanged"  # same values; the e-mail differs only in case
    assert rows["c@x.com"]["_action"] == "update"
    assert rows["c@x.com"]["_changed"] == ["title"]
    assert action_counts(p) == {"create": 1, "update": 1, "unchanged": 1}


def test_null_source_values_never_clear_target_fields() -> None:
    p = plan(leads(title=[None, None, None]), TARGET, no_ledger(), "upsert")
    assert p.filter(pl.col("_key") == "a@x.com")["_action"].item() == "unchanged"


def test_unchanged_source_does_not_clobber_edits_made_in_the_target() -> None:
    first = plan(leads(), TARGET, no_ledger(), "upsert")
    ledger = first.select("_key", pl.lit("updated").alias("_l_status"), pl.col("_tid").alias("_l_lead_id"),
                          pl.col("_hash").alias("_l_hash"))
    again = plan(leads(), TARGET, ledger, "upsert")  # target still differs for c@, source unchanged
    assert again.filter(pl.col("_key") == "c@x.com")["_action"].item() == "unchanged"


def test_lead_recorded_as_created_but_absent_is_created_again() -> None:
    ledger = pl.DataFrame({"_key": ["b@x.com"], "_l_status": ["created"], "_l_lead_id": ["lead-b"], "_l_hash": ["h"]})
    p = plan(leads(), TARGET, ledger, "insert")
    assert p.filter(pl.col("_key") == "b@x.com")["_action"].item() == "create"


def test_hash_is_deterministic_and_sensitive() -> None:
    a = plan(leads(), TARGET, no_ledger(), "insert")["_hash"]
    b = plan(leads(), TARGET, no_ledger(), "insert")["_hash"]
    c = plan(leads(title=["CTO", "X", "CEO"]), TARGET, no_ledger(), "insert")["_hash"]
    assert a.to_list() == b.to_list()
    assert a[1] != c[1] and a[0] == c[0]
