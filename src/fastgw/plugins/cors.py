"""cors: Cross-Origin Resource Sharing (Kong).

Preflight (OPTIONS with Origin and Access-Control-Request-Method) is answered by the plugin
itself with 200 unless ``preflight_continue``; other responses get the CORS headers in
header_filter. Origins are classified once per snapshot: ``*``, exact origins (compared after
normalising scheme/host/default port) and regexes (Kong: an entry with characters outside
``[A-Za-z0-9.:/-]`` is a regex, anchored at both ends; without ``:`` it matches the host only).
"""

from __future__ import annotations

import re
from typing import Any, Literal
from urllib.parse import urlsplit

import msgspec

from .base import Plugin, PluginEnv, Response, field_error

Method = Literal["GET", "HEAD", "PUT", "PATCH", "POST", "DELETE", "OPTIONS", "TRACE", "CONNECT"]
_ALL_METHODS: list[Any] = ["GET", "HEAD", "PUT", "PATCH", "POST", "DELETE", "OPTIONS", "TRACE", "CONNECT"]
_PLAIN = re.compile(r"^[A-Za-z0-9.:/-]+$")
_VARY_KEY = "cors.skip_response_headers"
# Normalised request origins remembered per instance (Kong keeps 10k in an lrucache).
ORIGIN_CACHE_SIZE = 10_000


class CorsConfig(msgspec.Struct, forbid_unknown_fields=True):
    # Allowed origins: "*", exact origins or regexes (default: none set = "*").
    origins: list[str] | None = None
    # Access-Control-Allow-Headers; default: echo Access-Control-Request-Headers.
    headers: list[str] | None = None
    exposed_headers: list[str] | None = None
    methods: list[Method] = msgspec.field(default_factory=lambda: list(_ALL_METHODS))
    max_age: float | None = None
    credentials: bool = False
    private_network: bool = False
    # Proxy preflight requests upstream instead of answering them (default False).
    preflight_continue: bool = False
    # Add CORS headers to responses to requests without Origin (Kong 3.5+, default True).
    allow_origin_absent: bool = True

    def __post_init__(self) -> None:
        for i, o in enumerate(self.origins or ()):
            if o == "*":
                continue
            try:
                re.compile(o)
            except re.error:
                raise field_error(f"origins[{i}]", f"'{o}' is not a valid regex") from None


def _normalize(origin: str) -> tuple[str, str]:
    """(domain, host): scheme://host[:port] without default ports, and the bare host."""
    try:
        parts = urlsplit(origin)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return origin, origin
    if not host:
        return origin, origin
    if (parts.scheme == "http" and port == 80) or (parts.scheme == "https" and port == 443):
        port = None
    domain = (f"{parts.scheme}://" if parts.scheme else "") + host + (f":{port}" if port else "")
    return domain, host


class _Exit:
    """Collects headers for the preflight answer with the same calls as ctx.response."""

    __slots__ = ("headers",)

    def __init__(self) -> None:
        self.headers: dict[str, str] = {}

    def set_header(self, name: str, value: str) -> None:
        self.headers[name] = value

    add_header = set_header

    def clear_header(self, name: str) -> None:
        self.headers.pop(name, None)


