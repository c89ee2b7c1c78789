"""A deliberately simple pure-Python router with the same rules as fastgw._core.router.

No indexes, no prefilters, no byte tricks: every candidate is sorted by a tuple and tried in
order with plain str operations. Used by the differential test; written from the rules in the
router's module docstring (Kong 3 traditional_compatible), not from its code.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

# kong/tools/uri.lua: reserved characters stay encoded, everything else is decoded
RESERVED = set("!*'();:@&=+$,/?%#[]")
# kong/tools/uri.lua ESCAPE_PATTERN: what goes upstream without percent-encoding
KEEP = set("!#$&'()*+,/:;=?@[]-_.~%ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")


def normalize(path: str) -> str:
    """kong/tools/uri.lua normalize(uri, true), transcribed case by case (latin-1 str)."""
    uri = path
    if uri in ("", "/"):
        return uri
    if "%" in uri:
        uri = re.sub(r"%([0-9A-Fa-f]{2})",
                     lambda m: m.group(0).upper() if chr(int(m.group(1), 16)) in RESERVED
                     else chr(int(m.group(1), 16)), uri)
    if "." not in uri and "//" not in uri:
        return uri
    out: list[str] = []
    while uri:
        if uri == "/.":
            uri = "/"
        elif uri == "/..":
            uri = "/"
            if out:
                out.pop()
        elif uri in (".", ".."):
            uri = ""
        elif uri.startswith("../"):
            uri = uri[3:]
        elif uri.startswith("./"):
            uri = uri[2:]
        elif uri.startswith("/./"):
            uri = uri[2:]
        elif uri.startswith("/../"):
            uri = uri[3:]
            if out:
                out.pop()
        elif uri.startswith("//"):
            uri = uri[1:]
        else:
            i = uri.find("/", 1)
            if i >= 0:
                out.append(uri[:i])
                uri = uri[i:]
            else:
                out.append(uri)
                uri = ""
    return "".join(out)


def escape(path: str) -> str:
    return "".join(c if c in KEEP else "%%%02X" % ord(c) for c in path)


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
    id: str | None = None


@dataclass
class Result:
    key: Any
    upstream_path: str
    prefix: str | None
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
        v = headers.get(name.lower().replace("_", "-"))
        if v is None:
            return False
        lines = [v] if isinstance(v, str) else v
        if not any(
            re.search(want[2:], line.lower(), re.IGNORECASE) if want.startswith("~*")
            else line.lower() == want.lower()
            for want in values for line in lines
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


def _prefix(spec: Spec, matched: str) -> str | None:
    # kong/runloop/handler.lua: X-Forwarded-Prefix = match_t.prefix unless it is "/"
    return escape(matched) if spec.strip_path and matched != "/" else None


class RefRouter:
    def __init__(self, specs: list[Spec]):
        cands = []
        for pos, s in enumerate(specs):
            # equal priorities: the higher route id first (atc-router: matchers.iter().rev())
            tie = (tuple(-ord(c) for c in (s.id or "")) + (1,), pos)
            weight = sum(bool(x) for x in (s.methods, s.hosts, s.headers, s.paths))
            plain = bool(s.hosts) and not any("*" in h for h in s.hosts)
            head = (-weight, not plain, -min(len(s.headers), 255))
            if not s.paths:
                cands.append((head + (1, 0) + tie + (0,), s, None))
            for j, p in enumerate(s.paths):
                if p.startswith("~"):
                    pat = re.sub(r"\(\?<(?![=!])", "(?P<", p[1:])
                    cands.append((head + (0, -s.regex_priority) + tie + (j,), s, ("re", re.compile(pat))))
                else:
                    cands.append((head + (1, -len(p)) + tie + (j,), s, ("prefix", p)))
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
                return Result(s.key, escape(_join(s, path, None)), None, s.preserve_host, (), {})
            kind, what = how
            if kind == "prefix":
                if path.startswith(what):
                    return Result(s.key, escape(_join(s, path, len(what))),
                                  _prefix(s, what), s.preserve_host, (), {})
                continue
            m = what.match(path)
            if m:
                named = {k: v for k, v in m.groupdict().items() if v is not None}
                return Result(s.key, escape(_join(s, path, m.end())), _prefix(s, m.group(0)),
                              s.preserve_host, m.groups(""), named)
        return None
