"""proxy-cache: cache upstream responses in memory and answer repeats from the cache (Kong
kong/plugins/proxy-cache, "memory" strategy).

access: a cacheable request (method in ``request_method``; with ``cache_control``, no
``no-store``/``no-cache`` request directive) gets Kong's cache key; a fresh entry is answered
at once (``X-Cache-Status: Hit``, ``Age``), a missing one is fetched and marked for storing
(``Miss``), a stale one likewise (``Refresh``). header_filter decides whether the response is
cacheable (status in ``response_code``, Content-Type matching ``content_type``, with
``cache_control`` no ``private``/``no-store``/``no-cache`` and a positive TTL); body_filter
collects the body and stores it at the end. ``X-Cache-Status``, ``X-Cache-Key`` and ``Age``
are sent when ``response_headers`` says so or the request has a ``Kong-Debug`` header.

Per-request state lives in ``ctx.vars`` under this instance's key (Kong's kong.ctx.plugin).
"""

from __future__ import annotations

import logging
import math
from typing import Any, Literal, Union

import msgspec

from . import _proxy_cache_store as pcs
from ._kong_schema import check_gt, check_len_min, check_one_of
from .base import Plugin, PluginEnv, Response, field_error

log = logging.getLogger("fastgw.plugins")

# kong/plugins/proxy-cache/handler.lua hop_by_hop_headers (content-length included: the exit
# sets its own). Date and Server are dropped too: the gateway writes both on every response
# it makes, so a stored copy would be sent twice.
_NOT_STORED = frozenset(
    (
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailers",
        b"transfer-encoding",
        b"upgrade",
        b"content-length",
        b"date",
        b"server",
        b"age",
        b"x-cache-status",
        b"x-cache-key",
    )
)

METHODS = ("HEAD", "GET", "POST", "PATCH", "PUT")


class MemoryConfig(msgspec.Struct, forbid_unknown_fields=True):
    dictionary_name: str = "kong_db_cache"


class ResponseHeadersConfig(msgspec.Struct, forbid_unknown_fields=True):
    age: bool = True
    x_cache_status: bool = msgspec.field(default=True, name="X-Cache-Status")
    x_cache_key: bool = msgspec.field(default=True, name="X-Cache-Key")


class ProxyCacheConfig(msgspec.Struct, forbid_unknown_fields=True):
    # only the memory strategy is bundled with Kong OSS; required, no default (Kong)
    strategy: Literal["memory"]
    # Kong accepts numbers given as strings ("200") and coerces them
    response_code: list[Union[int, str, float]] = msgspec.field(default_factory=lambda: [200, 301, 404])
    request_method: list[str] = msgspec.field(default_factory=lambda: ["GET", "HEAD"])
    content_type: list[str] = msgspec.field(default_factory=lambda: ["text/plain", "application/json"])
    cache_ttl: int = 300
    cache_control: bool = False
    ignore_uri_case: bool = False
    storage_ttl: int | None = None
    memory: MemoryConfig = msgspec.field(default_factory=MemoryConfig)
    vary_query_params: list[str] | None = None
    vary_headers: list[str] | None = None
    response_headers: ResponseHeadersConfig = msgspec.field(default_factory=ResponseHeadersConfig)

    def __post_init__(self) -> None:
        check_len_min("response_code", self.response_code, 1)
        codes: list[Union[int, str, float]] = []
        for i, c in enumerate(self.response_code):
            if isinstance(c, str):
                try:
                    c = int(c.strip())
                except ValueError:
                    raise field_error(f"response_code[{i}]", "expected an integer") from None
            if isinstance(c, float) or isinstance(c, bool):
                raise field_error(f"response_code[{i}]", "expected an integer")
            if not 100 <= c <= 900:
                raise field_error(f"response_code[{i}]", "value should be between 100 and 900")
            codes.append(c)
        self.response_code = codes
        check_gt("cache_ttl", self.cache_ttl, 0)
        for i, m in enumerate(self.request_method):
            check_one_of(f"request_method[{i}]", m, METHODS)


class _State:
    """What one request carries from access to header_filter and body_filter."""

    __slots__ = ("status", "key", "send_key", "storing", "req_body", "headers", "ttl", "chunks", "size")

    def __init__(self, status: str | None, key: str | None, send_key: bool) -> None:
        self.status = status  # X-Cache-Status to send, or None
        self.key = key
        self.send_key = send_key
        self.storing = False
        self.req_body: bytes | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.ttl = 0.0
        self.chunks: list[bytes] = []
        self.size = 0


