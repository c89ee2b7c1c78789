"""Bounded fuzz run of the whole gateway over real sockets (hypothesis).

Requests are generated from a grammar of the shapes that smuggle or confuse (duplicate and
conflicting framing fields, Transfer-Encoding variants, obs-fold, bare CR/LF, whitespace before
the colon, bad chunk sizes, pipelined follow-ups), then sent byte-exact to a real gateway with a
recording upstream behind it. Properties, for every input:
- the gateway answers with a well-formed HTTP/1.1 status line or closes, within a bound;
- whatever reached the upstream is unambiguous: one framing (Content-Length XOR chunked), never
  both, no obs-fold, no header name with whitespace or underscores smuggled through, no h2c
  upgrade, and the body the upstream got has the length its framing announced;
- the gateway stays alive and serves a normal request after it.
"""
from __future__ import annotations

import re
import socket
from typing import Iterator

import pytest
from _util import RawClient, get, kong, route, service
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from servers import EchoUpstream, FastgwProcess

STATUS_LINE = re.compile(rb"^HTTP/1\.1 [1-5]\d\d [^\r\n]*\r\n")


@pytest.fixture(scope="module")
def fuzz_gw(echo_mod: EchoUpstream) -> Iterator[FastgwProcess]:
    cfg = kong(service("echo", echo_mod.url("/"), [route("r", paths=["/"], strip_path=False)]))
    with FastgwProcess(cfg) as p:
        yield p


framing_names = st.sampled_from([
    "Content-Length", "content-length", "Transfer-Encoding", "transfer-encoding",
    "Transfer_Encoding", "Content_Length", "Content-Length ", " Transfer-Encoding", "Trailer", "TE",
])
framing_values = st.sampled_from([
    "0", "5", "6", "+5", "-1", "5, 5", "5,6", "0x5", "99999999999999999999", "",
    "chunked", "Chunked", "chunked, identity", "identity, chunked", "gzip, chunked", "chunked ",
    " chunked", "\tchunked", "chunked\r\n X: y", "xchunked",
])
other = st.sampled_from([
    ("X-A", "1"), ("X_Forwarded_For", "6.6.6.6"), ("X_A", "1"), ("Connection", "close"),
    ("Connection", "Upgrade, HTTP2-Settings"), ("Upgrade", "h2c"), ("HTTP2-Settings", "AAMAAABkAAQAoAAAAAIAAAAA"),
    ("Expect", "100-continue"), ("Host", "example.test"), ("X-B", "a\x00b"), ("X-B", "a\rb"),
    ("X-C", "é"), ("X-D", "v\r\n\tfolded"), ("Connection", "keep-alive, X-A"),
])
header = st.one_of(
    st.tuples(framing_names, framing_values, st.sampled_from([": ", ":", " : ", ":\t"])),
    other.map(lambda nv: (nv[0], nv[1], ": ")),
)
bodies = st.sampled_from([
    b"", b"hello", b"0\r\n\r\n", b"5\r\nhello\r\n0\r\n\r\n", b"5\r\nhello\r\n0\r\n",
    b"g\r\nhello\r\n0\r\n\r\n", b"5;ext=1\r\nhello\r\n0\r\n\r\n", b"5\nhello\n0\n\n",
    b"ffffffffffffffffff\r\n", b"5\r\nhelloXX0\r\n\r\n",
    b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
])
# Mostly well-formed request lines (repeated entries weigh the draw), so that most inputs reach
# the header and framing rules instead of dying on the request line.
line_end = st.sampled_from(["\r\n"] * 6 + ["\n", "\r"])
request = st.tuples(
    st.sampled_from(["GET", "POST", "POST", "PUT", "G ET", "CONNECT"]),
    st.sampled_from(["/f"] * 4 + ["/f?q=1", "http://example.test/f", "*", "/f#frag", "/f%00", "//f"]),
    st.sampled_from(["HTTP/1.1"] * 6 + ["HTTP/1.0", "HTTP/1.2", "HTTP/2.0", "http/1.1"]),
    st.lists(header, max_size=3),
    line_end,
    bodies,
    st.booleans(),  # a pipelined well-formed request after it
)
forwarded = []  # requests that reached the upstream over the whole run


def _raw(method: str, target: str, version: str, headers: list, eol: str, body: bytes,
         follow: bool) -> bytes:
    lines = [f"{method} {target} {version}", "Host: example.test"]
    lines += [f"{n}{sep}{v}" for n, v, sep in headers]
    head = (eol.join(lines) + eol + eol).encode("latin-1", "replace")
    return head + body + (get("/after") if follow else b"")


def _check_upstream(echo: EchoUpstream) -> None:
    for req in echo.requests:
        forwarded.append(req.path)
        head = req.raw_head
        lines = head.split(b"\r\n")[1:]
        fields = [ln.split(b":", 1)[0].lower() for ln in lines if ln]
        assert all(not ln[:1].isspace() for ln in lines if ln), head        # no obs-fold
        assert all(re.fullmatch(rb"[!#$%&'*+.^`|~0-9a-z-]+", n) for n in fields), head
        cl, te = fields.count(b"content-length"), fields.count(b"transfer-encoding")
        assert not (cl and te) and cl <= 1 and te <= 1, head
        # h2c is never tunnelled past routing and plugins (h2c smuggling)
        assert b"http2-settings" not in fields and b"h2c" not in (req.header("upgrade") or "").lower().encode(), head
        if req.complete and cl:
            assert req.body_len == int(req.header("content-length")), head


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(request)
def test_gateway_fuzz(fuzz_gw: FastgwProcess, echo: EchoUpstream, req: tuple) -> None:
    echo.clear()
    with RawClient(fuzz_gw.port, timeout=3.0) as c:
        try:
            c.send(_raw(*req))
            c.sock.shutdown(socket.SHUT_WR)
            data = c.read_all()
        except ConnectionResetError:
            data = b""
        except socket.timeout:
            pytest.fail(f"no answer and no close within 3 s for {req!r}")
    assert data == b"" or STATUS_LINE.match(data), (req, data[:200])
    _check_upstream(echo)
    assert fuzz_gw.returncode is None, "the gateway died"
    with RawClient(fuzz_gw.port) as c:
        assert c.request(get("/alive")).status == 200


def test_the_fuzz_run_reached_the_upstream() -> None:
    # a grammar that only produced rejected requests would prove nothing about forwarding
    assert len(forwarded) >= 30, len(forwarded)
