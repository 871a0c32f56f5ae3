"""`leadgenius-etl sandbox`: run the LeadGenius, HubSpot and LeadScraper API sandboxes locally."""

from __future__ import annotations

import importlib
import ipaddress
import signal
import socket
import sys
from typing import Any

import typer
import uvicorn

from etl.cli.app import app, handle_errors
from etl.errors import UsageError
from etl.sandbox.leadgenius.app import create_app
from etl.sandbox.leadgenius.faults import FAULTS_SPEC_HELP, FaultRule, parse_fault_spec
from etl.sandbox.leadgenius.store import DEMO_TENANT, OTHER_TENANT, SandboxConfig
from etl.sandbox.leadscraper.app import SANDBOX_KEY as LEADSCRAPER_KEY
from etl.sandbox.leadscraper.app import Config as LeadScraperConfig
from etl.sandbox.leadscraper.app import create_app as create_leadscraper_app
from etl.sandbox.server import RunningServer, start_in_thread

_HUBSPOT_TOKEN_NAMES = ("TOKEN", "DEMO_TOKEN", "ACCESS_TOKEN", "SANDBOX_TOKEN", "PRIVATE_APP_TOKEN")


def _exit_cleanly(signum: int, frame: object) -> None:
    sys.exit(0)


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _number(name: str, raw: str, kind: type[int] | type[float], *, low: float | None = None,
            high: float | None = None) -> Any:
    try:
        value = kind(raw)
    except ValueError:
        raise UsageError(f"{name} must be {'an integer' if kind is int else 'a number'}, not {raw!r}") from None
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"between {low:g} and {high:g}" if high is not None else f">= {low:g}"
        raise UsageError(f"{name} must be {bounds}, not {raw!r}")
    return value


def _check_port_free(host: str, port: int, option: str) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise UsageError(f"{option} {port}: cannot listen on {host}:{port} ({exc.strerror})") from None


def _start_hubspot(host: str, port: int, seed: int) -> tuple[RunningServer, str | None] | None:
    """Serve etl.sandbox.hubspot.app if another engineer's module exists; else skip silently."""
    try:
        module = importlib.import_module("etl.sandbox.hubspot.app")
    except ModuleNotFoundError as exc:
        if exc.name in ("etl.sandbox.hubspot.app", "etl.sandbox.hubspot"):
            return None
        raise
    create = getattr(module, "create_app", None)
    if create is None:
        return None
    hub_app = create(seed=seed)
    _check_port_free(host, port, "--hubspot-port")
    token = getattr(getattr(hub_app, "state", None), "token", None)
    for name in _HUBSPOT_TOKEN_NAMES:
        token = token or getattr(module, name, None)
    return start_in_thread(hub_app, host=host, port=port), (str(token) if token else None)


