r"""Reader for nodejs/llhttp's markdown fixtures (/work/shared/vectors/llhttp, see its README.md).

Each case: a heading, `<!-- meta={...} -->`, an ```http block (newlines are CRLF, a trailing
backslash joins lines, `\r` `\n` `\t` `\f` `\xNN` are expanded; the block's final newline is not
input) and a ```log block with llhttp's callback trace. From the trace we rebuild what llhttp
parsed: messages (method, url, version, status, headers, body, complete), and how it ended
(error code/reason, finish result).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

LLHTTP_DIR = Path("/work/shared/vectors/llhttp")

# llhttp error codes that are not rejections of the input but llhttp pausing (an upgrade or
# CONNECT hands the connection over) or refusing bytes after a `close` message: fastgw's
# Python API stops producing events at the same point (trailing_data keeps the bytes).
STOP_CODES = {5, 22}


@dataclass
class LMessage:
    method: bytes | None = None
    url: bytes = b""
    version: tuple[int, int] | None = None
    status: int | None = None
    reason: bytes = b""
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""
    complete: bool = False
    headers_done: bool = False


@dataclass
class LCase:
    id: str
    meta: dict
    raw: bytes
    messages: list[LMessage]
    error: tuple[int, str] | None      # llhttp rejected the input
    stopped: bool                      # llhttp paused (upgrade/CONNECT) or refused data after close
    finish: int | None                 # llhttp_finish() result for *-finish cases (0 ok, 2 error)

    @property
    def kind(self) -> str:
        return "response" if self.meta["type"].startswith("response") else "request"


_BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.S)
_META = re.compile(r"<!--\s*meta=(\{.*?\})\s*-->")


def _expand_input(text: str) -> bytes:
    # llhttp's md-test expands escapes into characters and sends the UTF-8 encoding of the
    # result (so `\xff` is the two bytes C3 BF: see "255 ASCII in header value", len=8)
    text = text[:-1] if text.endswith("\n") else text
    text = re.sub(r"\\\n", "", text)
    text = text.replace("\n", "\r\n")
    return re.sub(r"\\(r|n|t|f|x[0-9a-fA-F]{2})", _esc, text).encode("utf-8")


def _esc(m: re.Match[str]) -> str:
    g = m.group(1)
    if g[0] == "x":
        return chr(int(g[1:], 16))
    return {"r": "\r", "n": "\n", "t": "\t", "f": "\f"}[g]


def _log_str(s: str) -> bytes:
    # the trace prints \r \n \t escaped, single CR/LF bytes as the words cr/lf, and
    # everything else (quotes, backslashes, non-ASCII) as UTF-8 text
    if s in _WORDS:
        return _WORDS[s]
    return re.sub(r"\\(r|n|t|x[0-9a-fA-F]{2})", _esc, s[1:-1]).encode("utf-8")


_WORDS = {"cr": b"\r", "lf": b"\n", "crlf": b"\r\n"}
_SPAN = re.compile(r'^off=\d+ len=\d+ span\[(\w+)\]=(".*"|cr|lf|crlf)$')


def _parse_log(log: str) -> tuple[list[LMessage], tuple[int, str] | None, bool, int | None]:
    msgs: list[LMessage] = []
    error = None
    stopped = False
    finish = None
    cur: LMessage | None = None
    fname = b""
    fval = b""
    proto = b""
    version = b""
    for line in log.splitlines():
        m = _SPAN.match(line)
        if m:
            what, val = m.group(1), _log_str(m.group(2))
            assert cur is not None
            if what == "method":
                cur.method = (cur.method or b"") + val
            elif what == "url":
                cur.url += val
            elif what == "protocol":
                proto += val
            elif what == "version":
                version += val
            elif what == "status":
                cur.reason += val
            elif what == "header_field":
                if cur.headers_done:
                    continue        # trailer fields: fastgw drops them from the decoded body
                fname += val
            elif what == "header_value":
                if cur.headers_done:
                    continue
                fval += val
            elif what == "body":
                cur.body += val
            continue
        words = line.split(" ", 1)
        rest = words[1] if len(words) > 1 else ""
        if rest == "message begin":
            cur = LMessage()
            msgs.append(cur)
            proto = version = fname = fval = b""
        elif rest == "header_value complete":
            if cur is not None and not cur.headers_done:
                cur.headers.append((fname, fval))
            fname = fval = b""
        elif rest.startswith("headers complete"):
            assert cur is not None
            cur.headers_done = True
            mv = re.search(r"v=(\d+)/(\d+)", rest)
            if mv:
                cur.version = (int(mv.group(1)), int(mv.group(2)))
            ms = re.search(r"status=(\d+)", rest)
            if ms:
                cur.status = int(ms.group(1))
        elif rest == "message complete":
            assert cur is not None
            cur.complete = True
        elif rest.startswith("error code="):
            me = re.match(r'error code=(\d+) reason="(.*)"', rest)
            code = int(me.group(1))
            if code in STOP_CODES:
                stopped = True
            else:
                error = (code, me.group(2))
        elif rest.startswith("finish="):
            finish = int(rest.split("=")[1])
    return msgs, error, stopped, finish


def load_cases() -> list[LCase]:
    cases: list[LCase] = []
    for path in sorted(LLHTTP_DIR.glob("*/*.md")):
        text = path.read_text(encoding="utf-8")
        heading = ""
        seen: dict[str, int] = {}
        pos = 0
        # walk headings, metas and code blocks in order
        token = re.compile(r"^(#{1,4}) ([^\n]+)$|<!--\s*meta=(\{.*?\})\s*-->|```(\w+)\n(.*?)```", re.M | re.S)
        meta = None
        raw = None
        for m in token.finditer(text, pos):
            if m.group(1):
                heading = m.group(2).strip()
                meta = raw = None
            elif m.group(3):
                meta = json.loads(m.group(3))
            elif m.group(4) == "http":
                raw = _expand_input(m.group(5))
            elif m.group(4) == "log" and meta is not None and raw is not None:
                rel = f"{path.parent.name}/{path.name}"
                n = seen.get(heading, 0) + 1
                seen[heading] = n
                cid = f"{rel}::{heading}" + (f" #{n}" if n > 1 else "")
                msgs, error, stopped, finish = _parse_log(m.group(5))
                cases.append(LCase(cid, meta, raw, msgs, error, stopped, finish))
                meta = raw = None
    return cases
