"""A private PostgreSQL server for the tests: initdb in a temp dir, `postgres` on a loopback
port, stopped (and its directory removed) afterwards.

PostgreSQL refuses to run as root: when the tests run as root, the server runs as the
`postgres` OS user (Debian's package creates it) and its directory is chowned to it.
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from servers import HOST, free_port  # noqa: E402

#: how long initdb / startup may take on a loaded 2-core machine
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
USER = "kong"   # the database superuser initdb creates (Kong's default pg_user)


def pg_bindir() -> str | None:
    """Debian's /usr/lib/postgresql/<version>/bin (newest), or initdb on PATH."""
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                  key=lambda d: int(d.split("/")[-2]) if d.split("/")[-2].isdigit() else 0)
    for d in reversed(dirs):
        if os.access(os.path.join(d, "postgres"), os.X_OK):
            return d
    found = shutil.which("initdb")
    return os.path.dirname(found) if found else None


class PostgresServer:
    def __init__(self) -> None:
        bindir = pg_bindir()
        if bindir is None:
            raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
        self.bindir = bindir
        self.dir = Path(tempfile.mkdtemp(prefix="fastgw-pg-"))
        self.data = self.dir / "data"
        self.log_path = self.dir / "postgres.log"
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self._as: dict[str, Any] = {}
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self._as = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}

    def _run(self, *argv: str) -> None:
        subprocess.run([os.path.join(self.bindir, argv[0]), *argv[1:]], check=True,
                       cwd=self.dir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       timeout=START_TIMEOUT, **self._as)

    def init(self) -> "PostgresServer":
        self._run("initdb", "-D", str(self.data), "-U", USER, "-A", "trust", "--no-sync",
                  "-E", "UTF8", "--locale=C")
        return self

    def start(self, port: int | None = None) -> "PostgresServer":
        self.port = port or self.port or free_port()
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                [os.path.join(self.bindir, "postgres"), "-D", str(self.data),
                 "-p", str(self.port), "-k", str(self.dir), "-c", f"listen_addresses={HOST}",
                 "-c", "fsync=off", "-c", "synchronous_commit=off",
                 "-c", "full_page_writes=off", "-c", "max_connections=100"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=self.dir,
                start_new_session=True, **self._as)
        finally:
            log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited {self.proc.returncode}:\n"
                                   f"{self.log_path.read_text(errors='replace')[-3000:]}")
            if self._accepts():
                return self
            time.sleep(0.1)
        raise RuntimeError(f"postgres did not start on {HOST}:{self.port}")

    def _accepts(self) -> bool:
        # a TCP accept is not enough (startup still refuses logins): ask pg_isready
        r = subprocess.run([os.path.join(self.bindir, "pg_isready"), "-h", HOST, "-p",
                            str(self.port), "-U", USER, "-q"], timeout=10)
        return r.returncode == 0

    def kill(self) -> None:
        """An immediate shutdown (SIGQUIT: what a crash looks like to clients)."""
        self._signal(signal.SIGQUIT)

    def stop(self) -> None:
        self._signal(signal.SIGINT)   # fast shutdown

    def _signal(self, sig: int) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(STOP_TIMEOUT)
        # the port is free again before anyone reconnects (a restart reuses it)
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex((HOST, self.port)) != 0:
                    break
            time.sleep(0.05)

    def url(self, database: str = "postgres") -> str:
        return f"postgres://{USER}@{HOST}:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        subprocess.run([os.path.join(self.bindir, "psql"), "-h", HOST, "-p", str(self.port),
                        "-U", USER, "-d", "postgres", "-q", "-v", "ON_ERROR_STOP=1", "-c",
                        f'CREATE DATABASE "{name}"'], check=True, timeout=30,
                       stdout=subprocess.DEVNULL)
        return self.url(name)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
