"""Downstream (HTTP/1.1 framing of the client connection) over mock transports."""
from __future__ import annotations

import pytest

from fastgw._core.proxy import rbuf_pool_stats

from ._mock import OK, Rig, feed, head_of


@pytest.fixture
def rig():
    r = Rig()
    yield r
    r.close()


def test_request_is_rewritten_and_response_reframed(rig: Rig) -> None:
    c, ct = rig.client()
    feed(c, b"GET /a?x=1 HTTP/1.1\r\nHost: example.com\r\nConnection: keep-alive\r\n"
            b"X-Forwarded-For: 10.0.0.1\r\n\r\n")
    up, ut = rig.up()
    line, fields, _ = head_of(ut.take())
    assert line == "GET /a?x=1 HTTP/1.1"
    assert fields["x-forwarded-for"] == "10.0.0.1, 127.0.0.1"
    assert fields["via"] == "1.1 fastgw" and "connection" not in fields
    feed(up, OK)
    line, fields, body = head_of(ct.take())
    assert line == "HTTP/1.1 200 OK" and body == b"hi"
    assert fields["content-length"] == "2" and "date" in fields
    assert not ct.closed and c.exchange is None


def test_head_split_byte_by_byte(rig: Rig) -> None:
    c, ct = rig.client()
    for b in b"GET /b HTTP/1.1\r\nHost: h\r\n\r\n":
        feed(c, bytes([b]))
    _, ut = rig.up()
    assert ut.take().startswith(b"GET /b HTTP/1.1\r\n")


def test_pipelined_request_waits_for_the_previous_response(rig: Rig) -> None:
    c, ct = rig.client()
    feed(c, b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n")
    up, ut = rig.up()
    assert ut.take().startswith(b"GET /1 ")
    assert ut.buffer == b""   # /2 stays in the client's buffer
    feed(up, OK)
    assert ut.take().startswith(b"GET /2 ")   # same (reused) upstream connection
    assert len(rig.ups) == 1
    feed(up, OK)
    assert ct.take().count(b"HTTP/1.1 200 OK") == 2


def test_malformed_head_gets_400_and_close(rig: Rig) -> None:
    c, ct = rig.client()
    feed(c, b"GET / HTTP/1.1\r\nHost: h\r\nBad Header\r\n\r\n")
    line, fields, body = head_of(ct.take())
    assert line.startswith("HTTP/1.1 400 ")
    assert fields["connection"] == "close" and b'"message"' in body
    assert ct.closed and not rig.ups


def test_gateway_404_discards_the_body_then_serves_the_next_request() -> None:
    r = Rig(routes=[{"name": "r", "paths": ["/only"]}])
    try:
        c, ct = r.client()
        feed(c, b"POST /nope HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n")
        assert head_of(ct.take())[0] == "HTTP/1.1 404 Not Found"
        assert c.exchange.state() == ("DISCARDING", "COMPLETE")
        feed(c, b"hello")
        assert c.exchange is None and not ct.closed
        feed(c, b"GET /only HTTP/1.1\r\nHost: h\r\n\r\n")
        assert b"X-Forwarded-Path: /only\r\n" in r.up()[1].take()
    finally:
        r.close()


def test_idle_connection_returns_its_read_buffer(rig: Rig) -> None:
    c, ct = rig.client()
    feed(c, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert c.holds_buffer
    free_before = rbuf_pool_stats()["free"]
    feed(rig.up()[0], OK)
    assert not c.holds_buffer   # idle keep-alive: nothing borrowed
    assert rbuf_pool_stats()["free"] >= free_before


def test_client_backpressure_pauses_the_upstream(rig: Rig) -> None:
    c, ct = rig.client()
    feed(c, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    up, ut = rig.up()
    feed(up, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345")
    c.pause_writing()
    assert not ut.reading
    c.resume_writing()
    assert ut.reading
    feed(up, b"67890")
    assert ct.take().endswith(b"1234567890")


def test_http10_client_gets_close_delimited_body(rig: Rig) -> None:
    c, ct = rig.client()
    feed(c, b"GET / HTTP/1.0\r\nHost: h\r\n\r\n")
    up, _ = rig.up()
    feed(up, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n")
    line, fields, body = head_of(ct.take())
    assert "transfer-encoding" not in fields and fields["connection"] == "close"
    assert body == b"hi" and ct.closed


def test_client_gone_mid_response_closes_the_upstream(rig: Rig) -> None:
    c, ct = rig.client()
    feed(c, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    up, ut = rig.up()
    feed(up, b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
    c.connection_lost(None)
    assert ut.closed   # never pooled half-read
    assert rig.core.active_requests == 0
