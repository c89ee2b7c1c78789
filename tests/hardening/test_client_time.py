"""Bounded time against slow or vanishing clients: client_body_timeout (nginx -> 408), a
half-close mid-upload closes the upstream at once, and read_timeout measures the upstream's
silence, not the gateway's own pause for a slow reader."""
from __future__ import annotations

import socket
import time

from _util import InProcessGateway, RawClient, get, kong, route, service
from servers import EchoUpstream, pattern_bytes, wait_until


def _cfg(echo: EchoUpstream, buffering: bool = True, **svc) -> dict:
    return kong(service("echo", echo.url("/"), [route("r", paths=["/up"], strip_path=False,
                                                      request_buffering=buffering)], **svc))


def test_stalled_body_to_a_404_is_closed_after_client_body_timeout(echo: EchoUpstream) -> None:
    with InProcessGateway(_cfg(echo), limits={"client_body_timeout": 400}) as gw, \
            RawClient(gw.port) as c:
        t0 = time.monotonic()
        r = c.request(get("/nope", method="POST", extra="Content-Length: 100000\r\n"))
        assert r.status == 404      # answered at once; the body is being discarded
        assert c.closed(timeout=3.0)
        assert 0.3 < time.monotonic() - t0 < 2.5
        assert wait_until(lambda: gw.core.stats()["requests_active"] == 0, 2)


def test_stalled_body_to_a_proxied_route_gets_408(echo: EchoUpstream) -> None:
    with InProcessGateway(_cfg(echo), limits={"client_body_timeout": 400}) as gw, \
            RawClient(gw.port) as c:
        c.send(get("/up", method="POST", extra="Content-Length: 1000\r\n") + b"x" * 10)
        t0 = time.monotonic()
        r = c.read_response()
        assert r.status == 408 and r.json()["message"] == "Request timeout"
        assert time.monotonic() - t0 < 2.5
        assert c.closed()
        # the upstream connection that carried the partial body is gone too
        assert wait_until(lambda: echo.connections_open == 0, 3)


def test_stalled_body_buffered_for_a_plugin_gets_408(echo: EchoUpstream) -> None:
    cfg = _cfg(echo)
    cfg["plugins"] = [{"name": "request-transformer",
                       "config": {"add": {"body": ["k:v"]}}}]
    with InProcessGateway(cfg, limits={"client_body_timeout": 400}) as gw, \
            RawClient(gw.port) as c:
        c.send(get("/up", method="POST", extra="Content-Type: application/json\r\n"
                                              "Content-Length: 100\r\n") + b"{")
        r = c.read_response()
        assert r.status == 408
        assert not echo.requests     # nothing reached the upstream


def test_half_close_mid_upload_closes_the_upstream_at_once(echo: EchoUpstream) -> None:
    with InProcessGateway(_cfg(echo, buffering=False)) as gw:    # write_timeout 60 s: must not be waited for
        c = RawClient(gw.port)
        c.send(get("/up", method="POST", extra="Content-Length: 1000000\r\n") + b"x" * 50_000)
        echo.wait_requests(1)
        assert echo.connections_open == 1
        t0 = time.monotonic()
        c.sock.shutdown(socket.SHUT_WR)
        assert wait_until(lambda: echo.connections_open == 0, 3)
        assert time.monotonic() - t0 < 2.0
        assert c.closed()
        c.close()
        assert wait_until(lambda: gw.core.stats()["requests_active"] == 0, 2)


def test_slow_reader_is_not_cut_by_read_timeout(echo: EchoUpstream) -> None:
    size = 20_000_000
    with InProcessGateway(_cfg(echo, read_timeout=1000)) as gw, RawClient(gw.port, 10) as c:
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        c.send(get("/up", extra=f"X-Echo: size={size}\r\n"))
        first = c.sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200 ")
        time.sleep(3.0)             # the client stops reading: the gateway pauses the upstream
        got = bytearray(first)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            chunk = c.sock.recv(1 << 20)
            if not chunk:
                break
            got += chunk
            if len(got) >= size and got.endswith(pattern_bytes(16, size - 16)):
                break
        body = bytes(got).partition(b"\r\n\r\n")[2]
        assert len(body) == size    # the whole body arrived: nothing was cut
