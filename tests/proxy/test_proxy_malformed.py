"""Malformed and hostile clients end to end: the parser's rejection vectors (smuggling shapes
among them) sent through a real gateway to a recording upstream, the size limits, and a
slowloris client against the header deadline."""
from __future__ import annotations

import socket
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest
from _util import InProcessGateway, RawClient, get, kong, route, service, wait_idle

from servers import EchoUpstream, FastgwProcess

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "parser"))
from parser_vectors import Vector, load_vectors  # noqa: E402


def _rejected_request_vectors() -> tuple[list[Vector], list[Vector]]:
    """(errors in the head of the first message, errors in its body) for every request vector
    that the parser rejects with its default options on a live connection."""
    head, body = [], []
    for v in load_vectors():
        if v.kind != "request" or "error" not in v.expect or v.options or v.eof:
            continue
        if v.name == "pipeline-second-invalid":
            continue   # its first request is valid (tested on its own below)
        (body if v.file == "chunked" else head).append(v)
    return head, body


HEAD_VECTORS, BODY_VECTORS = _rejected_request_vectors()


@pytest.fixture(scope="module")
def gw(echo_mod: EchoUpstream) -> Iterator[FastgwProcess]:
    cfg = kong(service("echo", echo_mod.url("/"), [route("r", paths=["/"], strip_path=False)]))
    with FastgwProcess(cfg, wait_admin=True) as p:
        yield p


def _rejected(gw: FastgwProcess, raw: bytes, status: int) -> None:
    with RawClient(gw.port, timeout=3) as c:
        c.send(raw)
        r = c.read_response()
        assert r.status == status, r.body
        assert r.header("connection") == "close"
        assert c.closed(), "the connection must be closed after a malformed request"


def test_vectors_loaded() -> None:
    names = {v.name for v in HEAD_VECTORS}
    assert {"cl-and-te", "cl-duplicate-different", "te-gzip", "obs-fold-space",
            "bare-lf-line-end", "nul-in-value", "http2-version"} <= names
    assert len(BODY_VECTORS) >= 20


@pytest.mark.parametrize("v", HEAD_VECTORS, ids=lambda v: v.id)
def test_malformed_head_never_reaches_upstream(gw: FastgwProcess, echo: EchoUpstream,
                                               v: Vector) -> None:
    _rejected(gw, v.raw, v.expect["error"])
    assert echo.requests == []


@pytest.mark.parametrize("v", BODY_VECTORS, ids=lambda v: v.id)
def test_malformed_body_never_completes_upstream(gw: FastgwProcess, echo: EchoUpstream,
                                                 v: Vector) -> None:
    # The head is valid and a streaming proxy may already have sent it when the bad framing
    # arrives; what must hold is that the upstream never sees a complete request (it gets a
    # cut connection) and nothing after the bad bytes (no smuggled second request).
    _rejected(gw, v.raw, v.expect["error"])
    time.sleep(0.05)
    reqs = echo.requests
    assert len(reqs) <= 1
    assert all(not q.complete for q in reqs), [(q.body, q.complete) for q in reqs]


def test_smuggled_request_after_bad_chunk_never_reaches_upstream(gw: FastgwProcess,
                                                                 echo: EchoUpstream) -> None:
    # the classic shape: a chunk longer than its size line, the "excess" being a request
    raw = (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"3\r\nabcGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n0\r\n\r\n")
    _rejected(gw, raw, 400)
    time.sleep(0.1)
    assert all(q.path != "/smuggled" for q in echo.requests)
    assert all(not q.complete for q in echo.requests)


def test_pipeline_second_invalid(gw: FastgwProcess, echo: EchoUpstream) -> None:
    with RawClient(gw.port, timeout=3) as c:
        c.send(b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
               b"POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab")
        assert c.read_response().json()["path"] == "/1"
        r = c.read_response()
        assert r.status == 400
        assert c.closed()
    assert [q.path for q in echo.requests] == ["/1"]


@pytest.mark.parametrize("raw, status", [
    (get("/", extra="X-Big: " + "a" * 9000 + "\r\n"), 431),                 # one huge field
    (get("/", extra="".join(f"X-{i}: {'b' * 1000}\r\n" for i in range(40))), 431),   # head
    (get("/", extra="".join(f"X-{i}: 1\r\n" for i in range(150))), 431),   # field count
    (get("/" + "u" * 9000), 414),                                            # long URI
    (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
    (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),                              # h2c preface
])
def test_limits(gw: FastgwProcess, echo: EchoUpstream, raw: bytes, status: int) -> None:
    _rejected(gw, raw, status)
    assert echo.requests == []


def test_rejections_leave_no_connection_behind(gw: FastgwProcess, echo: EchoUpstream) -> None:
    for v in HEAD_VECTORS[:20] + BODY_VECTORS[:10]:
        with RawClient(gw.port, timeout=3) as c:
            c.send(v.raw)
            c.read_all()
    st = wait_idle(gw)
    assert st["requests_active"] == 0


# ------------------------------------------------------------------------------- slowloris

@pytest.fixture
def inproc(echo: EchoUpstream) -> Iterator[InProcessGateway]:
    cfg = kong(service("echo", echo.url("/"), [route("r", paths=["/"], strip_path=False)]))
    with InProcessGateway(cfg) as g:
        yield g


def test_slowloris_gets_408_after_header_timeout(inproc: InProcessGateway,
                                                 echo: EchoUpstream) -> None:
    inproc.call(lambda: setattr(inproc.core, "header_timeout", 0.5))
    t0 = time.monotonic()
    with RawClient(inproc.port, timeout=5) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ")
        for _ in range(3):    # keep dribbling: each byte must not extend the deadline
            time.sleep(0.1)
            try:
                c.send(b"a")
            except OSError:
                break
        r = c.read_response()
        elapsed = time.monotonic() - t0
        assert r.status == 408
        assert c.closed()
    assert 0.4 < elapsed < 2.0
    assert echo.requests == []
    # a connection that sent nothing is closed silently after the same deadline
    with RawClient(inproc.port, timeout=5) as c:
        t0 = time.monotonic()
        assert c.read_all() == b""
        assert 0.4 < time.monotonic() - t0 < 2.0
    assert inproc.call(lambda: inproc.core.stats())["connections_active"] == 0


def test_normal_client_unaffected_by_short_header_timeout(inproc: InProcessGateway,
                                                          echo: EchoUpstream) -> None:
    inproc.call(lambda: setattr(inproc.core, "header_timeout", 0.5))
    with RawClient(inproc.port, timeout=5) as c:
        for i in range(3):
            assert c.request(get(f"/ok/{i}")).status == 200
            time.sleep(0.1)
    with socket.create_connection(("127.0.0.1", inproc.port), timeout=5):
        pass


def test_slowloris_on_a_keepalive_connection_gets_408(inproc: InProcessGateway,
                                                      echo: EchoUpstream) -> None:
    # regression: after a first response, a stalled or malformed next head was closed
    # silently instead of answered (the previous response's state leaked into it)
    inproc.call(lambda: setattr(inproc.core, "header_timeout", 0.5))
    with RawClient(inproc.port, timeout=5) as c:
        assert c.request(get("/first")).status == 200
        c.send(b"GET /second HTTP/1.1\r\nHost: a\r\n")
        r = c.read_response()
        assert r.status == 408
        assert c.closed()
    assert [q.path for q in echo.requests] == ["/first"]
