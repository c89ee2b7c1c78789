"""Every upstream error path end to end, with Kong's status codes and bodies, retries, and client
aborts that must not leak connections on either side."""
from __future__ import annotations

import json
import socket
import time
from typing import Iterator

import pytest
from _util import (
    BAD_GATEWAY,
    TIMING_OUT,
    Incomplete,
    RawClient,
    admin_status,
    get,
    kong,
    route,
    service,
    wait_idle,
)

from servers import HOST, EchoUpstream, FastgwProcess, free_port, wait_until


@pytest.fixture(scope="module")
def blackhole() -> Iterator[int]:
    """A listening socket whose accept queue is full: SYNs to it are dropped (Linux drops a
    SYN when the listener's accept queue is full), so a connect to it hangs."""
    lsock = socket.socket()
    lsock.bind((HOST, 0))
    lsock.listen(0)
    port = lsock.getsockname()[1]
    fill = []
    for _ in range(3):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect((HOST, port))
        except BlockingIOError:
            pass
        fill.append(s)
    time.sleep(0.05)
    probe = socket.socket()
    probe.settimeout(0.3)
    try:
        probe.connect((HOST, port))
        hangs = False
    except OSError:
        hangs = True
    finally:
        probe.close()
    try:
        yield port if hangs else 0
    finally:
        for s in fill:
            s.close()
        lsock.close()


@pytest.fixture(scope="module")
def dead_port() -> int:
    return free_port()   # nothing listens there: connect is refused


@pytest.fixture(scope="module")
def gw(echo_mod: EchoUpstream, blackhole: int, dead_port: int) -> Iterator[FastgwProcess]:
    e = echo_mod
    cfg = kong(
        service("echo", e.url("/"), [route("r", paths=["/"], strip_path=False,
                                            request_buffering=False)]),
        service("refused", f"http://{HOST}:{dead_port}/", [route("refused", paths=["/refused"])],
                retries=2, connect_timeout=1000),
        service("slow", e.url("/slow"), [route("slow", paths=["/slow"])], read_timeout=300,
                retries=0),
        service("blackhole", f"http://{HOST}:{blackhole or dead_port}/",
                [route("bh", paths=["/blackhole"])], connect_timeout=300, retries=1),
        service("two", None, [route("retry", paths=["/retry"])], host="two", port=80,
                protocol="http", path="/retried"),
        upstreams=[{"name": "two", "algorithm": "round-robin", "targets": [
            {"target": f"{HOST}:{dead_port}", "weight": 100},
            {"target": f"{HOST}:{e.port}", "weight": 100}]}],
    )
    with FastgwProcess(cfg, wait_admin=True) as p:
        yield p


def error_of(resp) -> str:
    assert resp.header("content-type").startswith("application/json")
    doc = json.loads(resp.body)
    assert set(doc) == {"message", "request_id"}
    return doc["message"]


def test_refused_is_502_after_retries(gw: FastgwProcess, echo: EchoUpstream) -> None:
    t0 = time.monotonic()
    with RawClient(gw.port) as c:
        r = c.request(get("/refused/x"))
    assert r.status == 502 and error_of(r) == BAD_GATEWAY
    assert time.monotonic() - t0 < 3


def test_retry_to_the_next_target(gw: FastgwProcess, echo: EchoUpstream) -> None:
    # round-robin over a dead and a live target: every request ends on the live one
    for i in range(6):
        with RawClient(gw.port) as c:
            r = c.request(get(f"/retry/{i}"))
            assert r.status == 200, r.body
            assert r.json()["path"] == f"/retried/{i}"
    assert len(echo.requests) == 6


def test_reset_before_headers_is_502_and_post_not_retried(gw: FastgwProcess,
                                                          echo: EchoUpstream) -> None:
    with RawClient(gw.port) as c:
        r = c.request(get("/reset", method="POST",
                          extra="Content-Length: 2\r\nX-Echo: reset=before_headers\r\n") + b"hi")
    assert r.status == 502 and error_of(r) == BAD_GATEWAY
    time.sleep(0.1)
    # a non-idempotent request that reached the upstream is never sent again
    assert [q.path for q in echo.requests] == ["/reset"]
    with RawClient(gw.port) as c:
        r = c.request(get("/reset-get", extra="X-Echo: reset=before_headers\r\n"))
    assert r.status == 502 and error_of(r) == BAD_GATEWAY


