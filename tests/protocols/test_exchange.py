"""Exchange states and transitions, driven through a Downstream over mock transports."""
from __future__ import annotations

import logging

import pytest

from ._mock import OK, Rig, feed, head_of


@pytest.fixture
def rig():
    r = Rig()
    yield r
    r.close()


def test_states_through_a_proxied_request(rig: Rig) -> None:
    c, ct = rig.client()
    feed(c, b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nab")
    ex = c.exchange
    assert ex.state() == ("STREAMING", "UPSTREAM")
    feed(c, b"cd")
    assert ex.state() == ("COMPLETE", "UPSTREAM")
    up, ut = rig.up()
    assert ut.take().endswith(b"\r\n\r\nabcd")
    feed(up, b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nok")
    assert ex.state() == ("COMPLETE", "SENDING")
    feed(up, b"!!")
    assert ex.state() == ("COMPLETE", "COMPLETE") and c.exchange is None


def test_illegal_transition_is_logged_and_answered_500(rig: Rig, caplog) -> None:
    c, ct = rig.client()
    feed(c, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    ex = c.exchange
    assert ex.state() == ("COMPLETE", "UPSTREAM")
    with caplog.at_level(logging.ERROR, "fastgw.proxy"):
        assert ex.transition("HEAD", "") is False          # a request never goes back
    assert any("illegal exchange transition" in r.message for r in caplog.records)
    line, fields, _ = head_of(ct.take())
    assert line == "HTTP/1.1 500 Internal Server Error" and fields["connection"] == "close"
    assert ct.closed and rig.up()[1].closed


def test_illegal_transition_after_the_head_closes_the_connection(rig: Rig, caplog) -> None:
    c, ct = rig.client()
    feed(c, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    ex = c.exchange
    up, _ = rig.up()
    feed(up, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12")
    ct.take()
    with caplog.at_level(logging.ERROR, "fastgw.proxy"):
        assert ex.transition("", "NONE") is False          # SENDING -> NONE
    assert ct.closed and ct.buffer == b""                   # truncated, never a false 500


def test_retry_on_reused_connection_reset_for_get(rig: Rig) -> None:
    c, ct = rig.client()
    feed(c, b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\n")
    feed(rig.up()[0], OK)
    ct.take()
    rig.up()[1].take()
    feed(c, b"GET /2 HTTP/1.1\r\nHost: h\r\n\r\n")
    up, ut = rig.up()
    assert len(rig.ups) == 1 and ut.take().startswith(b"GET /2 ")
    up.connection_lost(ConnectionResetError())              # died before answering
    assert len(rig.ups) == 2                                # retried on a new connection
    up2, ut2 = rig.up()
    assert ut2.take().startswith(b"GET /2 ")
    feed(up2, OK)
    assert head_of(ct.take())[0] == "HTTP/1.1 200 OK"


def test_bad_upstream_response_is_502(rig: Rig) -> None:
    c, ct = rig.client()
    feed(c, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    feed(rig.up()[0], b"NOT HTTP\r\n\r\n")
    line, _, body = head_of(ct.take())
    assert line == "HTTP/1.1 502 Bad Gateway"
    assert b"An invalid response was received from the upstream server" in body


def test_websocket_upgrade_becomes_a_tunnel(rig: Rig) -> None:
    c, ct = rig.client()
    feed(c, b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
    up, ut = rig.up()
    _, fields, _ = head_of(ut.take())
    assert fields["upgrade"] == "websocket" and fields["connection"] == "upgrade"
    feed(up, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
             b"Connection: Upgrade\r\n\r\nfrom-up")
    assert c.exchange.state() == ("TUNNEL", "TUNNEL")
    assert ct.take().endswith(b"\r\n\r\nfrom-up")
    feed(c, b"from-client")
    assert ut.take() == b"from-client"


def test_request_buffering_reads_the_body_before_the_upstream() -> None:
    r = Rig(routes=[{"name": "r", "paths": ["/"]}])     # Kong's default: request_buffering
    try:
        c, ct = r.client()
        feed(c, b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
        assert c.exchange.state() == ("BUFFERING", "NONE") and not r.ups
        feed(c, b"0\r\n\r\n")
        assert c.exchange.state() == ("COMPLETE", "UPSTREAM")
        _, fields, body = head_of(r.up()[1].take())
        assert fields["content-length"] == "3" and "transfer-encoding" not in fields
        assert body == b"abc"
    finally:
        r.close()


def test_request_buffering_rejects_broken_framing_with_nothing_sent() -> None:
    r = Rig(routes=[{"name": "r", "paths": ["/"]}])
    try:
        c, ct = r.client()
        feed(c, b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n")
        assert head_of(ct.take())[0] == "HTTP/1.1 400 Bad Request"
        assert ct.closed and not r.ups
    finally:
        r.close()