@app.command("sandbox", epilog=f"--faults SPEC: {FAULTS_SPEC_HELP}")
@handle_errors
def sandbox(
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on (loopback unless --allow-remote)."),
    port: str = typer.Option("8787", "--port", metavar="N", help="LeadGenius sandbox port."),
    hubspot_port: str = typer.Option("8788", "--hubspot-port", metavar="N",
                                     help="HubSpot sandbox port (served when etl.sandbox.hubspot exists)."),
    rate_limit: str = typer.Option("0", "--rate-limit", metavar="PER_MIN",
                                   help="Requests per minute per credential; 0 = unlimited."),
    latency_ms: str = typer.Option("0", "--latency-ms", metavar="N", help="Added to every /api answer."),
    token_ttl: str = typer.Option("3600", "--token-ttl", metavar="S", help="Access token lifetime, seconds."),
    faults: str = typer.Option("", "--faults", metavar="SPEC",
                               help="Injected faults, e.g. '429:0.05,500:0.02,drop:0.01' or 'next:3:503'. "
                                    "See below."),
    drop_probability: str = typer.Option("0", "--drop-probability", metavar="P",
                                         help="Share of single-lead POSTs answered 201 but not stored."),
    leadscraper_port: str = typer.Option("8789", "--leadscraper-port", metavar="N", help="LeadScraper sandbox port."),
    leadscraper_limit: str = typer.Option("1000", "--leadscraper-limit", metavar="N",
                                          help="LeadScraper requests per window per key (seed: 100/1,000/10,000 "
                                               "an hour by plan); 0 = unlimited."),
    leadscraper_window: str = typer.Option("3600", "--leadscraper-window", metavar="S",
                                           help="LeadScraper rate window in seconds (an hour; shorter to rehearse)."),
    leadscraper_leads: str = typer.Option("250", "--leadscraper-leads", metavar="N",
                                          help="Messy LeadScraper leads seeded at start."),
    db: str | None = typer.Option(None, "--db", metavar="FILE", help="SQLite file: state survives restarts."),
    seed: str = typer.Option("0", "--seed", metavar="N", help="Seed of every random choice (quirk 1, faults)."),
    allow_remote: bool = typer.Option(False, "--allow-remote", help="Allow a non-loopback --host."),
) -> None:
    """Run the LeadGenius API sandbox (SPEC Part A, quirks included) in the foreground until Ctrl-C."""
    if not _is_loopback(host) and not allow_remote:
        raise UsageError(f"--host {host} is not a loopback address; add --allow-remote to serve it anyway")
    port_n = _number("--port", port, int, low=1, high=65535)
    hub_port_n = _number("--hubspot-port", hubspot_port, int, low=1, high=65535)
    seed_n = _number("--seed", seed, int)
    config = SandboxConfig(
        rate_limit_per_min=_number("--rate-limit", rate_limit, int, low=0),
        latency_ms=_number("--latency-ms", latency_ms, float, low=0),
        token_ttl_s=_number("--token-ttl", token_ttl, int, low=1),
        drop_probability=_number("--drop-probability", drop_probability, float, low=0, high=1),
        seed=seed_n,
        db_path=db,
    )
    try:
        rules: list[FaultRule] = parse_fault_spec(faults, seed=seed_n) if faults else []
    except ValueError as exc:
        raise UsageError(f"--faults: {exc}") from None
    ls_port_n = _number("--leadscraper-port", leadscraper_port, int, low=1, high=65535)
    if len({port_n, hub_port_n, ls_port_n}) < 3:
        raise UsageError("--port, --hubspot-port and --leadscraper-port must differ")
    _check_port_free(host, port_n, "--port")
    _check_port_free(host, ls_port_n, "--leadscraper-port")
    ls_config = LeadScraperConfig(limit=_number("--leadscraper-limit", leadscraper_limit, int, low=0),
                                  window_s=_number("--leadscraper-window", leadscraper_window, float, low=1))
    ls_app = create_leadscraper_app(ls_config, seed=seed_n,
                                    leads=_number("--leadscraper-leads", leadscraper_leads, int, low=0))

    lg_app = create_app(config, faults=rules)
    hubspot = _start_hubspot(host, hub_port_n, seed_n)
    leadscraper = start_in_thread(ls_app, host=host, port=ls_port_n)
    url_host = f"[{host}]" if ":" in host else host
    base_url = f"http://{url_host}:{port_n}"
    lines = [
        f"LeadGenius sandbox: {base_url}   (admin: {base_url}/__admin/…)",
        f"  user       {DEMO_TENANT.email}",
        f"  password   {DEMO_TENANT.password}",
        f"  API key    {DEMO_TENANT.api_key}",
        f"  user id    {DEMO_TENANT.user_id}",
        f"  company id {DEMO_TENANT.company_id}",
        f"  second tenant: {OTHER_TENANT.email} / {OTHER_TENANT.password} ({OTHER_TENANT.company_id})",
        f"  rate limit {config.rate_limit_per_min or 'unlimited'}/min, latency {config.latency_ms:g} ms, "
        f"token ttl {config.token_ttl_s} s, faults {faults or 'none'}, db {db or 'in memory'}",
        f"  export LEADGENIUS_BASE_URL={base_url}",
    ]
    if hubspot is not None:
        hub_server, hub_token = hubspot
        lines.append(f"HubSpot sandbox: {hub_server.base_url}")
        if hub_token:
            lines.append(f"  token      {hub_token}")
    ls_url = f"http://{url_host}:{ls_port_n}/v1"
    lines += [
        f"LeadScraper sandbox: {ls_url}   (admin: http://{url_host}:{ls_port_n}/__admin/…)",
        f"  API key    {LEADSCRAPER_KEY}",
        f"  {ls_config.limit or 'unlimited'} requests / {ls_config.window_s:g} s, "
        f"{leadscraper_leads} messy leads seeded",
        f"  export LEADSCRAPER_BASE_URL={ls_url} LEADSCRAPER_API_KEY={LEADSCRAPER_KEY}",
    ]
    lines.append("Press Ctrl-C to stop.")
    print("\n".join(lines), flush=True)
    server = uvicorn.Server(
        uvicorn.Config(lg_app, host=host, port=port_n, log_level="warning", access_log=False, backlog=4096)
    )
    # uvicorn stops gracefully on SIGINT/SIGTERM, then re-raises the signal: make both a clean exit 0.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        if hubspot is not None:
            hubspot[0].stop()
        leadscraper.stop()
        lg_app.state.sandbox.close()
