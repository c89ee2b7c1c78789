"""Replay every vector in tests/parser/vectors/ whole, byte by byte and at seeded random split
points; the outcome must be the expected one every way (see parser_vectors.py for the format)."""
from __future__ import annotations

import pytest

from fastgw._core.http_parser import (
    Data,
    EndOfMessage,
    HttpParseError,
    Request,
    RequestParser,
    ResponseParser,
)
from parser_vectors import check_outcome, load_vectors, run, splits

VECTORS = load_vectors()


def test_vector_count_and_coverage():
    # the brief asks for >= 150 vectors of our own, valid and invalid, requests and responses
    assert len(VECTORS) >= 150
    assert sum("error" in v.expect for v in VECTORS) >= 60
    assert sum("error" not in v.expect for v in VECTORS) >= 60
    assert {v.kind for v in VECTORS} == {"request", "response"}


@pytest.mark.parametrize("v", VECTORS, ids=lambda v: v.id)
def test_vector(v):
    for i, chunks in enumerate(splits(v.raw, v.id)):
        how = "whole" if i == 0 else "byte-by-byte" if i == 1 else f"split {[len(c) for c in chunks]}"
        check_outcome(v, run(v.kind, v.options, chunks, v.eof), how)


def test_error_is_value_error_with_status():
    p = RequestParser()
    with pytest.raises(ValueError) as ei:
        p.feed(b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n")
    assert isinstance(ei.value, HttpParseError)
    assert ei.value.status == 400 and "Content-Length" in ei.value.reason


def test_events_types_and_order():
    p = RequestParser()
    evs = p.feed(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nab")
    assert [type(e) for e in evs] == [Request, Data, EndOfMessage]
    assert evs[1] == Data(b"ab")


def test_decode_in_place_keeps_following_message():
    # decoded chunk data is compacted in the buffer; the next request must be intact
    p = RequestParser()
    evs = p.feed(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"3;e=1\r\nabc\r\n2\r\nde\r\n0\r\n\r\nGET /n HTTP/1.1\r\nHost: h\r\n\r\n")
    assert b"".join(e.data for e in evs if isinstance(e, Data)) == b"abcde"
    assert [e.target for e in evs if isinstance(e, Request)] == [b"/", b"/n"]


def test_response_request_method_survives_interim_response():
    p = ResponseParser()
    p.set_request_method(b"HEAD")
    evs = p.feed(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n"
                 b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    assert [type(e).__name__ for e in evs] == ["Response", "EndOfMessage"] * 3


def test_limits_are_options_and_defaults():
    p = RequestParser()
    assert (p.max_start_line, p.max_header_line, p.max_head, p.max_headers, p.max_chunk_ext) == (
        8192, 8192, 32768, 100, 1024)
    assert p.require_host is True and p.raw_chunks is False
    with pytest.raises(ValueError):
        RequestParser(max_headers=10_000)


def test_default_limits_enforced():
    p = RequestParser()
    head = b"GET / HTTP/1.1\r\nHost: h\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(101)) + b"\r\n"
    with pytest.raises(HttpParseError) as ei:
        p.feed(head)
    assert ei.value.status == 431
    with pytest.raises(HttpParseError) as ei:
        RequestParser().feed(b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n")
    assert ei.value.status == 414
