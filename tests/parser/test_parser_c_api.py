"""C-level results the proxy reads (through the _probe_request test hook): header kinds,
hop-by-hop flags, path/authority spans, start_off, find_header."""
from __future__ import annotations

from fastgw._core.http_parser import _probe_request


def test_kinds_and_hop_flags():
    head = (b"GET /p?q=1 HTTP/1.1\r\nHOST: a\r\nConnection: keep-alive, X-Secret , upgrade\r\n"
            b"x-secret: s\r\nUpgrade: h2c\r\nTE: trailers\r\nKeep-Alive: 5\r\nProxy-Connection: x\r\n"
            b"Trailer: T\r\nX-Forwarded-For: 1.2.3.4\r\nX-Forwarded-Proto: https\r\n"
            b"X-Forwarded-Host: h\r\nX-Forwarded-Port: 1\r\nX-Forwarded-Path: /\r\nX-Real-IP: 1\r\n"
            b"Via: 1.1 x\r\nCookie: c=1\r\nDate: d\r\nServer: s\r\nExpect: 100-continue\r\n"
            b"Content-Length: 0\r\nX-Other: 1\r\n\r\n")
    r = _probe_request(head)
    names = [n.lower() for n, _ in r["headers"]]
    kinds = dict(zip(names, r["kinds"]))
    # HeaderKind order from http_parser.pxd
    order = [b"", b"host", b"content-length", b"transfer-encoding", b"connection", b"keep-alive",
             b"proxy-connection", b"te", b"trailer", b"upgrade", b"expect", b"x-forwarded-for",
             b"x-forwarded-proto", b"x-forwarded-host", b"x-forwarded-port", b"x-forwarded-path",
             b"x-real-ip", b"via", b"cookie", b"date", b"server"]
    for name, kind in kinds.items():
        assert kind == (order.index(name) if name in order else 0), name
    hop = dict(zip(names, r["hop"]))
    assert {n for n, h in hop.items() if h} == {
        b"connection", b"x-secret", b"upgrade", b"te", b"keep-alive", b"proxy-connection", b"trailer"}
    assert r["host_index"] == 0 and r["find"] == b"a"
    assert r["path"] == b"/p" and r["authority"] == b"" and r["method_id"] == 1


def test_find_header_case_insensitive_first_value():
    r = _probe_request(b"GET / HTTP/1.1\r\nX-A: 1\r\nx-a: 2\r\n\r\n", b"x-a")
    assert r["find"] == b"1"
    assert _probe_request(b"GET / HTTP/1.1\r\n\r\n", b"x-a")["find"] is None


def test_absolute_and_authority_form_spans():
    r = _probe_request(b"GET http://Example.com:8080/a/b?c HTTP/1.1\r\nHost: x\r\n\r\n")
    assert r["authority"] == b"Example.com:8080"
    r = _probe_request(b"CONNECT db.internal:5432 HTTP/1.1\r\nHost: db.internal:5432\r\n\r\n")
    assert r["authority"] == b"db.internal:5432" and r["method_id"] == 8


def test_leading_crlf_start_off():
    r = _probe_request(b"\r\n\r\nPUT /x HTTP/1.1\r\nHost: a\r\n\r\n")
    assert r["start_off"] == 4 and r["method"] == b"PUT" and r["head_len"] == 4 + 28


def test_incomplete_and_error_returns():
    assert _probe_request(b"GET / HTTP/1.1\r\nHost: a\r\n") == (0, 0, None)
    assert _probe_request(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", require_host=True)[:2] == (-1, 400)
