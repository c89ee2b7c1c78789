"""Compile a Config into an immutable Snapshot, off the request path, incrementally.

Rules:
- A Snapshot is built whole or not at all: any error raises ConfigError and the running
  snapshot stays in place.
- Nothing here runs per request. The proxy swaps ``ProxyCore.snapshot`` by one reference
  assignment; requests in flight keep the RouteRT they matched.
- Incremental by reuse (``_Memo``, kept on each Snapshot): a compile walks the new Config and
  reuses what the previous snapshot built for an entity that is the same object or equal
  (msgspec Struct ``==``, in C) with the same dependencies: an upstream's balancer and health
  checker (upstream + its targets + TLS unchanged), a ServiceRT (service + its balancer), a
  RouteRT with its compiled plugin chain (route + ServiceRT + Chain), the RouteSpec (also at
  the same list position), the Router (the same RouteSpecs in the same order) and the
  ChainIndex (plugins + what its plugins read). A one-entity Admin API write therefore costs
  O(N) identity checks plus the rebuilt parts, not a full compile; a POST /config of an equal
  file reuses nearly everything.
- Consumers and key-auth credentials: when only they changed and every plugin instance is one
  that reads none of them but key-auth (``_CREDENTIAL_BLIND``; key-auth without
  ``anonymous``), the ChainIndex is reused and the new key -> (consumer, credential) map is
  installed into the key-auth instances in ``activate``, in the same synchronous step as the
  snapshot swap (nothing awaits between them, and routing + key-auth run in one step per
  request, so a request sees the old keys with the old routes or the new with the new). Any
  other consumer/credential change rebuilds the chains.
- State that must outlive a reload is carried over by key: connection pools (per host:port,
  owned by ProxyCore), balancer health and counters (per upstream name + target name), active
  health checkers (per upstream name, when its healthchecks are unchanged).
- ``config_hash`` is computed when first read (fastgw.config.digest caches per entity).
- Hostnames (targets, non-upstream services) are never resolved here: balancers are built
  from fastgw.dns Discovery's current addresses, one entry per address
  (fastgw.balancing.expand_target); when they change, on_dns_change() rebuilds and swaps the
  affected balancers (and their memo entries, so a later compile does not bring back the old).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable

from fastgw._core.native import compile_chain
from fastgw._core.proxy import ProxyCore, RouteRT, ServiceRT
from fastgw._core.router import Router, RouteSpec
from fastgw.balancing import TargetGroup
from fastgw.config.delta import splice
from fastgw.config.errors import ConfigError
from fastgw.config.keymaps import install_keys, key_delta
from fastgw.config.model import Config, route_spec
from fastgw.dns import Discovery, Resolver
from fastgw.tls.upstream import context_for, service_tls_map

log = logging.getLogger("fastgw.config")

#: name of an in-process target: "<scheme>:<name>" where the scheme is one of these
INPROCESS_SCHEMES = ("asgi", "python")
#: Kong's answer for a service hostname that does not resolve (kong/runloop/balancer/init.lua)
MSG_NAME_RESOLUTION = "name resolution failed"

#: built-in plugins whose instances read no consumer or credential from PluginEnv (key-auth
#: reads its credentials, handled apart); a consumer/credential change keeps their instances
_CREDENTIAL_BLIND = frozenset((
    "rate-limiting", "cors", "correlation-id", "request-size-limiting", "request-transformer",
    "response-transformer", "ip-restriction", "bot-detection", "file-log", "http-log",
    "opentelemetry", "canary"))
#: credential lists other than key-auth's: a change there rebuilds the chains
_OTHER_CREDENTIALS = ("basicauth_credentials", "jwt_secrets", "acls", "hmacauth_credentials",
                      "oauth2_credentials")


def _same(a: Any, b: Any) -> bool:
    return a is b or a == b


@dataclass
class _Memo:
    """What one compile built, by entity id / upstream name, for the next compile to reuse."""
    upstreams: dict[str, tuple] = field(default_factory=dict)   # name -> (up, targets, tls, bal, checker)
    direct: dict[str, tuple] = field(default_factory=dict)      # id -> (svc, bal, no_peer, tls)
    services: dict[str, tuple] = field(default_factory=dict)    # id -> (svc, bal, health, hash_spec, hh, rt)
    routes: dict[str, tuple] = field(default_factory=dict)      # id -> (route, svc_rt, chain, rt, spec, order)
    specs: list = field(default_factory=list)
    router: Any = None
    chain_inputs: tuple = ()
    handlers: dict = field(default_factory=dict)               # in-process handlers used
    by_service: dict = field(default_factory=dict)             # service id -> routes naming it
    spec_index: dict = field(default_factory=dict)             # route id -> position in specs
    consumers_by_id: dict | None = None                        # for key-auth key deltas
    creds_by_consumer: dict | None = None                      # consumer id -> key-auth creds


@dataclass
class Snapshot:
    version: int
    config: Config
    router: Router
    services: dict[str, ServiceRT]
    routes: dict[str, RouteRT]
    balancers: dict[str, Any]          # upstream name -> Balancer
    upstreams: dict[str, Any]          # upstream name -> Upstream entity
    health: dict[str, Any] = field(default_factory=dict)  # upstream name -> HealthChecker
    chains: Any = None
    memo: _Memo | None = None
    #: key-auth instances -> their new key map, installed by Compiler.activate
    key_updates: list = field(default_factory=list)
    #: runtime objects this compile built anew (the rest was reused): large after a start
    #: or a replace with new content, a handful after an Admin API write
    built: int = 0
    _hash: str | None = None

    @property
    def config_hash(self) -> str:
        h = self._hash
        if h is None:
            from fastgw.config.model import config_hash

            h = self._hash = config_hash(self.config)
        return h

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

    def _balancers(self, config: Config, errors: list, prev: _Memo | None, memo: _Memo
                   ) -> tuple[dict, dict, dict]:
        tls = self._tls_by_upstream(config)
        by_upstream = self._targets_of(config)
        balancers: dict[str, Any] = {}
        health: dict[str, Any] = {}
        upstreams: dict[str, Any] = {}
        old_ups = prev.upstreams if prev is not None else {}
        for ui, up in enumerate(config.upstreams):
            mine = by_upstream.get(up.id, [])
            ents = [t for _, t in mine]
            up_tls = tls.get(up.name, (False, False))
            hit = old_ups.get(up.name)
            if hit is not None and _same(hit[0], up) and hit[2] == up_tls and \
                    _same(hit[1], ents):
                bal, checker = hit[3], hit[4]
                memo.upstreams[up.name] = hit
            else:
                built = self._upstream(ui, up, mine, errors, tls)
                if built is None:
                    continue
                bal, groups = built
                old = self.current.health.get(up.name) if self.current is not None else None
                checker = self._health(up, bal, old, groups)
                memo.upstreams[up.name] = (up, ents, up_tls, bal, checker)
            balancers[up.name] = bal
            upstreams[up.name] = up
            health[up.name] = checker
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
        self._tls = service_tls_map(config)
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
            hit = snap.memo.upstreams.get(up.name) if snap.memo is not None else None
            if hit is not None:   # a later compile reuses the new balancer, not the old
                snap.memo.upstreams[up.name] = (hit[0], hit[1], hit[2], bal, checker)
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
                hit = snap.memo.direct.get(s.id) if snap.memo is not None else None
                if hit is not None:
                    snap.memo.direct[s.id] = (s, bal, no_peer, hit[3])
        new_pools = {t.pool for b in snap.balancers.values() for t in b.targets} | \
            {t.pool for sv in snap.services.values() for t in sv.balancer.targets}
        for pool in old_pools - new_pools:
            pool.close_idle()

    # -- the whole snapshot ----------------------------------------------------------------
    def compile(self, config: Config) -> Snapshot:
        errors: list[tuple[str, str]] = []
        # the upstream TLS settings of every https service (their certificates and CAs are
        # entities of their own: part of what an unchanged service must be compared with)
        self._tls = service_tls_map(config)
        cur = self.current
        prev = cur.memo if cur is not None else None
        memo = _Memo()
        built = 0
        old_cfg = cur.config if cur is not None and prev is not None else None
        balancers, health, upstreams, services, changed_services, n = \
            self._service_step(config, errors, cur, prev, memo)
        built += n
        memo.handlers = dict(self.handlers)
        chains, key_updates = self._chains(config, errors, cur, memo)
        local = old_cfg is not None and changed_services is not None and \
            chains is cur.chains and \
            not any(sid in prev.by_service for sid in changed_services)
        router: Any = None
        if local and config.routes is old_cfg.routes:
            # no route points at a changed service (a new one has none yet)
            assert cur is not None and prev is not None
            routes, memo.routes, memo.specs, router = \
                cur.routes, prev.routes, prev.specs, prev.router
            memo.by_service, memo.spec_index = prev.by_service, prev.spec_index
        elif local and (spliced := self._route_splice(config, services, chains, cur, prev,
                                                      memo)) is not None:
            routes, specs, n = spliced
            built += n
            try:
                router = Router(specs)
            except ValueError as e:
                errors.append(("routes", str(e)))
            memo.specs = specs
        else:
            routes, specs, n = self._routes(config, services, chains, prev, memo)
            built += n
            if prev is not None and prev.router is not None and len(prev.specs) == len(specs) \
                    and all(a is b for a, b in zip(prev.specs, specs)):
                router = prev.router
            else:
                try:
                    router = Router(specs)
                except ValueError as e:
                    errors.append(("routes", str(e)))
            memo.specs = specs
        if errors:
            raise ConfigError(errors)
        memo.router = router
        self.version += 1
        return Snapshot(self.version, config, router, services, routes, balancers, upstreams,
                        health, chains, memo, key_updates, built=built)

    def _route_splice(self, config: Config, services: dict[str, ServiceRT], chains: Any,
                      cur: Snapshot, prev: _Memo, memo: _Memo) -> Any:
        """Routes after one splice of the route list that appends routes or replaces routes in
        place (an Admin API create, PUT or PATCH), without walking the others; None when the
        splice is of another shape (the caller walks every route)."""
        start, end, items = splice(cur.config.routes, config.routes) or (0, 0, [])
        if not items and start == end:
            return None
        old_items = cur.config.routes[start:end]
        appended = start == end == len(cur.config.routes)
        in_place = len(old_items) == len(items) and \
            all(a.id == b.id for a, b in zip(old_items, items))
        if not (appended or in_place):
            return None
        ready = []
        for k, r in enumerate(items):
            svc = services.get(r.service) if r.service else None
            if svc is None or not svc.entity.enabled:
                return None     # an unrouted route shifts spec positions: walk them all
            if in_place and old_items[k].id not in prev.spec_index:
                return None
            ready.append((start + k, r, svc))
        routes = dict(cur.routes)
        memo.routes = dict(prev.routes)
        memo.by_service = by_service = dict(prev.by_service)
        specs = list(prev.specs)
        spec_index = dict(prev.spec_index) if appended else prev.spec_index
        for k, r in enumerate(old_items):
            n = by_service.get(r.service, 0) - 1
            if n > 0:
                by_service[r.service] = n
            else:
                by_service.pop(r.service, None)
        for ri, r, svc in ready:
            by_service[r.service] = by_service.get(r.service, 0) + 1
            chain = chains.for_route(r.id, r.service) if chains is not None else None
            rt = self._route_rt(r, svc, chain)
            spec = self._spec(rt, r, svc, ri)
            memo.routes[r.id] = (r, svc, chain, rt, spec, ri)
            routes[r.id] = rt
            if appended:
                spec_index[r.id] = len(specs)
                specs.append(spec)
            else:
                specs[spec_index[r.id]] = spec
        memo.spec_index = spec_index
        return routes, specs, len(ready)

    def _service_step(self, config: Config, errors: list, cur: Snapshot | None,
                      prev: _Memo | None, memo: _Memo) -> tuple:
        """Balancers, health, upstreams, services, the ids of the services that changed (None:
        unknown, every route must be looked at) and the number of ServiceRTs built.

        Fast paths (a write changes one list): with upstreams, targets and in-process handlers
        unchanged, an unchanged service list takes everything over; one splice of it
        (`delta.splice`) rebuilds only the spliced services, unless one of them is balanced
        over an upstream (its protocol sets the TLS of that upstream's targets)."""
        old_cfg = cur.config if cur is not None and prev is not None else None
        if old_cfg is not None and prev is not None and prev.handlers == self.handlers \
                and config.upstreams is old_cfg.upstreams and config.targets is old_cfg.targets \
                and config.certificates is old_cfg.certificates \
                and config.ca_certificates is old_cfg.ca_certificates:
            assert cur is not None
            if config.services is old_cfg.services:
                memo.upstreams, memo.direct, memo.services = \
                    prev.upstreams, prev.direct, prev.services
                return cur.balancers, cur.health, cur.upstreams, cur.services, set(), 0
            sp = splice(old_cfg.services, config.services)
            if sp is not None:
                start, end, items = sp
                removed = old_cfg.services[start:end]
                if not any(x.host in cur.upstreams for x in (*removed, *items)):
                    memo.upstreams = prev.upstreams
                    memo.services, memo.direct = dict(prev.services), dict(prev.direct)
                    services = dict(cur.services)
                    for x in removed:
                        memo.services.pop(x.id, None)
                        memo.direct.pop(x.id, None)
                        services.pop(x.id, None)
                    self._service_entries(zip(range(start, start + len(items)), items),
                                          errors, prev, memo, services, cur.balancers,
                                          cur.health, cur.upstreams)
                    changed = {x.id for x in removed} | {x.id for x in items}
                    return (cur.balancers, cur.health, cur.upstreams, services, changed,
                            len(items))
        balancers, health, upstreams = self._balancers(config, errors, prev, memo)
        services = self._services(config, errors, prev, memo, balancers, health, upstreams)
        n = sum(1 for k, v in memo.services.items()
                if prev is None or prev.services.get(k) is not v)
        return balancers, health, upstreams, services, None, n

    def _routes(self, config: Config, services: dict[str, ServiceRT], chains: Any,
                prev: _Memo | None, memo: _Memo) -> tuple[dict[str, RouteRT], list, int]:
        routes: dict[str, RouteRT] = {}
        specs = []
        built = 0
        by_service: dict[str, int] = {}
        spec_index: dict[str, int] = {}
        old_routes = prev.routes if prev is not None else {}
        for ri, r in enumerate(config.routes):
            if r.service:   # every route that names the service, routed or not
                by_service[r.service] = by_service.get(r.service, 0) + 1
            svc = services.get(r.service) if r.service else None
            if svc is not None and not svc.entity.enabled:
                continue
            # a route without a service stays matchable: its plugins run, then the proxy
            # answers Kong's 503 "no Service found with those values" (kong/init.lua access)
            chain = chains.for_route(r.id, r.service) if chains is not None else None
            # reused memo entries are kept as they are: a write allocates only for what changed
            # (fewer objects promoted to the oldest GC generation, fewer full collections)
            hit = old_routes.get(r.id)
            if hit is not None and hit[1] is svc and hit[2] is chain and _same(hit[0], r):
                rt = hit[3]
                if hit[5] == ri:
                    spec = hit[4]
                    memo.routes[r.id] = hit
                else:
                    spec = self._spec(rt, r, svc, ri)
                    memo.routes[r.id] = (r, svc, chain, rt, spec, ri)
            else:
                rt = self._route_rt(r, svc, chain)
                spec = self._spec(rt, r, svc, ri)
                memo.routes[r.id] = (r, svc, chain, rt, spec, ri)
                built += 1
            routes[r.id] = rt
            spec_index[r.id] = len(specs)
            specs.append(spec)
        memo.by_service = by_service
        memo.spec_index = spec_index
        return routes, specs, built

    def _services(self, config: Config, errors: list, prev: _Memo | None, memo: _Memo,
                  balancers: dict, health: dict, upstreams: dict) -> dict[str, ServiceRT]:
        services: dict[str, ServiceRT] = {}
        self._service_entries(enumerate(config.services), errors, prev, memo, services,
                              balancers, health, upstreams)
        return services

    def _service_entries(self, pairs: Any, errors: list, prev: _Memo | None, memo: _Memo,
                         services: dict, balancers: dict, health: dict, upstreams: dict
                         ) -> None:
        old_direct = prev.direct if prev is not None else {}
        old_svcs = prev.services if prev is not None else {}
        for si, s in pairs:
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
                hit = old_direct.get(s.id)
                tls_key = self._tls.get(s.id)
                if hit is not None and _same(hit[0], s) and hit[3] == tls_key:
                    bal, no_peer = hit[1], hit[2]
                    memo.direct[s.id] = hit
                else:
                    bal, no_peer = self._service_balancer(s, si, errors)
                    memo.direct[s.id] = (s, bal, no_peer, tls_key)
                host_header = None
            hit = old_svcs.get(s.id)
            if hit is not None and hit[1] is bal and hit[2] is health_rt and \
                    hit[3] is hash_spec and hit[4] == host_header and _same(hit[0], s):
                rt = hit[5]
                memo.services[s.id] = hit
            else:
                rt = ServiceRT(
                    s.id, s.name or s.id, bal, health=health_rt, hash_spec=hash_spec,
                    hash_input=_hash_input(hash_spec),
                    host_header=host_header, connect_timeout=s.connect_timeout / 1000.0,
                    read_timeout=s.read_timeout / 1000.0,
                    write_timeout=s.write_timeout / 1000.0, retries=s.retries, entity=s)
                if up is None:
                    rt.no_peer = no_peer
                memo.services[s.id] = (s, bal, health_rt, hash_spec, host_header, rt)
            services[s.id] = rt

    def _route_rt(self, r: Any, svc: ServiceRT | None, chain: Any) -> RouteRT:
        # the compiled chain when every plugin of the route has one (fastgw._core.native);
        # the Python chain is then skipped (chain None) on the request path
        native = compile_chain(chain, r, svc.entity, hash_spec=svc.hash_spec,
                               clock=self.health_clock) \
            if chain is not None and svc is not None else None
        # on plain listeners an https-only route answers Kong's 426 or its
        # https_redirect_status_code; on TLS listeners only https routes match, and only for
        # the SNIs they name
        https_only = "http" not in r.protocols and "https" in r.protocols
        return RouteRT(r.id, r.name or r.id, svc, chain=None if native is not None else chain,
                       entity=r, native=native,
                       https_redirect=r.https_redirect_status_code if https_only else 0,
                       request_buffering=r.request_buffering,
                       response_buffering=r.response_buffering,
                       https_ok="https" in r.protocols,
                       snis=frozenset(n.lower() for n in r.snis) if r.snis else None)

    @staticmethod
    def _spec(rt: RouteRT, r: Any, svc: ServiceRT | None, order: int) -> RouteSpec:
        # what the router sees (ties rank by route id, not by position: order is unused)
        return route_spec(r, rt, svc.entity.path if svc is not None else None)

    # -- plugin chains ---------------------------------------------------------------------
    def _chains(self, config: Config, errors: list, cur: Snapshot | None, memo: _Memo
                ) -> tuple[Any, list]:
        """The ChainIndex: the previous one when nothing it reads changed, the previous one
        plus new key-auth key maps when only consumers / key-auth credentials changed
        (module rules), else a new one."""
        if not config.plugins:
            return None, []
        prev = cur.memo if cur is not None else None
        inputs = (config.plugins, config.consumers, config.keyauth_credentials,
                  *(getattr(config, t) for t in _OTHER_CREDENTIALS),
                  config.services, config.routes, config.upstreams)
        memo.chain_inputs = inputs
        old = cur.chains if cur is not None else None
        if old is not None and prev is not None and prev.chain_inputs:
            p = prev.chain_inputs
            names = {i.name for i in old.instances}
            same = [_same(a, b) for a, b in zip(p, inputs)]
            plugins_same, consumers_same, keys_same = same[0], same[1], same[2]
            others_same = all(same[3:3 + len(_OTHER_CREDENTIALS)])
            svc_same, routes_same, ups_same = same[-3], same[-2], same[-1]
            reads_entities = ("prometheus" in names and not (svc_same and routes_same)) or \
                ("canary" in names and not ups_same)
            if plugins_same and others_same and not reads_entities:
                if consumers_same and keys_same:
                    memo.consumers_by_id = prev.consumers_by_id
                    memo.creds_by_consumer = prev.creds_by_consumer
                    return old, []
                if self._credential_blind(old):
                    ka = [i.plugin for i in old.instances if i.name == "key-auth"]
                    if not ka:
                        return old, []
                    assert cur is not None
                    keys, changes = key_delta(cur.config, config, prev, memo, ka[0].keys)
                    # a credential with a ttl needs the Python plugin's clock check: new chains
                    if not any(pair is not None and getattr(pair[1], "ttl", None)
                               for pair in changes.values()):
                        return old, [(p, keys, changes) for p in ka]
                    memo.consumers_by_id = memo.creds_by_consumer = None
        return self._build_chains(config, errors), []

    @staticmethod
    def _credential_blind(chains: Any) -> bool:
        for inst in chains.instances:
            if inst.name == "key-auth":
                if inst.plugin.config.anonymous:
                    return False
            elif inst.name not in _CREDENTIAL_BLIND:
                return False
        return True

    def _build_chains(self, config: Config, errors: list) -> Any:
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
        """Swap it in (one reference assignment), hand health checkers over, tell discovery
        which names to keep resolved; new key-auth key maps are installed in the same
        synchronous step (module rules)."""
        old = self.current
        for plugin, keys, changes in snap.key_updates:
            install_keys(plugin, keys, changes)
        snap.key_updates = []
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
            old.memo = None   # the new snapshot's memo holds what is still in use
        if self.active_health:
            for checker in snap.health.values():
                checker.start()


def _hc_threshold(hc: Any) -> float:
    if hc is None:
        return 0.0
    if isinstance(hc, dict):
        return hc.get("threshold", 0.0) or 0.0
    return getattr(hc, "threshold", 0.0) or 0.0
