"""nodejs/llhttp's fixture suite (/work/shared/vectors/llhttp) run against fastgw's parser.

Every case is compared (require_host off): accepted or rejected, method/target/status/reason,
version, header names and values, body bytes, number of messages, completeness. Fed whole and
byte by byte. Header values are compared after removing trailing OWS from llhttp's spans
(llhttp reports "close\\t"; RFC 9110 5.5 says OWS is not part of the value, and fastgw's contract
is trimmed values). Where fastgw deliberately differs, the case is listed in DEVIATIONS below with
its reason, and the listed outcome is asserted instead.

Comparison rules:
- llhttp error codes 5 (data after `Connection: close`) and 22 (pause on CONNECT/Upgrade) are not
  rejections: fastgw's Python API stops producing events at the same point.
- When llhttp rejects an input that stops before fastgw can decide (e.g. "GET / HTTP/5.6"
  without CRLF: llhttp fails on the version, fastgw waits for the line end), the connection
  closing is part of the comparison: fastgw must reject at feed_eof().
- `*-finish` cases call feed_eof(): finish=2 is an error, 0/1 a clean end.
- `lenient-*` cases ran llhttp with a leniency flag; fastgw has none, so each is listed.
"""
from __future__ import annotations

import pytest

from fastgw._core.http_parser import (
    Data,
    HttpParseError,
    Request,
    RequestParser,
    Response,
    ResponseParser,
)
from llhttp_cases import LLHTTP_DIR, LCase, load_cases

if not LLHTTP_DIR.is_dir():  # pragma: no cover - the suite ships in /work/shared
    pytest.skip("llhttp fixtures not present", allow_module_level=True)

CASES = load_cases()

_FOLD = "obs-fold is rejected (RFC 9112 5.2: a proxy must not forward it; llhttp-lenient-headers)"
_BARE = "bare LF / CR as a line end is rejected (RFC 9112 2.2: a proxy must not guess)"
_TE = "only exactly `Transfer-Encoding: chunked` is accepted (fastgw rule; else 501/502)"
_ICE = "only HTTP/1.0 and 1.1 are parsed: RTSP/ICE are not proxied"

