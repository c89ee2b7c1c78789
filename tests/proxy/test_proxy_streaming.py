"""Large bodies streamed through the gateway in both directions, Content-Length and chunked:
they arrive intact (SHA-256) and the gateway's RSS stays bounded while they flow (it never
holds a body: backpressure pauses the sending side)."""
from __future__ import annotations

import hashlib
import socket
import threading
import time
from typing import Iterator

import pytest
from _util import RawClient, get, kong, route, rss_kib, service

from servers import EchoUpstream, FastgwProcess, pattern_bytes

SIZE = 200 << 20            # bytes per body (the "e.g. 200 MB")
PIECE = 1 << 20             # what the test client writes / hashes at a time
RSS_GROWTH_KIB = 48 << 10   # allowed growth over the warmed-up RSS: far below one body


@pytest.fixture(scope="module")
def gw(echo_mod: EchoUpstream) -> Iterator[FastgwProcess]:
    cfg = kong(service("echo", echo_mod.url("/"), [route("r", paths=["/"], strip_path=False,
                                                           request_buffering=False, response_buffering=False)],
                       read_timeout=30000, write_timeout=30000))
    with FastgwProcess(cfg, wait_admin=True) as p:
        # warm up: the first requests allocate the buffers and import what they need
        with RawClient(p.port) as c:
            for _ in range(3):
                c.request(get("/warm", extra="X-Echo: size=4000000\r\n"))
        yield p


class RssSampler:
    """Samples a process's VmRSS every 20 ms in a thread; .peak after stop()."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.base = rss_kib(pid)
        self.peak = self.base
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_kib(self.pid))
            time.sleep(0.02)

    def __enter__(self) -> "RssSampler":
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join(2)

    def check(self) -> None:
        grew = self.peak - self.base
        assert grew < RSS_GROWTH_KIB, f"gateway RSS grew {grew} KiB while streaming {SIZE} bytes"


def _pattern_sha(n: int) -> str:
    h = hashlib.sha256()
    for off in range(0, n, PIECE):
        h.update(pattern_bytes(min(PIECE, n - off), off))
    return h.hexdigest()


@pytest.fixture(scope="module")
def expected_sha() -> str:
    return _pattern_sha(SIZE)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_large_upload(gw: FastgwProcess, echo: EchoUpstream, expected_sha: str,
                      chunked: bool) -> None:
    framing = "Transfer-Encoding: chunked\r\n" if chunked else f"Content-Length: {SIZE}\r\n"
    with RssSampler(gw.pid) as rss, RawClient(gw.port, timeout=30) as c:
        c.send(get("/upload", method="POST", extra=framing))
        for off in range(0, SIZE, PIECE):
            data = pattern_bytes(min(PIECE, SIZE - off), off)
            c.send(b"%x\r\n%b\r\n" % (len(data), data) if chunked else data)
        if chunked:
            c.send(b"0\r\n\r\n")
        r = c.read_response()
    assert r.status == 200, r.body
    doc = r.json()
    assert doc["body_len"] == SIZE
    assert doc["body_sha256"] == expected_sha
    (req,) = echo.requests
    assert req.complete
    assert (req.header("transfer-encoding") == "chunked") == chunked
    rss.check()


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_large_download(gw: FastgwProcess, echo: EchoUpstream, expected_sha: str,
                        chunked: bool) -> None:
    h = hashlib.sha256()
    n = 0

    def sink(data: bytes) -> None:
        nonlocal n
        h.update(data)
        n += len(data)

    with RssSampler(gw.pid) as rss, RawClient(gw.port, timeout=30) as c:
        c.send(get("/download", extra=f"X-Echo: size={SIZE}; chunked={int(chunked)}\r\n"))
        r = c.read_response(keep_body=False, sink=sink)
    assert r.status == 200
    assert r.chunked == chunked
    if not chunked:
        assert r.header("content-length") == str(SIZE)
    assert n == SIZE and h.hexdigest() == expected_sha
    rss.check()


def test_slow_reader_backpressure(gw: FastgwProcess, echo: EchoUpstream) -> None:
    # a client that stops reading: the gateway must stop reading the upstream, not buffer it
    size = 100 << 20
    with RssSampler(gw.pid) as rss, RawClient(gw.port, timeout=30) as c:
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        c.send(get("/stall", extra=f"X-Echo: size={size}\r\n"))
        time.sleep(1.0)   # read nothing for a while
        stalled_peak = rss.peak
        got = 0
        h = hashlib.sha256()

        def sink(data: bytes) -> None:
            nonlocal got
            got += len(data)
            h.update(data)

        r = c.read_response(keep_body=False, sink=sink)
    assert r.status == 200 and got == size
    assert h.hexdigest() == _pattern_sha(size)
    assert stalled_peak - rss.base < RSS_GROWTH_KIB
    rss.check()
