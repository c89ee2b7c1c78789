"""Error bodies of `POST /config` (Kong code 14, kong/db/errors.lua `declarative_config` and,
with `?flatten_errors=1`, `declarative_config_flattened`).

Flattening maps every (path, message) error back to the entity record of the input document
it belongs to (`services[0].routes[1].paths[0]` -> that route, field `paths.1`): one entry per
entity with its type (singular), name, id and tags when they are valid, the input record
untouched, and its errors as `{"type": "field", "field": ..., "message": ...}` or
`{"type": "entity", "message": ...}`. Array indexes in field names are 1-based, as Kong's
(Lua) ones. Errors that belong to no entity (an unknown top-level key, `_format_version`)
stay in `fields`/`message` only, as in Kong.
"""
from __future__ import annotations

from typing import Any

from fastgw.config import declarative
from fastgw.config.errors import (ConfigError, ErrorList, _split_path, errors_to_fields,
                                  lua_pretty)
from fastgw.config.model import ENTITY_TYPES, is_uuid


def declarative_error(exc: ConfigError) -> dict[str, Any]:
    """Kong's code 14 body; `message` renders `fields` as Kong does (Penlight's
    pretty.write of the Lua error table, errors.lua declarative_config). `errors` (every
    error with its path) is fastgw's addition."""
    fields = errors_to_fields(exc.errors)
    return {"code": 14, "name": "invalid declarative configuration",
            "message": "declarative config is invalid: " + lua_pretty(fields),
            "fields": fields,
            "errors": [{"path": p, "message": m} for p, m in exc.errors]}


def flattened_error(exc: ConfigError, doc: Any) -> dict[str, Any]:
    body = declarative_error(exc)
    body["flattened_errors"] = flatten(exc.errors, doc)
    return body


def _singular(etype: str) -> str:
    return etype[:-1] if etype.endswith("s") else etype


def _locate(doc: Any, parts: list[str]) -> tuple[str, str, Any, list[str]] | None:
    """(entity type, entity path, record, remaining field parts) of the deepest entity on
    the error path."""
    if not isinstance(doc, dict) or len(parts) < 2 or parts[0] not in ENTITY_TYPES:
        return None
    etype = parts[0]
    items = doc.get(etype)
    found: tuple[str, str, Any, list[str]] | None = None
    i = 0
    path = etype
    while True:
        if not isinstance(items, list) or i + 1 >= len(parts) or not parts[i + 1].isdigit():
            return found
        idx = int(parts[i + 1])
        if idx >= len(items) or not isinstance(items[idx], dict):
            return found
        rec = items[idx]
        path = f"{path}[{idx}]"
        rest = parts[i + 2:]
        found = (etype, path, rec, rest)
        nested = declarative.NESTED.get(etype, {})
        if rest and rest[0] in nested and isinstance(rec.get(rest[0]), list):
            etype = rest[0]
            path = f"{path}.{etype}"
            items = rec[etype]
            i += 2
            continue
        return found


def _field_name(rest: list[str]) -> str:
    return ".".join(str(int(p) + 1) if p.isdigit() else p for p in rest)


def flatten(errors: ErrorList, doc: Any) -> list[dict[str, Any]]:
    by_entity: dict[str, dict[str, Any]] = {}
    for path, msg in errors:
        loc = _locate(doc, _split_path(path)) if path else None
        if loc is None:
            continue
        etype, epath, rec, rest = loc
        entry = by_entity.get(epath)
        if entry is None:
            entry = {"entity_type": _singular(etype), "entity": rec, "errors": []}
            name = rec.get("name")
            if isinstance(name, str):
                entry["entity_name"] = name
            rid = rec.get("id")
            if isinstance(rid, str) and is_uuid(rid):
                entry["entity_id"] = rid
            tags = rec.get("tags")
            if isinstance(tags, list) and all(isinstance(t, str) for t in tags):
                entry["entity_tags"] = tags
            by_entity[epath] = entry
        if rest:
            entry["errors"].append({"type": "field", "field": _field_name(rest), "message": msg})
        else:
            entry["errors"].append({"type": "entity", "message": msg})
    return list(by_entity.values())
