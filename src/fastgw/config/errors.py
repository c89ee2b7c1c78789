"""Configuration errors.

Rule: validation never stops at the first problem. Every check appends (path, message) to a
list and the caller raises one ConfigError carrying all of them, so an operator fixing a
file sees every mistake at once. Paths look like `services[0].routes[1].paths[0]`.

The subclasses carry the extra data the Admin API needs to answer with Kong's error codes
(kong/db/errors.lua: 2 schema violation, 4 foreign key violation, 5 unique constraint
violation, 14 invalid declarative configuration).
"""
from __future__ import annotations

import re
from typing import Any

ErrorList = list[tuple[str, str]]


class ConfigError(Exception):
    """Invalid configuration: every (path, message) found, not just the first."""

    def __init__(self, errors: ErrorList | str, source: str | None = None) -> None:
        if isinstance(errors, str):
            errors = [("", errors)]
        self.errors: ErrorList = list(errors)
        self.source = source
        super().__init__(str(self))

    def __str__(self) -> str:
        head = f"{self.source}: " if self.source else ""
        lines = [f"{_display(p)}: {m}" if _display(p) else m for p, m in self.errors]
        if len(lines) == 1:
            return head + lines[0]
        return head + f"{len(lines)} errors:\n" + "\n".join(lines)

    def fields(self) -> dict[str, Any]:
        """Kong's nested `fields` object: {"config": {"minute": "..."}}; several messages on
        one path become a list."""
        return errors_to_fields(self.errors)


def _display(path: str) -> str:
    """A path for people: an entity check of a record is shown as the record's path."""
    if path == "@entity":
        return ""
    return path[:-len(".@entity")] if path.endswith(".@entity") else path


class UniqueViolation(ConfigError):
    """An endpoint key (name, username, key...) is already taken (HTTP 409, Kong code 5)."""

    def __init__(self, entity: str, values: dict[str, Any]) -> None:
        self.entity = entity
        self.values = values
        shown = ", ".join(f'{k}="{v}"' for k, v in values.items())
        self.kong_message = "UNIQUE violation detected on '{" + shown + "}'"
        super().__init__([(k, f"already exists with value '{v}'") for k, v in values.items()])

    def __str__(self) -> str:
        return self.kong_message


class ForeignKeyViolation(ConfigError):
    """A reference to a missing parent, or a delete that would orphan children
    (HTTP 400, Kong code 4)."""

    def __init__(self, field: str, key: dict[str, Any] | None, parent: str,
                 referenced_by: str | None = None) -> None:
        self.field = field
        self.key = key
        self.parent = parent
        self.referenced_by = referenced_by
        if referenced_by:
            self.kong_message = (f"an existing '{referenced_by}' entity references this "
                                 f"'{parent}' entity")
        else:
            shown = ", ".join(f'{k}="{v}"' for k, v in (key or {}).items())
            self.kong_message = (f"the foreign key '{{{shown}}}' does not reference an "
                                 f"existing '{parent}' entity.")
        super().__init__([(field, self.kong_message)])

    def __str__(self) -> str:
        return self.kong_message


class ForeignKeysUnresolved(ConfigError):
    """A parent referenced by its endpoint key (`service: {name: ..}`) that does not exist
    (HTTP 400, Kong code 13, kong/db/errors.lua foreign_keys_unresolved)."""

    def __init__(self, field: str, key: dict[str, Any], parent: str) -> None:
        self.field = field
        self.key = key
        self.parent = parent
        name, value = next(iter(key.items()))
        self.sub_field = name
        self.field_message = (f"the foreign key cannot be resolved with '{{{name}=\"{value}\"}}' "
                              f"for an existing '{parent}' entity")
        self.kong_message = f"foreign key unresolved ({field}.{name}: {self.field_message})"
        super().__init__([(f"{field}.{name}", self.field_message)])

    def __str__(self) -> str:
        return self.kong_message


class EntityNotFound(LookupError):
    """No entity with that id or endpoint key (HTTP 404)."""

    def __init__(self, entity: str, key: str) -> None:
        self.entity = entity
        self.key = key
        super().__init__(f"{entity} '{key}' not found")


