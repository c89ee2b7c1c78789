"""Plugin chains: Kong's scoping/precedence resolved once per snapshot into flat lists.

Algorithm
---------
``build_chains`` instantiates every enabled plugin entity once (config validated, indexes
built) and files it under its scope ``(route_id, service_id, consumer_id)``. For a
``(route, service)`` pair, every plugin name picks its most specific instance in Kong's order

    route+service+consumer > route+consumer > service+consumer > route+service
        > consumer > route > service > global

first WITHOUT a consumer (the "base" chain, used from the start of the request), and, for each
consumer that has consumer-scoped instances reachable from this route, a variant chain WITH
that consumer. The chosen instances are sorted by ``(-PRIORITY, name)`` and split into one
flat tuple of bound methods per phase (only the phases a plugin overrides). A chain with no
plugin at all is ``None``: the proxy's zero-cost path.

Per request (APISIX's ``run_plugin``: walk a precomputed list):
- ``run_access`` runs rewrite then access in order, synchronously. A phase returning an
  awaitable switches to a coroutine that awaits it and continues from the next plugin, so a
  chain of sync plugins never allocates a coroutine.
- When an access-phase plugin authenticates (``ctx.consumer`` changes) and consumer-scoped
  plugins exist for this route, the walk continues in the consumer's variant chain right after
  the plugin that authenticated (Kong's collecting iterator loads each later plugin's config
  with the authenticated consumer). header_filter, body_filter and log use that variant.
- An exception in a plugin is logged with its traceback and becomes Kong's
  ``500 {"message":"An unexpected error occurred"}``; in log it is only logged.

Protocols: an instance whose ``protocols`` do not include the request scheme is skipped after
precedence is resolved (Kong filters the selected configuration by protocol).
"""

from __future__ import annotations

import bisect
import inspect
import logging
from collections.abc import Awaitable, Iterable, Sequence
from typing import Any

from .base import KONG_SERVER_ERROR, Plugin, PluginEnv, Response
from .context import Context, ListHeaders
from .registry import PluginConfigError, _error_path, get, validate_config

__all__ = ["build_chains", "ChainIndex", "Chain", "PluginInstanceError", "apply_header_ops"]

log = logging.getLogger("fastgw.plugins")

# Kong's default `protocols` of a plugin entity; http and https are what the proxy serves.
_WEB = frozenset(("http", "https"))


