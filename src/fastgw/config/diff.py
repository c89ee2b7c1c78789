"""What would change between two configs (POST /config?dry_run=1).

Entities are matched by id first, then (for the rest) by their endpoint key (name, username,
target...), so a file without ids still lines up with entities created through the Admin API;
such a match whose id differs is reported as changed with "id" among its fields.
"""
from __future__ import annotations

from typing import Any

import msgspec

from fastgw.config import model
from fastgw.config.model import ENTITY_TYPES, Config, config_hash, entity_key

# timestamps differ on every Admin API write; they are not a change of behaviour
_IGNORED = {"created_at", "updated_at"}


def _match_key(etype: str, ent: Any) -> tuple[Any, ...] | None:
    uniq = model.UNIQUE[etype]
    vals = tuple(getattr(ent, f) for f in uniq[0])
    if all(v is None for v in vals):
        return None
    return vals


def diff(old: Config, new: Config) -> dict[str, Any]:
    added: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    removed: list[dict[str, Any]] = []
    unchanged = 0
    for etype in ENTITY_TYPES:
        olds = {e.id: e for e in getattr(old, etype)}
        news = {e.id: e for e in getattr(new, etype)}
        pairs: list[tuple[Any, Any]] = []
        for id_, e in news.items():
            if id_ in olds:
                pairs.append((olds.pop(id_), e))
        rest_new = [e for e in news.values() if e.id not in {p[1].id for p in pairs}]
        by_key = {}
        for e in olds.values():
            k = _match_key(etype, e)
            if k is not None:
                by_key[k] = e
        for e in rest_new:
            k = _match_key(etype, e)
            o = by_key.pop(k, None) if k is not None else None
            if o is not None:
                del olds[o.id]
                pairs.append((o, e))
            else:
                added.append({"entity": etype, "id": e.id, "key": entity_key(etype, e)})
        for e in olds.values():
            removed.append({"entity": etype, "id": e.id, "key": entity_key(etype, e)})
        for o, n in pairs:
            od, nd = msgspec.to_builtins(o), msgspec.to_builtins(n)
            fields = sorted(k for k in set(od) | set(nd)
                            if k not in _IGNORED and od.get(k) != nd.get(k))
            if fields:
                changed.append({"entity": etype, "id": n.id, "key": entity_key(etype, n),
                                "fields": fields})
            else:
                unchanged += 1
    return {
        "added": added, "changed": changed, "removed": removed,
        "summary": {"added": len(added), "changed": len(changed), "removed": len(removed),
                    "unchanged": unchanged},
        "old_hash": config_hash(old), "new_hash": config_hash(new),
    }
