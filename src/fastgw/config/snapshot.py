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
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable

from fastgw._core.native import compile_chain
from fastgw._core.proxy import ProxyCore, RouteRT, ServiceRT
from fastgw._core.router import Router, RouteSpec
from fastgw.config.delta import splice
from fastgw.config.errors import ConfigError
from fastgw.config.model import Config

log = logging.getLogger("fastgw.config")

#: name of an in-process target: "<scheme>:<name>" where the scheme is one of these
INPROCESS_SCHEMES = ("asgi", "python")

#: built-in plugins whose instances read no consumer or credential from PluginEnv (key-auth
#: reads its credentials, handled apart); a consumer/credential change keeps their instances
_CREDENTIAL_BLIND = frozenset((
    "rate-limiting", "cors", "correlation-id", "request-size-limiting", "request-transformer",
    "response-transformer", "ip-restriction", "bot-detection", "file-log", "http-log",
    "opentelemetry", "canary"))
#: records of replaced keys a compiled key-auth index may keep beyond twice its live keys
#: before the chains are rebuilt (bounds the memory a stream of credential changes holds)
_KEY_RECORD_SLACK = 4096
#: credential lists other than key-auth's: a change there rebuilds the chains
_OTHER_CREDENTIALS = ("basicauth_credentials", "jwt_secrets", "acls")


def _same(a: Any, b: Any) -> bool:
    return a is b or a == b


@dataclass
class _Memo:
    """What one compile built, by entity id / upstream name, for the next compile to reuse."""
    upstreams: dict[str, tuple] = field(default_factory=dict)   # name -> (up, targets, tls, bal, checker)
    direct: dict[str, tuple] = field(default_factory=dict)      # service id -> (svc, bal)
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

    def _balancers(self, config: Config, errors: list, prev: _Memo | None, memo: _Memo
                   ) -> tuple[dict, dict, dict]:
        from fastgw.balancing import make_balancer

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
                targets = []
                for i, t in mine:
                    host, port = self._parse_target(t.target)
                    targets.append(self._target(host, port, t.weight, t.id, errors,
                                                f"targets[{i}].target", up_tls))
                try:
                    bal = make_balancer(up.algorithm, targets, up.slots,
                                        threshold=float(_hc_threshold(up.healthchecks)))
                except (ValueError, TypeError) as e:
                    errors.append((f"upstreams[{ui}]", str(e)))
                    continue
                checker = self._health(up, bal, self.current)
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
        errors: list[tuple[str, str]] = []
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
                and config.upstreams is old_cfg.upstreams and config.targets is old_cfg.targets:
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
            if svc is None:
                # a route without a service cannot proxy anything; Kong keeps such routes
                # matchable, fastgw leaves them out of the router (and says so)
                log.warning("route %s has no service: not routed", r.name or r.id)
                continue
            if not svc.entity.enabled:
                continue
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
        from fastgw.balancing import make_balancer

        old_direct = prev.direct if prev is not None else {}
        old_svcs = prev.services if prev is not None else {}
        for si, s in pairs:
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
                hit = old_direct.get(s.id)
                if hit is not None and _same(hit[0], s):
                    bal = hit[1]
                    memo.direct[s.id] = hit
                else:
                    t = self._target(s.host, s.port, 100, None, errors, f"services[{si}].host",
                                     (s.protocol == "https", bool(s.tls_verify)))
                    bal = make_balancer("round-robin", [t], 10000)
                    memo.direct[s.id] = (s, bal)
                host_header = None
            hit = old_svcs.get(s.id)
            if hit is not None and hit[1] is bal and hit[2] is health_rt and \
                    hit[3] is hash_spec and hit[4] == host_header and _same(hit[0], s):
                rt = hit[5]
                memo.services[s.id] = hit
            else:
                rt = ServiceRT(
                    s.id, s.name or s.id, bal, health=health_rt, hash_spec=hash_spec,
                    host_header=host_header, connect_timeout=s.connect_timeout / 1000.0,
                    read_timeout=s.read_timeout / 1000.0,
                    write_timeout=s.write_timeout / 1000.0, retries=s.retries, entity=s)
                memo.services[s.id] = (s, bal, health_rt, hash_spec, host_header, rt)
            services[s.id] = rt

    def _route_rt(self, r: Any, svc: ServiceRT, chain: Any) -> RouteRT:
        # the compiled chain when every plugin of the route has one (fastgw._core.native);
        # the Python chain is then skipped (chain None) on the request path
        native = compile_chain(chain, r, svc.entity, hash_spec=svc.hash_spec,
                               clock=self.health_clock) if chain is not None else None
        # fastgw listens for plain http only: an https-only route answers Kong's 426 or
        # its https_redirect_status_code
        https_only = "http" not in r.protocols and "https" in r.protocols
        return RouteRT(r.id, r.name or r.id, svc, chain=None if native is not None else chain,
                       entity=r, native=native,
                       https_redirect=r.https_redirect_status_code if https_only else 0)

    @staticmethod
    def _spec(rt: RouteRT, r: Any, svc: ServiceRT, order: int) -> RouteSpec:
        return RouteSpec(
            rt, hosts=list(r.hosts or []), paths=list(r.paths or []),
            methods=list(r.methods or []), headers=dict(r.headers or {}),
            regex_priority=r.regex_priority, strip_path=r.strip_path,
            preserve_host=r.preserve_host, path_handling=r.path_handling,
            service_path=svc.entity.path, order=order)

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
                    keys, changes = _key_delta(cur.config, config, prev, memo, ka[0]._keys)
                    idx = getattr(ka[0], "_native_index", None)
                    if idx is None or \
                            len(idx.records) + len(changes) <= 2 * len(keys) + _KEY_RECORD_SLACK:
                        return old, [(p, keys, changes) for p in ka]
                    # the compiled index keeps the records of replaced keys (requests in
                    # flight hold their positions): past this many, build new chains
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
        """Swap it in (one reference assignment) and hand health checkers over; new key-auth
        key maps are installed in the same synchronous step (module rules)."""
        old = self.current
        for plugin, keys, changes in snap.key_updates:
            _install_keys(plugin, keys, changes)
        snap.key_updates = []
        self.current = snap
        self.core.set_snapshot(snap)
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


