"""The access log (combined and JSON, off the hot path, bounded), the error log's causes with the
request id, and Kong's response headers."""
from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path

import pytest
from ops_helpers import Node, clean_env, free_port, http_get

from fastgw._core.accesslog import AccessLog

BUFFER_MIN = 131072   # AccessLog raises smaller buffers to one maximal line


def test_buffer_is_bounded_and_counts_drops() -> None:
    a = AccessLog("json", BUFFER_MIN)   # a small buffer
    for _ in range(1000):
        a.add(b"127.0.0.1", b"GET", b"/x" * 100, 200)
    assert a.lines > 0 and a.dropped > 0 and a.lines + a.dropped == 1000
    assert a.pending <= BUFFER_MIN
    lines = a.take().splitlines()
    assert len(lines) == a.lines and all(json.loads(ln)["status"] == 200 for ln in lines)
    assert a.pending == 0


def test_fields_are_escaped_and_cut() -> None:
    a = AccessLog("json")
    a.add(b"1.2.3.4", b"GET", b'/"\\\x01\xff' + b"a" * 20000, 200, route='r"1')
    line = a.take()
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    entry = json.loads(line)
    assert entry["path"].startswith('/"\\\x01\xff') and entry["path"].endswith("a...")
    assert len(entry["path"]) == 4096 + 3 and entry["route"] == 'r"1'
    b = AccessLog("combined")
    b.add(b"1.2.3.4", b"GET", b'/"x', 404, 10, user_agent=b"ua\n")
    line = b.take()
    assert line.startswith(b'1.2.3.4 - - [') and b'"GET /\\"x HTTP/1.1" 404 10' in line
    assert b'"ua\\x0a"' in line and line.count(b"\n") == 1
    with pytest.raises(ValueError):
        AccessLog("xml")


CONFIG = """_format_version: "3.0"
services:
  - name: up
    url: http://127.0.0.1:{up}
    routes: [{{name: ok, paths: ["/ok"]}}]
  - name: refused
    url: http://127.0.0.1:{closed}
    retries: 0
    routes: [{{name: down, paths: ["/down"]}}]
  - name: tls
    url: https://127.0.0.1:{up}
    retries: 0
    routes: [{{name: tls, paths: ["/tls"]}}]
  - name: slow
    url: http://127.0.0.1:{silent}
    read_timeout: 300
    retries: 0
    routes: [{{name: slow, paths: ["/slow"]}}]
"""


