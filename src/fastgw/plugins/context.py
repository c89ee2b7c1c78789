"""The per-request object plugins see (Kong's PDK, Pythonic), and what the proxy reads back.

The proxy creates a :class:`Context` ONLY when the matched route has a plugin chain:
``Context(method, target, headers, client_addr, scheme, route, service, now)``. Everything is
lazy: no dict of headers, no parsed query, no vars dict exists unless a plugin asks for it.

Contract with the proxy (plain attributes, read after the phases ran):

After ``chain.run_access(ctx)`` (rewrite + access):
- ``ctx.request.header_ops: dict[bytes, list[bytes] | None] | None`` — lowercase header name ->
  the complete list of values to send upstream for that name (replacing every original line of
  that name), or ``None`` = remove the header. ``None``/empty dict: headers unchanged.
- ``ctx.request.path_override: bytes | None`` — new path (no query), already percent-encoded.
- ``ctx.request.query_override: bytes | None`` — new raw query string (without ``?``);
  ``b""`` means "no query".
- ``ctx.request.method_override: bytes | None``.
- ``ctx.request.body_override: bytes | None`` — replaces the request body; ``set_body`` has
  already put the matching Content-Length (and removed Transfer-Encoding) in ``header_ops``.
- ``ctx.upstream_override: str | None`` — name of the upstream to balance over instead of the
  service's (canary).
- ``ctx.max_body_size: int | None`` — bytes; the proxy answers 413
  ``{"message":"Request size limit exceeded"}`` when a streamed (chunked) body grows past it.

Input the proxy fills:
- ``ctx.request.body`` — the buffered request body, only when ``chain.needs_request_body``.
- ``ctx.set_response(status, headers)`` before ``run_header_filter`` (``headers`` is a
  HeaderSource over the upstream response head).
- log fields before ``run_log``: ``bytes_in``, ``bytes_out`` (request and response sizes on
  the wire), ``upstream_latency``, ``proxy_latency`` (Kong's "kong" latency: time spent in the
  gateway), ``request_latency`` (all three in ms), ``upstream_target`` (``"host:port"``),
  ``upstream_uri``, ``upstream_status``, ``tries``.

After ``chain.run_header_filter(ctx)``:
- ``ctx.response.header_ops`` (same shape as the request's) and ``ctx.response.status_override``.

Times: ``now`` is wall-clock seconds since the epoch (``time.time()``, or the loop's cached
copy); plugins never read a clock themselves, which keeps them testable.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qsl, quote, urlencode

from fastgw.realip import real_client_ip

if TYPE_CHECKING:
    from .base import PluginEnv

__all__ = ["Context", "Request", "ResponseView", "HeaderSource", "ListHeaders"]


class HeaderSource(Protocol):
    """Read-only view over a parsed head; names are looked up in lowercase bytes."""

    def get(self, name_lower: bytes) -> bytes | None: ...

    def get_all(self, name_lower: bytes) -> list[bytes]: ...

    def items(self) -> list[tuple[bytes, bytes]]: ...


def _b(s: str | bytes) -> bytes:
    return s if type(s) is bytes else s.encode("latin-1")  # type: ignore[union-attr]


class ListHeaders:
    """A list-backed :class:`HeaderSource` (tests, exit responses, embedding)."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str | bytes, str | bytes]] | Mapping[Any, Any] = ()) -> None:
        pairs = items.items() if isinstance(items, Mapping) else items
        self._items: list[tuple[bytes, bytes]] = [(_b(n).lower(), _b(v)) for n, v in pairs]

    def get(self, name_lower: bytes) -> bytes | None:
        for n, v in self._items:
            if n == name_lower:
                return v
        return None

    def get_all(self, name_lower: bytes) -> list[bytes]:
        return [v for n, v in self._items if n == name_lower]

    def items(self) -> list[tuple[bytes, bytes]]:
        return list(self._items)