class PluginInstanceError(ValueError):
    """Errors building the plugin instances of a snapshot: ``errors`` lists
    ``(path, message)`` with paths like ``plugins[3].config.minute``."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{p}: {m}" for p, m in errors))


def _ref(x: Any) -> str | None:
    """A scope reference: None, an id string, a dict with id/name, or an entity object."""
    if x is None:
        return None
    if isinstance(x, str):
        return x or None
    if isinstance(x, dict):
        v = x.get("id") or x.get("name")
        return None if v is None else str(v)
    v = getattr(x, "id", None) or getattr(x, "name", None)
    return None if v is None else str(v)


class _Instance:
    __slots__ = ("plugin", "name", "key", "protocols", "scope")

    def __init__(self, plugin: Plugin, protocols: frozenset[str] | None, scope: tuple[Any, Any, Any]) -> None:
        self.plugin = plugin
        self.name = plugin.name
        self.key = (-plugin.PRIORITY, plugin.name)
        self.protocols = protocols
        self.scope = scope


def _phase_methods(plugins: Sequence[Plugin], phase: str) -> tuple[tuple[Any, ...], tuple[Plugin, ...]]:
    ps = tuple(p for p in plugins if type(p).implements(phase))
    return tuple(getattr(p, phase) for p in ps), ps


def _server_error() -> Response:
    return Response.json(500, KONG_SERVER_ERROR)


def apply_header_ops(
    headers: Iterable[tuple[bytes, bytes]], ops: dict[bytes, list[bytes] | None] | None
) -> list[tuple[bytes, bytes]]:
    """Apply recorded header ops to a list of pairs: a replaced name is written once, where its
    first original line was (or at the end when new); a removed name disappears."""
    pairs = list(headers)
    if not ops:
        return pairs
    out: list[tuple[bytes, bytes]] = []
    done: set[bytes] = set()
    for n, v in pairs:
        ln = n.lower()
        if ln in ops:
            if ln in done:
                continue
            done.add(ln)
            vals = ops[ln]
            if vals:
                out.extend((n, x) for x in vals)
        else:
            out.append((n, v))
    for ln, vals in ops.items():
        if ln not in done and vals:
            out.extend((ln, x) for x in vals)
    return out


class Chain:
    """The resolved, priority-ordered plugins of one (route, service[, consumer]) for one scheme."""

    __slots__ = (
        "plugins",
        "env",
        "_rewrite",
        "_rewrite_p",
        "_access",
        "_access_p",
        "_access_keys",
        "_header_filter",
        "_header_filter_p",
        "_body_filter",
        "_body_filter_p",
        "_log",
        "_log_p",
        "_base",
        "_by_consumer",
        "_by_scheme",
        "needs_request_body",
        "has_header_filter",
        "has_body_filter",
        "body_filter_keeps_length",
        "has_log",
    )

    def __init__(self, plugins: Sequence[Plugin], env: PluginEnv) -> None:
        self.plugins: tuple[Plugin, ...] = tuple(sorted(plugins, key=lambda p: (-p.PRIORITY, p.name)))
        self.env = env
        self._rewrite, self._rewrite_p = _phase_methods(self.plugins, "rewrite")
        self._access, self._access_p = _phase_methods(self.plugins, "access")
        self._access_keys = [(-p.PRIORITY, p.name) for p in self._access_p]
        self._header_filter, self._header_filter_p = _phase_methods(self.plugins, "header_filter")
        self._body_filter, self._body_filter_p = _phase_methods(self.plugins, "body_filter")
        self._log, self._log_p = _phase_methods(self.plugins, "log")
        self._base: Chain = self
        self._by_consumer: dict[str, Chain] | None = None
        # Set when some instance is limited to a scheme: the per-scheme variants.
        self._by_scheme: dict[str, Chain] | None = None
        self.needs_request_body = any(p.needs_request_body for p in self.plugins)
        self.has_header_filter = bool(self._header_filter)
        self.has_body_filter = bool(self._body_filter)
        self.body_filter_keeps_length = all(p.body_filter_keeps_length for p in self._body_filter_p)
        self.has_log = bool(self._log)

    def __repr__(self) -> str:
        return f"<Chain {[p.name for p in self.plugins]}>"

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.plugins]

    @property
    def scheme_scoped(self) -> bool:
        """Some instance is limited to a scheme: the chain has per-scheme variants."""
        return self._by_scheme is not None

    @property
    def consumer_scoped(self) -> bool:
        """Some instance is scoped to a consumer: the chain switches after authentication."""
        return self._by_consumer is not None

    # ------------------------------------------------------------------ access
    def run_access(self, ctx: Context) -> None | Response | Awaitable[None | Response]:
        """rewrite + access. None: proxy the request (applying ctx's overrides); a Response:
        answer it (then call :meth:`run_exit` and :meth:`run_log`); an awaitable: await it
        for one of those."""
        if self._by_scheme is not None:
            return self._by_scheme.get(ctx.request.scheme, self).run_access(ctx)
        ctx._chain = self
        if ctx.env is None:
            ctx.env = self.env
        if not self._rewrite:
            return self._run(ctx, 1, 0, ctx.consumer)
        return self._run(ctx, 0, 0, ctx.consumer)

    def _switch(self, consumer: Any) -> Chain:
        by = self._base._by_consumer
        if not by or consumer is None:
            return self
        cid = getattr(consumer, "id", None)
        return by.get(str(cid), self._base) if cid is not None else self

    def _run(self, ctx: Context, phase: int, i: int, seen: Any) -> Any:
        chain = self
        fns = chain._rewrite if phase == 0 else chain._access
        try:
            while True:
                n = len(fns)
                while True:
                    if phase == 1 and ctx.consumer is not seen:
                        # checked after every access call (and on resume after an await)
                        seen = ctx.consumer
                        new = chain._switch(seen)
                        if new is not chain:
                            # continue right after the last plugin that ran (same name = done)
                            i = bisect.bisect_right(new._access_keys, chain._access_keys[i - 1]) if i else 0
                            chain = ctx._chain = new
                            fns = chain._access
                            n = len(fns)
                    if i >= n:
                        break
                    r = fns[i](ctx)  # on an exception, i still indexes the failing plugin
                    if r is not None:
                        if isinstance(r, Response):
                            return r
                        if inspect.isawaitable(r):
                            return chain._resume(ctx, phase, i + 1, r, seen)
                        raise TypeError(f"phase returned {type(r).__name__}, expected None or Response")
                    i += 1
                if phase == 1:
                    return None
                phase, i = 1, 0
                fns = chain._access
        except Exception:
            plist = chain._rewrite_p if phase == 0 else chain._access_p
            return _failed(plist[i] if i < len(plist) else None, "rewrite" if phase == 0 else "access")

    async def _resume(self, ctx: Context, phase: int, i: int, aw: Awaitable[Any], seen: Any) -> None | Response:
        try:
            r = await aw
        except Exception:
            plist = self._rewrite_p if phase == 0 else self._access_p
            return _failed(plist[i - 1], "rewrite" if phase == 0 else "access")
        if r is not None:
            if isinstance(r, Response):
                return r
            return _failed(None, "access", TypeError(f"phase returned {type(r).__name__}"))
        nxt = self._run(ctx, phase, i, seen)
        while nxt is not None and not isinstance(nxt, Response):
            nxt = await nxt
        return nxt

    # ------------------------------------------------------------- header_filter
    def run_header_filter(self, ctx: Context) -> None | Response | Awaitable[None | Response]:
        """After ``ctx.set_response(...)``. None: send the (possibly changed) response head;
        a Response: a plugin failed (500) or replaced the response."""
        chain: Chain = ctx._chain or self
        return chain._run_hf(ctx, 0)

    def _run_hf(self, ctx: Context, i: int) -> Any:
        fns = self._header_filter
        n = len(fns)
        try:
            while i < n:
                r = fns[i](ctx)  # on an exception, i still indexes the failing plugin
                if r is not None:
                    if isinstance(r, Response):
                        return r
                    if inspect.isawaitable(r):
                        return self._resume_hf(ctx, i + 1, r)
                i += 1
        except Exception:
            return _failed(self._header_filter_p[i], "header_filter")
        return None

    async def _resume_hf(self, ctx: Context, i: int, aw: Awaitable[Any]) -> None | Response:
        try:
            r = await aw
        except Exception:
            return _failed(self._header_filter_p[i - 1], "header_filter")
        if isinstance(r, Response):
            return r
        nxt = self._run_hf(ctx, i)
        while nxt is not None and not isinstance(nxt, Response):
            nxt = await nxt
        return nxt

    def run_exit(self, ctx: Context, resp: Response) -> Response | Awaitable[Response]:
        """Run header_filter over a response made by a plugin or the gateway (Kong runs
        header_filter for ``kong.response.exit`` too: CORS headers on a 401, the correlation
        id echo, ...) and return the response to send, with header ops applied."""
        chain: Chain = ctx._chain or self
        if not chain._header_filter:
            return resp
        view = ctx.set_response(resp.status, ListHeaders(resp.headers), "exit")
        r = chain._run_hf(ctx, 0)
        if r is None or isinstance(r, Response):
            return _finish_exit(resp, view, r)

        async def finish() -> Response:
            rr = await r
            return _finish_exit(resp, view, rr)

        return finish()

    # --------------------------------------------------------------- body_filter
    def run_body_filter(self, ctx: Context, chunk: bytes, eof: bool) -> bytes:
        """Pass a response body chunk through every body_filter; returns the bytes to send.
        Synchronous by design (a body filter transforms bytes, it does not do I/O). A failing
        plugin is logged and skipped for that chunk."""
        chain: Chain = ctx._chain or self
        fns = chain._body_filter
        for i in range(len(fns)):
            try:
                chunk = fns[i](ctx, chunk, eof)
            except Exception:
                _failed(chain._body_filter_p[i], "body_filter")
        return chunk

    # ----------------------------------------------------------------------- log
    def run_log(self, ctx: Context) -> None | Awaitable[None]:
        """Log phase; never affects the response. Returns an awaitable only when a plugin's
        log is async: the proxy schedules it as a task instead of awaiting on the request path."""
        chain: Chain = ctx._chain or self
        pending: list[tuple[Plugin, Awaitable[Any]]] | None = None
        fns = chain._log
        for i in range(len(fns)):
            try:
                r = fns[i](ctx)
            except Exception:
                _failed(chain._log_p[i], "log")
                continue
            if r is not None and inspect.isawaitable(r):
                if pending is None:
                    pending = []
                pending.append((chain._log_p[i], r))
        if pending is None:
            return None
        return _await_logs(pending)


async def _await_logs(pending: list[tuple[Plugin, Awaitable[Any]]]) -> None:
    for plugin, aw in pending:
        try:
            await aw
        except Exception:
            _failed(plugin, "log")


def _finish_exit(resp: Response, view: Any, r: Response | None) -> Response:
    if r is not None:  # header_filter failed or replaced the response
        return r
    if view.status_override is not None:
        resp.status = view.status_override
    if view.header_ops:
        resp.headers = apply_header_ops(resp.headers, view.header_ops)
    return resp


def _failed(plugin: Plugin | None, phase: str, exc: BaseException | None = None) -> Response:
    name = plugin.name if plugin is not None else "?"
    if exc is None:
        log.exception("plugin %s failed in %s phase", name, phase)
    else:
        log.error("plugin %s failed in %s phase: %s", name, phase, exc)
    return _server_error()


# Precedence of scopes (route, service, consumer) present, most specific first (Kong 3.x).
_PRECEDENCE_WITH_CONSUMER = (
    (True, True, True),
    (True, False, True),
    (False, True, True),
    (True, True, False),
    (False, False, True),
    (True, False, False),
    (False, True, False),
    (False, False, False),
)
_PRECEDENCE = tuple(s for s in _PRECEDENCE_WITH_CONSUMER if not s[2])


class ChainIndex:
    """All chains of one snapshot. ``for_route`` is a dict lookup after the first call."""

    __slots__ = ("env", "instances", "_by_name", "_memo", "_consumer_ids", "_empty", "_shared")

    def __init__(self, instances: list[_Instance], env: PluginEnv) -> None:
        self.env = env
        self.instances = instances
        by_name: dict[str, dict[tuple[Any, Any, Any], _Instance]] = {}
        consumer_ids: set[str] = set()
        for inst in instances:
            by_name.setdefault(inst.name, {})[inst.scope] = inst
            if inst.scope[2] is not None:
                consumer_ids.add(inst.scope[2])
        self._by_name = by_name
        self._consumer_ids = consumer_ids
        self._memo: dict[tuple[Any, Any], Chain | None] = {}
        # one Chain per distinct selection of instances: 10,000 routes under the same global
        # plugins share one Chain (a Chain holds nothing route-specific)
        self._shared: dict[tuple[Any, ...], Chain] = {}
        self._empty = not instances

    def close(self) -> None:
        """Retire the snapshot: let every instance flush/close its resources."""
        for inst in self.instances:
            try:
                inst.plugin.close()
            except Exception:
                log.exception("closing plugin %s", inst.name)

    def for_route(self, route_id: str | None, service_id: str | None) -> Chain | None:
        if self._empty:
            return None
        key = (route_id, service_id)
        try:
            return self._memo[key]
        except KeyError:
            pass
        chain = self._memo[key] = self._resolve(route_id, service_id)
        return chain

    def _pick(self, route_id: Any, service_id: Any, consumer_id: Any) -> list[_Instance]:
        order = _PRECEDENCE if consumer_id is None else _PRECEDENCE_WITH_CONSUMER
        picked: list[_Instance] = []
        for scopes in self._by_name.values():
            for has_r, has_s, has_c in order:
                if (has_r and route_id is None) or (has_s and service_id is None):
                    continue
                inst = scopes.get(
                    (route_id if has_r else None, service_id if has_s else None, consumer_id if has_c else None)
                )
                if inst is not None:
                    picked.append(inst)
                    break
        return picked

    def _resolve(self, route_id: Any, service_id: Any) -> Chain | None:
        base_picked = self._pick(route_id, service_id, None)
        if not base_picked:
            # Without a plugin on the route nobody can authenticate, so consumer-scoped
            # plugins cannot apply either.
            return None
        consumer_picked: dict[str, list[_Instance]] = {}
        for cid in self._consumer_ids:
            picked = self._pick(route_id, service_id, cid)
            if [id(i) for i in picked] != [id(i) for i in base_picked]:
                consumer_picked[cid] = picked
        key = (tuple(id(i) for i in base_picked),
               tuple((cid, tuple(id(i) for i in p)) for cid, p in sorted(consumer_picked.items())))
        chain = self._shared.get(key)
        if chain is None:
            chain = self._shared[key] = self._resolve_picked(base_picked, consumer_picked)
        return chain

    def _resolve_picked(self, base_picked: list[_Instance],
                        consumer_picked: dict[str, list[_Instance]]) -> Chain:
        everything = base_picked + [i for p in consumer_picked.values() for i in p]
        if not any(i.protocols is not None and not _WEB <= i.protocols for i in everything):
            return self._variant(base_picked, consumer_picked, None)
        # Some instance is limited to http or https: one variant per scheme behind a
        # dispatcher that only looks at ctx.request.scheme.
        top = Chain([], self.env)
        top._by_scheme = {s: self._variant(base_picked, consumer_picked, s) for s in sorted(_WEB)}
        variants = top._by_scheme.values()
        top.plugins = tuple(dict.fromkeys(p for v in variants for p in v.plugins))
        top.needs_request_body = any(v.needs_request_body for v in variants)
        top.has_header_filter = any(v.has_header_filter for v in variants)
        top.has_body_filter = any(v.has_body_filter for v in variants)
        top.body_filter_keeps_length = all(v.body_filter_keeps_length for v in variants)
        top.has_log = any(v.has_log for v in variants)
        return top

    def _variant(
        self, base_picked: list[_Instance], consumer_picked: dict[str, list[_Instance]], scheme: str | None
    ) -> Chain:
        def plugins(picked: list[_Instance]) -> list[Plugin]:
            return [i.plugin for i in picked if scheme is None or i.protocols is None or scheme in i.protocols]

        base = Chain(plugins(base_picked), self.env)
        if consumer_picked:
            by: dict[str, Chain] = {}
            for cid, picked in consumer_picked.items():
                c = by[cid] = Chain(plugins(picked), self.env)
                c._base = base
            base._by_consumer = by
            # The body must be buffered before access runs: any consumer variant may need it.
            base.needs_request_body = base.needs_request_body or any(c.needs_request_body for c in by.values())
            base.body_filter_keeps_length = base.body_filter_keeps_length and all(
                c.body_filter_keeps_length for c in by.values())
        return base


def build_chains(plugins: Iterable[Any], env: PluginEnv) -> ChainIndex:
    """Instantiate every enabled plugin entity and index them by scope.

    Each entity has Kong's Plugin fields: ``name``, ``config`` (dict or the plugin's Config),
    ``enabled`` (default True), ``route``/``service``/``consumer`` (None, an id string, or an
    object/dict with ``id``), ``protocols`` (default all). Errors of every entity are collected
    and raised together as :class:`PluginInstanceError` with paths ``plugins[i].config...``.
    Two enabled instances of one plugin name on the same scope are an error (Kong's unique
    constraint).
    """
    errors: list[tuple[str, str]] = []
    instances: list[_Instance] = []
    seen: dict[tuple[str, Any, Any, Any], int] = {}
    for idx, ent in enumerate(plugins):
        name = _field(ent, "name")
        if _field(ent, "enabled", True) is False:
            continue
        prefix = f"plugins[{idx}]"
        cls = get(name) if isinstance(name, str) else None
        if cls is None:
            errors.append((f"{prefix}.name", f"plugin '{name}' not enabled; is it installed?"))
            continue
        try:
            config = validate_config(name, _field(ent, "config"))
        except PluginConfigError as e:
            errors.extend((f"{prefix}.{p}", m) for p, m in e.errors)
            continue
        scope = (_ref(_field(ent, "route")), _ref(_field(ent, "service")), _ref(_field(ent, "consumer")))
        dup = seen.get((name, *scope))
        if dup is not None:
            errors.append((prefix, f"duplicate '{name}' plugin on the same scope as plugins[{dup}]"))
            continue
        seen[(name, *scope)] = idx
        try:
            plugin = cls(config, env)
        except (ValueError, TypeError) as e:
            path, msg = _error_path(str(e))
            errors.append((f"{prefix}.{path}", msg))
            continue
        plugin.scope = scope  # Kong keys per-plugin state (rate-limit counters) by its scope
        protocols = _field(ent, "protocols")
        instances.append(_Instance(plugin, frozenset(protocols) if protocols else None, scope))
    if errors:
        for inst in instances:
            inst.plugin.close()
        raise PluginInstanceError(errors)
    return ChainIndex(instances, env)


def _field(ent: Any, name: str, default: Any = None) -> Any:
    if isinstance(ent, dict):
        return ent.get(name, default)
    return getattr(ent, name, default)
