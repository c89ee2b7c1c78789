"""Run the real `fastgw` command line in a subprocess (bounded in time)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

#: no CLI error path may take longer than this (it happens before any serving)
CLI_TIMEOUT = 60.0

MIN_CONFIG = """_format_version: "3.0"
services:
  - name: s
    url: http://127.0.0.1:{port}
    routes: [{{name: r, paths: ["/"]}}]
"""


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("KONG_", "FASTGW_"))}
    env.update(extra)
    return env


def fastgw(*args: str, env: dict[str, str] | None = None, timeout: float = CLI_TIMEOUT,
           cwd: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fastgw", *args], capture_output=True,
                          text=True, timeout=timeout, env=env or clean_env(), cwd=cwd)


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def write_config(tmp: Path, upstream_port: int = 9, name: str = "kong.yml") -> Path:
    p = tmp / name
    p.write_text(MIN_CONFIG.format(port=upstream_port))
    return p


def assert_one_line_error(r: subprocess.CompletedProcess, *needles: str) -> None:
    assert r.returncode != 0, r
    assert "Traceback" not in r.stderr, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("fastgw: ")]
    assert len(errors) == 1, r.stderr
    for n in needles:
        assert n in errors[0], (n, errors[0])


class Node:
    """A `fastgw run` in the foreground (Popen), stopped in `stop()`."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "fastgw", "run", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=env or clean_env(), text=True)

    def wait_port(self, port: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"fastgw exited: {self.proc.communicate()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"port {port} not open after {timeout}s")

    def stop(self, timeout: float = 30.0) -> tuple[str, str]:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        return out, err


def http_get(port: int, path: str = "/", headers: dict[str, str] | None = None,
             timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    import http.client

    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