def _split_path(path: str) -> list[str]:
    """`services[0].routes[1].paths` -> ['services', '0', 'routes', '1', 'paths']"""
    out: list[str] = []
    for part in path.split("."):
        while "[" in part:
            head, _, rest = part.partition("[")
            if head:
                out.append(head)
            idx, _, part = rest.partition("]")
            out.append(idx)
        if part:
            out.append(part)
    return out


def _arrays(node: Any) -> Any:
    """Objects keyed by array indexes become JSON arrays with nulls in the gaps, as Kong's
    Lua error tables encode (cjson: an integer-keyed table is an array unless it is
    excessively sparse, then it stays an object)."""
    if not isinstance(node, dict):
        return node
    out = {k: _arrays(v) for k, v in node.items()}
    if out and all(k.isdigit() for k in out):
        idx = {int(k): v for k, v in out.items()}
        n = max(idx) + 1
        if n <= max(SPARSE_ARRAY_SAFE, SPARSE_ARRAY_RATIO * len(idx)):
            return [idx.get(i) for i in range(n)]
    return out


# lua-cjson's encode_sparse_array defaults (ratio 2, safe 10), which Kong's errors go through
SPARSE_ARRAY_RATIO = 2
SPARSE_ARRAY_SAFE = 10


def errors_to_fields(errors: ErrorList) -> dict[str, Any]:
    """Nest flat (path, message) pairs the way Kong nests its `fields` object: records become
    objects, arrays JSON arrays (null where an element had no error), entity checks an
    `@entity` array."""
    root: dict[str, Any] = {}
    for path, msg in errors:
        parts = _split_path(path) if path else ["@entity"]
        node = root
        for p in parts[:-1]:
            nxt = node.get(p)
            if not isinstance(nxt, dict):
                nxt = {} if nxt is None else {"@entity": nxt if isinstance(nxt, list) else [nxt]}
                node[p] = nxt
            node = nxt
        last = parts[-1]
        cur = node.get(last)
        if last == "@entity":  # Kong: entity-check errors are always an array
            if isinstance(cur, list):
                cur.append(msg)
            else:
                node[last] = [msg]
        elif cur is None:
            node[last] = msg
        elif isinstance(cur, list):
            cur.append(msg)
        elif isinstance(cur, dict):
            ent = cur.get("@entity")
            cur["@entity"] = [*ent, msg] if isinstance(ent, list) else [msg]
        else:
            node[last] = [cur, msg]
    return _arrays(root)


def schema_violation_message(errors: ErrorList) -> str:
    """Kong's summary line (kong/db/errors.lua schema_violation): the `@entity` errors, then
    every field in sorted order, one level deep (`config.minute: ...`, array elements by their
    1-based index `paths.1: ...`, deeper values as a Lua table):
    'schema violation (name: expected a string)' or '2 schema violations (a: ...; b: ...)'."""
    fields = errors_to_fields(errors)
    buf: list[str] = list(fields.get("@entity", []))
    for name in sorted(k for k in fields if k != "@entity"):
        v = fields[name]
        if isinstance(v, dict):
            for sub in sorted(v, key=str):
                buf.append(f"{name}.{sub}: {_value_text(v[sub])}")
        elif isinstance(v, list):
            for i, x in enumerate(v):
                if x is not None:
                    buf.append(f"{name}.{i + 1}: {_value_text(x)}")
        else:
            buf.append(f"{name}: {v}")
    if len(buf) == 1:
        return f"schema violation ({buf[0]})"
    return f"{len(buf)} schema violations ({'; '.join(buf)})"


def _value_text(v: Any) -> str:
    return v if isinstance(v, str) else lua_pretty(v)


_LUA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def lua_pretty(v: Any) -> str:
    """Penlight's pretty.write(v, "") as Kong's messages use it: `{a="x",b={{c="y"}}}`; a
    list with holes keeps explicit 1-based keys (`{[2]="x"}`); keys sorted, identifiers
    bare, others `["k"]`."""
    if isinstance(v, dict):
        items = []
        for k in sorted(v, key=str):
            key = k if _LUA_NAME.match(k) else f'["{k}"]'
            items.append(f"{key}={lua_pretty(v[k])}")
        return "{" + ",".join(items) + "}"
    if isinstance(v, list):
        if None in v:
            return "{" + ",".join(f"[{i + 1}]={lua_pretty(x)}" for i, x in enumerate(v)
                                  if x is not None) + "}"
        return "{" + ",".join(lua_pretty(x) for x in v) + "}"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(v)
