"""The incrementally maintained snapshot equals a full rebuild, through many Admin API writes.

A seeded random sequence of creates, updates and deletes (services, routes, upstreams,
targets, consumers, key-auth credentials, plugins) and full replaces goes through the
ConfigStore into a running Gateway. After each step the live snapshot (built by reusing what
the previous one built) is compared with a snapshot compiled from scratch from the same
Config: the routes and their services, which route a set of requests match, every key-auth
key's consumer and credential (Python map and compiled index), each upstream's targets, and
the configuration hash.
"""
from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

import msgspec
import pytest

from fastgw._core.native import _AUTH_KERNELS as native_kernels
from fastgw._core.proxy import ProxyCore
from fastgw.config import declarative, model
from fastgw.config.digest import _CACHE as DIGESTS
from fastgw.config.errors import (ConfigError, EntityNotFound, ForeignKeysUnresolved,
                                  ForeignKeyViolation, UniqueViolation)
from fastgw.config.snapshot import Compiler
from fastgw.config.store import ConfigStore
from fastgw.gateway import Gateway

N = 200          # services, routes and consumers in the starting config
STEPS = 160      # random writes
SEED = 1313
UP = "http://127.0.0.1:9"


def _doc(n: int) -> dict[str, Any]:
    return {
        "_format_version": "3.0",
        "services": [{"name": f"s{i}", "url": UP if i % 7 else "http://up0",
                      "routes": [{"name": f"r{i}", "paths": [f"/s{i}"],
                                  **({"hosts": [f"h{i}.test"]} if i % 3 == 0 else {})}]}
                     for i in range(n)],
        "upstreams": [{"name": "up0", "targets": [{"target": "127.0.0.1:9001"},
                                                  {"target": "127.0.0.1:9002", "weight": 50}]}],
        "consumers": [{"username": f"c{i}", "keyauth_credentials": [{"key": f"k{i}"}]}
                      for i in range(n)],
        "plugins": [{"name": "key-auth"},
                    {"name": "rate-limiting", "config": {"minute": 100000, "policy": "local"}}],
    }


def _requests(cfg: model.Config) -> list[tuple[bytes, bytes, bytes]]:
    reqs = [(b"GET", b"any.test", b"/nothing")]
    for r in cfg.routes:
        for p in r.paths or []:
            host = (r.hosts or ["x.test"])[0].encode()
            reqs.append((b"GET", host, p.encode() + b"/x"))
            reqs.append((b"GET", b"other.test", p.encode()))
    return reqs


def _observe(snap: Any, reqs: list[tuple[bytes, bytes, bytes]]) -> dict[str, Any]:
    routes = {rid: (rt.entity, rt.service.id, rt.service.entity, rt.native is not None)
              for rid, rt in snap.routes.items()}
    matched = []
    for method, host, path in reqs:
        m = snap.router.match(method, host, path, None)
        matched.append(None if m is None else (m.key.id, m.upstream_path))
    keys: dict[str, Any] = {}
    native: dict[str, Any] = {}
    if snap.chains is not None:
        for inst in snap.chains.instances:
            if inst.name != "key-auth":
                continue
            p = inst.plugin
            keys = {k: (c.id, c.username, cr.id) for k, (c, cr) in p.keys.items()}
            kernel = native_kernels.get(p)   # the compiled chain's key-auth, when built
            if kernel is not None:
                native = {k: (c.id, c.username, cr.id) for k, (c, cr) in kernel.keys.items()}
    balancers = {name: sorted((t.name, t.weight) for t in b.targets)
                 for name, b in snap.balancers.items()}
    return {"routes": routes, "matched": matched, "keys": keys, "native": native,
            "balancers": balancers}


def _fresh(cfg: model.Config) -> Any:
    loop = asyncio.get_running_loop()
    return Compiler(ProxyCore(loop, listen_port=0), active_health=False).compile(cfg)


