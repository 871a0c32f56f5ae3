"""`leadgenius-etl import <source>` for every registry entry that declares its command.

A source says what its command takes (`etl.sources.SourceCommand`: a help text and typed
`SourceOption`s); this module turns that into a typer command with `--client` and the common
options (`@import_options`), builds the `JobSpec` a job file would give, and runs it like `sync`
does (one routine, one mark, one lock). A fifth source therefore needs no code here.
"""

from __future__ import annotations

import inspect
from dataclasses import fields
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from etl.cli.app import handle_errors
from etl.cli.common import ImportCommon, ProgressBar, finish, import_options, run_async, setup_logging
from etl.config import Settings
from etl.errors import UsageError
from etl.jobs import JobSpec, default_job_name, run_spec
from etl.sources import SOURCES, SourceKind, SourceOption
from etl.state import open_state

_SPEC_FIELDS = frozenset(f.name for f in fields(JobSpec))
ClientOpt = Annotated[str, typer.Option("--client", help="Client name or slug (created if missing).")]


class SourceCommands(TyperGroup):
    """The `import` group: its hand-written commands plus one per registry entry with a `command`.

    typer builds the group each time the app runs, so a source registered before that (a plugin,
    a test) has its command too."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, kind in SOURCES.items():
            if kind.command is not None and name not in self.commands:
                self.add_command(source_command(kind), name)


def option_parameter(option: SourceOption) -> inspect.Parameter:
    """A `SourceOption` as the keyword parameter typer reads: `Annotated[type | None, typer.Option(...)]`."""
    extra: dict[str, Any] = {"min": option.min, "max": option.max} if option.type is int else {}
    typed = typer.Option(option.flag, help=option.help, envvar=option.envvar, metavar=option.metavar, **extra)
    if option.type is bool:
        return inspect.Parameter(option.name, inspect.Parameter.KEYWORD_ONLY,
                                 annotation=Annotated[bool, typed], default=False)
    return inspect.Parameter(option.name, inspect.Parameter.KEYWORD_ONLY,
                             annotation=Annotated[option.type | None, typed], default=None)


def source_command(kind: SourceKind) -> TyperCommand:
    """The click command `import <kind.name>` for a source that declares its command."""
    assert kind.command is not None
    declared = kind.command

    def command(client: str, *, common: ImportCommon, **values: Any) -> None:
        run_source_command(kind, client, common, values)

    params = [inspect.Parameter("client", inspect.Parameter.KEYWORD_ONLY, annotation=ClientOpt),
              *(option_parameter(o) for o in declared.options)]
    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params} | {"common": ImportCommon}
    single = typer.Typer(add_completion=False)
    single.command(kind.name, help=declared.help)(handle_errors(import_options(command)))
    built = typer.main.get_command(single)
    assert isinstance(built, TyperCommand)  # one command and no callback: typer returns it, not a group
    return built


def run_source_command(kind: SourceKind, client: str, common: ImportCommon, values: dict[str, Any]) -> None:
    """The options given -> a JobSpec (fields it has, the rest in `params`) -> run under its lock."""
    assert kind.command is not None
    if values.get("full") and values.get("since"):
        raise UsageError("--full and --since are exclusive")
    given = {k: v for k, v in values.items() if v is not None and k != "job"}
    spec = job_from_options(
        kind.name, client, common, job=values.get("job"),
        params={k: v for k, v in given.items() if k not in _SPEC_FIELDS},
        **{k: v for k, v in given.items() if k in _SPEC_FIELDS},
    )
    spec.since_time(), spec.lookback_delta()  # a bad value fails before anything runs
    overrides = {o.name: values.get(o.name) for o in kind.command.options if o.settings}
    run_job_cmd(spec, common.settings(**overrides), common.quiet)


def job_from_options(source: str, client: str, common: ImportCommon, *, job: str | None,
                     **source_keys: object) -> JobSpec:
    """A JobSpec for an import given on the command line."""
    from etl.transform.values import region_option

    return JobSpec(
        name=job or default_job_name(source, client), source=source, client=client,
        mode=common.options(client).mode, mapping=common.mapping, rate=common.rate,
        concurrency=common.concurrency, report=common.report, rejects=common.rejects,
        report_html=common.report_html, strict=common.strict, dry_run=common.dry_run, base_url=common.base_url,
        default_region=region_option(common.default_region),
        **source_keys,  # type: ignore[arg-type]
    )


def run_job_cmd(spec: JobSpec, settings: Settings, quiet: bool) -> None:
    """Run a job under its lock with a progress bar, print the summary, exit with its code."""
    setup_logging(quiet)
    with open_state(settings) as state, state.job_lock(spec.name), \
            ProgressBar(enabled=not quiet and not spec.dry_run) as bar:
        result = run_async(lambda: run_spec(spec, settings, progress=bar))
    finish(result, quiet)