@pytest.mark.parametrize("chunked", [False, True])
def test_reset_mid_body_truncates_the_client(gw: FastgwProcess, echo: EchoUpstream,
                                             chunked: bool) -> None:
    size = 2_000_000
    with RawClient(gw.port) as c:
        c.send(get("/midbody", extra=f"X-Echo: size={size}; reset=mid_body; "
                                     f"chunked={int(chunked)}\r\n"))
        with pytest.raises(Incomplete) as ei:
            c.read_response()
        resp = ei.value.resp
        assert resp is not None and resp.status == 200   # the head had gone out
        assert 0 < len(resp.body) < size
        assert resp.chunked == chunked
        if chunked:
            assert 0 not in resp.chunk_sizes                # no final chunk
        else:
            assert resp.header("content-length") == str(size)
    wait_idle(gw)


def test_slow_upstream_is_504(gw: FastgwProcess, echo: EchoUpstream) -> None:
    t0 = time.monotonic()
    with RawClient(gw.port) as c:
        r = c.request(get("/slow/x", extra="X-Echo: delay=1.0\r\n"))
        elapsed = time.monotonic() - t0
        assert r.status == 504 and error_of(r) == TIMING_OUT
        assert 0.25 < elapsed < 0.95
    time.sleep(0.9)   # let the echo finish its delayed answer to the closed connection


def test_slow_body_is_504_or_truncated(gw: FastgwProcess, echo: EchoUpstream) -> None:
    # the head arrived in time, the body stalls beyond read_timeout: the client sees truncation
    with RawClient(gw.port) as c:
        c.send(get("/slow/b", extra="X-Echo: size=1000; body_delay=1.0\r\n"))
        with pytest.raises(Incomplete) as ei:
            c.read_response()
        assert ei.value.resp is not None and ei.value.resp.status == 200
    time.sleep(0.9)


def test_garbage_response_is_502(gw: FastgwProcess, echo: EchoUpstream) -> None:
    with RawClient(gw.port) as c:
        r = c.request(get("/garbage", extra="X-Echo: garbage=1\r\n"))
        assert r.status == 502 and error_of(r) == BAD_GATEWAY
        # a gateway-made error keeps the client connection (Kong/nginx do)
        if not c.closed(0.2):
            assert c.request(get("/ok")).status == 200


def test_connect_timeout_is_504(gw: FastgwProcess, echo: EchoUpstream, blackhole: int) -> None:
    if not blackhole:
        pytest.skip("connect to a full accept queue does not hang on this kernel")
    t0 = time.monotonic()
    with RawClient(gw.port) as c:
        r = c.request(get("/blackhole"))
    elapsed = time.monotonic() - t0
    assert r.status == 504 and error_of(r) == TIMING_OUT
    assert 0.5 < elapsed < 2.0     # connect_timeout 300 ms, retries 1: two attempts


def _echo_settled(echo: EchoUpstream, most: int) -> bool:
    return echo.connections_open <= most


def test_client_abort_mid_request_leaks_nothing(gw: FastgwProcess, echo: EchoUpstream) -> None:
    idle_before = echo.connections_open
    c = RawClient(gw.port)
    c.send(get("/upload", method="POST", extra="Content-Length: 10000000\r\n") + b"x" * 100_000)
    echo.wait_requests(1)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    c.close()   # RST mid-body
    st = wait_idle(gw)
    assert st["requests_active"] == 0
    # the upstream connection carrying the half-sent body is closed, not pooled
    wait_until(lambda: _echo_settled(echo, idle_before), 5)
    assert not echo.requests[0].complete


def test_client_abort_mid_response_leaks_nothing(gw: FastgwProcess, echo: EchoUpstream) -> None:
    idle_before = echo.connections_open
    with RawClient(gw.port) as c:
        c.send(get("/download", extra="X-Echo: size=100000000\r\n"))
        assert c.sock.recv(65536)
    wait_idle(gw)
    wait_until(lambda: _echo_settled(echo, idle_before), 5)
    # and the gateway still serves
    with RawClient(gw.port) as c:
        assert c.request(get("/fine")).status == 200
    st = admin_status(gw)
    assert st["requests_active"] == 0
