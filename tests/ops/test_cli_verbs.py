"""Kong's verbs, each run for real: start (background, prefix, pid file), health, reload, quit,
stop, check, version."""
from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from ops_helpers import assert_one_line_error, clean_env, fastgw, free_port, http_get, \
    write_config

from fastgw import __version__

RELOADED = """_format_version: "3.0"
services:
  - name: s2
    url: http://127.0.0.1:9
    routes: [{name: r2, paths: ["/two"]}]
"""


def _pid(prefix: Path) -> int:
    return int((prefix / "pids" / "fastgw.pid").read_text())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _start(tmp_path: Path, prefix: Path, *extra: str) -> tuple[int, int]:
    port, admin = free_port(), free_port()
    r = fastgw("start", "-p", str(prefix), "-c", str(write_config(tmp_path)),
               "--listen", f"127.0.0.1:{port}", "--admin-listen", f"127.0.0.1:{admin}",
               *extra)
    assert r.returncode == 0, r.stderr
    assert "fastgw started" in r.stdout
    return port, admin


def test_start_health_reload_stop(tmp_path: Path) -> None:
    prefix = tmp_path / "prefix"
    port, admin = _start(tmp_path, prefix)
    pid = _pid(prefix)
    try:
        assert _alive(pid)
        state = json.loads((prefix / "fastgw.json").read_text())
        assert state["proxy"] == f"127.0.0.1:{port}" and state["admin"] == f"127.0.0.1:{admin}"
        r = fastgw("health", "-p", str(prefix))
        assert r.returncode == 0 and "fastgw is healthy" in r.stdout, r
        # a second start in the same prefix is refused
        assert_one_line_error(fastgw("start", "-p", str(prefix), "-c",
                                     str(write_config(tmp_path)),
                                     "--listen", f"127.0.0.1:{free_port()}",
                                     "--admin-listen", "off"), "already running")
        # reload: the declarative file is read again
        (tmp_path / "kong.yml").write_text(RELOADED)
        r = fastgw("reload", "-p", str(prefix))
        assert r.returncode == 0 and "reloaded" in r.stdout
        deadline = time.monotonic() + 20
        names: list[str] = []
        while time.monotonic() < deadline:
            names = [s["name"] for s in json.loads(http_get(admin, "/services")[2])["data"]]
            if names == ["s2"]:
                break
            time.sleep(0.1)
        assert names == ["s2"]
        # the access log of a started node is under the prefix
        http_get(port, "/two")
        r = fastgw("stop", "-p", str(prefix))
        assert r.returncode == 0 and "stopped" in r.stdout
        assert not _alive(pid)
        assert not (prefix / "pids" / "fastgw.pid").exists()
        assert (prefix / "logs" / "error.log").exists()
    finally:
        if _alive(pid):
            os.kill(pid, 9)
    # nothing runs there now
    assert_one_line_error(fastgw("stop", "-p", str(prefix)), "not running")
    assert_one_line_error(fastgw("health", "-p", str(prefix)), "not running")


SLOW = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nslow"


def test_quit_lets_in_flight_requests_finish(tmp_path: Path) -> None:
    import socket

    up = socket.socket()
    up.bind(("127.0.0.1", 0))
    up.listen()
    upstream_port = up.getsockname()[1]

    arrived = threading.Event()

    def serve_slowly() -> None:
        c, _ = up.accept()
        c.recv(65536)
        arrived.set()
        time.sleep(1.5)
        c.sendall(SLOW)
        c.close()

    t = threading.Thread(target=serve_slowly, daemon=True)
    t.start()
    prefix = tmp_path / "p"
    port, admin = free_port(), free_port()
    cfg = write_config(tmp_path, upstream_port=upstream_port)
    r = fastgw("start", "-p", str(prefix), "-c", str(cfg), "--listen", f"127.0.0.1:{port}",
               "--admin-listen", "off", "--access-log", "off")
    assert r.returncode == 0, r.stderr
    pid = _pid(prefix)
    result: list[tuple[int, bytes]] = []
    client = threading.Thread(target=lambda: result.append(http_get(port, "/")[::2]))
    try:
        client.start()
        assert arrived.wait(10)     # the request is now in flight at the upstream
        r = fastgw("quit", "-p", str(prefix), "--timeout", "20")
        assert r.returncode == 0 and "gracefully" in r.stdout, r
        client.join(10)
        assert result == [(200, b"slow")]
        assert not _alive(pid)
    finally:
        if _alive(pid):
            os.kill(pid, 9)
        up.close()


