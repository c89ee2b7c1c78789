"""Compile a Config into an immutable Snapshot, off the request path.

Rules:
- A Snapshot is built whole or not at all: any error raises ConfigError and the running
  snapshot stays in place.
- Nothing here runs per request. The proxy swaps ``ProxyCore.snapshot`` by one reference
  assignment; requests in flight keep the RouteRT they matched.
- State that must outlive a reload is carried over by key: connection pools (per host:port,
  owned by ProxyCore), balancer health and counters (per upstream name + target name), active
  health checkers (per upstream name, when its healthchecks are unchanged).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable

from fastgw._core.native import compile_chain
from fastgw._core.proxy import ProxyCore, RouteRT, ServiceRT
from fastgw._core.router import Router, RouteSpec
from fastgw.config.errors import ConfigError
from fastgw.config.model import Config

log = logging.getLogger("fastgw.config")

#: name of an in-process target: "<scheme>:<name>" where the scheme is one of these
INPROCESS_SCHEMES = ("asgi", "python")


@dataclass
class Snapshot:
    version: int
    config: Config
    config_hash: str
    router: Router
    services: dict[str, ServiceRT]
    routes: dict[str, RouteRT]
    balancers: dict[str, Any]          # upstream name -> Balancer
    upstreams: dict[str, Any]          # upstream name -> Upstream entity
    health: dict[str, Any] = field(default_factory=dict)  # upstream name -> HealthChecker
    chains: Any = None

    def balancer_for(self, name: str) -> Any:
        return self.balancers.get(name)


def split_host_port(target: str, default_port: int = 8000) -> tuple[str, int]:
    if target.startswith("["):
        host, _, rest = target[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else default_port
    host, sep, port = target.rpartition(":")
    if not sep:
        return target, default_port
    return host, int(port)


class Compiler:
    """Builds Snapshots for one ProxyCore; remembers the previous one for carry-over."""

    def __init__(self, core: ProxyCore, *, handlers: dict[str, Any] | None = None,
                 trusted_ips: tuple[str, ...] = (), settings: dict[str, Any] | None = None,
                 health_clock: Callable[[], float] | None = None,
                 active_health: bool = True) -> None:
        self.core = core
        self.handlers = handlers if handlers is not None else {}
        self.trusted_ips = trusted_ips
        self.settings = settings or {}
        self.health_clock = health_clock
        self.active_health = active_health
        self.version = 0
        self.current: Snapshot | None = None

    # -- targets and balancers ---------------------------------------------------------
    def _target(self, host: str, port: int, weight: int, tid: str | None, errors: list,
                path: str, tls: tuple[bool, bool] = (False, False)) -> Any:
        from fastgw._core.balancer import Target

        # in-process targets keep the name written in the config ("asgi:billing")
        t = Target(host, port, weight, tid) if isinstance(port, int) else \
            Target(f"{host}.{port}", 1, weight, tid, name=f"{host}:{port}")
        if host in INPROCESS_SCHEMES:
            handler = self.handlers.get(f"{host}:{port}") if isinstance(port, str) else None
            if handler is None:
                errors.append((path, f"no in-process handler registered as '{host}:{port}'"))
            t.pool = self.core.pool(f"{host}.{port}", 0)  # Host: asgi.billing:0 (valid syntax)
            t.pool.handler = handler
        else:
            use_tls, verify = tls
            t.pool = self.core.pool(host, port, _ssl_context(verify) if use_tls else None,
                                    verify)
        return t

    def _balancers(self, config: Config, errors: list) -> tuple[dict, dict, dict]:
        from fastgw.balancing import make_balancer

        prev = self.current
        # an upstream's targets speak TLS when the services balanced over it are https
        # (Kong: the service's protocol is the scheme used to every target)
        tls: dict[str, tuple[bool, bool]] = {}
        for s in config.services:
            if s.protocol == "https":
                tls.setdefault(s.host, (True, bool(s.tls_verify)))
        by_upstream: dict[str, list] = {}
        for i, t in enumerate(config.targets):
            by_upstream.setdefault(t.upstream, []).append((i, t))
        balancers: dict[str, Any] = {}
        health: dict[str, Any] = {}
        upstreams: dict[str, Any] = {}
        for ui, up in enumerate(config.upstreams):
            targets = []
            for i, t in by_upstream.get(up.id, []):
                host, port = self._parse_target(t.target)
                targets.append(self._target(host, port, t.weight, t.id, errors,
                                            f"targets[{i}].target",
                                            tls.get(up.name, (False, False))))
            try:
                bal = make_balancer(up.algorithm, targets, up.slots,
                                    threshold=float(_hc_threshold(up.healthchecks)))
            except (ValueError, TypeError) as e:
                errors.append((f"upstreams[{ui}]", str(e)))
                continue
            balancers[up.name] = bal
            upstreams[up.name] = up
            health[up.name] = self._health(up, bal, prev)
        return balancers, health, upstreams

    @staticmethod
    def _parse_target(target: str) -> tuple[str, Any]:
        scheme, sep, name = target.partition(":")
        if sep and scheme in INPROCESS_SCHEMES and not name.isdigit():
            return scheme, name
        return split_host_port(target)

    def _health(self, up: Any, bal: Any, prev: Snapshot | None) -> Any:
        from fastgw.health import HealthChecker, carry_over

        old = prev.health.get(up.name) if prev is not None else None
        kw = {"clock": self.health_clock} if self.health_clock is not None else {}
        checker = HealthChecker(up.name, bal, up.healthchecks, **kw)
        if old is not None:
            carry_over(old, checker)
        return checker

    # -- the whole snapshot ----------------------------------------------------------------
    def compile(self, config: Config) -> Snapshot:
        from fastgw.balancing import make_balancer
        from fastgw.config.declarative import config_hash

        errors: list[tuple[str, str]] = []
        balancers, health, upstreams = self._balancers(config, errors)
        services: dict[str, ServiceRT] = {}
        for si, s in enumerate(config.services):
            hash_spec = None
            health_rt = None
            up = upstreams.get(s.host)
            if up is not None:
                bal = balancers[s.host]
                if up.algorithm == "consistent-hashing" and up.hash_on != "none":
                    hash_spec = up
                host_header = up.host_header.encode() if up.host_header else None
                checker = health.get(s.host)
                # passive reports cost a call per request: only when passive checks are on
                health_rt = checker if checker is not None and checker.passive_enabled \
                    else None
            else:
                t = self._target(s.host, s.port, 100, None, errors, f"services[{si}].host",
                                 (s.protocol == "https", bool(s.tls_verify)))
                bal = make_balancer("round-robin", [t], 10000)
                host_header = None
            services[s.id] = ServiceRT(
                s.id, s.name or s.id, bal, health=health_rt, hash_spec=hash_spec,
                host_header=host_header, connect_timeout=s.connect_timeout / 1000.0, read_timeout=s.read_timeout / 1000.0,
                write_timeout=s.write_timeout / 1000.0, retries=s.retries, entity=s)

        chains = self._chains(config, errors)
        routes: dict[str, RouteRT] = {}
        specs = []
        for ri, r in enumerate(config.routes):
            svc = services.get(r.service) if r.service else None
            if svc is None:
                # a route without a service cannot proxy anything; Kong keeps such routes
                # matchable, fastgw leaves them out of the router (and says so)
                log.warning("route %s has no service: not routed", r.name or r.id)
                continue
            if not svc.entity.enabled:
                continue
            chain = chains.for_route(r.id, r.service) if chains is not None else None
            # the compiled chain when every plugin of the route has one (fastgw._core.native);
            # the Python chain is then skipped (chain None) on the request path
            native = compile_chain(chain, r, svc.entity, hash_spec=svc.hash_spec,
                                   clock=self.health_clock) if chain is not None else None
            # fastgw listens for plain http only: an https-only route answers Kong's 426 or
            # its https_redirect_status_code
            https_only = "http" not in r.protocols and "https" in r.protocols
            rt = RouteRT(r.id, r.name or r.id, svc, chain=None if native is not None else chain,
                         entity=r, native=native,
                         https_redirect=r.https_redirect_status_code if https_only else 0)
            routes[r.id] = rt
            specs.append(RouteSpec(
                rt, hosts=list(r.hosts or []), paths=list(r.paths or []),
                methods=list(r.methods or []), headers=dict(r.headers or {}),
                regex_priority=r.regex_priority, strip_path=r.strip_path,
                preserve_host=r.preserve_host, path_handling=r.path_handling,
                service_path=svc.entity.path, order=ri))
        try:
            router = Router(specs)
        except ValueError as e:
            errors.append(("routes", str(e)))
        if errors:
            raise ConfigError(errors)
        self.version += 1
        snap = Snapshot(self.version, config, config_hash(config), router, services, routes,
                        balancers, upstreams, health, chains)
        return snap

    def _chains(self, config: Config, errors: list) -> Any:
        if not config.plugins:
            return None
        from fastgw.plugins.base import PluginEnv
        from fastgw.plugins.chain import PluginInstanceError, build_chains

        consumers = {c.id: c for c in config.consumers}
        creds = {
            "key-auth": [(consumers.get(c.consumer), c) for c in config.keyauth_credentials],
            "basic-auth": [(consumers.get(c.consumer), c) for c in config.basicauth_credentials],
            "jwt": [(consumers.get(c.consumer), c) for c in config.jwt_secrets],
            "acl": [(consumers.get(c.consumer), c) for c in config.acls],
            "hmac-auth": [(consumers.get(c.consumer), c) for c in config.hmacauth_credentials],
            "oauth2": [(consumers.get(c.consumer), c) for c in config.oauth2_credentials],
        }
        env = PluginEnv(consumers=config.consumers, credentials=creds, services=config.services,
                        upstreams=config.upstreams, routes=config.routes,
                        trusted_ips=self.trusted_ips, settings=self.settings)
        try:
            return build_chains(config.plugins, env)
        except PluginInstanceError as e:
            errors.extend(e.errors)
        except (ValueError, TypeError) as e:
            errors.append(("plugins", str(e)))
        return None

    def activate(self, snap: Snapshot) -> None:
        """Swap it in (one reference assignment) and hand health checkers over."""
        old = self.current
        self.current = snap
        self.core.set_snapshot(snap)
        if old is not None:
            for name, checker in old.health.items():
                if snap.health.get(name) is not checker:
                    checker.stop()
            if old.chains is not None and old.chains is not snap.chains:
                old.chains.close()
        if self.active_health:
            for checker in snap.health.values():
                checker.start()


def _hc_threshold(hc: Any) -> float:
    if hc is None:
        return 0.0
    if isinstance(hc, dict):
        return hc.get("threshold", 0.0) or 0.0
    return getattr(hc, "threshold", 0.0) or 0.0


_SSL_CONTEXTS: dict[bool, Any] = {}


def _ssl_context(verify: bool) -> Any:
    """Client TLS context for https services. Kong verifies upstream certificates only when
    the service's tls_verify is true (nginx proxy_ssl_verify off by default): same here."""
    import ssl

    ctx = _SSL_CONTEXTS.get(verify)
    if ctx is None:
        ctx = ssl.create_default_context()
        if not verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        _SSL_CONTEXTS[verify] = ctx
    return ctx
