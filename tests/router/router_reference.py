"""A deliberately simple pure-Python router with the same rules as fastgw._core.router.

No indexes, no prefilters, no byte tricks: every candidate is sorted by a tuple and tried in
order with plain str operations. Used by the differential test; written from the rules in the
router's module docstring (Kong 3 traditional_compatible), not from its code.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

UNRESERVED = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def pct_normalize(s: str) -> str:
    out = []
    i = 0
    while i < len(s):
        trip = s[i : i + 3]
        if len(trip) == 3 and trip[0] == "%" and all(c in "0123456789abcdefABCDEF" for c in trip[1:]):
            ch = chr(int(trip[1:], 16))
            out.append(ch if ch in UNRESERVED else trip.upper())
            i += 3
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def remove_dot_segments(s: str) -> str:
    # RFC 3986 5.2.4, written as the RFC's string rewriting loop
    inp, out = s, ""
    while inp:
        if inp.startswith("../"):
            inp = inp[3:]
        elif inp.startswith("./"):
            inp = inp[2:]
        elif inp.startswith("/./"):
            inp = inp[2:]
        elif inp == "/.":
            inp = "/"
        elif inp.startswith("/../") or inp == "/..":
            inp = "/" + inp[4:] if inp.startswith("/../") else "/"
            out = out[: out.rfind("/")] if "/" in out else ""
        elif inp in (".", ".."):
            inp = ""
        else:
            j = inp.find("/", 1)
            seg, inp = (inp, "") if j < 0 else (inp[:j], inp[j:])
            out += seg
    return out


def normalize(path: str) -> str:
    return remove_dot_segments(pct_normalize(path))


@dataclass
class Spec:
    key: Any
    hosts: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)
    headers: dict[str, list[str]] = field(default_factory=dict)
    regex_priority: int = 0
    strip_path: bool = True
    preserve_host: bool = False
    path_handling: str = "v0"
    service_path: str | None = None
    order: int = 0


@dataclass
class Result:
    key: Any
    upstream_path: str
    preserve_host: bool
    captures: tuple
    named_captures: dict


def _host_ok(spec: Spec, req_host: str | None) -> bool:
    if not spec.hosts:
        return True
    if not req_host:
        return False
    req_host = req_host.lower()
    port = None
    if ":" in req_host and req_host.rsplit(":", 1)[1].isdigit():
        req_host, p = req_host.rsplit(":", 1)
        port = int(p)
    elif req_host.endswith(":"):
        req_host = req_host[:-1]
    for h in spec.hosts:
        h = h.lower()
        want_port = None
        if ":" in h:
            h, p = h.rsplit(":", 1)
            want_port = int(p)
        if want_port is not None and want_port != port:
            continue
        if h.startswith("*"):
            if req_host.endswith(h[1:]):
                return True
        elif h.endswith("*"):
            if req_host.startswith(h[:-1]):
                return True
        elif h == req_host:
            return True
    return False


def _headers_ok(spec: Spec, headers: dict[str, str]) -> bool:
    for name, values in spec.headers.items():
        v = headers.get(name.lower())
        if v is None:
            return False
        v = v.lower()
        if not any(
            re.search(want[2:], v, re.IGNORECASE) if want.startswith("~*") else v == want.lower()
            for want in values
        ):
            return False
    return True


def _join(spec: Spec, path: str, matched: int | None) -> str:
    base = spec.service_path or "/"
    strip = spec.strip_path
    postfix = path[matched:] if (strip and matched is not None) else path[1:]
    if postfix in (".", ".."):
        postfix = ""
    elif postfix.startswith("./"):
        postfix = postfix[2:]
    elif postfix.startswith("../"):
        postfix = postfix[3:]
    if spec.path_handling == "v1":
        if not strip:
            return base + path[1:]
        if base.endswith("/") and postfix.startswith("/"):
            return base[:-1] + postfix
        return base + postfix
    if base.endswith("/"):
        if not strip:
            return base + path[1:]
        if postfix == "":
            if base == "/":
                return "/"
            return base if path.endswith("/") else base[:-1]
        if postfix.startswith("/"):
            return base[:-1] + postfix
        return base + postfix
    if not strip:
        return base if path == "/" else base + path
    if postfix == "":
        return base + "/" if (len(path) > 1 and path.endswith("/")) else base
    if postfix.startswith("/"):
        return base + postfix
    return base + "/" + postfix


class RefRouter:
    def __init__(self, specs: list[Spec]):
        cands = []
        for pos, s in enumerate(specs):
            weight = sum(bool(x) for x in (s.methods, s.hosts, s.headers, s.paths))
            plain = bool(s.hosts) and not any("*" in h for h in s.hosts)
            head = (-weight, not plain, -min(len(s.headers), 255))
            if not s.paths:
                cands.append((head + (1, 0, s.order, pos, 0), s, None))
            for j, p in enumerate(s.paths):
                if p.startswith("~"):
                    pat = re.sub(r"\(\?<(?![=!])", "(?P<", p[1:])
                    cands.append((head + (0, -s.regex_priority, s.order, pos, j), s, ("re", re.compile(pat))))
                else:
                    np = normalize(p)
                    cands.append((head + (1, -len(np), s.order, pos, j), s, ("prefix", np)))
        cands.sort(key=lambda c: c[0])
        self.cands = cands

    def match(self, method: str, host: str | None, path: str, headers: dict[str, str]) -> Result | None:
        path = normalize(path)
        for _, s, how in self.cands:
            if s.methods and method not in [m.upper() for m in s.methods]:
                continue
            if not _host_ok(s, host):
                continue
            if s.headers and not _headers_ok(s, headers):
                continue
            if how is None:
                return Result(s.key, _join(s, path, None), s.preserve_host, (), {})
            kind, what = how
            if kind == "prefix":
                if path.startswith(what):
                    return Result(s.key, _join(s, path, len(what)), s.preserve_host, (), {})
                continue
            m = what.match(path)
            if m:
                named = {k: v for k, v in m.groupdict().items() if v is not None}
                return Result(s.key, _join(s, path, m.end()), s.preserve_host, m.groups(""), named)
        return None
