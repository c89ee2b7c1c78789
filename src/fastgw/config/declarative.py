"""Kong declarative configuration (kong.yml): load, validate, dump.

Rules:
- Accepts `_format_version` "3.0", and "2.1" and "1.1" as Kong 3.x does (regex paths without
  the "~" prefix are prefixed: kong/db/declarative/migrations/route_path.lua); anything else
  is an error.
- Metadata, as Kong's declarative schema (kong/db/schema/others/declarative_config.lua):
  `_comment` (a string) and `_ignore` (an array of anything) at the top level and at the top
  level of any entity; `_transform`. decK's file keys: `_workspace` (fastgw has Kong's one
  workspace, "default"; another name is an error) and `_info` (`select_tags` are added to
  every entity's tags, as decK does when it syncs; `defaults` and `default_lookup_tags` are
  decK-side features and rejected when not empty). Any other `_` key is an unknown field.
- Entities may be nested under their parent (routes under services, targets under upstreams,
  credentials and plugins under consumers, plugins under services/routes) or top-level with
  the parent referenced by name or id.
- `${VAR}` in string values is replaced from the environment (`${VAR:-default}` for a
  default); an unset variable is an error naming the path; `$${` is a literal `${`.
- Every error is collected and raised at once as ConfigError, each with its path.
- Entities without an id get uuid5(type + endpoint key): reloading the same file keeps ids.
- `dump(config)` is the declarative form (top-level lists, parents by name where they have
  one, ids kept, `_transform: false` because basic-auth passwords are stored hashed), and
  `load_dict(dump(c)) == c`.
"""
from __future__ import annotations

import os
import re
from typing import Any

import msgspec
import orjson
import yaml

from fastgw.config import model, yaml_load
from fastgw.config.certificates import check_ca_refs
from fastgw.config.errors import ConfigError, ErrorList
from fastgw.config.model import (ENDPOINT_KEY, ENTITY_TYPES, FOREIGN, Config, is_uuid, join,
                                 stable_id)
from fastgw.config.model import config_hash  # noqa: F401 - re-exported (snapshot uses it)

FORMAT_VERSIONS = ("3.0", "2.1", "1.1")
# formats whose regex paths predate Kong 3's "~" prefix (route_path.lua migrates both)
_LEGACY_PATH_FORMATS = ("2.1", "1.1")
DEFAULT_WORKSPACE = "default"
CURRENT_FORMAT = "3.0"

# parent type -> {child collection key: foreign key field on the child}
NESTED: dict[str, dict[str, str]] = {
    "services": {"routes": "service", "plugins": "service"},
    "routes": {"plugins": "route"},
    "upstreams": {"targets": "upstream"},
    "consumers": {"plugins": "consumer", "keyauth_credentials": "consumer",
                  "basicauth_credentials": "consumer", "jwt_secrets": "consumer",
                  "acls": "consumer", "hmacauth_credentials": "consumer",
                  "oauth2_credentials": "consumer"},
    "certificates": {"snis": "certificate"},
}
META_KEYS = {"_format_version", "_comment", "_ignore", "_transform", "_workspace", "_info"}
# keys of decK's `_info` block (decK file/types.go Info)
_INFO_KEYS = {"select_tags", "defaults", "default_lookup_tags"}
# Kong entity collections fastgw does not implement: named plainly instead of "unknown field"
UNSUPPORTED = {"vaults", "key_sets", "keys", "filter_chains", "workspaces"}

# parents first, so children can take their ids
_BUILD_ORDER = ("certificates", "ca_certificates", "snis", "services", "upstreams",
                "consumers", "routes", "targets", "plugins", "keyauth_credentials",
                "basicauth_credentials", "jwt_secrets", "acls", "hmacauth_credentials",
                "oauth2_credentials")

# Kong's `fields` key for a document that does not parse (kong/db/declarative/init.lua)
PARSE_ERROR_KEY = "error"

