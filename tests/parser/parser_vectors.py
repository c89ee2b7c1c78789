r"""Loading and replaying fastgw's parser vectors (tests/parser/vectors/*.yaml).

Vector file format (YAML):

    kind: request | response          # default for every vector in the file
    vectors:
      - name: unique-kebab-name
        reason: one line: why this case matters
        kind: response                  # optional override
        options: {require_host: false, max_headers: 3, raw_chunks: true, request_method: HEAD}
        raw: 'GET / HTTP/1.1\r\nHost: a\r\n\r\n'     # or a list of such strings, concatenated
        eof: true                       # optional: call feed_eof() after the input
        expect:
          error: 400                    # the input must be rejected with this status ...
          # ... or the messages it parses to (only the keys given are compared):
          messages:
            - {method: GET, target: /, version: [1, 1], headers: [[Host, a]], keep_alive: true,
               expect_continue: false, upgrade: false, body: '', body_kind: none,
               content_length: -1, complete: true, status: 200, reason: OK}
          trailing: ''                  # optional: bytes left after HTTP stopped on the connection

Escaping convention for `raw`, `body`, header names/values, target, reason: the YAML string is
taken literally (use single quotes), then `\r`, `\n`, `\t`, `\0`, `\xNN` and `\\` are expanded;
nothing else is added (no implicit CRLF). The result is encoded as latin-1 bytes.
`complete` is true when the message's EndOfMessage was seen (default expected: true).
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fastgw._core.http_parser import (
    Data,
    EndOfMessage,
    HttpParseError,
    Request,
    RequestParser,
    Response,
    ResponseParser,
)

VECTOR_DIR = Path(__file__).resolve().parent / "vectors"
BODY_KINDS = {"none": 0, "length": 1, "chunked": 2, "until_close": 3}
_ESC = re.compile(rb"\\(x[0-9a-fA-F]{2}|[rnt0\\])")


def unescape(s: str) -> bytes:
    raw = s.encode("latin-1")

    def sub(m: re.Match[bytes]) -> bytes:
        g = m.group(1)
        if g[:1] == b"x":
            return bytes([int(g[1:], 16)])
        return {b"r": b"\r", b"n": b"\n", b"t": b"\t", b"0": b"\0", b"\\": b"\\"}[g]

    return _ESC.sub(sub, raw)


@dataclass
class Vector:
    file: str
    name: str
    reason: str
    kind: str
    raw: bytes
    options: dict[str, Any]
    expect: dict[str, Any]
    eof: bool = False

    @property
    def id(self) -> str:
        return f"{self.file}:{self.name}"


def load_vectors() -> list[Vector]:
    out: list[Vector] = []
    names: set[str] = set()
    for path in sorted(VECTOR_DIR.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        for v in doc["vectors"]:
            raw = v["raw"]
            raw_b = b"".join(unescape(x) for x in raw) if isinstance(raw, list) else unescape(raw)
            assert v["name"] not in names, f"duplicate vector name {v['name']}"
            names.add(v["name"])
            assert v.get("reason"), f"{v['name']}: every vector states its reason"
            out.append(Vector(path.stem, v["name"], v["reason"], v.get("kind", doc.get("kind")),
                              raw_b, dict(v.get("options") or {}), v["expect"], bool(v.get("eof"))))
    return out


@dataclass
class Message:
    head: Any
    body: bytearray = field(default_factory=bytearray)
    complete: bool = False


@dataclass
class Outcome:
    messages: list[Message]
    error: HttpParseError | None
    trailing: bytes


def make_parser(kind: str, options: dict[str, Any]):
    opts = dict(options)
    method = opts.pop("request_method", None)
    if kind == "request":
        return RequestParser(**opts)
    p = ResponseParser(**opts)
    if method:
        p.set_request_method(method.encode())
    return p


def collect(events: list, messages: list[Message]) -> None:
    for ev in events:
        if isinstance(ev, (Request, Response)):
            messages.append(Message(ev))
        elif isinstance(ev, Data):
            assert messages and not messages[-1].complete, "Data outside a message"
            messages[-1].body += ev.data
        elif isinstance(ev, EndOfMessage):
            assert messages and not messages[-1].complete, "EndOfMessage outside a message"
            messages[-1].complete = True
        else:
            raise AssertionError(f"unknown event {ev!r}")


def run(kind: str, options: dict[str, Any], chunks: list[bytes], eof: bool) -> Outcome:
    parser = make_parser(kind, options)
    messages: list[Message] = []
    try:
        for c in chunks:
            collect(parser.feed(c), messages)
        if eof:
            collect(parser.feed_eof(), messages)
    except HttpParseError as e:
        # the parser stays failed
        for again in (lambda: parser.feed(b"x"), parser.feed_eof):
            try:
                again()
            except HttpParseError as e2:
                assert e2.status == e.status
            else:
                raise AssertionError("parser accepted input after an error")
        return Outcome(messages, e, b"")
    return Outcome(messages, None, parser.trailing_data)


def splits(data: bytes, seed: str) -> list[list[bytes]]:
    """Whole, byte by byte, and 6 seeded random splittings."""
    ways = [[data], [data[i:i + 1] for i in range(len(data))]]
    rnd = random.Random(seed)
    for _ in range(6):
        if len(data) < 2:
            break
        cuts = sorted(rnd.sample(range(1, len(data)), min(len(data) - 1, rnd.randint(1, 4))))
        bounds = [0, *cuts, len(data)]
        ways.append([data[a:b] for a, b in zip(bounds, bounds[1:])])
    return ways


def check_outcome(v: Vector, out: Outcome, how: str) -> None:
    exp = v.expect
    if "error" in exp:
        assert out.error is not None, f"{v.id} [{how}]: accepted, expected {exp['error']}; got {out.messages}"
        assert out.error.status == exp["error"], f"{v.id} [{how}]: {out.error}"
        return
    assert out.error is None, f"{v.id} [{how}]: unexpected error {out.error}"
    want = exp.get("messages", [])
    got = out.messages
    assert len(got) == len(want), f"{v.id} [{how}]: {len(got)} messages, want {len(want)}: {got}"
    for i, (m, w) in enumerate(zip(got, want)):
        check_message(f"{v.id} [{how}] message {i}", m, w)
    if "trailing" in exp:
        assert out.trailing == unescape(exp["trailing"]), f"{v.id} [{how}]: trailing {out.trailing!r}"


def check_message(where: str, m: Message, w: dict[str, Any]) -> None:
    h = m.head
    for key, val in w.items():
        if key == "body":
            got: Any = bytes(m.body)
            val = unescape(val)
        elif key == "complete":
            got = m.complete
        elif key in ("method", "target", "reason"):
            got = getattr(h, key)
            val = unescape(val)
        elif key == "headers":
            got = h.headers
            val = [(unescape(a), unescape(b)) for a, b in val]
        elif key == "version":
            got, val = h.version, tuple(val)
        elif key == "body_kind":
            got, val = h.body_kind, BODY_KINDS[val]
        else:
            got = getattr(h, key)
        assert got == val, f"{where}: {key} = {got!r}, want {val!r}"
    if "complete" not in w:
        assert m.complete, f"{where}: message not complete"
