"""The configuration hash, computed incrementally: one digest per entity, cached by identity.

Rules:
- ``config_hash(config)`` is md5 over, per entity type in ``ENTITY_TYPES`` order, the type's
  name and the md5 digests of its entities in list order. An entity's digest is md5 of its
  canonical JSON (sorted keys, integral floats written as ints, so ``0`` and ``0.0`` are one
  setting). Equal configs have equal hashes, whoever built them.
- Entities are frozen: a digest is cached by the entity object's identity (the cache holds the
  object, so the id stays valid). A change that keeps all but one entity object recomputes one
  digest; the rest is an md5 over 16 bytes per entity.
- The cache is pruned to the entities of the last hashed config when it grows past twice that
  size, so deleted entities do not stay alive.
"""
from __future__ import annotations

import hashlib
from typing import Any

import msgspec

_JSON_ENCODER = msgspec.json.Encoder(order="sorted")
#: id(entity) -> (entity, digest)
_CACHE: dict[int, tuple[Any, bytes]] = {}
#: entries kept beyond the live entities before the cache is pruned
_SLACK = 4096


def _canonical(v: Any) -> Any:
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, dict):
        return {k: _canonical(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_canonical(x) for x in v]
    return v


def entity_digest(ent: Any) -> bytes:
    hit = _CACHE.get(id(ent))
    if hit is not None and hit[0] is ent:
        return hit[1]
    d = hashlib.md5(_JSON_ENCODER.encode(_canonical(msgspec.to_builtins(ent)))).digest()
    _CACHE[id(ent)] = (ent, d)
    return d


def config_hash(config: Any, entity_types: tuple[str, ...]) -> str:
    h = hashlib.md5()
    count = 0
    for etype in entity_types:
        items = getattr(config, etype)
        count += len(items)
        h.update(etype.encode())
        h.update(b"".join([entity_digest(e) for e in items]))
    if len(_CACHE) > 2 * count + _SLACK:
        live = {id(e) for t in entity_types for e in getattr(config, t)}
        for k in [k for k in _CACHE if k not in live]:
            del _CACHE[k]
    return h.hexdigest()