def test_start_failure_is_reported_in_the_foreground(tmp_path: Path) -> None:
    import socket

    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    try:
        r = fastgw("start", "-p", str(tmp_path / "p"), "-c", str(write_config(tmp_path)),
                   "--listen", f"127.0.0.1:{holder.getsockname()[1]}", "--admin-listen",
                   "off")
        assert_one_line_error(r, "failed to start", "Address already in use")
    finally:
        holder.close()


def test_check_declarative_and_kong_conf(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    r = fastgw("check", str(cfg))
    assert r.returncode == 0 and "ok" in r.stdout and "1 services" in r.stdout
    conf = tmp_path / "kong.conf"
    conf.write_text(f"declarative_config = {cfg}\nlog_level = notice\nmem_cache_size = 1m\n")
    r = fastgw("check", str(conf))
    assert r.returncode == 0 and "(kong.conf)" in r.stdout, r
    assert "mem_cache_size" in r.stderr
    conf.write_text("log_level = shouty\n")
    assert_one_line_error(fastgw("check", str(conf)), "log_level")
    cfg.write_text('_format_version: "3.0"\nservices: [{name: s, url: "nope://x"}]\n')
    r = fastgw("check", str(cfg))
    assert r.returncode == 1 and "Traceback" not in r.stderr and "invalid" in r.stderr


def test_version() -> None:
    r = fastgw("version")
    assert r.returncode == 0 and r.stdout.strip() == f"fastgw {__version__}"
    r = fastgw("version", "--all")
    assert json.loads(r.stdout.splitlines()[1])["python"]


def test_env_prefix_is_used_by_the_signal_verbs(tmp_path: Path) -> None:
    r = fastgw("health", env=clean_env(KONG_PREFIX=str(tmp_path / "kp")))
    assert_one_line_error(r, str(tmp_path / "kp"), "not running")


def test_multi_worker_start_health_quit_and_log_reopen(tmp_path: Path) -> None:
    """--workers 2 under a prefix: one pid file (the master), workers share the access log,
    SIGUSR1 reopens it after rotation, quit stops master and workers."""
    import signal

    prefix = tmp_path / "mw"
    dash = free_port()
    port, admin = _start(tmp_path, prefix, "--workers", "2", "--access-log-format", "json",
                         "--dashboard-listen", f"127.0.0.1:{dash}", "--trace-key", "tk")
    pid = _pid(prefix)
    log = prefix / "logs" / "access.log"
    try:
        assert fastgw("health", "-p", str(prefix)).returncode == 0
        for _ in range(10):
            http_get(port, "/none")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (not log.exists() or
                                               len(log.read_text().splitlines()) < 10):
            time.sleep(0.05)
        assert len(log.read_text().splitlines()) == 10
        # the dashboard's traffic: both workers' counters, summed by the master
        deadline = time.monotonic() + 10
        traffic: dict = {}
        while time.monotonic() < deadline:
            traffic = json.loads(http_get(dash, "/api/traffic")[2])
            if traffic.get("by_status", {}).get("502") == 10:
                break
            time.sleep(0.1)
        assert traffic["by_status"] == {"502": 10} and traffic["total"] == 10   # upstream: port 9
        assert traffic["access_log"]["lines"] == 10 and traffic["access_log"]["dropped"] == 0
        rotated = prefix / "logs" / "access.log.1"
        log.rename(rotated)
        os.kill(pid, signal.SIGUSR1)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not log.exists():
            time.sleep(0.05)
        time.sleep(0.3)       # every worker reopened (the master forwards the signal)
        for _ in range(6):
            http_get(port, "/none")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(log.read_text().splitlines()) < 6:
            time.sleep(0.05)
        assert len(log.read_text().splitlines()) == 6
        assert len(rotated.read_text().splitlines()) == 10
        # a trace made in a worker is found on the master's Admin API
        _, h, _ = http_get(port, "/traced", {"X-Fastgw-Trace": "tk"})
        rid = json.loads(h["x-fastgw-trace"])["request_id"]
        deadline = time.monotonic() + 10
        status = 404
        while time.monotonic() < deadline and status != 200:
            status, _, body = http_get(admin, f"/debug/traces/{rid}")
            time.sleep(0.1)
        assert status == 200 and json.loads(body)["complete"]
        children = [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text()
                    .split()]
        assert len(children) == 2
        r = fastgw("quit", "-p", str(prefix), "--timeout", "20")
        assert r.returncode == 0, r
        assert not _alive(pid) and not any(_alive(c) for c in children)
    finally:
        if _alive(pid):
            os.kill(pid, 9)