# case id -> (fastgw outcome, reason). Outcomes: "reject" (fastgw rejects where llhttp accepts,
# possibly at EOF), "accept" (fastgw accepts where llhttp rejects), "stop" (fastgw stops HTTP
# after the first message where llhttp went on), "skip" (cannot be compared).
DEVIATIONS: dict[str, tuple[str, str]] = {
    # --- leniency flags llhttp turned on for these cases
    "request/connection.md::Resetting flags when keep-alive is off (1.0, lenient)":
        ("stop", "llhttp lenient-keep-alive parses past an HTTP/1.0 close; fastgw stops there"),
    "request/connection.md::Multiple tokens with folding": ("reject", _FOLD),
    "request/connection.md::Multiple tokens with folding, LWS, and CRLF": ("reject", _FOLD),
    "request/connection.md::Invalid whitespace token with `Connection` header field (lenient)":
        ("reject", "whitespace before the colon (RFC 9112 5.1: MUST reject)"),
    "request/content-length.md::Invalid whitespace token with `Content-Length` header field (lenient)":
        ("reject", "whitespace before the colon (RFC 9112 5.1: MUST reject)"),
    "request/content-length.md::No error on simultaneous `Content-Length` and `Transfer-Encoding: identity` (lenient)":
        ("reject", "CL together with TE is the classic smuggling shape"),
    "request/content-length.md::Missing CRLF-CRLF before body (lenient)": ("reject", _BARE),
    "request/invalid.md::Headers separated by dummy characters (lenient)": ("reject", _BARE),
    "request/invalid.md::Only LFs present (lenient)": ("reject", _BARE),
    "request/invalid.md::Spaces before headers (lenient)": ("reject", _FOLD),
    "request/sample.md::Line folding in header value with CRLF": ("reject", _FOLD),
    "request/sample.md::No LF after CR (lenient)": ("reject", _BARE),
    "request/sample.md::X-SSL-Nonsense": ("reject", _FOLD),
    "request/transfer-encoding.md::POST with `Transfer-Encoding` and `Content-Length` (lenient)":
        ("reject", "CL with TE; also a '#' fragment in the target"),
    "request/transfer-encoding.md::POST with `chunked` before other transfer-coding (lenient)":
        ("reject", _TE),
    "request/transfer-encoding.md::POST with `chunked` and duplicate transfer-encoding (lenient)":
        ("reject", _TE),
    "request/transfer-encoding.md::Chunk header not terminated by CRLF (lenient)": ("reject", _BARE),
    "request/transfer-encoding.md::Chunk data not terminated by CRLF (lenient)":
        ("reject", "chunk data must be followed by CRLF (RFC 9112 7.1)"),
    "request/transfer-encoding.md::Space after chunk header (lenient)":
        ("reject", "no BWS after chunk-size (same as llhttp without its leniency flag)"),
    "response/invalid.md::Bare CR after response line (lenient)": ("reject", _BARE),
    "response/invalid.md::Only LFs present and no body (lenient)": ("reject", _BARE),
    "response/invalid.md::Only LFs present (lenient)": ("reject", _BARE),
    "response/sample.md::No carriage ret (lenient)": ("reject", _BARE),
    "response/transfer-encoding.md::Invalid OBS fold after chunked value": ("reject", _FOLD),
    # --- fastgw is stricter than llhttp's defaults
    "request/method.md::M-SEARCH request":
        ("reject", "asterisk-form only for OPTIONS (RFC 9112 3.2.4); SSDP is not proxied"),
    "request/method.md::SOURCE request with ICE": ("reject", _ICE),
    "request/method.md::OPTIONS request with RTSP": ("reject", _ICE),
    "request/method.md::ANNOUNCE request with RTSP": ("reject", _ICE),
    "response/sample.md::RTSP response": ("reject", _ICE),
    "response/sample.md::ICE response": ("reject", _ICE),
    "request/sample.md::No HTTP version":
        ("reject", "HTTP/0.9 request lines are 400 (fastgw rule; llhttp assumes 0.9)"),
    "response/sample.md::HTTP version 0.9": ("reject", "only HTTP/1.0 and 1.1 (505 -> 502)"),
    "request/transfer-encoding.md::POST with `chunked` as last transfer-encoding":
        ("reject", "'#' fragment in the target, and `deflate, chunked` is not exactly chunked"),
    "request/transfer-encoding.md::POST with `chunked` as last transfer-encoding (multiple headers)":
        ("reject", "'#' fragment in the target, and two TE fields are not exactly chunked"),
    "request/uri.md::Fragment in URI": ("reject", "a request target never carries '#' (RFC 9112 3.2)"),
    "request/uri.md::`host:port` and basic auth":
        ("reject", "userinfo in an http URI is rejected (RFC 9110 4.2.4)"),
    "response/transfer-encoding.md::`chunked` before other transfer-encoding": ("reject", _TE),
    "response/transfer-encoding.md::multiple transfer-encoding where chunked is not the last one":
        ("reject", _TE),
    "response/transfer-encoding.md::`chunkedchunked` transfer-encoding does not enable chunked enconding":
        ("reject", _TE + "; llhttp reads the body until close"),
    # --- fastgw is more lenient than llhttp
    "request/invalid.md::Invalid method":
        ("accept", "any token is a method (RFC 9110 9.1); llhttp knows a fixed list"),
    "request/invalid.md::HTTP protocol and ANNOUNCE method":
        ("accept", "any token is a method (RFC 9110 9.1); llhttp ties ANNOUNCE to RTSP"),
    # --- not comparable
    "request/content-length.md::Content-Length reset when no body is received":
        ("skip", "llhttp's on_headers_complete returns 1 (skip body) for a request: a callback "
                 "feature with no fastgw equivalent"),
}