def _random_write(store: ConfigStore, rnd: random.Random, i: int) -> None:
    cfg = store.config
    kind = rnd.choice(["svc+", "svc~", "svc-", "route+", "route~", "route-", "cons+", "cons~",
                       "cons-", "cred+", "cred-", "target+", "target-", "plugin~", "replace"])
    pick = (lambda items: rnd.choice(items) if items else None)
    if kind == "svc+":
        store.create("services", {"name": f"n{i}", "url": UP})
    elif kind == "svc~" and (s := pick(cfg.services)):
        store.update("services", s.id, {"path": f"/p{i}", "retries": rnd.randint(0, 9),
                                        "enabled": rnd.random() > 0.3})
    elif kind == "svc-" and (s := pick(cfg.services)):
        for r in [r for r in cfg.routes if r.service == s.id]:
            store.delete("routes", r.id)
        store.delete("services", s.id)
    elif kind == "route+" and (s := pick(cfg.services)):
        store.create("routes", {"name": f"nr{i}", "paths": [f"/new{i}"],
                                "service": {"id": s.id}})
    elif kind == "route~" and (r := pick(cfg.routes)):
        store.update("routes", r.id, {"paths": [f"/moved{i}", *(r.paths or [])][:2],
                                      "strip_path": not r.strip_path})
    elif kind == "route-" and (r := pick(cfg.routes)):
        store.delete("routes", r.id)
    elif kind == "cons+":
        c = store.create("consumers", {"username": f"nc{i}"})
        store.create("keyauth_credentials", {"key": f"nk{i}", "consumer": {"id": c.id}})
    elif kind == "cons~" and (c := pick(cfg.consumers)):
        store.update("consumers", c.id, {"username": f"renamed{i}"})
    elif kind == "cons-" and (c := pick(cfg.consumers)):
        store.delete("consumers", c.id)
    elif kind == "cred+" and (c := pick(cfg.consumers)):
        store.create("keyauth_credentials", {"key": f"extra{i}", "consumer": {"id": c.id}})
    elif kind == "cred-" and (k := pick(cfg.keyauth_credentials)):
        store.delete("keyauth_credentials", k.id)
    elif kind == "target+":
        store.create("targets", {"target": f"127.0.0.1:{10000 + i}", "upstream": {"name": "up0"}})
    elif kind == "target-" and (t := pick(cfg.targets)):
        store.delete("targets", t.id)
    elif kind == "plugin~":
        rl = next(p for p in cfg.plugins if p.name == "rate-limiting")
        store.update("plugins", rl.id, {"config": {"minute": 100000 + i}})
    elif kind == "replace":
        # a full replace that keeps most entities, drops some, changes one, adds one
        doc = declarative.dump(cfg)
        doc["routes"] = [r for r in doc.get("routes", []) if rnd.random() > 0.05]
        if doc["routes"]:
            doc["routes"][0] = {**doc["routes"][0], "paths": [f"/replaced{i}"]}
        doc["services"].append({"name": f"rep{i}", "url": UP,
                                "routes": [{"name": f"rep{i}", "paths": [f"/rep{i}"]}]})
        store.replace(declarative.load_dict(doc))


def test_incremental_snapshot_equals_full_rebuild() -> None:
    asyncio.run(_incremental_equals_full())


async def _incremental_equals_full() -> None:
    logging.getLogger("fastgw").setLevel(logging.ERROR)
    gw = Gateway(_doc(N), active_health=False)
    await gw.start(("127.0.0.1", 0))
    try:
        store = ConfigStore(gw.config, gw.update)
        rnd = random.Random(SEED)
        reused_steps = 0
        for i in range(STEPS):
            before = gw.snapshot
            try:
                _random_write(store, rnd, i)
            except (ConfigError, UniqueViolation, ForeignKeyViolation, EntityNotFound):
                continue   # a write the store refused changes nothing: checked below too
            live = gw.snapshot
            assert live.config is store.config or live.config == store.config
            if before is not live and live.built < len(live.routes):
                reused_steps += 1
            reqs = _requests(store.config)
            want = _observe(_fresh(store.config), reqs)
            got = _observe(live, reqs)
            for part in want:
                assert got[part] == want[part], f"step {i}: {part} differs"
            if got["native"]:
                assert got["native"] == got["keys"]
        assert reused_steps > STEPS // 2   # the incremental path was the one exercised
        # the hash maintained per entity equals one computed from entities never seen
        fresh = model.decode_config(model.encode_config(store.config))
        assert store.hash == model.config_hash(fresh) == gw.snapshot.config_hash
        DIGESTS.clear()
        assert model.config_hash(store.config) == store.hash
    finally:
        await gw.stop()