class ProxyCache(Plugin):
    name = "proxy-cache"
    PRIORITY = 100
    Config = ProxyCacheConfig
    body_filter_keeps_length = True  # body_filter only collects a copy

    def __init__(self, config: ProxyCacheConfig, env: PluginEnv) -> None:
        super().__init__(config, env)
        self.store = pcs.store_for(config.memory.dictionary_name)
        self._methods = frozenset(config.request_method)
        self._codes = frozenset(int(c) for c in config.response_code)
        # an expected type that does not parse can never match (Kong skips it)
        self._types = [t for t in (pcs.parse_mime_type(ct) for ct in config.content_type) if t is not None]
        self._vkey = ("proxy-cache", id(self))
        rh = config.response_headers
        self._send_status, self._send_key, self._send_age = rh.x_cache_status, rh.x_cache_key, rh.age

    # ------------------------------------------------------------------ access
    def access(self, ctx: Any) -> Response | None:
        conf = self.config
        req = ctx.request
        debug = req.get_header_bytes(b"kong-debug") is not None
        cc = pcs.parse_directive_header(req.get_header_all("cache-control")) if conf.cache_control else {}
        if req.method not in self._methods or (conf.cache_control and ("no-store" in cc or "no-cache" in cc)):
            ctx.vars[self._vkey] = _State("Bypass" if debug or self._send_status else None, None, False)
            return None
        key = self._cache_key(ctx)
        now = ctx.now
        entry = self.store.fetch(key, now)
        if entry is None:
            if conf.cache_control and "only-if-cached" in cc:
                return Response(504)  # RFC 9111 5.2.1.7
            return self._signal(ctx, key, "Miss", debug)
        age = now - entry.timestamp
        if conf.cache_control:
            max_age, max_stale, min_fresh = pcs.number(cc, "max-age"), pcs.number(cc, "max-stale"), pcs.number(cc, "min-fresh")
            if (
                (max_age is not None and age > max_age)
                or (max_stale is not None and age - entry.ttl > max_stale)
                or (min_fresh is not None and entry.ttl - age < min_fresh)
            ):
                return self._signal(ctx, key, "Refresh", debug)
        elif age > conf.cache_ttl:
            return self._signal(ctx, key, "Refresh", debug)
        headers = list(entry.headers)
        if debug or self._send_age:
            headers.append((b"Age", str(math.floor(age)).encode()))
        if debug or self._send_status:
            headers.append((b"X-Cache-Status", b"Hit"))
        if debug or self._send_key:
            headers.append((b"X-Cache-Key", key.encode()))
        ctx.vars["proxy_cache_hit"] = entry  # Kong's kong.ctx.shared.proxy_cache_hit, for loggers
        return Response(entry.status, entry.body, headers)

    def _cache_key(self, ctx: Any) -> str:
        req = ctx.request
        # Kong keys on ngx.var.request (the request line) with everything from '?' removed:
        # "GET /p HTTP/1.1", or "GET /p" when there was a query.
        target = req.original_target.decode("latin-1")
        if "?" in target:
            uri = f"{req.method} {target.split('?', 1)[0]}"
        else:
            uri = f"{req.method} {target} HTTP/1.1"
        if self.config.ignore_uri_case:
            uri = uri.lower()
        consumer = ctx.consumer
        route = ctx.route
        return pcs.build_cache_key(
            str(consumer.id) if consumer is not None and getattr(consumer, "id", None) else None,
            str(route.id) if route is not None and getattr(route, "id", None) else None,
            req.method,
            uri,
            pcs.decode_args(req.raw_query.decode("latin-1")),
            req.get_headers() if self.config.vary_headers else {},
            self.config.vary_query_params,
            self.config.vary_headers,
        )

    def _signal(self, ctx: Any, key: str, status: str, debug: bool) -> None:
        st = _State(status if debug or self._send_status else None, key, debug or self._send_key)
        st.storing = True
        st.req_body = ctx.request.get_body()
        ctx.vars[self._vkey] = st
        return None

    # ----------------------------------------------------------- header_filter
    def header_filter(self, ctx: Any) -> None:
        v = ctx._vars
        st = v.get(self._vkey) if v is not None else None
        if st is None:
            return None
        res = ctx.response
        if st.storing:
            if ctx.response.source == "exit" or not self._cacheable_response(ctx, st):
                st.storing = False
                if st.status is not None:
                    st.status = "Bypass"
        if st.status is not None:
            res.set_header(b"X-Cache-Status", st.status)
        if st.send_key and st.key is not None:
            res.set_header(b"X-Cache-Key", st.key)
        return None

    def _cacheable_response(self, ctx: Any, st: _State) -> bool:
        conf = self.config
        res = ctx.response
        if res.status not in self._codes:
            return False
        types = res.get_header_all("content-type")
        if len(types) != 1 or not types[0] or not pcs.content_type_matches(types[0], self._types):
            return False
        if conf.cache_control:
            cc = pcs.parse_directive_header(res.get_header_all("cache-control"))
            if "private" in cc or "no-store" in cc or "no-cache" in cc:
                return False
            expires = res.get_header_all("expires")
            st.ttl = pcs.resource_ttl(cc, expires[-1] if expires else None, ctx.now)
            if st.ttl <= 0:
                return False
        else:
            st.ttl = conf.cache_ttl
        hdrs = res.get_headers()
        st.headers = [
            (n.encode("latin-1"), x.encode("latin-1"))
            for n, val in hdrs.items()
            if n.encode("latin-1") not in _NOT_STORED and "ratelimit-remaining" not in n
            for x in (val if isinstance(val, list) else [val])
        ]
        return True

    # ------------------------------------------------------------- body_filter
    def body_filter(self, ctx: Any, chunk: bytes, eof: bool) -> bytes:
        v = ctx._vars
        st = v.get(self._vkey) if v is not None else None
        if st is None or not st.storing:
            return chunk
        if chunk:
            st.size += len(chunk)
            if st.size > self.store.max_bytes:
                st.storing = False  # larger than the whole store: never fits
                st.chunks = []
                return chunk
            st.chunks.append(chunk)
        if eof:
            st.storing = False
            conf = self.config
            entry = pcs.Entry(ctx.response.status, st.headers, b"".join(st.chunks), ctx.now, st.ttl, st.req_body)
            ttl = conf.storage_ttl or (st.ttl if conf.cache_control else conf.cache_ttl)
            if st.key is not None:
                self.store.store(st.key, entry, ttl, ctx.now)
        return chunk
