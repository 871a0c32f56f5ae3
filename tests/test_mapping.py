"""Mappings: built-ins load, header normalisation, clear ConfigErrors for user mistakes."""

from __future__ import annotations

from pathlib import Path

import pytest

from etl.errors import ConfigError
from etl.fields import LEAD_FIELD_SET
from etl.mapping import Mapping, builtin_names, normalise_header


@pytest.mark.parametrize("name", builtin_names())
def test_builtins_load_and_only_name_lead_fields(name: str) -> None:
    m = Mapping.builtin(name)
    assert m.name == name
    assert set(m.fields) <= LEAD_FIELD_SET and "phone" not in m.fields
    assert "email" in m.fields
    again = Mapping.from_dict(m.to_dict())
    assert again == m


@pytest.mark.parametrize("header", ["First Name", "first_name", "firstName", "FIRST-NAME", " first name "])
def test_header_normalisation(header: str) -> None:
    assert normalise_header(header) == "firstname"


def test_ordered_fallbacks_resolve_in_alias_then_file_order() -> None:
    m = Mapping.builtin("csv")
    cols = ["Mobile Phone", "Phone", "E-mail"]
    assert m.source_columns(cols, m.fields["phoneNumber"]) == ["Phone", "Mobile Phone"]
    assert m.source_columns(cols, m.fields["email"]) == ["E-mail"]


def test_unknown_builtin() -> None:
    with pytest.raises(ConfigError, match="no built-in mapping named 'nope'"):
        Mapping.builtin("nope")


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[fields\nemail = 'x'", "not valid TOML"),
        ("[fields]\nphone = 'Phone'\nemail = 'Email'", "'phone'.*not a LeadGenius lead field.*phoneNumber"),
        ("[fields]\nemail = 'Email'\nmobile = 'Mobile'", "'mobile'.*not a LeadGenius lead field"),
        ("[fields]\nemail = 'Email'\nclient_id = 'Client'", "cannot set 'client_id'"),
        ("[fields]\nfirstName = 'First'", "must map 'email'"),
        ("[fields]\nemail = []", "non-empty list"),
        ("[fields]\nemail = 3", "column name"),
        ("[fields]\nemail = 'Email'\n[constants]\nsource = ''", "non-empty string"),
        ("[fields]\nemail = 'Email'\n[constants]\nphone = '1'", "not a LeadGenius lead field"),
        ("[fields]\nemail = 'Email'\n[[notes]]\nlabel = 'x'", "needs a 'column'"),
        ("[fields]\nemail = 'Email'\n[ai_notes]\nscore_pct = 'x'", "unknown key 'score_pct'"),
        ("feilds = 1\n[fields]\nemail = 'Email'", "unknown top-level key"),
    ],
)
def test_config_errors_are_one_clear_line(tmp_path: Path, toml: str, message: str) -> None:
    path = tmp_path / "m.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=message) as err:
        Mapping.load(path)
    assert "\n" not in str(err.value)


def test_missing_mapping_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        Mapping.load(tmp_path / "none.toml")


def test_user_mapping_without_code(tmp_path: Path) -> None:
    path = tmp_path / "crm.toml"
    path.write_text(
        'name = "crm"\n[fields]\nemail = ["Work Email", "Personal Email"]\nphoneNumber = "Direct Dial"\n'
        '[constants]\nstatus = "new"\n[[notes]]\ncolumn = "Territory"\n'
    )
    m = Mapping.load(path)
    assert m.fields["email"] == ("Work Email", "Personal Email")
    assert m.constants == {"status": "new"}
    assert m.notes[0].label == "Territory"
    with pytest.raises(ConfigError, match="finds no e-mail column"):
        m.check_columns(["Name", "Phone"])
