"""Kong-compatible Admin API, framework-agnostic.

`AdminAPI.handle(method, path, query, headers, body)` -> (status, headers, body). The HTTP
server (server.py) or any framework calls it; tests drive it directly.

Rules:
- Kong's paths, verbs and status codes: 201 created, 200, 204 deleted (also when there was
  nothing to delete), 400 schema violation (code 2) / foreign key violation (code 4) /
  invalid declarative configuration (code 14), 404 {"message": "Not found"}, 405
  {"message": "Method not allowed"}, 409 unique constraint violation (code 5). Error shapes
  follow kong/db/errors.lua.
- Every change goes through the ConfigStore, which validates and applies it atomically.
- Request bodies: JSON, or form-urlencoded with Kong's `a.b=` (records) and `a[]=` / `a[1]=`
  (arrays) forms; an empty form value means null.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
import socket
import time
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import unquote

import orjson

from fastgw import __version__
from fastgw.admin import certificates
from fastgw.admin import debug as admin_debug
from fastgw.admin import plugin_routes
from fastgw.config import declarative, model
from fastgw.config.diff import diff as config_diff
from fastgw.config.errors import (ConfigError, EntityNotFound, ForeignKeysUnresolved,
                                  ForeignKeyViolation,
                                  UniqueViolation, errors_to_fields,
                                  schema_violation_message)
from fastgw.config.model import ENTITY_CLASSES, FOREIGN, entity_to_json
from fastgw.config.gcpause import gc_paused
from fastgw.config.reuse import reuse_unchanged
from fastgw.config.store import ConfigStore
from fastgw._core.messages import INTERNAL
from fastgw.admin.bodies import MAX_URI_ARGS, TOO_MANY, check_content_type, parse_body
from fastgw.admin.config_errors import declarative_error, flattened_error
from fastgw.admin.errors import HTTPError, not_found
from fastgw.config.entity_checks import entity_checks
from fastgw.admin.foreign import foreign_handlers
from fastgw.admin.info import endpoint_list, root_info, status_info
from fastgw.admin.paging import paginate
from fastgw.admin.schemas import struct_fields_schema
from fastgw.debug.explain import shadowed_routes

log = logging.getLogger("fastgw.admin")

JSON_CT = "application/json; charset=utf-8"
SERVER = f"fastgw/{__version__}"


Response = tuple[int, list[tuple[str, str]], bytes]


class Gateway(Protocol):
    def status(self) -> dict[str, Any]: ...
    def upstream_health(self, name: str) -> list[dict[str, Any]]: ...
    def set_target_health(self, upstream: str, target: str, healthy: bool,
                          address: str | None = None) -> bool: ...
    def metrics(self) -> tuple[bytes, str] | None: ...
    def node_info(self) -> dict[str, Any]: ...


# URL collection name -> entity type
TOP: dict[str, str] = {
    "services": "services", "routes": "routes", "upstreams": "upstreams",
    "consumers": "consumers", "plugins": "plugins", "key-auths": "keyauth_credentials",
    "basic-auths": "basicauth_credentials", "jwts": "jwt_secrets", "acls": "acls"}

# (parent URL collection, child segment) -> (child entity type, foreign key field)
NESTED: dict[tuple[str, str], tuple[str, str]] = {
    ("services", "routes"): ("routes", "service"),
    ("services", "plugins"): ("plugins", "service"),
    ("routes", "plugins"): ("plugins", "route"),
    ("consumers", "plugins"): ("plugins", "consumer"),
    ("upstreams", "targets"): ("targets", "upstream"),
    ("consumers", "key-auth"): ("keyauth_credentials", "consumer"),
    ("consumers", "key-auths"): ("keyauth_credentials", "consumer"),
    ("consumers", "basic-auth"): ("basicauth_credentials", "consumer"),
    ("consumers", "basic-auths"): ("basicauth_credentials", "consumer"),
    ("consumers", "jwt"): ("jwt_secrets", "consumer"),
    ("consumers", "jwts"): ("jwt_secrets", "consumer"),
    ("consumers", "acls"): ("acls", "consumer"),
}

TOP.update(plugin_routes.TOP_EXTRA)
NESTED.update(plugin_routes.NESTED_EXTRA)

# /schemas/{name}: Kong's entity names plus the credential DAO names
SCHEMA_NAMES: dict[str, str] = {**{t: t for t in model.ENTITY_TYPES}, **TOP}


_not_found = not_found


class _Req:
    __slots__ = ("method", "path", "query", "headers", "body", "_data")

    def __init__(self, method: str, path: str, query: dict[str, list[str]],
                 headers: dict[str, str], body: bytes) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self._data: Any = None

    def q(self, name: str) -> str | None:
        v = self.query.get(name)
        return v[-1] if v else None

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    def data(self) -> dict[str, Any]:
        """The request body as a dict (JSON or form)."""
        if self._data is None:
            self._data = parse_body(self.headers.get("content-type", ""), self.body)
        return self._data


# -------------------------------------------------------------------------------------------
def _error_response(exc: Exception) -> tuple[int, Any]:
    if isinstance(exc, UniqueViolation):
        return 409, {"code": 5, "name": "unique constraint violation",
                     "message": exc.kong_message, "fields": exc.values}
    if isinstance(exc, ForeignKeysUnresolved):
        return 400, {"code": 13, "name": "foreign keys unresolved", "message": exc.kong_message,
                     "fields": {exc.field: {exc.sub_field: exc.field_message}}}
    if isinstance(exc, ForeignKeyViolation):
        fields = ({"@referenced_by": exc.referenced_by} if exc.referenced_by
                  else {exc.field: exc.key})
        return 400, {"code": 4, "name": "foreign key violation", "message": exc.kong_message,
                     "fields": fields}
    if isinstance(exc, EntityNotFound):
        return 404, {"message": "Not found"}
    if isinstance(exc, ConfigError):
        return 400, {"code": 2, "name": "schema violation",
                     "message": schema_violation_message(exc.errors),
                     "fields": errors_to_fields(exc.errors)}
    raise exc


def _release(doc: Any) -> None:
    """Drop a parsed document entity by entity: freeing 100,000 nested dicts at once is one
    long C call that holds the GIL (a stalled proxy loop); one entity at a time is not."""
    if isinstance(doc, dict):
        for v in list(doc.values()):
            if isinstance(v, list):
                while v:
                    v.pop()


def _paused(fn: Callable[..., Any], *args: Any) -> Any:
    with gc_paused():
        return fn(*args)


def _config_body(new: Any) -> bytes:
    # Kong's answer (routes/config.lua): the loaded entities by type, then by id, with
    # references as {"id": ...}
    return orjson.dumps({etype: {e.id: entity_to_json(etype, e) for e in getattr(new, etype)}
                         for etype in model.ENTITY_TYPES if getattr(new, etype)})


async def _finish(aw: Any) -> tuple[int, Any, list[tuple[str, str]]]:
    res = await aw
    if len(res) == 2:
        return res[0], res[1], []
    return res


# -------------------------------------------------------------------------------------------
# -------------------------------------------------------------------------------------------
class AdminAPI:
    def __init__(self, store: ConfigStore, gateway: Gateway,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.store = store
        self.gateway = gateway
        self._clock = clock
        self._hostname = socket.gethostname()

    async def handle(self, method: str, path: str, query: dict[str, list[str]],
                     headers: dict[str, str], body: bytes) -> Response:
        t0 = self._clock()
        headers = {k.lower(): v for k, v in headers.items()}
        method = method.upper()
        head = method == "HEAD"
        req = _Req("GET" if head else method, path, query, headers, body)
        extra: list[tuple[str, str]] = []
        try:
            around = getattr(self.store, "around_request", None)
            if around is None:
                out = self._dispatch(req)
            else:   # database mode (fastgw.cluster.pg.store): writes go to PostgreSQL
                out = await around(req.method, req.path, lambda: self._dispatch(req))
            if inspect.isawaitable(out):   # POST /config: parsed and checked off the loop
                out = await out
            status, payload, extra = out
        except HTTPError as e:
            status, payload = e.status, e.body
        except (ConfigError, EntityNotFound) as e:
            status, payload = _error_response(e)
        except Exception:  # noqa: BLE001 - never let one request kill the listener
            log.exception("admin API error on %s %s", method, path)
            status, payload = 500, {"message": INTERNAL}
        ctype = JSON_CT
        if isinstance(payload, tuple):  # raw (bytes, content type), e.g. /metrics
            out, ctype = payload
        elif payload is None:
            out = b""
        else:
            out = orjson.dumps(payload)
        hdrs = [("Content-Type", ctype)] if status not in (204, 304) else []
        hdrs += [("Access-Control-Allow-Origin", "*"), ("Server", SERVER),
                 ("X-Kong-Admin-Latency", str(int((self._clock() - t0) * 1000)))]
        hdrs += extra
        if head or status in (204, 304):
            if head:
                hdrs.append(("Content-Length", str(len(out))))
            out = b""
        return status, hdrs, out

    # ------------------------------------------------------------------ routing
    def _dispatch(self, req: _Req) -> tuple[int, Any, list[tuple[str, str]]]:
        raw = req.path.split("?", 1)[0]
        segs = [unquote(s) for s in raw.strip("/").split("/")] if raw.strip("/") else []
        handlers = self._route(segs)
        if handlers is None:
            raise _not_found()
        if req.method == "OPTIONS":
            # Kong's preflight answer (kong/api/api_helpers.lua): every method of the path,
            # HEAD wherever GET is, and the one request header browsers need to ask for
            methods = {*handlers, "OPTIONS"} | ({"HEAD"} if "GET" in handlers else set())
            allow = ", ".join(sorted(methods))
            return 204, None, [("Allow", allow), ("Access-Control-Allow-Methods", allow),
                               ("Access-Control-Allow-Headers", "Content-Type")]
        h = handlers.get(req.method)
        if h is None:
            raise HTTPError(405, {"message": "Method not allowed"})
        check_content_type(req.method, req.headers, req.body, segs == ["config"])
        if sum(len(v) for v in req.query.values()) > MAX_URI_ARGS:
            raise HTTPError(400, TOO_MANY)
        res = h(req)
        if inspect.isawaitable(res):
            return _finish(res)
        if len(res) == 2:
            return res[0], res[1], []
        return res

    def _route(self, segs: list[str]) -> dict[str, Callable[[_Req], Any]] | None:
        n = len(segs)
        if n == 0:
            return {"GET": self._root}
        s0 = segs[0]
        if s0 == "debug":
            return admin_debug.routes(self, segs)
        if n == 1:
            if s0 == "status":
                return {"GET": self._status}
            if s0 == "config":
                return {"GET": self._get_config, "POST": self._post_config}
            if s0 == "metrics":
                return {"GET": self._metrics}
            if s0 == "tags":
                return {"GET": lambda r: self._tags(r, None)}
            if s0 == "endpoints":
                return {"GET": lambda r: (200, {"data": endpoint_list(TOP, NESTED, FOREIGN)})}
            if s0 == "schemas":
                return None
        if s0 == "schemas":
            if n == 2:
                return {"GET": lambda r: self._schema(segs[1])}
            if n == 3 and segs[1] == "plugins" and segs[2] == "validate":
                return {"POST": lambda r: self._validate("plugins", r)}
            if n == 3 and segs[1] == "plugins":
                return {"GET": lambda r: self._plugin_schema(segs[2])}
            if n == 3 and segs[2] == "validate":
                return {"POST": lambda r: self._validate(segs[1], r)}
            return None
        if s0 == "tags" and n == 2:
            return {"GET": lambda r: self._tags(r, segs[1])}
        if s0 == "plugins" and n == 2 and segs[1] == "enabled":
            return {"GET": lambda r: (200, {"enabled_plugins": model.available_plugins()})}
        if s0 == "plugins" and n == 3 and segs[1] == "schema":
            return {"GET": lambda r: self._plugin_schema(segs[2])}
        if s0 in certificates.COLLECTIONS:
            return certificates.route(self, segs)
        extra = plugin_routes.route(self, segs)
        if extra is not None:
            return extra
        if s0 not in TOP:
            return None
        etype = TOP[s0]
        if n == 1:
            return self._collection(etype, None)
        key = segs[1]
        if n == 2:
            return self._item(etype, key, None)
        sub = segs[2]
        if s0 == "upstreams" and n == 3 and sub == "health":
            return {"GET": lambda r: self._upstream_health(key)}
        if s0 == "upstreams" and n == 4 and sub == "targets" and segs[3] == "all":
            return {"GET": lambda r: self._nested(s0, key, sub, lambda et, sc:
                                                   self._list(r, et, sc))}
        if s0 == "upstreams" and n == 5 and sub == "targets" and \
                segs[4] in ("healthy", "unhealthy"):
            return {"PUT": lambda r: self._target_health(key, segs[3], segs[4] == "healthy"),
                    "POST": lambda r: self._target_health(key, segs[3], segs[4] == "healthy")}
        if s0 == "upstreams" and n == 6 and sub == "targets" and \
                segs[5] in ("healthy", "unhealthy"):  # one resolved address of the target
            return {"PUT": lambda r: self._target_health(key, segs[3], segs[5] == "healthy",
                                                         segs[4])}
        if (s0, sub) in NESTED:
            if n == 3:
                return self._nested_collection(s0, key, sub)
            if n == 4:
                return self._nested_item(s0, key, sub, segs[3])
            return None
        if n == 3 and sub in FOREIGN[etype]:
            return foreign_handlers(self.store, etype, key, sub)
        return None

    # ------------------------------------------------------------------ entity handlers
    def _collection(self, etype: str, scope: dict[str, str] | None
                    ) -> dict[str, Callable[[_Req], Any]]:
        return {
            "GET": lambda r: self._list(r, etype, scope),
            "POST": lambda r: (201, self._out(etype, self.store.create(
                etype, r.data(), forced=scope))),
        }

    def _item(self, etype: str, key: str, scope: dict[str, str] | None
              ) -> dict[str, Callable[[_Req], Any]]:
        def get(r: _Req) -> Any:
            e = self.store.find(etype, key, scope)
            if e is None:
                raise _not_found()
            return 200, self._out(etype, e)

        def put(r: _Req) -> Any:
            e, _created = self.store.upsert(etype, key, r.data(), scope)
            return 200, self._out(etype, e)

        def patch(r: _Req) -> Any:
            return 200, self._out(etype, self.store.update(etype, key, r.data(), scope))

        def delete(r: _Req) -> Any:
            self.store.delete(etype, key, scope)
            return 204, None

        return {"GET": get, "PUT": put, "PATCH": patch, "DELETE": delete}

    def _parent_scope(self, parent_url: str, parent_key: str, sub: str
                      ) -> tuple[str, dict[str, str]]:
        etype, field = NESTED[(parent_url, sub)]
        parent = self.store.find(TOP[parent_url], parent_key)
        if parent is None:
            raise _not_found()
        return etype, {field: parent.id}

    def _nested(self, parent_url: str, parent_key: str, sub: str,
                fn: Callable[[str, dict[str, str]], Any]) -> Any:
        etype, scope = self._parent_scope(parent_url, parent_key, sub)
        return fn(etype, scope)

    def _nested_collection(self, parent_url: str, parent_key: str, sub: str
                           ) -> dict[str, Callable[[_Req], Any]]:
        def call(method: str) -> Callable[[_Req], Any]:
            def h(r: _Req) -> Any:
                etype, scope = self._parent_scope(parent_url, parent_key, sub)
                return self._collection(etype, scope)[method](r)
            return h
        return {"GET": call("GET"), "POST": call("POST")}

    def _nested_item(self, parent_url: str, parent_key: str, sub: str, key: str
                     ) -> dict[str, Callable[[_Req], Any]]:
        def call(method: str) -> Callable[[_Req], Any]:
            def h(r: _Req) -> Any:
                etype, scope = self._parent_scope(parent_url, parent_key, sub)
                if method == "DELETE" and self.store.find(etype, key, scope) is None:
                    # Kong's nested DELETE looks the child up under its parent first
                    # (kong/api/endpoints.lua delete_entity_endpoint): unknown -> 404
                    raise _not_found()
                return self._item(etype, key, scope)[method](r)
            return h
        return {m: call(m) for m in ("GET", "PUT", "PATCH", "DELETE")}

    def _list(self, r: _Req, etype: str, scope: dict[str, str] | None) -> Any:
        items = self.store.list_live(etype, scope)
        tags = r.q("tags")
        if tags == "":  # kong/api/endpoints.lua extract_options
            raise HTTPError(400, {"code": 11, "name": "invalid options",
                                  "message": "invalid option (tags: cannot be null)",
                                  "options": {"tags": "cannot be null"}})
        if etype == "consumers" and r.q("custom_id") == "":
            # kong/api/routes/consumers.lua
            raise HTTPError(400, {"message": "custom_id must be an unempty string"})
        if tags and not scope:
            # Kong filters by tags on top-level collections only: a nested list
            # (/consumers/{c}/plugins?tags=) ignores them (14-tags_spec.lua #6779)
            items = [e for e in items if _tags_match(e.tags, tags)]
        for field in ("custom_id", "username", "name") if etype in ("consumers", "plugins") \
                else ():
            v = r.q(field)
            if v is not None and hasattr(ENTITY_CLASSES[etype], "__struct_fields__") and \
                    field in ENTITY_CLASSES[etype].__struct_fields__:
                items = [e for e in items if getattr(e, field) == v]
        data = [self._out(etype, e) for e in items]
        return 200, paginate(data, r)

    def _out(self, etype: str, e: Any) -> dict[str, Any]:
        """The entity as the API shows it; a credential's `ttl` is what remains of it, as
        Kong's DAO reports it."""
        d = entity_to_json(etype, e)
        if d.get("ttl"):
            d["ttl"] = self.store.remaining_ttl(e)
        return d

    # ------------------------------------------------------------------ other endpoints
    def _root(self, r: _Req) -> Any:
        return 200, root_info(self.store, self.gateway, self._hostname)

    def _status(self, r: _Req) -> Any:
        return 200, status_info(self.store, self.gateway)

    def _metrics(self, r: _Req) -> Any:
        m = self.gateway.metrics()
        if m is None:
            raise _not_found()
        return 200, (m[0], m[1])

    def _get_config(self, r: _Req) -> Any:
        if r.q("format") == "json":
            return 200, declarative.dump(self.store.config)
        return 200, {"config": declarative.dump_yaml(self.store.config)}

    async def _post_config(self, r: _Req) -> Any:
        """Kong's hydrate_config_from_request (kong/api/routes/config.lua): parsed, validated,
        hashed and encoded on a worker thread; only the compile and the swap run on the event
        loop (they reuse what did not change: fastgw.config.reuse), so proxying goes on while
        a large file is read."""
        loop = asyncio.get_running_loop()
        res = await loop.run_in_executor(None, _paused, self._prepare_config, r)
        if len(res) == 2:
            return res
        new, new_hash, flatten = res[2], res[3], res[4]
        try:
            self.store.replace(new, checked=True, config_hash=new_hash)
        except ConfigError as e:
            return 400, self._config_error(e, None, flatten)
        return 201, (await loop.run_in_executor(None, _paused, _config_body, new), JSON_CT)

    def _prepare_config(self, r: _Req) -> Any:
        """(status, body) to answer at once, or ("apply", None, config, hash, flatten): a body
        that is the document itself (JSON/YAML), or a `config` field holding its text in a
        form, multipart (`curl -F config=@kong.yml`) or JSON body. Any thread."""
        ctype = r.content_type
        doc: Any = None
        flatten = _truthy(r.q("flatten_errors"))
        try:
            if ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
                text = _form_config(r)
                if text is None:
                    raise HTTPError(400, {"message": "expected a declarative configuration"})
                doc = declarative.parse_text(text)
            elif ctype in ("application/json", "") and r.body.lstrip()[:1] == b"{":
                doc = r.data()
                if "_format_version" not in doc and isinstance(doc.get("config"), str):
                    doc = declarative.parse_text(doc["config"])
            else:
                if not r.body.strip():
                    raise HTTPError(400, {"message": "expected a declarative configuration"})
                doc = declarative.parse_text(r.body)
            new = declarative.load_dict(doc)
        except ConfigError as e:
            return 400, self._config_error(e, doc, flatten)
        errs = model.check_integrity(new)
        if errs:
            return 400, self._config_error(ConfigError(errs), doc, flatten)
        _release(doc)
        if _truthy(r.q("dry_run")):
            return 200, {"dry_run": True, "diff": config_diff(self.store.config, new),
                         "shadowed_routes": shadowed_routes(new)}
        new = reuse_unchanged(new, self.store.config)
        new_hash = model.config_hash(new)
        if r.q("check_hash") == "1" and new_hash == self.store.hash:
            return 304, None
        return "apply", None, new, new_hash, flatten

    @staticmethod
    def _config_error(e: ConfigError, doc: Any, flatten: bool) -> dict[str, Any]:
        return flattened_error(e, doc) if flatten else declarative_error(e)

    def _schema(self, name: str) -> Any:
        etype = SCHEMA_NAMES.get(name)
        if etype is None:
            raise HTTPError(404, {"message": f"No entity named '{name}'"})
        return 200, {"fields": struct_fields_schema(ENTITY_CLASSES[etype], etype),
                     "entity_checks": entity_checks(etype)}

    def _plugin_schema(self, name: str) -> Any:
        cls = model.plugin_class(name)
        if cls is None:
            raise HTTPError(404, {"message": f"No plugin named '{name}'"})
        fields = struct_fields_schema(model.Plugin, "plugins")
        conf = getattr(cls, "Config", None)
        for f in fields:
            if "config" in f:
                f["config"] = {"type": "record", "required": True,
                               "fields": struct_fields_schema(conf) if conf else []}
        return 200, {"fields": fields, "entity_checks": []}

    def _validate(self, name: str, r: _Req) -> Any:
        etype = SCHEMA_NAMES.get(name)
        if etype is None:
            raise HTTPError(404, {"message": f"No entity named '{name}'"})
        data = dict(r.data())
        data.setdefault("id", model.new_id())
        for field in FOREIGN[etype]:  # schema only: a reference just has to look like one
            ref = data.get(field)
            if isinstance(ref, dict):
                data[field] = ref.get("id") or model.new_id()
        for k, v in plugin_routes.SCHEMA_PLACEHOLDERS.get(etype, {}).items():
            data.setdefault(k, v)
        if etype in ("keyauth_credentials", "jwt_secrets"):
            data.setdefault("key", "x")
            if etype == "jwt_secrets":
                data.setdefault("secret", "x")
        for field in FOREIGN[etype]:
            if field in ("consumer", "upstream") and data.get(field) is None:
                data[field] = model.new_id()
        errors: list[tuple[str, str]] = []
        model.build_entity(etype, data, "", errors, strict=False)
        if errors:
            raise ConfigError(errors)
        return 200, {"message": "schema validation successful"}

    def _upstream_health(self, key: str) -> Any:
        up = self.store.find("upstreams", key)
        if up is None:
            raise _not_found()
        data = self.gateway.upstream_health(up.name)
        return 200, {"data": data, "next": None, "node_id": None}

    def _target_health(self, ukey: str, tkey: str, healthy: bool,
                       address: str | None = None) -> Any:
        up = self.store.find("upstreams", ukey)
        if up is None:
            raise _not_found()
        t = self.store.find("targets", tkey, {"upstream": up.id})
        if t is None:
            raise _not_found()
        if address is None:
            self.gateway.set_target_health(up.name, t.target, healthy)
        elif not self.gateway.set_target_health(up.name, t.target, healthy, address):
            return 400, {"message": f"no address {address} for target {t.target}"}
        return 204, None

    def _tags(self, r: _Req, tag: str | None) -> Any:
        cfg = self.store.config
        rows = []
        for etype in model.ENTITY_TYPES:
            for e in getattr(cfg, etype):
                for t in e.tags or ():
                    if tag is None or t == tag:
                        rows.append({"entity_name": etype, "entity_id": e.id, "tag": t})
        return 200, paginate(rows, r)


def _form_config(r: _Req) -> str | bytes | None:
    """The `config` field of a form body, else the raw body itself (Kong reads the raw body
    when there is no `config` param: `curl --data-binary @kong.yml` sends YAML labelled as a
    form)."""
    try:
        text = r.data().get("config")
    except HTTPError:
        text = None
    if isinstance(text, str):
        return text
    return r.body if r.body.strip() and r.content_type != "multipart/form-data" else None


def _truthy(v: str | None) -> bool:
    return v is not None and v.lower() in ("1", "true", "yes", "on")


def _tags_match(tags: list[str] | None, expr: str) -> bool:
    if "," in expr and "/" in expr:
        raise HTTPError(400, {"code": 11, "name": "invalid options",
                              "message": "invalid option (tags: invalid filter syntax)",
                              "options": {"tags": "invalid filter syntax"}})
    have = set(tags or ())
    if "/" in expr:
        return any(t in have for t in expr.split("/"))
    return all(t in have for t in expr.split(","))


