"""Fixtures for database mode: a real PostgreSQL server and fastgw nodes that use it.

    postgres     session scope  PostgresServer (pg_server.py), shared; skipped only when the
                                PostgreSQL binaries are missing (scripts/sysdeps.sh installs them)
    pg_factory   function scope make() -> a private, started PostgresServer (tests that kill
                                it), removed after
    database     function scope a fresh, bootstrapped database on `postgres`: its URL
    node         function scope start(url, **kw) -> a started PgNodeProcess; all stopped after,
                                logs printed when the test failed
"""
from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pg_server import PostgresServer, pg_bindir  # noqa: E402
from servers import HOST, FastgwProcess  # noqa: E402

_DB_NAMES = itertools.count(1)


def _require_pg() -> None:
    if pg_bindir() is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql; "
                    "scripts/sysdeps.sh)")
    try:
        import asyncpg  # noqa: F401
    except ImportError:
        pytest.skip("asyncpg is not installed (pip install -e .)")


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    _require_pg()
    server = PostgresServer().init().start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def pg_factory() -> Iterator[Callable[[], PostgresServer]]:
    _require_pg()
    made: list[PostgresServer] = []

    def make() -> PostgresServer:
        s = PostgresServer()
        made.append(s)
        return s.init().start()

    try:
        yield make
    finally:
        for s in made:
            s.cleanup()


def fastgw_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fastgw", *args], capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def bootstrap(url: str) -> None:
    r = fastgw_cli("migrations", "bootstrap", "--database", url)
    assert r.returncode == 0, r.stderr


@pytest.fixture
def database(postgres: PostgresServer) -> str:
    url = postgres.create_database(f"t{os.getpid()}_{next(_DB_NAMES)}")
    bootstrap(url)
    return url


class PgNodeProcess(FastgwProcess):
    """`fastgw run --database URL` (no declarative file) with its own cache file."""

    def __init__(self, url: str, cache: str | None = None, **kw: Any) -> None:
        kw.setdefault("wait_admin", True)
        super().__init__("_format_version: '3.0'\n", **kw)
        self.database_url = url
        self.cache = cache or str(self.tmpdir / "database_cache.json")

    def argv(self) -> list[str]:
        return [*self.command, "run", "--database", self.database_url,
                "--database-cache", self.cache, "--access-log", "off",
                "--listen", f"{HOST}:{self.port}", "--admin-listen", f"{HOST}:{self.admin_port}",
                "--workers", str(self.workers), *self.extra_args]


@pytest.fixture
def node(request: pytest.FixtureRequest) -> Iterator[Callable[..., PgNodeProcess]]:
    started: list[PgNodeProcess] = []

    def start(url: str, **kw: Any) -> PgNodeProcess:
        n = PgNodeProcess(url, **kw)
        started.append(n)
        return n.start()

    try:
        yield start
    finally:
        rep = getattr(request.node, "_rep_call", None)
        failed = rep is None or rep.failed
        for n in started:
            n.stop()
            if failed:
                print(f"\n--- fastgw log ({n.log_path}):\n{n.log_tail(200)}")
            n.cleanup()


# ------------------------------------------------------------------------------ HTTP helpers
def call(method: str, url: str, body: dict[str, Any] | None = None,
         timeout: float = 10) -> tuple[int, dict[str, str], Any]:
    """One request; returns (status, headers lower-cased, JSON body or None)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, headers, raw = r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        status, headers, raw = e.code, dict(e.headers), e.read()
    headers = {k.lower(): v for k, v in headers.items()}
    try:
        payload = json.loads(raw) if raw else None
    except ValueError:
        payload = raw
    return status, headers, payload


def wait_status(url: str, want: int, within: float) -> float:
    """Poll GET url until it answers `want`; returns the seconds it took (fails after
    `within`)."""
    t0 = time.monotonic()
    last = None
    while time.monotonic() - t0 < within:
        last = call("GET", url, timeout=2)[0]
        if last == want:
            return time.monotonic() - t0
        time.sleep(0.01)
    raise AssertionError(f"{url}: still {last} after {within}s (wanted {want})")
