"""Differential (h11) and property (hypothesis) tests of the parser.

- Valid request vectors and hypothesis-generated valid requests: method, target, headers and
  body equal what h11 reports (h11 lowercases names: compared case-insensitively).
- Arbitrary bytes: either parse or raise HttpParseError, never another exception or a hang;
  the same whether fed whole or split.
- Random valid requests split at random points parse to the same events as whole.
"""
from __future__ import annotations

import h11
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastgw._core.http_parser import Data, HttpParseError, RequestParser, ResponseParser
from parser_vectors import collect, load_vectors, run

# valid request vectors h11 cannot take, each with the reason
H11_SKIP = {
    "pipeline-crlf-between": "h11 does not skip an empty line between pipelined requests",
    "te-chunked-uppercase-ok": "h11 reports the Transfer-Encoding value lowercased",
    "host-missing-when-not-required": "h11 requires Host on HTTP/1.1 (fastgw: option off)",
    "duplicate-host-when-not-required": "h11 rejects duplicate Host (fastgw: option off)",
    "upgrade-websocket": "h11 pauses on Upgrade with the rest as trailing data (compared: head only)",
    "leading-empty-line": "h11 does not skip empty lines before a request line",
    "four-leading-empty-lines": "h11 does not skip empty lines before a request line",
    "connect-authority": "h11 switches protocol on CONNECT",
    "connect-ipv6": "h11 switches protocol on CONNECT",
    "connect-stops-pipeline": "h11 switches protocol on CONNECT",
    "expect-100-continue-http10-ignored": "h11 treats Expect on HTTP/1.0 differently",
}


def h11_parse(data: bytes) -> list[tuple]:
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(data)
    out = []
    cur = None
    while True:
        ev = conn.next_event()
        if ev is h11.NEED_DATA or ev is h11.PAUSED:
            break
        if isinstance(ev, h11.Request):
            cur = [ev.method, ev.target, [(n.lower(), v) for n, v in ev.headers.raw_items()], b""]
        elif isinstance(ev, h11.Data):
            cur[3] += ev.data
        elif isinstance(ev, h11.EndOfMessage):
            out.append(tuple(cur))
            if conn.our_state is h11.SEND_RESPONSE or conn.their_state is h11.DONE:
                try:
                    conn.send(h11.Response(status_code=200, headers=[("content-length", "0")]))
                    conn.send(h11.EndOfMessage())
                    conn.start_next_cycle()
                except h11.LocalProtocolError:
                    break
        elif isinstance(ev, h11.ConnectionClosed):
            break
    return out


def fastgw_parse(data: bytes, **opts) -> list[tuple]:
    out = run("request", opts, [data], False)
    assert out.error is None, out.error
    return [(m.head.method, m.head.target, [(n.lower(), v) for n, v in m.head.headers], bytes(m.body))
            for m in out.messages if m.complete]


VALID = [v for v in load_vectors()
         if v.kind == "request" and "error" not in v.expect and v.name not in H11_SKIP
         and not v.options.get("raw_chunks") and v.expect.get("messages")
         and all(m.get("complete", True) for m in v.expect["messages"])]


def test_differential_valid_vectors():
    compared = 0
    for v in VALID:
        ours = fastgw_parse(v.raw, **v.options)
        # h11 stops after a close/HTTP-1.0 exchange; compare what it produced
        theirs = h11_parse(v.raw)
        assert theirs, f"{v.id}: h11 produced nothing"
        assert ours[:len(theirs)] == theirs, f"{v.id}: fastgw {ours} != h11 {theirs}"
        compared += 1
    assert compared >= 60


_tchar = st.sampled_from(list(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"))
token = st.lists(_tchar, min_size=1, max_size=12).map(bytes)
_vchar = st.integers(0x21, 0x7E)
value = st.lists(st.one_of(_vchar, st.just(0x20), st.just(0x09)), max_size=30).map(
    lambda b: bytes(b).strip(b" \t"))
path = st.lists(st.sampled_from(list(b"abcxyz019-._~!$&'()*+,;=:@/%")), max_size=20).map(
    lambda b: b"/" + bytes(b))
reserved = {b"host", b"content-length", b"transfer-encoding", b"connection", b"expect",
            b"upgrade", b"te", b"trailer", b"keep-alive", b"proxy-connection"}


@st.composite
def valid_request(draw):
    method = draw(st.sampled_from([b"GET", b"POST", b"PUT", b"DELETE", b"PATCH", b"X-CUSTOM"]))
    target = draw(path) + draw(st.one_of(st.just(b""), path.map(lambda p: b"?" + p[1:])))
    headers = [(b"Host", draw(st.sampled_from([b"a", b"example.com:8080", b"[::1]"])))]
    for _ in range(draw(st.integers(0, 8))):
        n = draw(token)
        if n.lower() not in reserved:
            headers.append((n, draw(value)))
    body = draw(st.binary(max_size=60))
    chunked = draw(st.booleans())
    if chunked:
        headers.append((b"Transfer-Encoding", b"chunked"))
        cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=3)))
        parts = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)]) if b > a]
        payload = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
    else:
        headers.append((b"Content-Length", b"%d" % len(body)))
        payload = body
    head = b"%s %s HTTP/1.1\r\n" % (method, target) + b"".join(b"%s: %s\r\n" % h for h in headers)
    return head + b"\r\n" + payload, (method, target, headers, body)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_request())
