"""Compile a Config into an immutable Snapshot, off the request path.

Rules:
- A Snapshot is built whole or not at all: any error raises ConfigError and the running
  snapshot stays in place.
- Nothing here runs per request. The proxy swaps ``ProxyCore.snapshot`` by one reference
  assignment; requests in flight keep the RouteRT they matched.
- State that must outlive a reload is carried over by key: connection pools (per host:port,
  owned by ProxyCore), balancer health and counters (per upstream name + target name), active
  health checkers (per upstream name, when its healthchecks are unchanged).
- Hostnames (targets, non-upstream services) are never resolved here: balancers are built
  from fastgw.dns Discovery's current addresses, one entry per address
  (fastgw.balancing.expand_target); when they change, on_dns_change() rebuilds and swaps the
  affected balancers.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable

from fastgw._core.native import compile_chain
from fastgw._core.proxy import ProxyCore, RouteRT, ServiceRT
from fastgw._core.router import Router
from fastgw.balancing import TargetGroup
from fastgw.config.errors import ConfigError
from fastgw.config.model import Config, route_spec
from fastgw.dns import Discovery, Resolver
from fastgw.tls.upstream import context_for, service_tls_map

log = logging.getLogger("fastgw.config")

#: name of an in-process target: "<scheme>:<name>" where the scheme is one of these
INPROCESS_SCHEMES = ("asgi", "python")
#: Kong's answer for a service hostname that does not resolve (kong/runloop/balancer/init.lua)
MSG_NAME_RESOLUTION = "name resolution failed"


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
    # a target "host[:port]" (Kong's default target port 8000)
    from fastgw._core.hostport import split_host_port as split

    return split(target, default_port)


def _hash_input(spec: Any) -> Any:
    """What the proxy calls per request for a consistent-hashing service (None: no hashing)."""
    if spec is None:
        return None
    from functools import partial

    from fastgw.balancing import request_hash

    return partial(request_hash, spec)


class Compiler:
    """Builds Snapshots for one ProxyCore; remembers the previous one for carry-over."""

    def __init__(self, core: ProxyCore, *, handlers: dict[str, Any] | None = None,
                 trusted_ips: tuple[str, ...] = (), settings: dict[str, Any] | None = None,
                 health_clock: Callable[[], float] | None = None,
                 active_health: bool = True, discovery: Discovery | None = None) -> None:
        self.core = core
        # hostnames resolve through fastgw.dns; without a Discovery (tools, tests that only
        # compile) one is made that never runs: hostnames then have no addresses
        self.discovery = discovery if discovery is not None else Discovery(Resolver())
        self.handlers = handlers if handlers is not None else {}
        self.trusted_ips = trusted_ips
        self.settings = settings or {}
        self.health_clock = health_clock
        self.active_health = active_health
        self.version = 0
        self.current: Snapshot | None = None
        self._tls: dict[str, Any] = {}   # service id -> UpstreamTLS, while compiling

    # -- targets and balancers ---------------------------------------------------------
    def _target(self, host: str, port: Any, weight: int, tid: str | None, errors: list,
                path: str, tls: tuple[bool, Any] = (False, False),
                hostname: str | None = None, name: str | None = None) -> Any:
        from fastgw._core.balancer import Target

        # in-process targets keep the name written in the config ("asgi:billing")
        t = Target(host, port, weight, tid, name=name) if isinstance(port, int) else \
            Target(f"{host}.{port}", 1, weight, tid, name=f"{host}:{port}")
        if host in INPROCESS_SCHEMES:
            handler = self.handlers.get(f"{host}:{port}") if isinstance(port, str) else None
            if handler is None:
                errors.append((path, f"no in-process handler registered as '{host}:{port}'"))
            t.pool = self.core.pool(f"{host}.{port}", 0)  # Host: asgi.billing:0 (valid syntax)
            t.pool.handler = handler
        else:
            use_tls, settings = tls   # settings: fastgw.tls.upstream.UpstreamTLS
            t.pool = self.core.pool(host, port, context_for(settings) if use_tls else None,
                                    settings if use_tls else False, hostname)
        return t

    def _group(self, host: str, port: Any, weight: int, tid: str | None, target: str,
               errors: list, path: str, tls: tuple[bool, Any], use_srv_name: bool = False
               ) -> TargetGroup:
        """A configured target and its entries: one per resolved address (fastgw.dns)."""
        from fastgw.balancing import expand_target

        if not isinstance(port, int):  # in-process
            t = self._target(host, port, weight, tid, errors, path, tls)
            return TargetGroup(target, tid, host, 0, weight, "A", [t])
        res = self.discovery.current(host)
        group = TargetGroup(target, tid, host, port, weight,
                            (res.rtype or res.error or "") if res is not None else
                            "not resolved yet")
        for e in expand_target(host, port, weight, target, res, use_srv_name):
            group.entries.append(self._target(e.ip, e.port, e.weight, tid, errors, path, tls,
                                              e.hostname, e.name))
        return group

    def _tls_by_upstream(self, config: Config) -> dict[str, tuple[bool, Any]]:
        # an upstream's targets speak TLS when the services balanced over it are https
        # (Kong: the service's protocol is the scheme used to every target)
        tls: dict[str, tuple[bool, Any]] = {}
        self._tls = service_tls_map(config)
        for s in config.services:
            if s.protocol == "https":
                tls.setdefault(s.host, (True, self._tls[s.id]))
        return tls

    def _upstream(self, ui: int, up: Any, targets: list, errors: list,
                  tls: dict[str, tuple[bool, Any]]) -> tuple[Any, list[TargetGroup]] | None:
        from fastgw.balancing import make_balancer

        groups = []
        for i, t in targets:
            host, port = self._parse_target(t.target)
            groups.append(self._group(host, port, t.weight, t.id, t.target, errors,
                                      f"targets[{i}].target", tls.get(up.name, (False, False)),
                                      up.use_srv_name))
        entries = [e for g in groups for e in g.entries]
        try:
            bal = make_balancer(up.algorithm, entries, up.slots,
                                threshold=float(_hc_threshold(up.healthchecks)))
        except (ValueError, TypeError) as e:
            errors.append((f"upstreams[{ui}]", str(e)))
            return None
        return bal, groups

    def _targets_of(self, config: Config) -> dict[str, list]:
        by_upstream: dict[str, list] = {}
        for i, t in enumerate(config.targets):
            by_upstream.setdefault(t.upstream, []).append((i, t))
        return by_upstream

    def _balancers(self, config: Config, errors: list) -> tuple[dict, dict, dict]:
        prev = self.current
        tls = self._tls_by_upstream(config)
        by_upstream = self._targets_of(config)
        balancers: dict[str, Any] = {}
        health: dict[str, Any] = {}
        upstreams: dict[str, Any] = {}
        for ui, up in enumerate(config.upstreams):
            built = self._upstream(ui, up, by_upstream.get(up.id, []), errors, tls)
            if built is None:
                continue
            bal, groups = built
            balancers[up.name] = bal
            upstreams[up.name] = up
            old = prev.health.get(up.name) if prev is not None else None
            health[up.name] = self._health(up, bal, old, groups)
        return balancers, health, upstreams

    @staticmethod
    def _parse_target(target: str) -> tuple[str, Any]:
        scheme, sep, name = target.partition(":")
        if sep and scheme in INPROCESS_SCHEMES and not name.isdigit():
            return scheme, name
        return split_host_port(target)

    def _health(self, up: Any, bal: Any, old: Any, groups: list[TargetGroup]) -> Any:
        from fastgw.health import HealthChecker, carry_over

        kw = {"clock": self.health_clock} if self.health_clock is not None else {}
        checker = HealthChecker(up.name, bal, up.healthchecks, groups=groups, **kw)
        if old is not None:
            carry_over(old, checker)
        return checker

    def _service_balancer(self, s: Any, si: int, errors: list) -> tuple[Any, Any]:
        """A service whose host is not an upstream: round robin over the host's addresses
        (Kong's toip), and the answer when there are none."""
        from fastgw.balancing import make_balancer

        g = self._group(s.host, s.port, 100, None, f"{s.host}:{s.port}", errors,
                        f"services[{si}].host", (s.protocol == "https", self._tls.get(s.id)))
        no_peer = None
        if not g.entries:
            res = self.discovery.current(s.host)
            if res is None or res.not_found:
                no_peer = (503, MSG_NAME_RESOLUTION)
            else:  # kong/runloop/handler.lua balancer_execute: the error, as a 500
                no_peer = (500, f"failed the initial dns/balancer resolve for '{s.host}' "
                                f"with: {res.error}")
        return make_balancer("round-robin", g.entries, 10000), no_peer

    # -- re-resolution ------------------------------------------------------------------------
    @staticmethod
    def dns_names(config: Config) -> set[str]:
        """Every hostname the config balances over (targets and non-upstream services)."""
        upstream_names = {u.name for u in config.upstreams}
        names = set()
        for t in config.targets:
            host, port = Compiler._parse_target(t.target)
            if isinstance(port, int):
                names.add(host)
        for s in config.services:
            if s.host not in upstream_names and s.host not in INPROCESS_SCHEMES:
                names.add(s.host)
        return names

    def on_dns_change(self, names: set[str]) -> None:
        """New addresses for `names`: rebuild the balancers that use them and swap them in.

        The one change made to a live snapshot: ServiceRT.balancer/health/no_peer and the
        snapshot's balancers/health entries are replaced, each by one reference assignment
        (a Balancer itself never changes). Health carries over by entry name; requests in
        flight finish on the balancer they picked from (Balancer._home), so an address
        that disappeared drains: no new requests, in-flight ones complete, and its idle
        keep-alive connections are closed.
        """
        snap = self.current
        if snap is None:
            return
        config = snap.config
        tls = self._tls_by_upstream(config)
        by_upstream = self._targets_of(config)
        old_pools = {t.pool for b in snap.balancers.values() for t in b.targets} | \
            {t.pool for sv in snap.services.values() for t in sv.balancer.targets}
        for ui, up in enumerate(config.upstreams):
            targets = by_upstream.get(up.id, [])
            if up.name not in snap.balancers or not any(
                    self._parse_target(t.target)[0] in names for _, t in targets):
                continue
            errors: list = []
            built = self._upstream(ui, up, targets, errors, tls)
            if built is None or errors:
                log.error("upstream %s: new addresses not applied: %s", up.name, errors)
                continue
            bal, groups = built
            old = snap.health.get(up.name)
            checker = self._health(up, bal, old, groups)
            snap.balancers[up.name] = bal
            snap.health[up.name] = checker
            for svc in snap.services.values():
                if svc.entity.host == up.name:
                    svc.balancer = bal
                    svc.health = checker if checker.passive_enabled else None
            if old is not None:
                old.stop()
            if self.active_health:
                checker.start()
        upstream_names = {u.name for u in config.upstreams}
        for si, s in enumerate(config.services):
            svc = snap.services.get(s.id)
            if svc is None or s.host in upstream_names or s.host not in names:
                continue
            errors = []
            bal, no_peer = self._service_balancer(s, si, errors)
            if not errors:
                svc.balancer, svc.no_peer = bal, no_peer
        new_pools = {t.pool for b in snap.balancers.values() for t in b.targets} | \
            {t.pool for sv in snap.services.values() for t in sv.balancer.targets}
        for pool in old_pools - new_pools:
            pool.close_idle()

    # -- the whole snapshot ----------------------------------------------------------------
    def compile(self, config: Config) -> Snapshot:
        from fastgw.config.declarative import config_hash

        errors: list[tuple[str, str]] = []
        balancers, health, upstreams = self._balancers(config, errors)
        services: dict[str, ServiceRT] = {}
        for si, s in enumerate(config.services):
            hash_spec = None
            health_rt = None
            no_peer = None
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
                bal, no_peer = self._service_balancer(s, si, errors)
                host_header = None
            services[s.id] = ServiceRT(
                s.id, s.name or s.id, bal, health=health_rt, hash_spec=hash_spec,
                hash_input=_hash_input(hash_spec),
                host_header=host_header, connect_timeout=s.connect_timeout / 1000.0, read_timeout=s.read_timeout / 1000.0,
                write_timeout=s.write_timeout / 1000.0, retries=s.retries, entity=s)
            if up is None:
                services[s.id].no_peer = no_peer

        chains = self._chains(config, errors)
        routes: dict[str, RouteRT] = {}
        specs = []
        for r in config.routes:
            svc = services.get(r.service) if r.service else None
            if svc is not None and not svc.entity.enabled:
                continue
            # a route without a service stays matchable: its plugins run, then the proxy
            # answers Kong's 503 "no Service found with those values" (kong/init.lua access)
            chain = chains.for_route(r.id, r.service) if chains is not None else None
            # the compiled chain when every plugin of the route has one (fastgw._core.native);
            # the Python chain is then skipped (chain None) on the request path
            native = compile_chain(chain, r, svc.entity, hash_spec=svc.hash_spec,
                                   clock=self.health_clock) \
                if chain is not None and svc is not None else None
            # fastgw listens for plain http only: an https-only route answers Kong's 426 or
            # its https_redirect_status_code
            https_only = "http" not in r.protocols and "https" in r.protocols
            rt = RouteRT(r.id, r.name or r.id, svc, chain=None if native is not None else chain,
                         entity=r, native=native,
                         https_redirect=r.https_redirect_status_code if https_only else 0,
                         request_buffering=r.request_buffering,
                         response_buffering=r.response_buffering,
                         https_ok="https" in r.protocols,
                         snis=frozenset(n.lower() for n in r.snis) if r.snis else None)
            routes[r.id] = rt
            specs.append(route_spec(r, rt, svc.entity.path if svc is not None else None))
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
        """Swap it in (one reference assignment), hand health checkers over, and tell
        discovery which names to keep resolved."""
        old = self.current
        self.current = snap
        self.core.set_snapshot(snap)
        self.discovery.listener = self.on_dns_change
        self.discovery.watch(self.dns_names(snap.config))
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