def _key_delta(old_cfg: Config, config: Config, prev: _Memo, memo: _Memo,
               old_keys: dict[str, tuple[Any, Any]]) -> tuple[dict, dict]:
    """key-auth's key -> (consumer, credential) map for `config`, from the one of `old_cfg`
    and the splices of the consumer and credential lists: (new map, changed keys -> pair or
    None). Work is proportional to the change plus two dict copies."""
    cons = prev.consumers_by_id
    by_c = prev.creds_by_consumer
    if cons is None or by_c is None:
        cons = {c.id: c for c in old_cfg.consumers}
        by_c = {}
        for cred in old_cfg.keyauth_credentials:
            by_c[cred.consumer] = by_c.get(cred.consumer, ()) + (cred,)
    sp_c = splice(old_cfg.consumers, config.consumers)
    sp_k = splice(old_cfg.keyauth_credentials, config.keyauth_credentials)
    keys = dict(old_keys)
    changes: dict[str, tuple[Any, Any] | None] = {}

    def drop(k: str) -> None:
        if k in keys:
            del keys[k]
            changes[k] = None

    if sp_k is not None:
        by_c = dict(by_c)
        for cred in old_cfg.keyauth_credentials[sp_k[0]:sp_k[1]]:
            rest = tuple(x for x in by_c.get(cred.consumer, ()) if x is not cred)
            if rest:
                by_c[cred.consumer] = rest
            else:
                by_c.pop(cred.consumer, None)
            if cred.key:
                was = keys.get(str(cred.key))
                if was is not None and was[1] is cred:
                    drop(str(cred.key))
    if sp_c is not None:
        cons = dict(cons)
        gone = [c for c in old_cfg.consumers[sp_c[0]:sp_c[1]]]
        for c in gone:
            if cons.get(c.id) is c:
                del cons[c.id]
        for c in sp_c[2]:
            cons[c.id] = c
        for c in gone:   # a consumer that left takes its keys along
            if c.id not in cons:
                for cred in by_c.get(c.id, ()):
                    if cred.key:
                        drop(str(cred.key))
    if sp_k is not None:
        for cred in sp_k[2]:
            by_c[cred.consumer] = by_c.get(cred.consumer, ()) + (cred,)
            consumer = cons.get(cred.consumer)
            if cred.key and consumer is not None:
                keys[str(cred.key)] = changes[str(cred.key)] = (consumer, cred)
    if sp_c is not None:
        for c in sp_c[2]:   # new or changed consumers: their keys point at them
            for cred in by_c.get(c.id, ()):
                if cred.key:
                    k = str(cred.key)
                    was = keys.get(k)
                    if was is None or (was[1] is cred and was[0] is not c):
                        keys[k] = changes[k] = (c, cred)
    memo.consumers_by_id, memo.creds_by_consumer = cons, by_c
    return keys, changes


def _install_keys(plugin: Any, keys: dict[str, tuple[Any, Any]],
                  changes: dict[str, tuple[Any, Any] | None]) -> None:
    """Make a key-auth instance (and its compiled index, when built) answer with `keys`:
    the Python map is swapped whole; the compiled index changes only the keys in `changes`."""
    from fastgw._core.native import KeyRecord

    plugin._keys = keys
    idx = getattr(plugin, "_native_index", None)
    if idx is None:
        return
    for k, pair in changes.items():
        if pair is None:
            idx.by_str.pop(k, None)
            try:
                idx.by_bytes.pop(k.encode("latin-1"), None)
            except UnicodeEncodeError:
                pass
            continue
        rec = KeyRecord(len(idx.records), pair[0], pair[1])
        idx.records.append(rec)
        idx.by_str[k] = rec
        try:
            idx.by_bytes[k.encode("latin-1")] = rec
        except UnicodeEncodeError:
            pass


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
