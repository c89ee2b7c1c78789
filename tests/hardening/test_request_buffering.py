"""Kong's route request_buffering (default true; nginx proxy_request_buffering) and
response_buffering, with real sockets."""
from __future__ import annotations

import hashlib
import socket
import time

from _util import InProcessGateway, RawClient, get, kong, route, service
from servers import EchoUpstream, pattern_bytes, wait_until


def _cfg(echo: EchoUpstream, **route_fields) -> dict:
    return kong(service("echo", echo.url("/"), [route("r", paths=["/"], strip_path=False,
                                                      **route_fields)]))


def test_malformed_chunked_body_never_reaches_the_upstream(echo: EchoUpstream) -> None:
    with InProcessGateway(_cfg(echo)) as gw, RawClient(gw.port) as c:
        r = c.request(get("/b", method="POST", extra="Transfer-Encoding: chunked\r\n")
                      + b"5\r\nhello\r\nZZ\r\n")
        assert r.status == 400
        time.sleep(0.2)
        assert not echo.requests and echo.connections_total == 0


def test_body_arrives_whole_with_content_length(echo: EchoUpstream) -> None:
    with InProcessGateway(_cfg(echo)) as gw, RawClient(gw.port) as c:
        c.send(get("/b", method="POST", extra="Transfer-Encoding: chunked\r\n") + b"3\r\nabc\r\n")
        time.sleep(0.3)
        assert not echo.requests            # nothing upstream before the body is complete
        r = c.request(b"2\r\nde\r\n0\r\n\r\n")
        assert r.status == 200 and r.json()["body"] == "abcde"
        (req,) = echo.requests
        assert req.header("content-length") == "5" and req.header("transfer-encoding") is None


def test_large_body_spills_to_a_file_and_is_sent_whole(echo: EchoUpstream) -> None:
    size = 3_000_000
    body = pattern_bytes(size)
    with InProcessGateway(_cfg(echo), limits={"max_buffered_body": 65536}) as gw, \
            RawClient(gw.port, 20) as c:
        r = c.request(get("/b", method="POST", extra=f"Content-Length: {size}\r\n") + body)
        assert r.status == 200
        doc = r.json()
        assert doc["body_len"] == size
        assert doc["body_sha256"] == hashlib.sha256(body).hexdigest()


def test_client_max_body_size_is_413(echo: EchoUpstream) -> None:
    with InProcessGateway(_cfg(echo), limits={"client_max_body_size": 1000}) as gw:
        with RawClient(gw.port) as c:       # announced too large: refused before reading
            r = c.request(get("/b", method="POST", extra="Content-Length: 5000\r\n"))
            assert r.status == 413
        with RawClient(gw.port) as c:       # chunked: refused when it grows past the limit
            r = c.request(get("/b", method="POST", extra="Transfer-Encoding: chunked\r\n")
                          + b"800\r\n" + b"x" * 2048 + b"\r\n")
            assert r.status == 413
        assert not echo.requests


def test_request_buffering_off_streams(echo: EchoUpstream) -> None:
    with InProcessGateway(_cfg(echo, request_buffering=False)) as gw, RawClient(gw.port) as c:
        c.send(get("/b", method="POST", extra="Content-Length: 100000\r\n") + b"x" * 1000)
        echo.wait_requests(1)               # the upstream sees it while the body still flows
        assert not echo.requests[0].complete or echo.requests[0].body_len < 100000


def test_response_buffering_frees_the_upstream_from_a_slow_client(echo: EchoUpstream) -> None:
    size = 40_000_000      # beyond what socket buffers hold, within response_buffer_size
    with InProcessGateway(_cfg(echo), limits={"response_buffer_size": 64 << 20}) as gw, \
            RawClient(gw.port, 10) as c:
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        c.send(get("/d", extra=f"X-Echo: size={size}; close=1\r\n"))
        time.sleep(0.2)
        # the client reads nothing, yet the upstream finished sending and is closed
        assert wait_until(lambda: echo.connections_open == 0, 5)
        assert c.sock.recv(65536).startswith(b"HTTP/1.1 200 ")


def test_response_buffering_off_keeps_the_upstream_paused(echo: EchoUpstream) -> None:
    size = 64_000_000      # far beyond what socket buffers on both sides can hold
    with InProcessGateway(_cfg(echo, response_buffering=False)) as gw, \
            RawClient(gw.port, 10) as c:
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        c.send(get("/d", extra=f"X-Echo: size={size}; close=1\r\n"))
        time.sleep(1.0)
        assert echo.connections_open == 1   # streaming: held back by the slow client