_ENV_RE = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class _Rec:
    """One raw entity record while loading."""
    __slots__ = ("etype", "data", "path", "nested_parents", "id", "built", "resolved")

    def __init__(self, etype: str, data: dict[str, Any], path: str,
                 nested_parents: dict[str, _Rec]) -> None:
        self.etype = etype
        self.data = data
        self.path = path
        self.nested_parents = nested_parents
        self.id: str | None = None
        self.built: Any = None
        self.resolved: dict[str, str | None] = {}


# ---------------------------------------------------------------------------------------
def interpolate(value: Any, path: str, errors: ErrorList,
                env: dict[str, str] | None = None) -> Any:
    """Replace ${VAR} in every string value (not in keys), recording unset variables."""
    environ = os.environ if env is None else env
    if isinstance(value, str):
        if "$" not in value:
            return value

        def sub(m: re.Match[str]) -> str:
            if m.group(1):  # $${...}: escaped, drop one '$'
                return m.group(0)[1:]
            name, default = m.group(2), m.group(3)
            v = environ.get(name)
            if v is None:
                if default is not None:
                    return default
                errors.append((path, f"environment variable '{name}' is not set"))
                return m.group(0)
            return v

        return _ENV_RE.sub(sub, value)
    if isinstance(value, dict):
        return {k: (v if isinstance(k, str) and k.startswith("_") and not path else
                    interpolate(v, join(path, str(k)), errors, environ))
                for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, join(path, i), errors, environ) for i, v in enumerate(value)]
    return value


def _escape(value: Any) -> Any:
    """Inverse of interpolate for dumping: a literal `${` becomes `$${`."""
    if isinstance(value, str):
        return value.replace("${", "$${") if "${" in value else value
    if isinstance(value, dict):
        return {k: _escape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_escape(v) for v in value]
    return value


# ---------------------------------------------------------------------------------------
def load_file(path: str) -> Config:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read(yaml_load.MAX_DOCUMENT_BYTES + 1)  # larger: refused by safe_load
    except OSError as exc:
        raise ConfigError([("", f"cannot read {path}: {exc.strerror}")], source=path) from None
    return load_text(text, source=path)


