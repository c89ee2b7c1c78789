"""Forwarding rules end to end (RFC 9110 7.6): hop-by-hop fields, Connection options, the
X-Forwarded-* / X-Real-IP / Via fields, and re-framing of bodies in both directions, checked on
the bytes the upstream and the client actually receive."""
from __future__ import annotations

from typing import Iterator

import pytest
from _util import RawClient, get, kong, route, service

from servers import Behaviour, EchoUpstream, FastgwProcess


@pytest.fixture(scope="module")
def gw(echo_mod: EchoUpstream) -> Iterator[FastgwProcess]:
    cfg = kong(service("echo", echo_mod.url("/"), [route("r", paths=["/"], strip_path=False,
                                                           request_buffering=False)]))
    with FastgwProcess(cfg, wait_admin=True) as p:
        yield p


def headers_of(raw_head: bytes) -> list[tuple[str, str]]:
    out = []
    for line in raw_head.decode("latin-1").split("\r\n")[1:]:
        if line:
            k, _, v = line.partition(":")
            out.append((k.lower(), v.strip()))
    return out


def names(raw_head: bytes) -> list[str]:
    return [k for k, _ in headers_of(raw_head)]


def test_hop_by_hop_and_connection_options_removed(gw: FastgwProcess, echo: EchoUpstream) -> None:
    with RawClient(gw.port) as c:
        r = c.request(get("/hop", extra="Connection: keep-alive, X-Custom-Hop\r\n"
                                        "Keep-Alive: timeout=5\r\nTE: trailers\r\n"
                                        "Proxy-Connection: keep-alive\r\nTrailer: X-T\r\n"
                                        "X-Custom-Hop: secret\r\nX-Kept: 1\r\n"))
        assert r.status == 200
    (req,) = echo.requests
    got = names(req.raw_head)
    for gone in ("connection", "keep-alive", "proxy-connection", "trailer", "x-custom-hop"):
        assert gone not in got, (gone, req.raw_head)
    # TE is hop-by-hop, but "trailers" is passed on, as Kong does
    assert req.header_all("te") == ["trailers"], req.raw_head
    assert req.header("x-kept") == "1"
    # end-to-end fields keep their order, Host once
    assert got.count("host") == 1


@pytest.mark.parametrize("option", ["Host", "content-length", "keep-alive, Host"])
def test_connection_naming_a_protected_field_is_rejected(gw: FastgwProcess, echo: EchoUpstream,
                                                         option: str) -> None:
    body = "Content-Length: 5\r\n" if "content" in option.lower() else ""
    with RawClient(gw.port) as c:
        c.send(get("/protected", extra=f"Connection: {option}\r\n{body}")
               + (b"hello" if body else b""))
        r = c.read_response()
        assert r.status == 400
        assert r.header("connection") == "close"
        assert c.closed()
    assert echo.requests == []


def test_forwarded_fields(gw: FastgwProcess, echo: EchoUpstream) -> None:
    with RawClient(gw.port) as c:
        r = c.request(get("/fwd/a?x=1", host="client.example:1234",
                          extra="X-Forwarded-For: 10.0.0.1\r\nX-Forwarded-For: 10.0.0.2\r\n"
                                "X-Forwarded-Proto: https\r\nX-Forwarded-Host: evil\r\n"
                                "X-Forwarded-Port: 1\r\nX-Forwarded-Path: /evil\r\n"
                                "X-Real-IP: 6.6.6.6\r\nVia: 1.0 client-proxy\r\n"))
        assert r.status == 200
        assert r.header("via") is not None and "fastgw" in r.header("via")
    (req,) = echo.requests
    h = headers_of(req.raw_head)
    one = {k: [v for kk, v in h if kk == k] for k, _ in h}
    # appended to the client's list, one field (RFC 9110 5.3 folding)
    assert one["x-forwarded-for"] == ["10.0.0.1, 10.0.0.2, 127.0.0.1"]
    # set by the proxy, never taken from an untrusted client
    assert one["x-forwarded-proto"] == ["http"]
    assert one["x-forwarded-host"] == ["client.example"]
    assert one["x-forwarded-port"] == [str(gw.port)]
    assert one["x-forwarded-path"] == ["/fwd/a"]
    assert one["x-real-ip"] == ["127.0.0.1"]
    assert "1.1 fastgw" in ", ".join(one["via"])


