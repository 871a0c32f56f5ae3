"""`python -m etl.sandbox.leadgenius [--host H] [--port N] [--seed N]`: a bare sandbox (bench, scripts).

The user-facing command is `leadgenius-etl sandbox`; this entry point exists so a benchmark or
script can start the server in a subprocess without importing the whole CLI.
"""

from __future__ import annotations

import argparse

import uvicorn

from etl.sandbox.leadgenius.app import create_app
from etl.sandbox.leadgenius.store import SandboxConfig


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m etl.sandbox.leadgenius")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8787)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rate-limit", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=0)
    args = parser.parse_args()
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("this entry point serves loopback only; use `leadgenius-etl sandbox --allow-remote`")
    config = SandboxConfig(seed=args.seed, rate_limit_per_min=args.rate_limit, latency_ms=args.latency_ms)
    uvicorn.run(create_app(config), host=args.host, port=args.port, log_level="warning", access_log=False,
                backlog=4096)


if __name__ == "__main__":
    main()