def test_differential_generated(req):
    data, (method, target, headers, body) = req
    ours = fastgw_parse(data)
    assert ours == [(method, target, [(n.lower(), v) for n, v in headers], body)]
    assert ours == h11_parse(data)


@settings(max_examples=300, deadline=None)
@given(valid_request(), st.lists(st.integers(1, 400), max_size=6), st.booleans())
def test_random_splits_same_events(req, cuts, raw_chunks):
    data = req[0] * 2   # two pipelined copies
    whole = run("request", {"raw_chunks": raw_chunks}, [data], False)
    bounds = sorted({c % len(data) for c in cuts} | {0, len(data)})
    split = run("request", {"raw_chunks": raw_chunks},
                [data[a:b] for a, b in zip(bounds, bounds[1:])], False)
    assert whole.error is None and split.error is None
    assert len(whole.messages) == 2
    assert [(m.head, bytes(m.body), m.complete) for m in whole.messages] == \
        [(m.head, bytes(m.body), m.complete) for m in split.messages]


def _merge(events):
    out = []
    for e in events:
        if isinstance(e, Data) and out and isinstance(out[-1], Data):
            out[-1] = Data(out[-1].data + e.data)
        else:
            out.append(e)
    return out


def _feed_all(parser, chunks):
    events = []
    try:
        for c in chunks:
            events += parser.feed(c)
        events += parser.feed_eof()
        return events, None
    except HttpParseError as e:
        assert 400 <= e.status <= 599 and isinstance(e.reason, str)
        return events, e.status


_http_alphabet = st.sampled_from([b"\r\n", b"\r", b"\n", b" ", b"\t", b":", b";", b"0", b"5", b"a",
                                  b"GET / HTTP/1.1\r\n", b"HTTP/1.1 200 OK\r\n", b"Host: a\r\n",
                                  b"Transfer-Encoding: chunked\r\n", b"Content-Length: 3\r\n",
                                  b"\x00", b"\xff", b"\"", b"\\", b"=", b"abc"])
fuzzy = st.one_of(st.binary(max_size=300), st.lists(_http_alphabet, max_size=40).map(b"".join))


@settings(max_examples=500, deadline=None)
@given(fuzzy, st.integers(1, 50), st.booleans())
def test_arbitrary_bytes_parse_or_http_error(data, step, response):
    make = ResponseParser if response else (lambda: RequestParser(require_host=False))
    whole = _feed_all(make(), [data])
    split = _feed_all(make(), [data[i:i + step] for i in range(0, len(data), step)])
    assert whole[1] == split[1]
    if whole[1] is None:
        assert _merge(whole[0]) == _merge(split[0])


def _value_ok(b: int) -> bool:
    return b == 0x09 or 0x20 <= b <= 0x7E or b >= 0x80


def _target_ok(b: int) -> bool:
    return 0x21 <= b <= 0x7E and b != 0x23


def test_every_byte_at_every_word_offset_in_values_and_targets():
    # the 8-bytes-at-a-time scans must agree with the byte tables wherever the byte sits
    for b in range(256):
        if b in (0x0D, 0x0A):
            continue    # line structure, covered by the vectors
        for off in range(0, 19):
            val = b"v" * off + bytes([b]) + b"w" * (17 - off)
            p = RequestParser()
            try:
                (req, _end) = p.feed(b"GET / HTTP/1.1\r\nHost: a\r\nX: " + val + b"\r\n\r\n")
                accepted = True
                assert req.headers[1][1] == val.strip(b" \t")
            except HttpParseError:
                accepted = False
            assert accepted == _value_ok(b), (hex(b), off)
            target = b"/" + b"t" * off + bytes([b]) + b"u" * (17 - off)
            try:
                RequestParser().feed(b"GET " + target + b" HTTP/1.1\r\nHost: a\r\n\r\n")
                accepted = True
            except HttpParseError:
                accepted = False
            assert accepted == _target_ok(b), (hex(b), off, "target")


def test_fuzz_entry_point_runs_clean():
    # the standalone fuzz driver over the seed corpus plus a short mutation run
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "fuzz_parser.py"
    spec = importlib.util.spec_from_file_location("fuzz_parser", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.run_standalone(mod._seed_corpus(), seconds=2.0, seed=7) > 2000
