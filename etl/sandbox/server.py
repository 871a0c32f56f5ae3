"""Serve an ASGI app with uvicorn on loopback, in a background thread (tests, bench, demo)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass
class RunningServer:
    base_url: str
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def start_in_thread(app: Any, *, host: str = "127.0.0.1", port: int | None = None) -> RunningServer:
    """Start `app` and return once it accepts connections."""
    port = port or free_port(host)
    # An app that sends its own Date header (the HubSpot sandbox: its clock may be offset) must not
    # get uvicorn's second one.
    own_date = bool(getattr(getattr(app, "state", None), "sends_date", False))
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", access_log=False, lifespan="off", backlog=4096,
        date_header=not own_date,
    )
    server = uvicorn.Server(config)
    # uvicorn installs signal handlers only on the main thread: a server in a thread leaves them alone.
    thread = threading.Thread(target=server.run, name=f"sandbox-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"sandbox did not start on {host}:{port}")
        time.sleep(0.01)
    return RunningServer(base_url=f"http://{host}:{port}", server=server, thread=thread)


@contextmanager
def serving(app: Any, *, host: str = "127.0.0.1", port: int | None = None) -> Iterator[RunningServer]:
    running = start_in_thread(app, host=host, port=port)
    try:
        yield running
    finally:
        running.stop()
