"""Config deltas (master -> workers): one splice per changed entity list, applied in order,
give the same config as shipping it whole."""
from __future__ import annotations

import random

import msgspec

from fastgw.config import declarative, model
from fastgw.config.delta import apply_delta, encode_delta, splices
from fastgw.config.reuse import reuse_unchanged
from fastgw.config.store import ConfigStore

UP = "http://127.0.0.1:9"


def _doc(n: int) -> dict:
    return {"_format_version": "3.0",
            "services": [{"name": f"s{i}", "url": UP, "routes": [{"name": f"r{i}",
                                                                  "paths": [f"/s{i}"]}]}
                         for i in range(n)],
            "consumers": [{"username": f"c{i}", "keyauth_credentials": [{"key": f"k{i}"}]}
                          for i in range(n)]}


def test_a_write_is_one_entity_on_the_wire() -> None:
    cfg = declarative.load_dict(_doc(3000))
    store = ConfigStore(cfg, lambda new: None)
    store.create("routes", {"name": "new", "paths": ["/new"], "service": {"name": "s5"}})
    sp = splices(cfg, store.config)
    assert [(t, s, e, len(items)) for t, s, e, items in sp] == [("routes", 3000, 3000, 1)]
    assert len(encode_delta(cfg, store.config)) < 1000


def test_deltas_replayed_on_a_copy_give_the_same_config() -> None:
    rnd = random.Random(7)
    cfg = declarative.load_dict(_doc(300))
    store = ConfigStore(cfg, lambda new: None)
    worker = model.decode_config(model.encode_config(cfg))   # what a worker starts from
    sent = cfg
    for i in range(200):
        op = rnd.choice(["add", "patch", "delete", "consumer", "replace"])
        c = store.config
        if op == "add":
            store.create("services", {"name": f"n{i}", "url": UP})
        elif op == "patch" and c.routes:
            store.update("routes", rnd.choice(c.routes).id, {"paths": [f"/p{i}"]})
        elif op == "delete" and c.routes:
            store.delete("routes", rnd.choice(c.routes).id)
        elif op == "consumer" and c.consumers:
            store.delete("consumers", rnd.choice(c.consumers).id)
        elif op == "replace":
            doc = declarative.dump(c)
            doc["services"] = doc["services"][1:] + [{"name": f"x{i}", "url": UP}]
            doc["routes"] = [r for r in doc.get("routes", [])
                             if r["service"] != c.services[0].name]
            store.replace(reuse_unchanged(declarative.load_dict(doc), c))
        worker = reuse_unchanged(apply_delta(worker, encode_delta(sent, store.config)), worker)
        sent = store.config
        assert worker == store.config, f"step {i} ({op})"
    assert model.config_hash(worker) == store.hash


def test_a_delta_that_does_not_fit_is_refused() -> None:
    cfg = declarative.load_dict(_doc(5))
    new = msgspec.structs.replace(cfg, routes=cfg.routes[:2])
    data = encode_delta(cfg, new)
    short = msgspec.structs.replace(cfg, routes=[])
    try:
        apply_delta(short, data)
    except ValueError as e:
        assert "routes" in str(e)
    else:
        raise AssertionError("a splice outside the list was applied")
