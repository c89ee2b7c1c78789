"""Upstream protocol and its pool over mock transports."""
from __future__ import annotations

import pytest

from ._mock import OK, Rig, feed, head_of


@pytest.fixture
def rig():
    r = Rig()
    yield r
    r.close()


def test_chunked_response_is_rechunked_for_http11(rig: Rig) -> None:
    c, ct = rig.client()
    feed(c, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    up, _ = rig.up()
    feed(up, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n")
    feed(up, b"0\r\nTrailer: x\r\n\r\n")
    _, fields, body = head_of(ct.take())
    assert fields["transfer-encoding"] == "chunked"
    assert body == b"3\r\nabc\r\n0\r\n\r\n"      # extensions and trailers not forwarded


def test_connection_is_pooled_and_reused(rig: Rig) -> None:
    for i in range(3):
        c, ct = rig.client()
        feed(c, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        feed(rig.up()[0], OK)
        assert head_of(ct.take())[0] == "HTTP/1.1 200 OK"
    assert len(rig.ups) == 1


def test_bytes_on_an_idle_pooled_connection_close_it(rig: Rig) -> None:
    c, ct = rig.client()
    feed(c, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    up, ut = rig.up()
    feed(up, OK)
    feed(up, b"HTTP/1.1 200 OK\r\n")   # unsolicited
    assert ut.closed
    c2, _ = rig.client()
    feed(c2, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert len(rig.ups) == 2           # the closed one was not reused


def test_close_delimited_response_ends_at_eof(rig: Rig) -> None:
    c, ct = rig.client()
    feed(c, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    up, ut = rig.up()
    feed(up, b"HTTP/1.1 200 OK\r\n\r\nuntil-close")
    up.connection_lost(None)
    _, fields, body = head_of(ct.take())
    assert fields["transfer-encoding"] == "chunked"
    assert body == b"b\r\nuntil-close\r\n0\r\n\r\n"
    assert c.exchange is None and not ct.closed


def test_upstream_silence_is_a_504_but_gateway_pause_is_not(rig: Rig) -> None:
    core = rig.core
    clock = [rig.loop.time()]
    rig.loop.time = lambda: clock[0]           # the sweep's clock, stepped by hand
    c, ct = rig.client()
    feed(c, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    up, ut = rig.up()
    feed(up, b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab")
    c.pause_writing()                          # the client reads slowly: upstream paused
    clock[0] += 3600.0
    core.tick()
    assert not ct.closed                       # paused by us: not the upstream's silence
    c.resume_writing()
    clock[0] += 3600.0
    core.tick()
    assert ct.closed                           # silent for real: truncated (head was sent)
