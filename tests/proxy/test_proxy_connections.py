"""Connection behaviour end to end: pipelining, upstream keep-alive reuse, 100-continue,
HEAD/204/304 framing (against a real nginx too), HTTP/1.0 clients, and an aiohttp client."""
from __future__ import annotations

import asyncio
import socket
import time
from typing import Iterator

import pytest
from _util import RawClient, get, kong, route, service

from servers import EchoUpstream, FastgwProcess, NginxUpstream


@pytest.fixture(scope="module")
def gw(echo_mod: EchoUpstream, nginx_upstream: NginxUpstream) -> Iterator[FastgwProcess]:
    cfg = kong(service("echo", echo_mod.url("/"), [route("r", paths=["/"], strip_path=False)]),
               service("nginx", nginx_upstream.url("/"), [route("n", paths=["/ngx"])]))
    with FastgwProcess(cfg, wait_admin=True) as p:
        yield p


def test_pipelined_requests_answered_in_order(gw: FastgwProcess, echo: EchoUpstream) -> None:
    reqs = [get("/pipe/0", extra="X-Echo: delay=0.2\r\n"),          # the slow one first
            get("/pipe/1"),
            get("/pipe/2", method="POST", extra="Content-Length: 4\r\n") + b"body",
            get("/pipe/3", extra="X-Echo: status=201\r\n"),
            get("/pipe/4", method="HEAD"),
            get("/pipe/5")]
    with RawClient(gw.port) as c:
        c.send(b"".join(reqs))               # one write
        seen = []
        for i in range(6):
            r = c.read_response("HEAD" if i == 4 else "GET")
            seen.append(r.status)
            if i != 4:
                assert r.json()["path"] == f"/pipe/{i}"
        assert seen == [200, 200, 200, 201, 200, 200]
    assert [q.path for q in echo.requests] == [f"/pipe/{i}" for i in range(6)]
    assert echo.requests[2].body == b"body"


def test_pipelined_burst_in_one_write(gw: FastgwProcess, echo: EchoUpstream) -> None:
    n = 50
    with RawClient(gw.port) as c:
        c.send(b"".join(get(f"/burst/{i}") for i in range(n)))
        for i in range(n):
            assert c.read_response().json()["path"] == f"/burst/{i}"


def test_upstream_keepalive_reuse(gw: FastgwProcess, echo: EchoUpstream) -> None:
    before = echo.connections_total
    for i in range(30):   # 30 client connections, one request each, sequential
        with RawClient(gw.port) as c:
            assert c.request(get(f"/ka/{i}")).status == 200
    with RawClient(gw.port) as c:   # and 30 on one client connection
        for i in range(30):
            assert c.request(get(f"/ka1/{i}")).status == 200
    assert len(echo.requests) == 60
    assert echo.connections_total - before <= 1
    assert len({r.conn_id for r in echo.requests}) == 1


def test_connection_with_unfinished_response_is_not_reused(gw: FastgwProcess,
                                                           echo: EchoUpstream) -> None:
    # the client goes away in the middle of a response: that upstream connection must be
    # closed, never handed to the next request (which would read the rest of the old body)
    with RawClient(gw.port) as c:
        c.send(get("/big", extra="X-Echo: size=50000000\r\n"))
        c.sock.recv(1000)
    time.sleep(0.2)
    with RawClient(gw.port) as c:
        r = c.request(get("/next"))
        assert r.status == 200 and r.json()["path"] == "/next"
    assert echo.requests[-1].conn_id != echo.requests[0].conn_id


def test_100_continue(gw: FastgwProcess, echo: EchoUpstream) -> None:
    with RawClient(gw.port) as c:
        c.send(get("/cont", method="POST",
                   extra="Expect: 100-continue\r\nContent-Length: 11\r\n"))
        interim = c.read_response(skip_interim=False)
        assert interim.status == 100            # before any body byte was sent
        c.send(b"hello world")
        r = c.read_response()
        assert r.status == 200
        assert r.json()["body"] == "hello world"
        # exactly one 100 reached the client (the upstream's own 100 is not forwarded)
        assert c.request(get("/after")).json()["path"] == "/after"
    (req, _) = echo.requests
    assert req.header("expect") is None     # the gateway dealt with the expectation


def test_100_continue_with_early_final_answer(gw: FastgwProcess, echo: EchoUpstream) -> None:
    # the upstream answers with a final status without reading the body (RFC 9110 10.1.1):
    # the client gets that status, and never a 100 after it
    with RawClient(gw.port) as c:
        c.send(get("/final", method="POST", extra="Expect: 100-continue\r\n"
                   "Content-Length: 5\r\nX-Echo: expect=final; status=413\r\n"))
        r = c.read_response(skip_interim=False)
        if r.status == 100:   # the gateway may say 100 itself; then the final answer follows
            c.send(b"hello")
            r = c.read_response(skip_interim=False)
        assert r.status == 413