def run_fastgw(c: LCase, chunks: list[bytes], eof: bool):
    if c.kind == "request":
        p = RequestParser(require_host=False)
    else:
        p = ResponseParser()
        if c.meta.get("skipBody"):
            p.set_request_method(b"HEAD")  # llhttp skips the body the way a HEAD response has none
    events: list = []
    err = None
    try:
        for ch in chunks:
            events += p.feed(ch)
        if eof:
            events += p.feed_eof()
    except HttpParseError as e:
        err = e
    msgs: list[list] = []
    for e in events:
        if isinstance(e, (Request, Response)):
            msgs.append([e, b"", False])
        elif isinstance(e, Data):
            msgs[-1][1] += e.data
        else:
            msgs[-1][2] = True
    return msgs, err, p.trailing_data


def compare(c: LCase, chunks: list[bytes]) -> list[str]:
    llhttp_rejects = c.error is not None or c.finish == 2
    eof = c.finish is not None or c.error is not None
    msgs, err, _ = run_fastgw(c, chunks, eof)
    problems = []
    if llhttp_rejects != (err is not None):
        problems.append(f"llhttp {'rejects %s' % (c.error,) if llhttp_rejects else 'accepts'}, "
                        f"fastgw {'rejects: %s' % err if err else 'accepts'}")
    lmsgs = [m for m in c.messages if m.headers_done]
    if c.finish in (0, 1) and lmsgs:
        lmsgs[-1].complete = True   # finish() ended an until-close body cleanly
    if not llhttp_rejects and err is None and len(msgs) != len(lmsgs):
        problems.append(f"{len(msgs)} messages, llhttp {len(lmsgs)}")
    for i, ((h, body, complete), m) in enumerate(zip(msgs, lmsgs)):
        if c.kind == "request":
            got, want = (h.method, h.target), (m.method, m.url)
        else:
            got, want = (h.status, h.reason), (m.status, m.reason)
        want_headers = [(n, v.rstrip(b" \t")) for n, v in m.headers]
        for what, a, b in (("start line", got, want), ("version", h.version, m.version),
                           ("headers", h.headers, want_headers), ("body", body, m.body)):
            if a != b:
                problems.append(f"message {i} {what}: {a!r} != llhttp {b!r}")
        if not llhttp_rejects and complete != m.complete:
            problems.append(f"message {i} complete {complete} != llhttp {m.complete}")
    return problems


def test_suite_loaded():
    assert len(CASES) >= 200
    ids = {c.id for c in CASES}
    assert not set(DEVIATIONS) - ids, f"stale DEVIATIONS entries: {set(DEVIATIONS) - ids}"


@pytest.mark.parametrize("c", CASES, ids=lambda c: c.id)
def test_llhttp_case(c: LCase):
    dev = DEVIATIONS.get(c.id)
    whole = [c.raw]
    bytewise = [c.raw[i:i + 1] for i in range(len(c.raw))]
    if dev is None:
        for chunks in (whole, bytewise):
            problems = compare(c, chunks)
            assert not problems, "\n".join(problems)
        return
    outcome, reason = dev
    assert reason
    if outcome == "skip":
        pytest.skip(reason)
    for chunks in (whole, bytewise):
        msgs, err, trailing = run_fastgw(c, chunks, eof=True)
        if outcome == "reject":
            assert err is not None, f"listed as rejected ({reason}) but fastgw accepts"
        elif outcome == "accept":
            assert err is None and msgs and all(m[2] for m in msgs), \
                f"listed as accepted ({reason}) but fastgw: {err}"
            assert c.error is not None   # llhttp does reject it
        elif outcome == "stop":
            assert err is None and len(msgs) < len(c.messages) and trailing
        # the deviation is real: the plain comparison must fail
        assert compare(c, whole), "listed deviation but fastgw agrees with llhttp: remove it"
