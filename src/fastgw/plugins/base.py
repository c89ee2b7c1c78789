"""The plugin base class, the early-exit Response and the per-snapshot PluginEnv.

Rules of this module (every plugin follows them):

1. A plugin is a subclass of :class:`Plugin` with a class attribute ``name`` (Kong's name,
   e.g. ``"key-auth"``), ``PRIORITY`` (Kong's static priority; higher runs first) and
   ``Config`` (a ``msgspec.Struct`` with ``forbid_unknown_fields=True``, Kong's field names
   and defaults, validation in ``__post_init__``).
2. One instance is built per configured plugin entity per config snapshot, OFF the request
   path: ``__init__(config, env)`` is where lookup indexes (credentials by key, compiled
   regexes, CIDR tables) are built. Phase methods never rebuild them per request.
3. Phases are any subset of ``rewrite(ctx)``, ``access(ctx)``, ``header_filter(ctx)``,
   ``body_filter(ctx, chunk, eof) -> bytes`` and ``log(ctx)``; a phase not overridden costs
   nothing (the chain only lists overridden phases). Phases are plain functions, or
   ``async def`` when they must await I/O; the chain only creates a coroutine when a phase
   actually returns an awaitable.
4. ``rewrite``/``access`` return ``None`` to continue or a :class:`Response` to stop the
   request (Kong's ``kong.response.exit``). They never raise on purpose: an exception becomes
   Kong's 500 ``{"message":"An unexpected error occurred"}`` and a logged traceback.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

import msgspec
import orjson
from fastgw._core.messages import INTERNAL

__all__ = [
    "Plugin",
    "PluginEnv",
    "Response",
    "field_error",
    "NoConfig",
    "KONG_SERVER_ERROR",
]


JSON_CONTENT_TYPE = b"application/json; charset=utf-8"


def _norm_headers(headers: Any) -> list[tuple[bytes, bytes]]:
    """Headers given as a dict or (name, value) pairs, str or bytes -> list of byte pairs.

    Names keep the caller's case (Kong writes ``WWW-Authenticate`` as given); a list value in a
    dict means one header line per element.
    """
    if not headers:
        return []
    items = headers.items() if isinstance(headers, Mapping) else headers
    out: list[tuple[bytes, bytes]] = []
    for name, value in items:
        bname = name if isinstance(name, bytes) else str(name).encode("latin-1")
        if isinstance(value, (list, tuple)):
            for v in value:
                out.append((bname, v if isinstance(v, bytes) else str(v).encode("latin-1")))
        else:
            out.append((bname, value if isinstance(value, bytes) else str(value).encode("latin-1")))
    return out


class Response:
    """A response made by a plugin (or the gateway) instead of proxying.

    ``headers`` is a list of ``(name, value)`` byte pairs; the proxy adds Content-Length,
    Date, Server and Connection itself, so plugins never set those.
    """

    __slots__ = ("status", "body", "headers")

    def __init__(self, status: int, body: bytes | str = b"", headers: Any = None) -> None:
        self.status = status
        self.body = body.encode("utf-8") if isinstance(body, str) else body
        self.headers: list[tuple[bytes, bytes]] = _norm_headers(headers)

    @classmethod
    def json(cls, status: int, obj: Any, headers: Any = None) -> Response:
        """Kong's JSON exit: ``Content-Type: application/json; charset=utf-8`` and the
        serialized body (Kong's bodies are ``{"message": "..."}``)."""
        resp = cls(status, orjson.dumps(obj), headers)
        if not any(n.lower() == b"content-type" for n, _ in resp.headers):
            resp.headers.insert(0, (b"Content-Type", JSON_CONTENT_TYPE))
        return resp

    @classmethod
    def message(cls, status: int, message: str, headers: Any = None) -> Response:
        return cls.json(status, {"message": message}, headers)

    def get_header(self, name: str) -> str | None:
        bname = name.lower().encode("latin-1")
        for n, v in self.headers:
            if n.lower() == bname:
                return v.decode("latin-1")
        return None

    def __repr__(self) -> str:
        return f"Response({self.status}, {self.body!r}, {self.headers!r})"


# Kong's body for an error inside a plugin (kong/runloop/handler.lua -> kong.response.error(500)).
KONG_SERVER_ERROR = {"message": INTERNAL}


def field_error(field: str, message: str) -> ValueError:
    """An error for ``Config.__post_init__`` naming the offending field.

    msgspec reports a ``__post_init__`` ValueError without a path for the top level struct;
    this appends the path in msgspec's own `` - at `$.field` `` form so
    :func:`fastgw.plugins.registry.validate_config` reports ``config.<field>`` like any other
    error. Usage: ``raise field_error("minute", "must be greater than 0")``.
    """
    return ValueError(f"{message} - at `$.{field}`")


class NoConfig(msgspec.Struct, forbid_unknown_fields=True):
    """Config of a plugin without fields."""


def _parse_networks(
    cidrs: Iterable[str],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


class PluginEnv:
    """Read access to the compiled configuration, given to every plugin's ``__init__``.

    Built once per snapshot by the snapshot compiler. Plugins build their lookup indexes from
    it in ``__init__``; nothing here is touched per request except ``trusted_networks`` (read by
    ``Context.client_ip``).

    - ``consumers``: every Consumer entity (attributes ``id``, ``username``, ``custom_id``).
    - ``credentials``: plugin name (``"key-auth"``, ``"basic-auth"``, ``"jwt"``, ``"acl"``) ->
      sequence of ``(consumer, credential)`` pairs. The compiler resolves each credential's
      consumer reference, so plugins never chase ids.
    - ``services``, ``upstreams``, ``routes``: the entities, for plugins that need them
      (canary checks its upstream name; ``routes`` lets :func:`build_chains` resolve every
      route's chain eagerly).
    - ``trusted_ips``: CIDRs/IPs of proxies whose ``X-Forwarded-For`` is believed
      (Kong's ``trusted_ips``; default: trust none).
    - ``settings``: free-form node settings (e.g. ``{"node_id": ...}``).
    """

    __slots__ = (
        "consumers",
        "credentials",
        "services",
        "upstreams",
        "routes",
        "trusted_networks",
        "settings",
        "_consumer_index",
    )

    def __init__(
        self,
        *,
        consumers: Sequence[Any] = (),
        credentials: Mapping[str, Sequence[tuple[Any, Any]]] | None = None,
        services: Sequence[Any] = (),
        upstreams: Sequence[Any] = (),
        routes: Sequence[Any] | None = None,
        trusted_ips: Iterable[str] = (),
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        self.consumers = tuple(consumers)
        self.credentials: Mapping[str, Sequence[tuple[Any, Any]]] = dict(credentials or {})
        self.services = tuple(services)
        self.upstreams = tuple(upstreams)
        self.routes = None if routes is None else tuple(routes)
        self.trusted_networks = _parse_networks(trusted_ips)
        self.settings: Mapping[str, Any] = dict(settings or {})
        index: dict[str, Any] = {}
        # ids first, then usernames: Kong's `anonymous` accepts either, an id wins on a clash.
        for c in self.consumers:
            username = getattr(c, "username", None)
            if username:
                index.setdefault(str(username), c)
        for c in self.consumers:
            cid = getattr(c, "id", None)
            if cid:
                index[str(cid)] = c
        self._consumer_index = index

    def find_consumer(self, id_or_username: str | None) -> Any | None:
        """The consumer with that id or username (Kong's ``anonymous`` field accepts both)."""
        if not id_or_username:
            return None
        return self._consumer_index.get(str(id_or_username))

    def credentials_for(self, plugin_name: str) -> Sequence[tuple[Any, Any]]:
        return self.credentials.get(plugin_name, ())

    def upstream_names(self) -> set[str]:
        return {str(getattr(u, "name", "")) for u in self.upstreams}


class Plugin:
    """Base class of every plugin. See the module docstring for the rules."""

    name: ClassVar[str] = ""
    PRIORITY: ClassVar[int] = 0
    VERSION: ClassVar[str] = "1.0.0"
    Config: ClassVar[type[msgspec.Struct]] = NoConfig

    # True when the proxy must buffer the request body (bounded) into ``ctx.request.body``
    # before running access: set per instance from the config (key-auth key_in_body,
    # request-transformer body rules). Streaming stays the default.
    needs_request_body: bool = False

    # True when body_filter returns every chunk unchanged (it only watches the body, like
    # proxy-cache): the proxy then keeps the upstream's Content-Length instead of re-chunking.
    body_filter_keeps_length: bool = False

    def __init__(self, config: Any, env: PluginEnv) -> None:
        self.config = config
        self.env = env

    # ---- phases (override any subset; the base versions are never called) ----
    def rewrite(self, ctx: Any) -> Any:
        return None

    def access(self, ctx: Any) -> Any:
        return None

    def header_filter(self, ctx: Any) -> Any:
        return None

    def body_filter(self, ctx: Any, chunk: bytes, eof: bool) -> bytes:
        return chunk

    def log(self, ctx: Any) -> Any:
        return None

    # ---- lifecycle ----
    def close(self) -> None:
        """Called when the snapshot holding this instance is retired (flush queues, etc)."""

    @classmethod
    def implements(cls, phase: str) -> bool:
        """Whether the class overrides ``phase`` (the chain lists only those)."""
        return getattr(cls, phase) is not getattr(Plugin, phase)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} priority={self.PRIORITY}>"
