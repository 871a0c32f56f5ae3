"""Console script `leadgenius-etl` (also `python -m etl`)."""

from __future__ import annotations

import importlib

from etl.cli.app import app

# Each module registers its commands on `app` when imported.
_COMMAND_MODULES = ("etl.cli.sandbox_cmd", "etl.cli.auth_cmd", "etl.cli.import_cmd", "etl.cli.import_lg_cmd",
                    "etl.cli.export_cmd", "etl.cli.reconcile_cmd", "etl.cli.sync_cmd",
                    "etl.cli.state_cmd", "etl.cli.undo_cmd")

for _name in _COMMAND_MODULES:
    try:
        importlib.import_module(_name)
    except ModuleNotFoundError as exc:  # a command not built yet
        if exc.name != _name:
            raise


def main() -> None:
    from etl.cli.native import rust_panic_reports_hidden

    with rust_panic_reports_hidden():
        app()


__all__ = ["app", "main"]
