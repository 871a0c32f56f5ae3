"""A real PostgreSQL server for tests and benchmarks: initdb in a temp dir, on a free loopback port.

Uses the system's server binaries (Debian's `postgresql` package: /usr/lib/postgresql/<v>/bin, or
LEADGENIUS_TEST_PG_BIN). PostgreSQL refuses to run as root, and CI runs as root: there the cluster
belongs to `nobody` and the server is started through `runuser`. Clients log in over TCP with a
password (scram-sha-256), so the tests exercise the same path a user's URL does.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

USER = "etl"
PASSWORD = "pg-Secret-7f3a9c"  # long enough to be registered as a secret and masked
HOW_TO_GET_ONE = (
    "PostgreSQL server binaries not found: install them (Debian/Ubuntu: apt-get install postgresql; "
    "macOS: brew install postgresql@15) or point LEADGENIUS_TEST_PG_BIN at the directory holding initdb"
)


class PostgresUnavailable(RuntimeError):
    pass


def find_bin_dir() -> Path:
    wanted = os.environ.get("LEADGENIUS_TEST_PG_BIN")
    candidates = [wanted] if wanted else []
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(str(Path(on_path).resolve().parent))
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for c in candidates:
        if c and (Path(c) / "initdb").exists() and (Path(c) / "pg_ctl").exists():
            return Path(c)
    raise PostgresUnavailable(HOW_TO_GET_ONE)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    def __init__(self, *, durable: bool = False) -> None:
        """durable=False (tests): no fsync, commits not waited for. The benchmark uses durable=True: every
        commit waits for its WAL flush, as a production server does."""
        self.durable = durable
        self.bin = find_bin_dir()
        self.as_other_user = os.geteuid() == 0
        # Not under pytest's tmp_path: its parent is 0700 root, which `nobody` cannot enter.
        self.dir = Path(tempfile.mkdtemp(prefix="leadgenius-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.started = False

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = list(args)
        if self.as_other_user:
            cmd = ["runuser", "-u", "nobody", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120)

    def start(self) -> PostgresServer:
        if self.as_other_user:
            shutil.chown(self.dir, "nobody")
        pwfile = self.dir / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if self.as_other_user:
            shutil.chown(pwfile, "nobody")
        init = self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", USER, "--pwfile", str(pwfile),
                         "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync",
                         "--locale=C")
        if init.returncode:
            raise PostgresUnavailable(f"initdb failed: {init.stderr.strip()[-500:]}")
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=200"
        if not self.durable:
            opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        started = self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", opts,
                            "-l", str(self.dir / "server.log"), "-w", "-t", "60", "start")
        if started.returncode:
            log = (self.dir / "server.log").read_text(errors="replace")[-800:] if (self.dir / "server.log").exists() else ""
            raise PostgresUnavailable(f"pg_ctl start failed: {started.stderr.strip()[-400:]} {log}")
        self.started = True
        return self

    def stop(self) -> None:
        if self.started:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
            self.started = False
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, database: str = "postgres", *, password: bool = True, **params: str) -> str:
        auth = f"{USER}:{PASSWORD}" if password else USER
        query = "&".join(f"{k}={v}" for k, v in params.items())
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{database}" + (f"?{query}" if query else "")

    def create_database(self, name: str | None = None) -> str:
        """A fresh, empty database; returns its URL (with the password)."""
        import psycopg

        name = name or f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)