class _HeaderView:
    """Header reads that see pending ops, and the ops themselves (shared by request/response)."""

    __slots__ = ("_headers", "header_ops", "header_case")

    def __init__(self, headers: HeaderSource) -> None:
        self._headers = headers
        self.header_ops: dict[bytes, list[bytes] | None] | None = None
        # lowercase name -> the name as the plugin wrote it (the proxy sends that spelling:
        # "X-RateLimit-Limit-Minute", as Kong does)
        self.header_case: dict[bytes, bytes] | None = None

    # -- reads --
    def get_header_bytes(self, name_lower: bytes) -> bytes | None:
        """Fast path for plugins that pre-encode names at init: first value or None."""
        ops = self.header_ops
        if ops is not None and name_lower in ops:
            vals = ops[name_lower]
            return vals[0] if vals else None
        return self._headers.get(name_lower)

    def get_header_all_bytes(self, name_lower: bytes) -> list[bytes]:
        ops = self.header_ops
        if ops is not None and name_lower in ops:
            vals = ops[name_lower]
            return list(vals) if vals else []
        return self._headers.get_all(name_lower)

    def get_header(self, name: str) -> str | None:
        """First value of ``name`` (case-insensitive) as str, or None (Kong's get_header)."""
        v = self.get_header_bytes(name.lower().encode("latin-1"))
        return None if v is None else v.decode("latin-1")

    def get_header_all(self, name: str) -> list[str]:
        return [v.decode("latin-1") for v in self.get_header_all_bytes(name.lower().encode("latin-1"))]

    def get_headers(self) -> dict[str, str | list[str]]:
        """All headers, lowercase names; a repeated header maps to a list (Kong's get_headers)."""
        merged: dict[bytes, list[bytes]] = {}
        for n, v in self._headers.items():  # a proxied head keeps the client's case
            merged.setdefault(n.lower(), []).append(v)
        if self.header_ops:
            for n, vals in self.header_ops.items():
                if vals is None:
                    merged.pop(n, None)
                else:
                    merged[n] = list(vals)
        out: dict[str, str | list[str]] = {}
        for n, vals in merged.items():
            if not vals:
                continue
            out[n.decode("latin-1")] = vals[0].decode("latin-1") if len(vals) == 1 else [
                v.decode("latin-1") for v in vals
            ]
        return out

    # -- writes (recorded as ops; the proxy applies them to the outgoing head) --
    def _ops(self) -> dict[bytes, list[bytes] | None]:
        ops = self.header_ops
        if ops is None:
            ops = self.header_ops = {}
        return ops

    def set_header(self, name: str | bytes, value: str | bytes | int) -> None:
        """Replace every value of ``name`` with ``value``."""
        if isinstance(value, int):
            value = str(value)
        raw = _b(name)
        key = raw.lower()
        self._ops()[key] = [_b(value)]
        if raw != key:
            self._case()[key] = raw

    def add_header(self, name: str | bytes, value: str | bytes | int) -> None:
        """Add one more line of ``name`` after the existing ones."""
        if isinstance(value, int):
            value = str(value)
        raw = _b(name)
        key = raw.lower()
        if raw != key:
            self._case()[key] = raw
        ops = self._ops()
        if key in ops:
            cur = ops[key]
            ops[key] = (list(cur) if cur else []) + [_b(value)]
        else:
            ops[key] = self._headers.get_all(key) + [_b(value)]

    def _case(self) -> dict[bytes, bytes]:
        case = self.header_case
        if case is None:
            case = self.header_case = {}
        return case

    def clear_header(self, name: str | bytes) -> None:
        """Remove every line of ``name``."""
        self._ops()[_b(name).lower()] = None


def parse_query(raw: bytes) -> dict[str, str | list[str]]:
    out: dict[str, str | list[str]] = {}
    for k, v in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
        cur = out.get(k)
        if cur is None:
            out[k] = v
        elif isinstance(cur, list):
            cur.append(v)
        else:
            out[k] = [cur, v]
    return out