def test_refused_write_keeps_the_running_snapshot() -> None:
    asyncio.run(_refused_write())


async def _refused_write() -> None:
    gw = Gateway(_doc(20), active_health=False)
    await gw.start(("127.0.0.1", 0))
    try:
        store = ConfigStore(gw.config, gw.update)
        snap, cfg = gw.snapshot, store.config
        with pytest.raises(UniqueViolation):
            store.create("routes", {"name": "r3", "paths": ["/dup"], "service": {"name": "s1"}})
        with pytest.raises(ForeignKeysUnresolved):   # by name: Kong's code 13
            store.create("routes", {"name": "x", "paths": ["/x"], "service": {"name": "nope"}})
        with pytest.raises(ConfigError):
            store.create("plugins", {"name": "rate-limiting", "route": {"name": "r1"},
                                     "config": {"minute": -1}})
        assert gw.snapshot is snap and store.config is cfg
        # the indexes still answer for the running config
        assert store.find("routes", "r3").name == "r3"
        assert store.find("consumers", "c7").username == "c7"
        assert store.find("keyauth_credentials", "k5") is not None
    finally:
        await gw.stop()


def test_reuse_keeps_running_objects() -> None:
    from fastgw.config.reuse import reuse_unchanged

    a = declarative.load_dict(_doc(30))
    b = declarative.load_dict(_doc(30))
    same = reuse_unchanged(b, a)
    assert same == a and same.routes is a.routes and same.consumers is a.consumers
    doc = _doc(30)
    doc["services"][4]["routes"][0]["paths"] = ["/changed"]
    c = reuse_unchanged(declarative.load_dict(doc), a)
    assert c.routes is not a.routes and c.services is a.services
    changed = [i for i, (x, y) in enumerate(zip(c.routes, a.routes)) if x is not y]
    assert changed == [4] and c.routes[4].paths == ["/changed"]
    assert msgspec.structs.replace(c, routes=a.routes) == a


def test_dependencies_of_reused_parts() -> None:
    asyncio.run(_dependencies())


async def _dependencies() -> None:
    """Changes whose effect is on another entity's runtime object: a service disabled and
    enabled again (its routes leave and rejoin the router), a new service then its route, a
    service moved onto an upstream, a consumer renamed (its key's record)."""
    gw = Gateway(_doc(10), active_health=False)
    await gw.start(("127.0.0.1", 0))
    try:
        store = ConfigStore(gw.config, gw.update)
        reqs = [(b"GET", b"x.test", b"/s1/a"), (b"GET", b"h3.test", b"/s3"),
                (b"GET", b"x.test", b"/new/a")]

        def check() -> dict:
            want = _observe(_fresh(store.config), reqs)
            got = _observe(gw.snapshot, reqs)
            assert got == want
            return got

        store.update("services", "s1", {"enabled": False})
        assert check()["matched"][0] is None
        store.update("services", "s1", {"enabled": True})
        assert check()["matched"][0] is not None
        store.create("services", {"name": "new", "url": UP})
        check()
        store.create("routes", {"name": "new", "paths": ["/new"], "service": {"name": "new"}})
        assert check()["matched"][2] is not None
        store.update("services", "s1", {"host": "up0"})
        assert gw.snapshot.services[store.find("services", "s1").id].balancer is \
            gw.snapshot.balancers["up0"]
        check()
        store.update("consumers", "c4", {"username": "four"})
        assert check()["keys"]["k4"][1] == "four"
    finally:
        await gw.stop()
