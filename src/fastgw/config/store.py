"""The live configuration and every change made to it.

Rules:
- The current Config is never mutated. Each change builds a NEW Config, checks references
  and uniqueness, hands it to `apply` (the runtime compiles a snapshot there and raises
  ConfigError if it cannot), and only then commits it. On any error nothing changes.
- Changes are never silently lost: with a persist path the declarative file is rewritten
  atomically (tmp + fsync + rename) after each change; without one the store reports
  `persistence: "memory"` and logs a warning per change.
- Entity operations take Admin API input (dicts, parents as {"id": ..}, {"name": ..} or a
  plain id/name string) and raise ConfigError (schema violation), UniqueViolation,
  ForeignKeyViolation or EntityNotFound.
"""
from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

import msgspec

from fastgw.config import declarative, model
from fastgw.config.errors import (ConfigError, EntityNotFound, ErrorList, ForeignKeysUnresolved,
                                  ForeignKeyViolation, UniqueViolation)
from fastgw.config.index import EntityIndex
from fastgw.config.model import (CASCADE, ENDPOINT_KEY, ENTITY_TYPES, FOREIGN, Config, Entity,
                                 config_hash, is_uuid)

log = logging.getLogger("fastgw.config")

MEMORY_WARNING = "change is in memory only; it is lost on restart: use --persist FILE"

# fields whose value is a record: PATCH merges them key by key, as Kong does for `config`
_MERGED_RECORDS = {"config", "healthchecks"}