def encode_query(query: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> bytes:
    """Encode a query mapping (list values repeat the key; True -> bare key) as bytes."""
    pairs: list[tuple[str, str]] = []
    bare: list[str] = []
    items = query.items() if isinstance(query, Mapping) else query
    for k, v in items:
        if v is True:
            bare.append(quote(str(k), safe=""))
        elif isinstance(v, (list, tuple)):
            pairs.extend((str(k), str(x)) for x in v)
        else:
            pairs.append((str(k), str(v)))
    s = urlencode(pairs)
    if bare:
        s = "&".join(([s] if s else []) + bare)
    return s.encode("latin-1")


class Request(_HeaderView):
    """The client request, as plugins read and change it (``ctx.request``)."""

    __slots__ = (
        "_method",
        "_target",
        "_qpos",
        "_query",
        "scheme",
        "path_override",
        "query_override",
        "method_override",
        "body",
        "body_override",
    )

    def __init__(self, method: bytes, target: bytes, headers: HeaderSource, scheme: str) -> None:
        self._headers = headers
        self.header_ops = None
        self.header_case = None
        self._method = method
        self._target = target
        self._qpos = target.find(b"?")
        self._query: dict[str, str | list[str]] | None = None
        self.scheme = scheme
        self.path_override: bytes | None = None
        self.query_override: bytes | None = None
        self.method_override: bytes | None = None
        self.body: bytes | None = None
        self.body_override: bytes | None = None

    # -- reads --
    @property
    def method(self) -> str:
        m = self.method_override if self.method_override is not None else self._method
        return m.decode("latin-1")

    @property
    def raw_path(self) -> bytes:
        if self.path_override is not None:
            return self.path_override
        q = self._qpos
        return self._target if q < 0 else self._target[:q]

    @property
    def path(self) -> str:
        return self.raw_path.decode("latin-1")

    @property
    def raw_query(self) -> bytes:
        if self.query_override is not None:
            return self.query_override
        q = self._qpos
        return b"" if q < 0 else self._target[q + 1 :]

    @property
    def query(self) -> dict[str, str | list[str]]:
        """Parsed query (repeated keys -> list). Parsed once, on first use."""
        q = self._query
        if q is None:
            q = self._query = parse_query(self.raw_query)
        return q

    @property
    def target(self) -> bytes:
        """The request target as it will be sent upstream (path + query)."""
        if self.path_override is None and self.query_override is None:
            return self._target
        q = self.raw_query
        return self.raw_path + (b"?" + q if q else b"")

    @property
    def original_target(self) -> bytes:
        return self._target

    @property
    def host(self) -> str:
        h = self._headers.get(b"host")
        return "" if h is None else h.decode("latin-1")

    def get_body(self) -> bytes | None:
        """Current body (after any ``set_body``); None when the proxy did not buffer it."""
        return self.body_override if self.body_override is not None else self.body

    # -- writes --
    def set_method(self, method: str | bytes) -> None:
        self.method_override = _b(method).upper()

    def set_path(self, path: str | bytes) -> None:
        p = _b(path)
        if not p.startswith(b"/"):
            raise ValueError("path must start with '/'")
        self.path_override = p

    def set_query(self, query: Mapping[str, Any] | str | bytes) -> None:
        """Replace the query: a mapping (encoded) or a raw string without ``?``."""
        raw = _b(query) if isinstance(query, (str, bytes)) else encode_query(query)
        self.query_override = raw
        self._query = None

    def set_raw_query(self, raw: str | bytes) -> None:
        self.set_query(_b(raw))

    def set_body(self, body: bytes, content_type: str | None = None) -> None:
        self.body_override = body
        self.set_header(b"content-length", str(len(body)))
        self.clear_header(b"transfer-encoding")
        if content_type is not None:
            self.set_header(b"content-type", content_type)


class ResponseView(_HeaderView):
    """The upstream (or exit) response in header_filter/log (``ctx.response``)."""

    __slots__ = ("_status", "status_override", "source")

    def __init__(self, status: int, headers: HeaderSource, source: str = "service") -> None:
        self._headers = headers
        self.header_ops = None
        self.header_case = None
        self._status = status
        self.status_override: int | None = None
        # Kong's kong.response.get_source(): "service" (proxied) or "exit" (made by a plugin).
        self.source = source

    @property
    def status(self) -> int:
        return self.status_override if self.status_override is not None else self._status

    def set_status(self, status: int) -> None:
        self.status_override = status


_INVALID = object()


_CONSUMER_CASE = {
    b"x-consumer-id": b"X-Consumer-ID",
    b"x-consumer-custom-id": b"X-Consumer-Custom-ID",
    b"x-consumer-username": b"X-Consumer-Username",
    b"x-credential-identifier": b"X-Credential-Identifier",
    b"x-anonymous-consumer": b"X-Anonymous-Consumer",
}


class Context:
    """Everything a plugin sees for one request. See the module docstring for the contract."""

    __slots__ = (
        "request",
        "client_addr",
        "route",
        "service",
        "now",
        "started_at",
        "response",
        "consumer",
        "credential",
        "upstream_override",
        "max_body_size",
        "route_match",
        "env",
        "_chain",
        "_client_ip",
        "_vars",
        "log_extra",
        # log fields, filled by the proxy
        "bytes_in",
        "bytes_out",
        "upstream_latency",
        "proxy_latency",
        "request_latency",
        "upstream_target",
        "upstream_uri",
        "upstream_status",
        "tries",
    )

    def __init__(
        self,
        method: bytes,
        target: bytes,
        headers: HeaderSource,
        client_addr: str,
        scheme: str,
        route: Any,
        service: Any,
        now: float,
        env: PluginEnv | None = None,
    ) -> None:
        self.request = Request(method, target, headers, scheme)
        self.client_addr = client_addr
        self.route = route
        self.service = service
        self.now = now
        self.started_at = now
        self.response: ResponseView | None = None
        self.consumer: Any = None
        self.credential: Any = None
        self.upstream_override: str | None = None
        self.max_body_size: int | None = None
        # the router's match (``captures``, ``named_captures``), set by the proxy
        self.route_match: Any = None
        self.env = env
        self._chain: Any = None
        self._client_ip: str | None = None
        self._vars: dict[str, Any] | None = None
        # Kong's kong.log.set_serialize_value: extra fields merged into log entries.
        self.log_extra: dict[str, Any] | None = None
        self.bytes_in = 0
        self.bytes_out = 0
        self.upstream_latency: float | None = None
        self.proxy_latency: float | None = None
        self.request_latency: float | None = None
        self.upstream_target: str | None = None
        self.upstream_uri: str | None = None
        self.upstream_status: int | None = None
        self.tries = 0

    @property
    def vars(self) -> dict[str, Any]:
        """Per-request dict shared by plugins (Kong's ``kong.ctx.shared``)."""
        v = self._vars
        if v is None:
            v = self._vars = {}
        return v

    @property
    def scheme(self) -> str:
        return self.request.scheme

    def uri_captures(self) -> dict[str, Any]:
        """Kong's kong.request.get_uri_captures(): ``{"unnamed": [...], "named": {...}}`` of the
        matched regex path (both empty for other routes)."""
        m = self.route_match
        if m is None:
            return {"unnamed": [], "named": {}}
        return {"unnamed": list(getattr(m, "captures", ()) or ()), "named": dict(getattr(m, "named_captures", {}) or {})}

    # -- client IP --
    @property
    def client_ip(self) -> str:
        """The client address, or the right-most untrusted X-Forwarded-For hop when the direct
        peer is a trusted proxy (nginx real_ip with ``real_ip_recursive on``)."""
        ip = self._client_ip
        if ip is None:
            ip = self._client_ip = self._resolve_client_ip()
        return ip

    def _resolve_client_ip(self) -> str:
        # fastgw.realip; real_ip_header default here X-Forwarded-For, recursive (the CLI
        # passes Kong's defaults, X-Real-IP and off)
        env = self.env
        nets = env.trusted_networks if env is not None else ()
        addr = self.client_addr
        if not nets:
            return addr
        settings = env.settings if env is not None else {}
        header = settings.get("real_ip_header", "x-forwarded-for")
        lines = [v.decode("latin-1")
                 for v in self.request._headers.get_all(header.encode("latin-1"))]
        return real_client_ip(addr, nets, lines, settings.get("real_ip_recursive", True))

    # -- authentication (Kong's kong.client.authenticate + the auth plugins' set_consumer) --
    def authenticate(self, consumer: Any, credential: Any, credential_identifier: str | None = None) -> None:
        """Mark the request authenticated and set Kong's upstream consumer headers.

        ``credential`` None means the anonymous consumer (``X-Anonymous-Consumer: true``).
        """
        self.consumer = consumer
        self.credential = credential
        req = self.request
        # Written straight into the ops dict with constant names: this runs on every
        # authenticated request.
        ops = req.header_ops
        if ops is None:
            ops = req.header_ops = {}
        if consumer is not None:
            cid = getattr(consumer, "id", None)
            custom = getattr(consumer, "custom_id", None)
            uname = getattr(consumer, "username", None)
        else:
            cid = custom = uname = None
        req._case().update(_CONSUMER_CASE)  # sent in Kong's spelling ("X-Consumer-ID")
        ops[b"x-consumer-id"] = [str(cid).encode("latin-1")] if cid else None
        ops[b"x-consumer-custom-id"] = [str(custom).encode("latin-1")] if custom else None
        ops[b"x-consumer-username"] = [str(uname).encode("latin-1")] if uname else None
        if credential is not None:
            ops[b"x-credential-identifier"] = (
                [credential_identifier.encode("latin-1")] if credential_identifier else None
            )
            ops[b"x-anonymous-consumer"] = None
        else:
            ops[b"x-credential-identifier"] = None
            ops[b"x-anonymous-consumer"] = [b"true"]

    # -- routing --
    def set_upstream(self, name: str) -> None:
        """Balance this request over upstream ``name`` instead of the service's (canary)."""
        self.upstream_override = name

    # -- response --
    def set_response(self, status: int, headers: HeaderSource, source: str = "service") -> ResponseView:
        """Called by the proxy (or the chain for exits) before header_filter."""
        self.response = ResponseView(status, headers, source)
        return self.response

    def set_serialize_value(self, key: str, value: Any) -> None:
        """Add a field to this request's log entry (Kong's kong.log.set_serialize_value)."""
        if self.log_extra is None:
            self.log_extra = {}
        self.log_extra[key] = value
