"""The Gateway: one proxy listener on the running event loop, configured from Python or Kong's
declarative format, hot-reloadable. Used by the CLI (one per worker) and embeddable in any
asyncio application.

Rules:
- The library never installs an event loop policy or signal handlers; the CLI does.
- Every configuration change goes through ``update()``: compile a new Snapshot off the request
  path, then swap it in with one assignment. A change that fails leaves the running one in place.
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
import ssl
import sys
import time
import uuid
from typing import Any, Callable, Iterable, Mapping

from fastgw import __version__
from fastgw._core.hostport import split_host_port
from fastgw._core.proxy import Limits, ProxyCore
from fastgw.config.errors import ConfigError
from fastgw.config.gcpause import gc_paused
from fastgw.config.model import Config
from fastgw.config.snapshot import Compiler, Snapshot
from fastgw.listeners import ListenSpec, format_spec
from fastgw.listeners import parse_listen as parse_listen_specs
from fastgw.dns import Discovery, DnsSettings, Resolver, default_settings
from fastgw.plugins.context import Context as _Context

log = logging.getLogger("fastgw")

#: the sweeper period: deadlines (timeouts) are checked this often (seconds)
TICK = 0.05
#: a compile that built at least this many runtime objects is a "large compile": with
#: ``freeze_gc`` (the Gateway owns the process's GC) it is followed by gc.freeze(), so
#: CPython's full collections scan only
#: what was allocated since, instead of every object of a 100k-entity snapshot (which takes
#: 0.2-2 s and stalls the loop); the same idea as gc.freeze() before fork in the CPython docs
FREEZE_MIN_BUILT = 1000
#: how long a graceful stop waits for in-flight requests (nginx worker_shutdown_timeout: none;
#: Kong: 10 s for `kong quit`)
DEFAULT_DRAIN_TIMEOUT = 10.0
#: a TLS handshake must finish within this (nginx bounds it by client_header_timeout, 60 s
#: in Kong; uvloop's default is the same 60 s)
TLS_HANDSHAKE_TIMEOUT = 60.0


def parse_listen(value: str | tuple[str, int]) -> tuple[str, int]:
    """The first address of a listen value (Kong syntax, fastgw.listeners) -> (host, port)."""
    specs = parse_listen_specs(value)
    if not specs:
        raise ValueError(f"listen value {value!r} names no address")
    return specs[0].host, specs[0].port


def listen_specs(value: Any) -> list[ListenSpec]:
    """A listen value, or a list of them, as ListenSpecs (fastgw.listeners syntax)."""
    if isinstance(value, list):
        out: list[ListenSpec] = []
        for v in value:
            out.extend(parse_listen_specs(v))
        return out
    return parse_listen_specs(value)


def load_config(source: Any) -> Config:
    """A Config from a Config, a declarative dict, a path to a kong.yml/json, or None."""
    from fastgw.config.declarative import load_dict, load_file

    if source is None:
        return Config()
    if isinstance(source, Config):
        return source
    if isinstance(source, Mapping):
        return load_dict(dict(source))
    if isinstance(source, (str, os.PathLike)):
        return load_file(str(source))
    raise TypeError(f"cannot load a configuration from {type(source).__name__}")


class PluginRegistry:
    """``gw.plugins.register(MyPlugin)``: the process-wide registry, reachable from a Gateway."""

    def register(self, cls: type) -> type:
        from fastgw.plugins.registry import register

        return register(cls)

    def get(self, name: str) -> Any:
        from fastgw.plugins.registry import get

        return get(name)


class Gateway:
    """An API gateway on the running loop.

    ``Gateway(config)`` where config is a declarative dict, a path, a ``Config`` or None.
    ``await gw.start(listen="127.0.0.1:8000")``, ``gw.update(config)``, ``await gw.stop()``,
    or ``async with Gateway(config, listen=...) as gw``.
    """

    def __init__(self, config: Any = None, *, listen: Any = None,
                 admin_listen: str | tuple[str, int] | None = None,
                 handlers: Mapping[str, Any] | None = None, trusted_ips: tuple[str, ...] = (),
                 real_ip_header: str = "X-Forwarded-For", real_ip_recursive: bool = True,
                 limits: Limits | Mapping[str, Any] | None = None, node_id: str | None = None,
                 active_health: bool = True, clock: Callable[[], float] | None = None,
                 ssl_cert: str | None = None, ssl_cert_key: str | None = None,
                 dns: DnsSettings | None = None,
                 headers: Iterable[str] | None = None, access_log: Any = None,
                 trace_keys: Iterable[str] = (),
                 headers_upstream: Iterable[str] | None = None,
                 freeze_gc: bool = False) -> None:
        self.config: Config = load_config(config)
        # Kong's dns_* settings; default: fastgw.dns.configure()'d (CLI) or KONG_DNS_* env
        self.dns_settings: DnsSettings = dns if dns is not None else default_settings()
        self.discovery: Discovery | None = None
        self.listen = listen
        self.admin_listen = admin_listen
        self.handlers: dict[str, Any] = dict(handlers or {})
        self.trusted_ips = tuple(trusted_ips)
        # Kong's real_ip_header / real_ip_recursive (nginx realip), read by Context.client_ip.
        # The library's default is X-Forwarded-For, recursive (as before these were settable);
        # the CLI passes Kong's defaults (X-Real-IP, off) from its Settings.
        self.real_ip = {"real_ip_header": real_ip_header.lower(),
                        "real_ip_recursive": bool(real_ip_recursive)}
        from fastgw.limits import make as make_limits

        self.limits: Limits = make_limits(limits)   # ValueError names a bad limit
        self.node_id = node_id or str(uuid.uuid4())
        self.active_health = active_health
        self.clock = clock
        # Kong's `headers` tokens (None: Server and Via only, as before they were settable)
        # and an AccessLog buffer (fastgw.accesslog.AccessLogWriter.buffer) or None
        self.headers = None if headers is None else list(headers)
        # Kong's `headers_upstream` (x-kong-request-id on the upstream request); None: none
        self.headers_upstream = None if headers_upstream is None else list(headers_upstream)
        self.access_log = access_log
        # X-Fastgw-Trace values that ask for a request trace (fastgw.debug.trace); none: off
        self.trace_keys = [k for k in trace_keys if k]
        self.tracer: Any = None
        # the process's GC belongs to this Gateway (the CLI): freeze after large compiles
        self.freeze_gc = freeze_gc
        self._gc_state = "thawed"       # thawed -> frozen -> thawing -> frozen (_large_compile)
        self.plugins = PluginRegistry()
        self.core: ProxyCore | None = None
        self.compiler: Compiler | None = None
        self.server: asyncio.AbstractServer | None = None
        self.admin: Any = None
        self.status_server: Any = None
        self.store: Any = None
        self.started_at = 0.0
        self.address: tuple[str, int] | None = None
        # every proxy listener with its bound port, and its server
        self.listeners: list[ListenSpec] = []
        self.servers: list[asyncio.AbstractServer] = []
        # Kong's ssl_cert / ssl_cert_key (paths); None: a self-signed default at start
        self.ssl_cert = ssl_cert
        self.ssl_cert_key = ssl_cert_key
        self.tls: Any = None   # fastgw.tls.certset.TLSManager, made on first TLS listener
        self._tick: asyncio.TimerHandle | None = None
        self._published: dict[str, int] = {}   # gauges already added to the shared table
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None   # set by stop(); serve() waits on it
        self._started = False
        # more /status fields (the CLI's master adds its workers)
        self._extra_status: Callable[[], dict] | None = None

    # -- in-process targets ----------------------------------------------------------------
    def register_handler(self, name: str, handler: Any) -> None:
        """Register an in-process target: ``"asgi:billing"`` (an ASGI app) or
        ``"python:name"`` (an async handler). Takes effect with the next update()."""
        scheme, sep, _ = name.partition(":")
        if not sep or scheme not in ("asgi", "python"):
            raise ValueError("in-process target names are 'asgi:<name>' or 'python:<name>'")
        self.handlers[name] = handler

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self, listen: Any = None,
                    admin_listen: str | tuple[str, int] | None = None, *,
                    sock: socket.socket | None = None, reuse_port: bool = False,
                    admin_token: str | None = None, persist_path: str | None = None,
                    config_source: str | None = None) -> None:
        """Compile the configuration and listen; returns once the proxy accepts connections.

        - ``listen``: "host:port" or (host, port) (default: the constructor's ``listen``, else
          127.0.0.1:8000); port 0 lets the kernel choose: read ``gw.address`` afterwards.
        - ``admin_listen``: the Admin API's address, or None for none (``gw.admin_address``).
        - ``sock``: an already bound listening socket instead of ``listen``.
        - ``reuse_port``: SO_REUSEPORT (several processes on one port; the CLI's workers).
        - ``admin_token``: required as Kong-Admin-Token on every Admin API call.
        - ``persist_path``: write Admin API changes to this declarative file.
        - ``config_source``: the file GET /config reports the configuration came from.
        Raises ConfigError (bad configuration) or OSError (the address is unusable).
        """
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._stopped = asyncio.Event()
        listen = listen or self.listen or "127.0.0.1:8000"
        admin_listen = admin_listen if admin_listen is not None else self.admin_listen
        specs = listen_specs(listen) if sock is None else \
            [ListenSpec(*sock.getsockname()[:2])]
        port = specs[0].port if specs else 0
        from fastgw.inprocess import open_inprocess

        self.core = core = ProxyCore(loop, listen_port=port, limits=self.limits,
                                     context_factory=self._make_context,
                                     inprocess_connect=open_inprocess)
        if self.headers is not None or self.headers_upstream is not None:
            from fastgw.conf.settings import headers_mask

            core.headers = headers_mask(self.headers if self.headers is not None
                                        else ["server", "via"], self.headers_upstream)
        core.access_log = self.access_log
        if self.trusted_ips:
            from fastgw.plugins.base import _parse_networks
            from fastgw.realip import RealIP

            core.realip = RealIP(_parse_networks(self.trusted_ips),
                                 self.real_ip["real_ip_header"],
                                 self.real_ip["real_ip_recursive"])
        if self.trace_keys:
            from fastgw.debug.explain import explain
            from fastgw.debug.trace import Tracer

            self.tracer = core.tracer = Tracer(
                self.trace_keys, lambda *a: explain(self.config, *a))
        self.discovery = Discovery(Resolver(self.dns_settings))
        self.discovery.start()
        # the first requests should find addresses: resolve every name before serving
        await self.discovery.prime(Compiler.dns_names(self.config))
        self.compiler = Compiler(core, handlers=self.handlers, trusted_ips=self.trusted_ips,
                                 settings={"node_id": self.node_id, **self.real_ip},
                                 health_clock=self.clock, active_health=self.active_health,
                                 discovery=self.discovery)
        try:
            with gc_paused():
                snap = self.compiler.compile(self.config)
            if any(s.ssl for s in specs):
                self._tls_manager()
            if self.tls is not None:
                self.tls.update(self.config.certificates, self.config.snis)
            self._activate(snap)
        except BaseException:
            await self.discovery.stop()  # a bad config: nothing keeps running
            raise
        for spec in specs:
            await self._listen(loop, spec, sock, reuse_port)
        if self.servers:
            self.server = self.servers[0]
            self.address = self.servers[0].sockets[0].getsockname()[:2]
            core.listen_port = self.address[1]
        self.started_at = time.time()
        self._schedule_tick()
        if admin_listen is not None:
            await self.start_admin(admin_listen, token=admin_token, persist_path=persist_path,
                                   config_source=config_source)
        self._started = True
        for spec in self.listeners:
            log.info("fastgw %s proxy listening on %s", __version__, spec.describe())

    def _tls_manager(self) -> Any:
        if self.tls is None:
            from fastgw.tls import load_default_pairs
            from fastgw.tls.certset import TLSManager

            self.tls = TLSManager(load_default_pairs(self.ssl_cert, self.ssl_cert_key))
        return self.tls

    async def _listen(self, loop: asyncio.AbstractEventLoop, spec: ListenSpec,
                      sock: socket.socket | None, reuse_port: bool) -> None:
        assert self.core is not None
        # the factory learns the bound port after bind (port 0 in tests)
        bound = [spec.port]
        proto = self.core.protocol

        def factory() -> Any:
            return proto(bound[0], spec.ssl)

        kw: dict[str, Any] = {"backlog": spec.backlog}
        if spec.ssl:
            kw["ssl"] = self._tls_manager().listener_context(spec.alpn)
            kw["ssl_handshake_timeout"] = TLS_HANDSHAKE_TIMEOUT
        if sock is not None:
            srv = await loop.create_server(factory, sock=sock, **kw)
        else:
            srv = await loop.create_server(factory, spec.host, spec.port,
                                           reuse_port=(reuse_port or spec.reuseport) or None,
                                           **kw)
        bound[0] = srv.sockets[0].getsockname()[1]
        self.servers.append(srv)
        self.listeners.append(spec.with_port(bound[0]))

    def _listener_ssl(self, value: Any) -> tuple[str, int, Any]:
        """host, port and (for an `ssl` flag) a server context with the default certificate,
        for the admin and status listeners (Kong: admin_listen / status_listen `ssl`)."""
        specs = listen_specs(value)
        if len(specs) != 1:
            raise ValueError(f"listen value {value!r}: exactly one address expected")
        spec = specs[0]
        ctx = None
        if spec.ssl:
            from fastgw.tls.contexts import server_context

            ctx = server_context(self._tls_manager().default_pairs)
        return spec.host, spec.port, ctx

    @property
    def started(self) -> bool:
        """True from the end of a successful start() (every listener bound) until stop()
        begins (uvicorn's ``Server.started``)."""
        return self._started

    @property
    def admin_address(self) -> tuple[str, int] | None:
        """The Admin API's bound (host, port), e.g. the kernel's port for port 0."""
        if self.admin is None:
            return None
        host, port = self.admin.sockets[0].getsockname()[:2]
        return host, port

    async def serve(self, listen: str | tuple[str, int] | None = None,
                    admin_listen: str | tuple[str, int] | None = None, **start_kw: Any) -> None:
        """Start (unless started) and run until stop() is called or this task is cancelled,
        then stop gracefully (uvicorn's ``Server.serve()``)."""
        if not self.started:
            await self.start(listen, admin_listen, **start_kw)
        stopped = self._stopped
        assert stopped is not None
        try:
            await stopped.wait()
        finally:
            if self.core is not None:
                await asyncio.shield(self.stop())

    async def start_admin(self, admin_listen: str | tuple[str, int], *,
                          token: str | None = None, persist_path: str | None = None,
                          config_source: str | None = None,
                          apply: Callable[[Config], None] | None = None,
                          store: Any = None) -> None:
        """`store`: a ready ConfigStore (database mode's PgConfigStore), else a new one."""
        from fastgw.admin.app import AdminAPI
        from fastgw.admin.server import start_admin_server
        from fastgw.config.store import ConfigStore

        self.store = store or ConfigStore(self.config, apply or self.update, persist_path,
                                          source_path=config_source)
        host, port, ctx = self._listener_ssl(admin_listen)
        self.admin = await start_admin_server(AdminAPI(self.store, self), host, port,
                                              token=token, ssl=ctx)

    async def start_status(self, status_listen: str | tuple[str, int]) -> None:
        """Kong's status listener: GET /status and /metrics only (may face the network)."""
        from fastgw.admin.app import AdminAPI
        from fastgw.admin.status import start_status_server
        from fastgw.config.store import ConfigStore

        store = self.store or ConfigStore(self.config, self.update, None)
        host, port, ctx = self._listener_ssl(status_listen)
        self.status_server = await start_status_server(AdminAPI(store, self), host, port,
                                                       ssl=ctx)

    def _schedule_tick(self) -> None:
        assert self._loop is not None
        self._tick = self._loop.call_later(TICK, self._on_tick)

    def _on_tick(self) -> None:
        if self.core is None:
            return
        try:
            self.core.tick()
            if "fastgw.plugins.prometheus" in sys.modules:
                self._publish_gauges()
        except Exception:
            log.exception("tick failed")
        self._schedule_tick()

    def _publish_gauges(self) -> None:
        """Connection and request gauges into the node-wide metric table, as deltas, so the
        table sums every worker (kong_nginx_connections_total / kong_nginx_requests_total)."""
        from fastgw._core.metrics import GAUGES
        from fastgw.plugins.prometheus import shared_metrics

        assert self.core is not None
        st = self.core.stats()
        now = {
            "accepted": st["connections_total"], "handled": st["connections_total"],
            "total": st["requests_total"], "active": st["connections_active"],
            "writing": st["requests_active"],
            "waiting": st["connections_active"] - st["requests_active"],
        }
        m = shared_metrics()
        last = self._published
        for k, v in now.items():
            d = v - last.get(k, 0)
            if d:
                m.gauge_add(GAUGES[k], d)
        self._published = now

    async def stop(self, timeout: float = DEFAULT_DRAIN_TIMEOUT) -> None:
        """Graceful: stop accepting, finish in-flight requests (up to `timeout`), close."""
        if self.core is None:
            return
        self._started = False
        core = self.core
        for srv in self.servers:
            srv.close()
        for attr in ("admin", "status_server"):
            srv = getattr(self, attr)
            if srv is not None:
                await _maybe_await(srv.close())
                setattr(self, attr, None)
        drained = core.start_draining()
        try:
            await asyncio.wait_for(asyncio.shield(drained), timeout)
        except asyncio.TimeoutError:
            log.warning("stop: %d connections still busy after %.1fs; closing them",
                        len(core.conns), timeout)
            for conn in list(core.conns):
                conn.transport.abort() if conn.transport is not None else None
        if self._tick is not None:
            self._tick.cancel()
        import gc

        if self._after_collection in gc.callbacks:
            gc.callbacks.remove(self._after_collection)
        if self.compiler is not None and self.compiler.current is not None:
            for checker in self.compiler.current.health.values():
                checker.stop()
            if self.compiler.current.chains is not None:
                self.compiler.current.chains.close()
        if self.discovery is not None:
            await self.discovery.stop()
        core.close_pools()
        for srv in self.servers:
            await srv.wait_closed()
        self.servers = []
        self.listeners = []
        self.core = None
        if self._stopped is not None:
            self._stopped.set()

    async def __aenter__(self) -> "Gateway":
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    # -- configuration ---------------------------------------------------------------------
    def update(self, config: Any) -> Snapshot | None:
        """Compile and swap in a new configuration atomically (raises ConfigError)."""
        from fastgw.config.reuse import reuse_unchanged

        # equal entities keep the running objects: the compile below then reuses them by
        # identity (a worker decodes every config it is sent; a file reload re-reads all)
        with gc_paused():
            new = reuse_unchanged(load_config(config), self.config)
            if self.compiler is None:
                # not started yet: start() compiles it (and raises ConfigError there)
                self.config = new
                return None
            snap = self.compiler.compile(new)
        certs = None
        if self.tls is not None:
            try:
                certs = self.tls.build(new.certificates, new.snis)
            except (ssl.SSLError, ValueError) as exc:
                raise ConfigError([("certificates", f"cannot load certificate: {exc}")]
                                  ) from None
        self._activate(snap)
        if certs is not None:
            self.tls.activate(certs, (new.certificates, new.snis))
        self.config = new
        # the hash is computed when first read (GET /status), not per change
        log.info("configuration version %d applied", snap.version)
        return snap

    def _activate(self, snap: Snapshot) -> None:
        assert self.compiler is not None
        self.compiler.activate(snap)
        if self.freeze_gc and snap.built >= FREEZE_MIN_BUILT:
            self._large_compile()

    def _large_compile(self) -> None:
        """thawed: freeze what the compile kept. frozen: the new snapshot retires frozen
        objects, some in reference cycles (a balancer and its targets) that only the collector
        frees: unfreeze, and freeze again once the next full collection has freed them
        (thawing). Without the thaw every full replace would leak the retired cycles."""
        import gc

        if self._gc_state == "thawed":
            gc.freeze()
            self._gc_state = "frozen"
        elif self._gc_state == "frozen":
            gc.unfreeze()
            self._gc_state = "thawing"
            gc.callbacks.append(self._after_collection)

    def _after_collection(self, phase: str, info: dict[str, Any]) -> None:
        # runs inside the collector, on whichever thread triggered it: freeze from the loop
        if phase == "stop" and info.get("generation") == 2 and self._gc_state == "thawing":
            import gc

            if self._after_collection in gc.callbacks:
                gc.callbacks.remove(self._after_collection)
            loop = self._loop
            if loop is not None and not loop.is_closed():
                loop.call_soon_threadsafe(self._refreeze)

    def _refreeze(self) -> None:
        import gc

        if self._gc_state == "thawing":
            gc.freeze()
            self._gc_state = "frozen"

    @property
    def snapshot(self) -> Snapshot | None:
        return self.compiler.current if self.compiler is not None else None

    # -- plugin contexts -------------------------------------------------------------------
    def _make_context(self, route: Any, method: bytes, target: bytes, headers: Any,
                      client_ip: str, scheme: str = "http") -> Any:
        # per request on plugin routes only: keep it to one constructor call
        service = route.service.entity if route.service is not None else None
        return _Context(method, target, headers, client_ip, scheme, route.entity,
                        service, time.time(), route.chain.env)

    # -- what the Admin API reads ------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """Kong's /status "server" object (counters), plus this node's config hash and, under
        the CLI's master, one entry per worker with the hash it runs."""
        core = self.core
        stats = core.stats() if core is not None else {}
        snap = self.snapshot
        out: dict[str, Any] = {
            "connections_active": stats.get("connections_active", 0),
            "connections_accepted": stats.get("connections_total", 0),
            "connections_handled": stats.get("connections_total", 0),
            "total_requests": stats.get("requests_total", 0),
            "requests_active": stats.get("requests_active", 0),
            "configuration_hash": snap.config_hash if snap is not None else None,
            "config_version": snap.version if snap is not None else 0,
        }
        if self._extra_status is not None:
            out.update(self._extra_status())
        return out

    def upstream_health(self, name: str) -> list[dict]:
        snap = self.snapshot
        if snap is None or name not in snap.health:
            raise KeyError(name)
        return snap.health[name].health_report()

    def set_target_health(self, upstream: str, target: str, healthy: bool,
                          address: str | None = None) -> bool:
        """Every address of `target`, or the one at `address` ("ip:port"). False when the
        target has no such address."""
        snap = self.snapshot
        if snap is None or upstream not in snap.health:
            raise KeyError(upstream)
        return snap.health[upstream].set_target_health(target, healthy, address)

    def metrics(self) -> tuple[bytes, str] | None:
        """Prometheus text for GET /metrics (Kong's metric names, all workers of the node)."""
        from fastgw.plugins import prometheus

        prometheus.set_upstream_health_provider(self._health_rows)
        if self.core is not None:
            self._publish_gauges()
        return prometheus.metrics_text(), prometheus.CONTENT_TYPE

    def _health_rows(self) -> list[tuple[str, str, str, str]]:
        snap = self.snapshot
        rows = []
        if snap is None:
            return rows
        for name, checker in snap.health.items():
            for t in checker.health_report():
                rows.append((name, t["target"], t.get("address", t["target"]),
                             str(t.get("health", "HEALTHCHECKS_OFF")).lower()))
        return rows

    def node_info(self) -> dict[str, Any]:
        return {
            "version": __version__,
            "tagline": "Welcome to fastgw",
            "node_id": self.node_id,
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
            "started_at": self.started_at,
            "lua_version": None,
            "configuration": {
                "proxy_listen": [format_spec(s) for s in self.listeners],
                "admin_listen": [str(self.admin_listen)] if self.admin_listen else [],
            },
        }


async def _maybe_await(x: Any) -> Any:
    if asyncio.iscoroutine(x) or isinstance(x, asyncio.Future):
        return await x
    return x


__all__ = ["Gateway", "load_config", "parse_listen", "ConfigError"]