def parse_text(text: str | bytes, source: str = "<string>") -> Any:
    """YAML or JSON text -> Python data (ConfigError on a syntax error)."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigError([("", "not valid UTF-8")], source=source) from None
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass  # flow-style YAML is also allowed; let the YAML parser judge
    try:
        return yaml_load.safe_load(text)
    except yaml_load.YamlLimitError as exc:
        raise ConfigError([("", f"failed parsing declarative configuration: {exc}")],
                          source=source) from None
    except yaml.YAMLError as exc:
        raise ConfigError([(PARSE_ERROR_KEY, f"failed parsing declarative configuration: {exc}")],
                          source=source) from None


def load_text(text: str | bytes, source: str = "<string>") -> Config:
    data = parse_text(text, source)
    try:
        return load_dict(data)
    except ConfigError as exc:
        exc.source = source
        raise


def load_dict(d: Any, *, env: dict[str, str] | None = None) -> Config:
    """Validate a declarative document (already parsed) into a Config, or raise ConfigError
    with every error."""
    errors: ErrorList = []
    if not isinstance(d, dict):
        raise ConfigError([(PARSE_ERROR_KEY,
                            "failed parsing declarative configuration: expected an object")])
    d = interpolate(d, "", errors, env)

    fmt = d.get("_format_version")
    if isinstance(fmt, float):  # unquoted YAML `3.0`
        fmt = repr(fmt)
    if fmt is None:
        errors.append(("_format_version", "required field missing"))
    elif fmt not in FORMAT_VERSIONS:
        errors.append(("_format_version",
                       f"unsupported version '{fmt}' (supported: {', '.join(FORMAT_VERSIONS)})"))
    transform = d.get("_transform", True)
    if not isinstance(transform, bool):
        errors.append(("_transform", "expected a boolean"))
        transform = True
    _check_annotations(d, "", errors)
    select_tags = _check_deck_meta(d, errors)
    for key in d:
        if key in META_KEYS or key in ENTITY_TYPES:
            continue
        if key in UNSUPPORTED:
            errors.append((str(key), "entity type not supported by fastgw"))
        else:
            errors.append((str(key), "unknown field"))

    # 1. collect raw records, depth first, in file order
    records: dict[str, list[_Rec]] = {t: [] for t in ENTITY_TYPES}

    def walk(etype: str, items: Any, path: str, parents: dict[str, _Rec]) -> None:
        if items is None:
            return
        if not isinstance(items, list):
            errors.append((path, "expected an array"))
            return
        for i, item in enumerate(items):
            p = join(path, i)
            if not isinstance(item, dict):
                errors.append((p, "expected a record"))
                continue
            data = dict(item)
            _check_annotations(data, p, errors)
            data.pop("_comment", None)
            data.pop("_ignore", None)
            if select_tags:
                tags = data.get("tags")
                if tags is None or isinstance(tags, list):
                    data["tags"] = [*(tags or []), *(t for t in select_tags
                                                    if t not in (tags or []))]
            children = {k: data.pop(k) for k in NESTED.get(etype, {}) if k in data}
            rec = _Rec(etype, data, p, parents)
            records[etype].append(rec)
            for ckey, items2 in children.items():
                walk(ckey, items2, join(p, ckey), {NESTED[etype][ckey]: rec})

    for etype in ENTITY_TYPES:
        if etype in d:
            walk(etype, d[etype], etype, {})
    # walk refers to itself through its closure cell, and so keeps `records` (every raw
    # record) alive as cyclic garbage until a collection; clearing the cell frees them at once
    del walk

    # 2. ids and references, parents first; 3. build each entity
    index: dict[str, dict[str, _Rec]] = {t: {} for t in ENTITY_TYPES}
    built: dict[str, list[Any]] = {t: [] for t in ENTITY_TYPES}
    v2 = fmt in _LEGACY_PATH_FORMATS
    for etype in _BUILD_ORDER:
        for rec in records[etype]:
            data = rec.data
            ok = _resolve_refs(rec, index, errors)
            _assign_id(rec, errors)
            if rec.id is None or not ok:
                continue
            data = dict(data)
            data["id"] = rec.id
            for field in FOREIGN[etype]:
                if field in rec.resolved:
                    data[field] = rec.resolved[field]
            _transforms(etype, data, transform, v2)
            ent = model.build_entity(etype, data, rec.path, errors)
            if ent is not None:
                rec.built = ent
                built[etype].append(ent)
        for rec in records[etype]:
            if rec.id is None:
                continue
            index[etype].setdefault(rec.id, rec)
            k = ENDPOINT_KEY.get(etype)
            if etype in ("services", "upstreams", "consumers", "routes") and k:
                v = rec.data.get(k)
                if isinstance(v, str):
                    index[etype].setdefault(v, rec)

    config = Config(**built)
    _check_unique_records(records, errors)
    svc_paths = [rec.path for rec in records["services"] if rec.built is not None]
    errors.extend(check_ca_refs(config, lambda t, i: svc_paths[i]))
    if errors:
        raise ConfigError(_dedupe(errors))
    return config


def _check_annotations(d: dict[str, Any], path: str, errors: ErrorList) -> None:
    """Kong's `_comment` (string) and `_ignore` (array) annotations."""
    if "_comment" in d and not isinstance(d["_comment"], str):
        errors.append((join(path, "_comment"), "expected a string"))
    if "_ignore" in d and not isinstance(d["_ignore"], list):
        errors.append((join(path, "_ignore"), "expected an array"))