def test_forwarded_for_lines_apart_never_bleed_into_other_fields(gw: FastgwProcess,
                                                                 echo: EchoUpstream) -> None:
    # regression: the proxy used to fold the 2nd X-Forwarded-For (and append the client
    # address) onto whatever field line preceded it ("X-A: 1, 10.0.0.2", "Via: p, 127.0.0.1")
    with RawClient(gw.port) as c:
        r = c.request(get("/fwd", extra="X-Forwarded-For: 10.0.0.1\r\nX-A: 1\r\n"
                                        "X-Forwarded-For: 10.0.0.2\r\nX-B: 2\r\n"))
        assert r.status == 200
    (req,) = echo.requests
    assert req.header_all("x-forwarded-for") == ["10.0.0.1, 10.0.0.2, 127.0.0.1"]
    assert req.header("x-a") == "1" and req.header("x-b") == "2"


def test_content_length_request_arrives_with_content_length(gw: FastgwProcess,
                                                            echo: EchoUpstream) -> None:
    body = b"x" * 1000
    with RawClient(gw.port) as c:
        r = c.request(get("/cl", method="POST", extra="Content-Length: 1000\r\n") + body)
        assert r.status == 200
    (req,) = echo.requests
    assert req.header("content-length") == "1000"
    assert req.header("transfer-encoding") is None
    assert req.body == body and req.complete


def test_chunked_request_is_rechunked(gw: FastgwProcess, echo: EchoUpstream) -> None:
    # extensions and trailers are the client's framing: they must not reach the upstream as is
    chunks = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
    with RawClient(gw.port) as c:
        r = c.request(get("/chunked", method="POST", extra="Transfer-Encoding: chunked\r\n")
                      + chunks)
        assert r.status == 200
        # the connection stays usable: the body ended where the client's framing said
        assert c.request(get("/after")).status == 200
    req = echo.requests[0]
    assert req.header_all("transfer-encoding") == ["chunked"]
    assert req.header("content-length") is None
    assert req.header("x-trailer") is None
    assert req.body == b"hello world" and req.complete
    assert echo.requests[1].path == "/after"


def test_response_hop_by_hop_removed_and_rechunked(gw: FastgwProcess, echo: EchoUpstream) -> None:
    echo.queue(Behaviour(size=100_000, chunked=True,
                         headers=(("Connection", "X-Up-Hop"), ("X-Up-Hop", "1"),
                                  ("Keep-Alive", "timeout=5"), ("X-Up-Kept", "2"))))
    with RawClient(gw.port) as c:
        r = c.request(get("/resp"))
    assert r.status == 200
    assert r.header("x-up-hop") is None and r.header("keep-alive") is None
    assert r.header("x-up-kept") == "2"
    assert r.chunked and r.header("content-length") is None
    assert len(r.body) == 100_000


def test_response_content_length_kept(gw: FastgwProcess, echo: EchoUpstream) -> None:
    echo.queue(Behaviour(size=70_000))
    with RawClient(gw.port) as c:
        r = c.request(get("/resp-cl"))
    assert r.header("content-length") == "70000" and not r.chunked
    assert len(r.body) == 70_000


def test_early_hints_not_forwarded_and_final_response_arrives(gw: FastgwProcess,
                                                              echo: EchoUpstream) -> None:
    echo.queue(Behaviour(early=(103,)))
    with RawClient(gw.port) as c:
        r = c.request(get("/early"), skip_interim=False)
        assert r.status == 200
        assert c.request(get("/early2")).status == 200