class ConfigStore:
    """Holds the current Config and performs validated, atomic changes."""

    def __init__(self, config: Config, apply: Callable[[Config], None],
                 persist_path: str | None = None, *, source_path: str | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._config = config
        # computed when first read (GET /status): a write does not pay for hashing
        self._hash: str | None = None
        # per entity type: lookups by id / endpoint key / unique key (fastgw.config.index)
        self._indexes: dict[str, EntityIndex] = {}
        self._apply = apply
        self.persist_path = persist_path
        self.source_path = source_path
        self._clock = clock
        self._lock = threading.RLock()
        self.version = 0  # bumped on every committed change

    # ----------------------------------------------------------------- state
    @property
    def config(self) -> Config:
        return self._config

    @property
    def hash(self) -> str:
        h = self._hash
        if h is None:
            h = self._hash = config_hash(self._config)
        return h

    def _index(self, etype: str) -> EntityIndex:
        items = getattr(self._config, etype)
        idx = self._indexes.get(etype)
        if idx is None or idx.items is not items:
            idx = self._indexes[etype] = EntityIndex(etype, items)
        return idx

    @property
    def persistence(self) -> str:
        """"file" when changes are written to persist_path, else "memory"."""
        return "file" if self.persist_path else "memory"

    def info(self) -> dict[str, Any]:
        return {
            "persistence": self.persistence,
            "persist_path": self.persist_path,
            "source_path": self.source_path,
            "config_hash": self.hash,
            "version": self.version,
            "entities": {t: len(getattr(self._config, t)) for t in ENTITY_TYPES},
        }

    # ----------------------------------------------------------------- whole config
    def replace(self, new: Config, *, checked: bool = False,
                config_hash: str | None = None) -> None:
        """Swap in a whole new config (POST /config, file reload, SIGHUP). `checked`: the
        caller ran model.check_integrity already (off the event loop); `config_hash`: its
        hash, when the caller computed it there too."""
        if not checked:
            errors = model.check_integrity(new)
            if errors:
                raise ConfigError(errors)
        with self._lock:
            self._commit(new)
            self._hash = config_hash

    def _commit(self, new: Config) -> None:
        try:
            self._apply(new)  # raises -> nothing changes
        except (ValueError, OverflowError) as e:
            # a value the compiled runtime cannot hold (e.g. a number beyond its C type) is
            # the configuration's problem, answered as such, not as an internal error
            log.exception("the runtime refused the configuration")
            raise ConfigError([("", f"cannot apply the configuration: {e}")]) from None
        self._config = new
        self._hash = None
        self.version += 1
        if self.persist_path:
            self._persist(new)
        else:
            log.warning(MEMORY_WARNING)

    def _persist(self, config: Config) -> None:
        path = self.persist_path
        assert path is not None
        text = declarative.dump_yaml(config)
        d = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(prefix=".fastgw-", suffix=".yml.tmp", dir=d)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise

    # ----------------------------------------------------------------- lookups
    def list(self, etype: str, scope: dict[str, str] | None = None) -> list[Any]:
        items = getattr(self._config, etype)
        if not scope:
            return list(items)
        return [e for e in items if all(getattr(e, f) == v for f, v in scope.items())]

    def list_live(self, etype: str, scope: dict[str, str] | None = None) -> list[Any]:
        """`list` without expired credentials (what the Admin API shows)."""
        return [e for e in self.list(etype, scope) if not self.expired(e)]

    def get_by_id(self, etype: str, id_: str) -> Any | None:
        return self._index(etype).by_id.get(id_)

    def expired(self, ent: Any) -> bool:
        """A credential created with a `ttl` that has passed (Kong's DAO ttl: gone)."""
        ttl = getattr(ent, "ttl", None)
        return bool(ttl) and (ent.created_at or 0) + ttl <= self._clock()

    def remaining_ttl(self, ent: Any) -> int | None:
        ttl = getattr(ent, "ttl", None)
        if not ttl:
            return None
        return max(0, int((ent.created_at or 0) + ttl - self._clock()))

    def find(self, etype: str, key: str, scope: dict[str, str] | None = None) -> Any | None:
        """By id or endpoint key (name, username, key, target...), within `scope`; an expired
        credential is not found."""
        found = self._find(etype, key, scope)
        return None if found is not None and self.expired(found) else found

    def _find(self, etype: str, key: str, scope: dict[str, str] | None = None) -> Any | None:
        idx = self._index(etype)

        def in_scope(e: Any) -> bool:
            return not scope or all(getattr(e, f) == v for f, v in scope.items())

        if is_uuid(key):
            e = idx.by_id.get(key.lower())
            if e is not None and in_scope(e):
                return e
        field = ENDPOINT_KEY.get(etype)
        if field is None:
            return None
        if etype == "targets":
            key = model.normalize_target(key) or key
        for e in idx.with_key(key):
            if in_scope(e):
                return e
        return None

    def resolve_ref(self, field: str, parent_type: str, raw: Any) -> str | None:
        """A parent reference from Admin API input -> the parent's id."""
        if raw is None:
            return None
        if isinstance(raw, dict):
            if raw.get("id") is not None:
                key, shown = raw["id"], {"id": raw["id"]}
            elif raw.get("name") is not None:
                key, shown = raw["name"], {"name": raw["name"]}
            elif raw.get("username") is not None:
                key, shown = raw["username"], {"username": raw["username"]}
            else:
                # Kong: a reference without its primary key (and no endpoint key to look up)
                raise ConfigError([(f"{field}.id", "missing primary key")])
        else:
            key, shown = raw, {"id": raw}
        if not isinstance(key, str):
            raise ConfigError([(f"{field}.id", "expected a string")])
        if "id" in shown and not is_uuid(key):
            # Kong needs ids here; fastgw also takes a name, for convenience
            shown = {ENDPOINT_KEY.get(parent_type) or "name": key}
        found = self.find(parent_type, key)
        if found is None:
            if "id" not in shown:  # looked up by endpoint key: Kong's code 13
                raise ForeignKeysUnresolved(field, shown, parent_type)
            raise ForeignKeyViolation(field, shown, parent_type)
        return found.id

    # ----------------------------------------------------------------- changes
    def create(self, etype: str, data: dict[str, Any],
               forced: dict[str, str] | None = None) -> Any:
        """POST: a new entity. `forced` sets parent ids from a nested URL."""
        with self._lock:
            ent = self._build(etype, data, forced, existing=None)
            self._check_unique(etype, ent, exclude=None)
            items = [*getattr(self._config, etype), ent]
            self._commit_entities(etype, items, None, ent)
            return ent

    def upsert(self, etype: str, key: str, data: dict[str, Any],
               scope: dict[str, str] | None = None) -> tuple[Any, bool]:
        """PUT: create or fully replace the entity named by `key` (id or endpoint key).
        Returns (entity, created)."""
        with self._lock:
            existing = self.find(etype, key, scope)
            data = dict(data)
            if is_uuid(key):
                data["id"] = key.lower()
            else:
                ek = ENDPOINT_KEY.get(etype)
                if ek is None:
                    raise EntityNotFound(etype, key)
                # Kong's targets PUT (api/routes/upstreams.lua update_existing_target): the
                # body's `target` may move an existing target; elsewhere the URL key wins
                if not (etype == "targets" and existing is not None and data.get(ek)):
                    data[ek] = key
                if existing is not None:
                    data["id"] = existing.id
            ent = self._build(etype, data, scope, existing=existing)
            self._check_unique(etype, ent, exclude=existing.id if existing else None)
            items = list(getattr(self._config, etype))
            if existing is not None:
                items[items.index(existing)] = ent
            else:
                items.append(ent)
            self._commit_entities(etype, items, existing, ent)
            return ent, existing is None

    def update(self, etype: str, key: str, data: dict[str, Any],
               scope: dict[str, str] | None = None) -> Any:
        """PATCH: change the given fields (records like `config` merge key by key)."""
        with self._lock:
            existing = self.find(etype, key, scope)
            if existing is None:
                raise EntityNotFound(etype, key)
            if etype == "basicauth_credentials" and "consumer" in data and "password" not in data:
                # the stored hash is sha1(password .. consumer_id): moving the credential to
                # another consumer needs the password again (Kong's basic-auth transformation)
                raise ConfigError([("", "all or none of these fields must be set: 'password', "
                                        "'consumer.id'")])
            base: dict[str, Any] = msgspec.to_builtins(existing)
            merged = dict(base)
            for k, v in data.items():
                if k in _MERGED_RECORDS and isinstance(v, dict) and isinstance(base.get(k), dict):
                    merged[k] = _deep_merge(base[k], v)
                else:
                    merged[k] = v
            if etype == "services" and data.get("url") is not None:
                for k in ("protocol", "host", "port", "path"):
                    if k not in data:
                        merged.pop(k, None)
            merged["id"] = existing.id
            keep_password = etype == "basicauth_credentials" and "password" not in data
            ent = self._build(etype, merged, scope, existing=existing,
                              hash_password=not keep_password)
            self._check_unique(etype, ent, exclude=existing.id)
            items = list(getattr(self._config, etype))
            items[items.index(existing)] = ent
            self._commit_entities(etype, items, existing, ent)
            return ent

    def delete(self, etype: str, key: str, scope: dict[str, str] | None = None) -> bool:
        """DELETE: False when there was nothing to delete (the API still answers 204)."""
        with self._lock:
            existing = self.find(etype, key, scope)
            if existing is None:
                return False
            cfg = self._config
            doomed: dict[str, set[str]] = {etype: {existing.id}}
            # cascade to children, breadth first (a route's plugins go with the route...)
            changed = True
            while changed:
                changed = False
                for ctype in ENTITY_TYPES:
                    for field, ptype in FOREIGN[ctype].items():
                        ids = doomed.get(ptype)
                        if not ids:
                            continue
                        for child in getattr(cfg, ctype):
                            if getattr(child, field) in ids and \
                                    child.id not in doomed.get(ctype, set()):
                                if not CASCADE.get((ctype, field), False):
                                    raise ForeignKeyViolation("@referenced_by", None, ptype,
                                                              referenced_by=ctype)
                                doomed.setdefault(ctype, set()).add(child.id)
                                changed = True
            new = msgspec.structs.replace(cfg, **{
                t: [e for e in getattr(cfg, t) if e.id not in ids] for t, ids in doomed.items()})
            self._commit(new)
            return True

    def transaction(self, change: Callable[[Config], Config]) -> Config:
        """A change spanning several entities (a certificate and its SNIs): `change` builds
        the new Config from the current one with `build_entity` / `check_unique`, raising
        on bad input; the result is checked and committed atomically, or nothing changes."""
        with self._lock:
            new = change(self._config)
            errors = model.check_integrity(new)
            if errors:
                raise ConfigError(errors)
            self._commit(new)
            return new

    def build_entity(self, etype: str, data: dict[str, Any], forced: dict[str, str] | None,
                     existing: Any | None) -> Entity:
        """Validate Admin API input into an entity (ids, timestamps, references resolved)."""
        return self._build(etype, data, forced, existing)

    def check_unique(self, etype: str, ent: Any, exclude: str | None) -> None:
        self._check_unique(etype, ent, exclude)

    # ----------------------------------------------------------------- helpers
    def _build(self, etype: str, data: dict[str, Any], forced: dict[str, str] | None,
               existing: Any | None, hash_password: bool = True) -> Entity:
        data = dict(data)
        for field, parent in FOREIGN[etype].items():
            if forced and field in forced:
                data[field] = forced[field]
            elif field in data:
                data[field] = self.resolve_ref(field, parent, data[field])
        if data.get("id") is None:
            data["id"] = model.new_id()
        now = int(self._clock())
        fields = {f.name for f in model.struct_fields(model.ENTITY_CLASSES[etype])}
        data["created_at"] = existing.created_at if existing is not None and \
            existing.created_at is not None else now
        if "updated_at" in fields:
            data["updated_at"] = now
        model.fill_credential_defaults(etype, data, hash_password)
        errors: ErrorList = []
        ent = model.build_entity(etype, data, "", errors, strict=False)
        if ent is None or errors:
            raise ConfigError(errors or [("", "invalid entity")])
        return ent

    def _check_unique(self, etype: str, ent: Any, exclude: str | None) -> None:
        idx = self._index(etype)
        same = idx.by_id.get(ent.id)
        if ent.id != exclude and same is not None and not self.expired(same):
            raise UniqueViolation(etype, {"id": ent.id})
        for fields, vals in idx.unique_keys(ent):
            other = idx.by_unique.get((fields, vals))
            if other is not None and other != exclude and not self._expired_id(idx, other):
                shown = {f: v for f, v in zip(fields, vals) if v is not None}
                if len(fields) > 1 and "name" in fields:  # plugin scope: show the name
                    shown = {f: ({"id": v} if f in FOREIGN[etype] else v)
                             for f, v in shown.items()}
                raise UniqueViolation(etype, shown)

    def _expired_id(self, idx: Any, eid: Any) -> bool:
        # an expired credential (Kong's DAO ttl) no longer holds its unique values
        e = idx.by_id.get(eid) if isinstance(eid, str) else None
        return e is not None and self.expired(e)

    def _commit_entities(self, etype: str, items: list[Any], removed: Any | None,
                         added: Any) -> None:
        """Commit a list that differs from the current one by `removed` -> `added` (the
        uniqueness of `added` is already checked): only its references need checking, and the
        indexes move along instead of being rebuilt."""
        errors: ErrorList = []
        for field, parent in FOREIGN[etype].items():
            ref = getattr(added, field)
            if ref is not None and ref not in self._index(parent).by_id:
                errors.append((f"{etype}[{len(items) - 1}].{field}",
                               f"invalid reference '{field}: {ref}' (no such entry in "
                               f"'{parent}')"))
        if etype == "services" and getattr(added, "ca_certificates", None):
            # an array of ids, not a foreign key (fastgw.config.certificates.check_ca_refs)
            cas = self._index("ca_certificates").by_id
            for j, ref in enumerate(added.ca_certificates):
                if ref not in cas:
                    errors.append((f"services[{len(items) - 1}].ca_certificates[{j}]",
                                   f"invalid reference 'ca_certificates: {ref}' (no such "
                                   "entry in 'ca_certificates')"))
        if errors:
            raise ConfigError(errors)
        old = self._indexes.get(etype)
        was_current = old is not None and old.items is getattr(self._config, etype)
        self._commit(msgspec.structs.replace(self._config, **{etype: items}))
        if was_current:
            old.moved(items, removed, added)


def _deep_merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in patch.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out