class Cors(Plugin):
    name = "cors"
    PRIORITY = 2000
    Config = CorsConfig

    def __init__(self, config: CorsConfig, env: PluginEnv) -> None:
        super().__init__(config, env)
        origins = config.origins or []
        # Kong's configure_origin: no origins or exactly ["*"] answer "*" without Vary; a "*"
        # among other entries answers "*" only to requests that carry an Origin.
        self._allow_all = not origins or (len(origins) == 1 and origins[0] == "*")
        self._star_entry = "*" in origins
        self._single = origins[0] if len(origins) == 1 and _PLAIN.match(origins[0]) else None
        self._exact: set[str] = set()
        self._regexes: list[tuple[re.Pattern[str], bool]] = []
        for entry in origins:
            if entry == "*":
                continue
            if _PLAIN.match(entry):
                self._exact.add(_normalize(entry)[0])
            else:
                pat = entry if entry.endswith("$") else entry + "$"
                pat = pat[1:] if pat.startswith("^") else pat
                self._regexes.append((re.compile(pat), ":" not in entry))
        self._methods = ",".join(config.methods)
        self._headers = ",".join(config.headers) if config.headers else None
        self._exposed = ",".join(config.exposed_headers) if config.exposed_headers else None
        self._max_age = None if config.max_age is None else _num(config.max_age)
        self._norm_cache: dict[str, tuple[str, str]] = {}

    # Kong's configure_origin: returns True when ACAO is "*".
    def _origin(self, out: Any, in_filter: bool, req_origin: str | None) -> bool:
        if self._allow_all:
            out.set_header("Access-Control-Allow-Origin", "*")
            return True
        _vary(out, in_filter)
        if self._single is not None:
            out.set_header("Access-Control-Allow-Origin", self._single)
            return False
        if req_origin:
            if self._star_entry:
                out.set_header("Access-Control-Allow-Origin", "*")
                return True
            norm = self._norm_cache.get(req_origin)
            if norm is None:
                norm = _normalize(req_origin)
                if len(self._norm_cache) >= ORIGIN_CACHE_SIZE:
                    del self._norm_cache[next(iter(self._norm_cache))]
                self._norm_cache[req_origin] = norm
            domain, host = norm
            found = domain in self._exact
            if not found:
                for rx, by_host in self._regexes:
                    if rx.match(host if by_host else domain):
                        found = True
                        break
            if found:
                out.set_header("Access-Control-Allow-Origin", domain)
                return False
        out.clear_header("Access-Control-Allow-Origin")
        return False

    def _credentials(self, out: Any, allow_all: bool, in_filter: bool, req_origin: str | None) -> None:
        if not self.config.credentials:
            return
        if not allow_all:
            out.set_header("Access-Control-Allow-Credentials", "true")
            return
        # ACAO "*" cannot go with credentials: echo the origin instead.
        if req_origin:
            _vary(out, in_filter)
            out.set_header("Access-Control-Allow-Origin", req_origin)
            out.set_header("Access-Control-Allow-Credentials", "true")

    def access(self, ctx: Any) -> Response | None:
        req = ctx.request
        if req.method != "OPTIONS":
            return None
        origin = req.get_header("origin")
        if not origin or req.get_header_bytes(b"access-control-request-method") is None:
            return None
        ctx.vars[_VARY_KEY] = True
        if self.config.preflight_continue:
            return None
        out = _Exit()
        allow_all = self._origin(out, False, origin)
        self._credentials(out, allow_all, False, origin)
        if self._headers is not None:
            out.set_header("Access-Control-Allow-Headers", self._headers)
        else:
            acrh = req.get_header("access-control-request-headers")
            if acrh:
                out.set_header("Access-Control-Allow-Headers", acrh)
        out.set_header("Access-Control-Allow-Methods", self._methods)
        if self._max_age is not None:
            out.set_header("Access-Control-Max-Age", self._max_age)
        if self.config.private_network and req.get_header("access-control-request-private-network") == "true":
            out.set_header("Access-Control-Allow-Private-Network", "true")
        return Response(200, b"", out.headers)

    def header_filter(self, ctx: Any) -> None:
        if ctx._vars and ctx._vars.get(_VARY_KEY):
            return None
        origin = ctx.request.get_header("origin")
        if not origin and not self.config.allow_origin_absent:
            return None
        out = ctx.response
        allow_all = self._origin(out, True, origin)
        self._credentials(out, allow_all, True, origin)
        if self._exposed is not None:
            out.set_header("Access-Control-Expose-Headers", self._exposed)
        return None


def _vary(out: Any, in_filter: bool) -> None:
    if in_filter:
        # keep the upstream's Vary values and add ours once
        existing = out.get_header_all("vary")
        if not any(v.strip().lower() == "origin" for line in existing for v in line.split(",")):
            out.add_header("Vary", "Origin")
    else:
        out.set_header("Vary", "Origin")


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else str(v)