def test_100_continue_not_sent_when_the_gateway_answers(gw: FastgwProcess,
                                                        echo: EchoUpstream) -> None:
    with RawClient(gw.port) as c:   # a 400 for a broken head: no 100 first
        c.send(b"POST /x HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
               b"Connection: host\r\nContent-Length: 5\r\n\r\n")
        r = c.read_response(skip_interim=False)
        assert r.status == 400
    assert echo.requests == []


@pytest.mark.parametrize("path, status", [("/ngx/status/204", 204), ("/ngx/status/304", 304)])
def test_no_body_statuses_from_nginx(gw: FastgwProcess, echo: EchoUpstream, path: str,
                                     status: int) -> None:
    with RawClient(gw.port) as c:
        for _ in range(2):   # framing right: the next response on the connection parses
            r = c.request(get(path))
            assert r.status == status and r.body == b""
            assert r.header("transfer-encoding") is None
            assert r.header("x-server-port") is not None
        assert c.request(get("/ngx/x")).body == b"hello\n"


def test_head_against_nginx_and_echo(gw: FastgwProcess, echo: EchoUpstream,
                                     nginx_upstream: NginxUpstream) -> None:
    with RawClient(gw.port) as c:
        r = c.request(get("/ngx/big", method="HEAD"), method="HEAD")
        assert r.status == 200
        assert r.header("content-length") == str(nginx_upstream.big_size)
        r = c.request(get("/head", method="HEAD", extra="X-Echo: size=5000; chunked=1\r\n"),
                      method="HEAD")
        assert r.status == 200
        r = c.request(get("/head2", method="HEAD", extra="X-Echo: size=777\r\n"), method="HEAD")
        assert r.header("content-length") == "777"
        # no body bytes were left behind on the connection
        c.send(get("/after"))
        r = c.read_response()
        assert r.status == 200 and r.json()["path"] == "/after"


def test_echo_204_304(gw: FastgwProcess, echo: EchoUpstream) -> None:
    with RawClient(gw.port) as c:
        for st in (204, 304):
            r = c.request(get(f"/s{st}", extra=f"X-Echo: status={st}\r\n"))
            assert r.status == st and r.body == b""
            assert r.header("content-length") in (None, "0")
        assert c.request(get("/after")).status == 200


def test_http10_client(gw: FastgwProcess, echo: EchoUpstream) -> None:
    # no keep-alive asked: one response, then the connection closes
    with RawClient(gw.port) as c:
        r = c.request(get("/h10", version="HTTP/1.0"))
        assert r.status == 200 and r.json()["path"] == "/h10"
        assert c.closed()
    # chunked upstream response to a 1.0 client: no chunked coding, delimited by close
    with RawClient(gw.port) as c:
        c.send(get("/h10c", version="HTTP/1.0", extra="X-Echo: size=30000; chunked=1\r\n"))
        r = c.read_response()
        assert r.header("transfer-encoding") is None and not r.chunked
        assert len(r.body) == 30000
        assert c.closed()
    # keep-alive asked: kept, and said so
    with RawClient(gw.port) as c:
        for i in range(3):
            r = c.request(get(f"/h10k/{i}", version="HTTP/1.0",
                              extra="Connection: keep-alive\r\n"))
            assert r.status == 200 and r.header("connection").lower() == "keep-alive"
            assert r.header("content-length") is not None
    # the upstream always gets HTTP/1.1
    assert {q.version for q in echo.requests} == {"HTTP/1.1"}


def test_aiohttp_client_concurrent(gw: FastgwProcess, echo: EchoUpstream) -> None:
    aiohttp = pytest.importorskip("aiohttp")

    async def main() -> list[tuple[int, str]]:
        conn = aiohttp.TCPConnector(limit=8)
        async with aiohttp.ClientSession(connector=conn) as s:
            async def one(i: int) -> tuple[int, str]:
                data = f"payload-{i}".encode() * 100
                async with s.post(f"{gw.url('/aio')}/{i}", data=data,
                                  timeout=aiohttp.ClientTimeout(total=10)) as r:
                    doc = await r.json()
                    assert doc["body_len"] == len(data)
                    return r.status, doc["path"]
            return await asyncio.gather(*(one(i) for i in range(64)))

    results = asyncio.run(main())
    assert results == [(200, f"/aio/{i}") for i in range(64)]


def test_half_close_after_request_still_gets_response(gw: FastgwProcess,
                                                      echo: EchoUpstream) -> None:
    with RawClient(gw.port) as c:
        c.send(get("/halfclose", extra="X-Echo: delay=0.1\r\n"))
        c.sock.shutdown(socket.SHUT_WR)
        r = c.read_response()
        assert r.status == 200 and r.json()["path"] == "/halfclose"
