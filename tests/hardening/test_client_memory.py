"""Bounded memory against clients that pipeline without reading and clients that idle:
the next request is read only when the previous response is queued below a bound; an idle
keep-alive connection holds no read buffer and no parser; a per-worker connection limit."""
from __future__ import annotations

import socket
import time

from _util import RawClient, get, kong, route, rss_kib, service
from servers import EchoUpstream, FastgwProcess, wait_until


def _cfg(echo: EchoUpstream) -> dict:
    return kong(service("echo", echo.url("/"), [route("r", paths=["/up"], strip_path=False)]))


def _flood(port: int, request: bytes, seconds: float) -> int:
    """Pipeline `request` for `seconds` without reading a byte; returns bytes sent."""
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.setblocking(False)
    burst = request * 256
    sent = 0
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            try:
                sent += s.send(burst)
            except BlockingIOError:
                time.sleep(0.01)
    finally:
        s.close()
    return sent


def _rss_growth(gw: FastgwProcess, request: bytes) -> tuple[int, int]:
    base = rss_kib(gw.pid)
    sent = _flood(gw.port, request, 3.0)
    return rss_kib(gw.pid) - base, sent


def test_pipelined_gateway_responses_do_not_grow_memory(echo: EchoUpstream) -> None:
    with FastgwProcess(_cfg(echo), extra_args=["--admin-listen", "off"]) as gw:
        growth, sent = _rss_growth(gw, get("/no-such-route"))
        # the gateway stopped reading: the client could only fill socket buffers
        assert sent < 32 << 20, sent
        assert growth < 10_000, f"RSS grew {growth} KiB"


def test_pipelined_proxied_responses_do_not_grow_memory(echo: EchoUpstream) -> None:
    with FastgwProcess(_cfg(echo), extra_args=["--admin-listen", "off"]) as gw:
        growth, sent = _rss_growth(gw, get("/up", extra="X-Echo: size=20000\r\n"))
        assert growth < 10_000, f"RSS grew {growth} KiB"


def test_idle_keepalive_connections_cost_little(echo: EchoUpstream) -> None:
    n = 1000
    with FastgwProcess(_cfg(echo), extra_args=["--admin-listen", "off"]) as gw:
        warm = [RawClient(gw.port) for _ in range(20)]
        for c in warm:
            assert c.request(get("/nope")).status == 404
        base = rss_kib(gw.pid)
        clients = []
        try:
            for _ in range(n):
                c = RawClient(gw.port)
                assert c.request(get("/nope")).status == 404   # one exchange, then idle
                clients.append(c)
            per_conn = (rss_kib(gw.pid) - base) * 1024 / n
            # nginx: ~1 KiB per idle keep-alive connection; a 64 KiB buffer each would be 64x
            assert per_conn < 2048, f"{per_conn:.0f} bytes per idle connection"
        finally:
            for c in clients:
                c.close()
        # they left: RSS comes back near where it was (a 64 KiB buffer each would keep ~64 MiB)
        assert wait_until(lambda: gw_idle(warm[0]), 5)
        assert rss_kib(gw.pid) - base < 8192
        for c in warm:
            c.close()


def gw_idle(c: RawClient) -> bool:
    # the gateway has processed the closes once it answers on a connection opened before
    return c.request(get("/nope")).status == 404


def test_connections_beyond_worker_connections_are_refused(echo: EchoUpstream) -> None:
    with FastgwProcess(_cfg(echo), extra_args=["--admin-listen", "off",
                                               "--limit", "worker_connections=3"]) as gw:
        held = [RawClient(gw.port) for _ in range(3)]
        try:
            for c in held:
                assert c.request(get("/nope")).status == 404
            extra = RawClient(gw.port)
            try:
                extra.send(get("/nope"))
            except OSError:
                pass
            assert extra.closed(timeout=3.0)       # closed unanswered (nginx)
            extra.close()
            for c in held:                          # the others keep working
                assert c.request(get("/nope")).status == 404
        finally:
            for c in held:
                c.close()
        # once they left, new connections are served again
        wait_until(lambda: _serves(gw.port), 5)


def _serves(port: int) -> bool:
    try:
        with RawClient(port) as c:
            return c.request(get("/nope")).status == 404
    except OSError:
        return False