def _check_deck_meta(d: dict[str, Any], errors: ErrorList) -> list[str]:
    """decK's `_workspace` and `_info`; returns `_info.select_tags`."""
    ws = d.get("_workspace")
    if ws is not None and ws != DEFAULT_WORKSPACE:
        errors.append(("_workspace", f"fastgw has one workspace, '{DEFAULT_WORKSPACE}' "
                                     f"(got '{ws}')" if isinstance(ws, str) else
                       "expected a string"))
    info = d.get("_info")
    if info is None:
        return []
    if not isinstance(info, dict):
        errors.append(("_info", "expected a record"))
        return []
    for k, v in info.items():
        if k not in _INFO_KEYS:
            errors.append((f"_info.{k}", "unknown field"))
        elif k != "select_tags" and v:
            errors.append((f"_info.{k}", "decK-side lookups and defaults are not supported by "
                                         "fastgw: write the values into the entities"))
    tags = info.get("select_tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        errors.append(("_info.select_tags", "expected an array of strings"))
        return []
    return tags


def _check_unique_records(records: dict[str, list[_Rec]], errors: ErrorList) -> None:
    """Ids and unique keys, on the raw records: a duplicate is reported even when the first
    entity with that key had errors of its own."""
    for etype in ENTITY_TYPES:
        seen_ids: set[str] = set()
        seen: set[tuple[tuple[str, ...], tuple[Any, ...]]] = set()
        for rec in records[etype]:
            if rec.id is not None:
                # a derived id repeats only when the endpoint key does: reported below
                if rec.id in seen_ids and rec.data.get("id") is not None:
                    # Kong reports it on the entity itself (declarative_config.lua)
                    errors.append((rec.path,
                                   f"uniqueness violation: '{etype}' entity with primary key "
                                   f"set to '{rec.id}' already declared"))
                seen_ids.add(rec.id)
            for fields in model.UNIQUE[etype]:
                vals = []
                for f in fields:
                    v = rec.resolved[f] if f in FOREIGN[etype] and f in rec.resolved else \
                        rec.data.get(f)
                    if f == "target" and isinstance(v, str):
                        v = model.normalize_target(v) or v
                    vals.append(v)
                if len(fields) == 1 and not isinstance(vals[0], str):
                    continue
                if any(isinstance(v, (dict, list)) for v in vals):
                    continue
                key = (fields, tuple(vals))
                if key in seen:
                    shown = " and ".join(f"{f} set to '{v if v is not None else 'null'}'"
                                         for f, v in zip(fields, vals)
                                         if f not in FOREIGN[etype])
                    # an error of the whole entity, as Kong's declarative uniqueness check
                    errors.append((rec.path,
                                   f"uniqueness violation: '{etype}' entity with {shown} "
                                   "already declared"))
                seen.add(key)


def _dedupe(errors: ErrorList) -> ErrorList:
    seen: set[tuple[str, str]] = set()
    out = []
    for e in errors:
        if e not in seen:
            seen.add(e)
            out.append(e)
    return out


def _resolve_refs(rec: _Rec, index: dict[str, dict[str, _Rec]], errors: ErrorList) -> bool:
    """Parent ids from nesting or from a name/id reference. False when a reference is bad
    (already recorded)."""
    resolved: dict[str, str | None] = {}
    ok = True
    for field, parent_type in FOREIGN[rec.etype].items():
        nested = rec.nested_parents.get(field)
        raw = rec.data.get(field)
        if nested is not None:
            if nested.id is None:
                return False  # the parent itself is broken; its error is recorded
            if raw is not None:
                target = _lookup(raw, parent_type, index)
                if target is None or target.id != nested.id:
                    errors.append((join(rec.path, field),
                                   f"must be null or the enclosing {parent_type[:-1]}"))
                    ok = False
            resolved[field] = nested.id
            continue
        if raw is None:
            if field in rec.data:
                resolved[field] = None
            continue
        target = _lookup(raw, parent_type, index)
        if target is None:
            shown = raw if not isinstance(raw, dict) else next(iter(raw.values()), raw)
            errors.append((join(rec.path, field),
                           f"invalid reference '{field}: {shown}' (no such entry in "
                           f"'{parent_type}')"))
            ok = False
            continue
        if target.id is None:
            return False
        resolved[field] = target.id
    rec.resolved = resolved
    return ok


def _lookup(raw: Any, parent_type: str, index: dict[str, dict[str, _Rec]]) -> _Rec | None:
    if isinstance(raw, dict):
        if "id" in raw:
            raw = raw["id"]
        elif "name" in raw:
            raw = raw["name"]
        elif "username" in raw:
            raw = raw["username"]
        else:
            return None
    if not isinstance(raw, str):
        return None
    return index[parent_type].get(raw)


def _assign_id(rec: _Rec, errors: ErrorList) -> None:
    given = rec.data.get("id")
    if given is not None:
        if not is_uuid(given):
            errors.append((join(rec.path, "id"), "expected a valid UUID"))
            return
        rec.id = given.lower()
        return
    rec.id = stable_id(rec.etype, _id_key(rec))


def _id_key(rec: _Rec) -> str:
    d, et = rec.data, rec.etype
    res = rec.resolved

    def s(v: Any) -> str:
        return v if isinstance(v, str) else ""

    if et in ("services", "routes", "upstreams") and isinstance(d.get("name"), str):
        return "name:" + d["name"]
    if et == "consumers":
        if isinstance(d.get("username"), str):
            return "username:" + d["username"]
        if isinstance(d.get("custom_id"), str):
            return "custom_id:" + d["custom_id"]
    if et == "targets" and isinstance(d.get("target"), str):
        t = model.normalize_target(d["target"]) or d["target"]
        return f"{s(res.get('upstream'))}:{t}"
    if et == "plugins" and isinstance(d.get("name"), str):
        return ":".join((d["name"], s(res.get("route")), s(res.get("service")),
                         s(res.get("consumer")), s(d.get("instance_name"))))
    if et in ("keyauth_credentials", "jwt_secrets") and isinstance(d.get("key"), str):
        return "key:" + d["key"]
    if et in ("basicauth_credentials", "hmacauth_credentials") and isinstance(d.get("username"), str):
        return "username:" + d["username"]
    if et == "oauth2_credentials" and isinstance(d.get("client_id"), str):
        return "client_id:" + d["client_id"]
    if et == "acls" and isinstance(d.get("group"), str):
        return f"{s(res.get('consumer'))}:{d['group']}"
    if et == "snis" and isinstance(d.get("name"), str):
        return "name:" + d["name"].lower()
    if et in ("certificates", "ca_certificates") and isinstance(d.get("cert"), str):
        import hashlib
        return "cert:" + hashlib.sha256(d["cert"].strip().encode()).hexdigest()
    return "path:" + rec.path  # nameless: stable as long as the file keeps its shape


def _transforms(etype: str, data: dict[str, Any], transform: bool, v2: bool) -> None:
    """Kong's declarative transformations (auto-generated keys, hashed passwords) and the
    2.x -> 3.0 path migration."""
    model.fill_credential_defaults(etype, data, transform)
    if etype == "routes" and v2 and isinstance(data.get("paths"), list):
        data["paths"] = [("~" + p) if isinstance(p, str) and p.startswith("/") and
                         model.is_regex_path_v2(p) else p for p in data["paths"]]


# ---------------------------------------------------------------------------------------
_REF_KEY = {"services": "name", "routes": "name", "upstreams": "name", "consumers": "username"}


def dump(config: Config) -> dict[str, Any]:
    """The declarative form of `config` (for GET /config and persistence)."""
    out: dict[str, Any] = {"_format_version": CURRENT_FORMAT}
    if config.basicauth_credentials:
        out["_transform"] = False  # passwords are already hashed
    names: dict[str, dict[str, str]] = {}
    for parent, key in _REF_KEY.items():
        counts: dict[str, int] = {}
        for e in getattr(config, parent):
            v = getattr(e, key)
            if v is not None:
                counts[v] = counts.get(v, 0) + 1
        # a name that is not unique (or looks like an id) cannot stand for the entity
        names[parent] = {e.id: getattr(e, key) for e in getattr(config, parent)
                         if getattr(e, key) is not None and counts[getattr(e, key)] == 1
                         and not is_uuid(getattr(e, key))}
    for etype in ENTITY_TYPES:
        items = getattr(config, etype)
        if not items:
            continue
        lst = []
        for e in items:
            d = {k: v for k, v in msgspec.to_builtins(e).items() if v is not None}
            for field, parent in FOREIGN[etype].items():
                ref = d.get(field)
                if ref is not None:
                    d[field] = names.get(parent, {}).get(ref, ref)
            lst.append(_escape(d))
        out[etype] = lst
    return out


def dump_yaml(config: Config) -> str:
    return yaml.dump(dump(config), Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper),
                     sort_keys=False, allow_unicode=True, default_flow_style=False)


def dump_json(config: Config) -> bytes:
    return orjson.dumps(dump(config))