class Upstreams:
    """An answering upstream, a closed port and a silent one (accepts, never answers)."""

    def __init__(self) -> None:
        self.ok = socket.socket()
        self.ok.bind(("127.0.0.1", 0))
        self.ok.listen()
        self.silent = socket.socket()
        self.silent.bind(("127.0.0.1", 0))
        self.silent.listen()
        self.closed = free_port()
        self.keep: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()
        threading.Thread(target=self._hold, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                c, _ = self.ok.accept()
            except OSError:
                return
            c.recv(65536)
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            c.close()

    def _hold(self) -> None:
        while True:
            try:
                c, _ = self.silent.accept()
            except OSError:
                return
            self.keep.append(c)

    def close(self) -> None:
        for s in (self.ok, self.silent, *self.keep):
            s.close()


@pytest.fixture
def upstreams():
    u = Upstreams()
    yield u
    u.close()


def _node(tmp_path: Path, u: Upstreams, *args: str, env: dict | None = None) -> tuple[Node, int]:
    cfg = tmp_path / "kong.yml"
    cfg.write_text(CONFIG.format(up=u.ok.getsockname()[1], closed=u.closed,
                                 silent=u.silent.getsockname()[1]))
    port = free_port()
    node = Node("-c", str(cfg), "--listen", f"127.0.0.1:{port}", "--admin-listen", "off",
                *args, env=env or clean_env())
    node.wait_port(port)
    return node, port


def _wait_lines(path: Path, n: int, timeout: float = 10.0) -> list[str]:
    deadline = time.monotonic() + timeout
    lines: list[str] = []
    while time.monotonic() < deadline:
        lines = path.read_text().splitlines() if path.exists() else []
        if len(lines) >= n:
            return lines
        time.sleep(0.05)
    return lines


def test_json_access_log_and_error_log(tmp_path: Path, upstreams: Upstreams) -> None:
    log = tmp_path / "logs" / "access.json"
    node, port = _node(tmp_path, upstreams, "--access-log", str(log),
                       "--access-log-format", "json")
    try:
        s1, h1, _ = http_get(port, "/ok?q=1", {"User-Agent": "t"})
        s2, h2, b2 = http_get(port, "/down")
        s3, h3, b3 = http_get(port, "/slow")
        s4, _, _ = http_get(port, "/none")
        s5, h5, _ = http_get(port, "/tls")
        assert (s1, s2, s3, s4, s5) == (200, 502, 504, 404, 502)
        lines = [json.loads(ln) for ln in _wait_lines(log, 5)]
    finally:
        _, err = node.stop()
    assert len(lines) == 5
    ok, down, slow, none, tls = lines
    assert ok["request_id"] == h1["x-kong-request-id"] and len(ok["request_id"]) == 32
    assert ok["method"] == "GET" and ok["path"] == "/ok?q=1" and ok["status"] == 200
    assert ok["route"] == "ok" and ok["service"] == "up" and ok["upstream_status"] == 200
    assert ok["upstream_addr"] == f"127.0.0.1:{upstreams.ok.getsockname()[1]}"
    assert ok["client"] == "127.0.0.1" and ok["bytes"] > 2 and ok["consumer"] is None
    lat = ok["latencies"]
    assert 0 <= lat["proxy"] <= lat["total"] and lat["upstream"] >= 0
    assert time.time() - 60 < time.mktime(time.strptime(ok["time"][:19], "%Y-%m-%dT%H:%M:%S")) \
        - time.timezone < time.time() + 60
    assert down["status"] == 502 and down["upstream_status"] is None
    assert slow["status"] == 504 and none["route"] is None and none["status"] == 404
    # the error body, the header, the access log and the error log share the request id
    for body, headers, entry in ((b2, h2, down), (b3, h3, slow)):
        rid = json.loads(body)["request_id"]
        assert rid == headers["x-kong-request-id"] == entry["request_id"]
    err_lines = err.splitlines()
    refused = [ln for ln in err_lines if down["request_id"] in ln]
    assert len(refused) == 1 and "502" in refused[0]
    assert f"connect to 127.0.0.1:{upstreams.closed} failed" in refused[0]
    timed = [ln for ln in err_lines if slow["request_id"] in ln]
    assert len(timed) == 1 and "timed out after 300 ms" in timed[0]
    # an https service whose port speaks plain HTTP: the TLS handshake fails
    handshake = [ln for ln in err_lines if h5["x-kong-request-id"] in ln]
    assert len(handshake) == 1 and tls["request_id"] == h5["x-kong-request-id"]
    assert f"TLS handshake with 127.0.0.1:{upstreams.ok.getsockname()[1]} failed" \
        in handshake[0]


def test_combined_log_on_stdout_by_default_for_run(tmp_path: Path, upstreams: Upstreams) -> None:
    node, port = _node(tmp_path, upstreams, "--headers", "off")
    try:
        status, headers, _ = http_get(port, "/ok", {"User-Agent": "curl/8", "Referer": "x"})
        assert status == 200
        # headers = off: none of Kong's headers, not even Via
        assert not {"via", "x-kong-request-id", "x-kong-upstream-latency"} & set(headers)
        time.sleep(0.5)
    finally:
        out, _ = node.stop()
    line = out.splitlines()[0]
    assert line.startswith("127.0.0.1 - - [") and '"GET /ok HTTP/1.1" 200 ' in line
    assert line.split('" 200 ')[1].split()[1:3] == ['"x"', '"curl/8"']


def test_access_log_off_and_unwritable(tmp_path: Path, upstreams: Upstreams) -> None:
    from ops_helpers import assert_one_line_error, fastgw
    node, port = _node(tmp_path, upstreams, "--access-log", "off")
    try:
        assert http_get(port, "/ok")[0] == 200
        time.sleep(0.3)
    finally:
        out, _ = node.stop()
    assert out == ""
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    r = fastgw("run", "-c", str(tmp_path / "kong.yml"), "--access-log",
               str(not_a_dir / "a.log"), "--listen", "127.0.0.1:0", "--admin-listen", "off")
    assert_one_line_error(r, "cannot open access log", str(not_a_dir / "a.log"))


def test_a_stuck_log_reader_never_blocks_proxying(tmp_path: Path, upstreams: Upstreams) -> None:
    """stdout is a pipe nobody reads: it fills, the writer thread blocks, lines are dropped,
    requests keep flowing."""
    node, port = _node(tmp_path, upstreams, "--access-log-format", "json")
    try:
        big = "/ok?" + "x" * 8000
        t0 = time.monotonic()
        for _ in range(300):   # 2.4 MB of lines: far beyond the 64 KiB pipe nobody reads
            assert http_get(port, big)[0] == 200
        assert time.monotonic() - t0 < 60
    finally:
        node.proc.kill()
        node.proc.communicate()


def test_latency_and_request_id_headers_kong_defaults(tmp_path: Path,
                                                      upstreams: Upstreams) -> None:
    node, port = _node(tmp_path, upstreams, "--access-log", "off")
    try:
        _, proxied, _ = http_get(port, "/ok")
        _, made, _ = http_get(port, "/none")
    finally:
        node.stop()
    for h in ("x-kong-upstream-latency", "x-kong-proxy-latency", "x-kong-request-id", "via"):
        assert h in proxied, h
    assert int(proxied["x-kong-upstream-latency"]) >= 0
    assert "x-kong-upstream-status" not in proxied
    for h in ("x-kong-response-latency", "x-kong-request-id", "server"):
        assert h in made, h
    assert proxied["x-kong-request-id"] != made["x-kong-request-id"]
    node, port = _node(tmp_path, upstreams, "--access-log", "off",
                       env=clean_env(KONG_HEADERS="X-Kong-Upstream-Status,Server"))
    try:
        _, proxied, _ = http_get(port, "/ok")
        _, made, _ = http_get(port, "/none")
    finally:
        node.stop()
    assert proxied["x-kong-upstream-status"] == "200" and "via" not in proxied
    assert "x-kong-request-id" not in proxied and made["server"].startswith("fastgw/")
