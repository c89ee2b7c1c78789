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
import base64
import binascii
import inspect
import logging
import socket
import time
from collections.abc import Callable
from typing import Any, Protocol, Union, get_args, get_origin
from urllib.parse import parse_qsl, quote, unquote

import msgspec
import orjson

from fastgw import __version__
from fastgw.config import declarative, model
from fastgw.config.diff import diff as config_diff
from fastgw.config.errors import (ConfigError, EntityNotFound, ForeignKeyViolation,
                                  UniqueViolation, errors_to_fields,
                                  schema_violation_message)
from fastgw.config.model import ENTITY_CLASSES, FOREIGN, entity_to_json
from fastgw.config.gcpause import gc_paused
from fastgw.config.reuse import reuse_unchanged
from fastgw.config.store import ConfigStore

log = logging.getLogger("fastgw.admin")

JSON_CT = "application/json; charset=utf-8"
SERVER = f"fastgw/{__version__}"

# pagination (Kong: size default 100, max 1000)
PAGE_SIZE_DEFAULT = 100
PAGE_SIZE_MAX = 1000

Response = tuple[int, list[tuple[str, str]], bytes]


class Gateway(Protocol):
    def status(self) -> dict[str, Any]: ...
    def upstream_health(self, name: str) -> list[dict[str, Any]]: ...
    def set_target_health(self, upstream: str, target: str, healthy: bool) -> None: ...
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

# /schemas/{name}: Kong's entity names plus the credential DAO names
SCHEMA_NAMES: dict[str, str] = {**{t: t for t in model.ENTITY_TYPES}, **TOP}


class HTTPError(Exception):
    def __init__(self, status: int, body: Any = None) -> None:
        self.status = status
        self.body = body


def _not_found() -> HTTPError:
    return HTTPError(404, {"message": "Not found"})


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
            self._data = parse_body(self.content_type, self.body)
        return self._data


def parse_body(content_type: str, body: bytes) -> dict[str, Any]:
    if not body or not body.strip():
        return {}
    if content_type == "application/x-www-form-urlencoded":
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            raise HTTPError(400, {"message": "Cannot parse form body"}) from None
        return form_to_dict(pairs)
    if content_type in ("", "application/json") or content_type.endswith("+json"):
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise HTTPError(400, {"message": "Cannot parse JSON body"}) from None
        if not isinstance(data, dict):
            raise HTTPError(400, {"message": "Cannot parse JSON body"})
        return data
    raise HTTPError(415, {"message": f"Unsupported Content-Type: {content_type}"})


def form_to_dict(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Kong's form conventions: `config.minute=5` -> {"config": {"minute": "5"}},
    `paths[]=/a&paths[]=/b` or `paths[1]=/a` -> ["/a", "/b"], a repeated plain key -> array,
    an empty value -> null."""
    root: dict[str, Any] = {}
    indexed: dict[int, dict[int, Any]] = {}  # id(list owner dict+key) -> index map
    for raw_key, raw_val in pairs:
        val: Any = raw_val if raw_val != "" else None
        node = root
        parts = raw_key.split(".")
        for part in parts[:-1]:
            nxt = node.get(part)
            if not isinstance(nxt, dict):
                nxt = {}
                node[part] = nxt
            node = nxt
        last = parts[-1]
        if last.endswith("]") and "[" in last:
            name, _, idx = last[:-1].partition("[")
            lst = node.get(name)
            if not isinstance(lst, list):
                lst = []
                node[name] = lst
            if idx == "":
                if val is not None:
                    lst.append(val)
            elif idx.isdigit():
                slot = indexed.setdefault(id(lst), {})
                slot[int(idx)] = val
                lst[:] = [slot[i] for i in sorted(slot)]
            else:  # `headers[x-foo]=bar` is a map entry
                del node[name]
                m = node.setdefault(name, {})
                if isinstance(m, dict):
                    m[idx] = val
        elif last in node and val is not None:
            cur = node[last]
            node[last] = [*cur, val] if isinstance(cur, list) else [cur, val]
        else:
            node[last] = val
    return root


# -------------------------------------------------------------------------------------------
def _error_response(exc: Exception) -> tuple[int, Any]:
    if isinstance(exc, UniqueViolation):
        return 409, {"code": 5, "name": "unique constraint violation",
                     "message": exc.kong_message, "fields": exc.values}
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


def _dump_json(config: Any) -> bytes:
    return orjson.dumps(declarative.dump(config))


def _paused(fn: Callable[..., Any], *args: Any) -> Any:
    with gc_paused():
        return fn(*args)


async def _finish(aw: Any) -> tuple[int, Any, list[tuple[str, str]]]:
    res = await aw
    if len(res) == 2:
        return res[0], res[1], []
    return res


def _declarative_error(exc: ConfigError) -> dict[str, Any]:
    fields = errors_to_fields(exc.errors)
    return {"code": 14, "name": "invalid declarative configuration",
            "message": "declarative config is invalid: " + "; ".join(
                f"{p}: {m}" if p else m for p, m in exc.errors),
            "fields": fields,
            "errors": [{"path": p, "message": m} for p, m in exc.errors]}


# -------------------------------------------------------------------------------------------
def _type_schema(tp: Any) -> dict[str, Any]:
    """A msgspec field type as a Kong-style schema description."""
    origin = get_origin(tp)
    if origin is Union:
        args = [a for a in get_args(tp) if a is not type(None)]
        return _type_schema(args[0]) if len(args) == 1 else {"type": "any"}
    from typing import Annotated, Literal
    if origin is Annotated:
        base, *metas = get_args(tp)
        out = _type_schema(base)
        for m in metas:
            if isinstance(m, msgspec.Meta):
                if m.ge is not None and m.le is not None:
                    out["between"] = [m.ge, m.le]
                elif m.ge is not None:
                    out["gt"] = m.ge - 1 if isinstance(m.ge, int) else m.ge
                if m.description:
                    out["description"] = m.description
        return out
    if origin is Literal:
        vals = list(get_args(tp))
        return {"type": "integer" if all(isinstance(v, int) for v in vals) else "string",
                "one_of": vals}
    if origin in (list, tuple, set, frozenset):
        args = get_args(tp)
        return {"type": "set" if origin in (set, frozenset) else "array",
                "elements": _type_schema(args[0]) if args else {"type": "any"}}
    if origin is dict:
        k, v = get_args(tp) or (str, Any)
        if v is Any:
            return {"type": "record", "fields": []}
        return {"type": "map", "keys": _type_schema(k), "values": _type_schema(v)}
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return {"type": "record", "fields": struct_fields_schema(tp)}
    simple = {str: "string", int: "integer", float: "number", bool: "boolean", bytes: "string"}
    if tp in simple:
        return {"type": simple[tp]}
    return {"type": "any"}


def struct_fields_schema(cls: type, etype: str | None = None) -> list[dict[str, Any]]:
    out = []
    for f in model.struct_fields(cls):
        if etype and f.name in FOREIGN.get(etype, {}):
            d: dict[str, Any] = {"type": "foreign", "reference": FOREIGN[etype][f.name]}
        elif etype and f.name == "id":
            d = {"type": "string", "uuid": True, "auto": True}
        elif f.name in ("created_at", "updated_at"):
            d = {"type": "integer", "timestamp": True, "auto": True}
        else:
            d = _type_schema(f.type)
        if f.required and not (etype and f.name == "id"):  # ids are generated when absent
            d["required"] = True
        else:
            default = f.default if f.default is not msgspec.NODEFAULT else (
                f.default_factory() if f.default_factory is not msgspec.NODEFAULT else None)
            if default is not None:
                d["default"] = msgspec.to_builtins(default)
        if etype and model.ENDPOINT_KEY.get(etype) == f.name or \
                (etype and any(fs == (f.name,) for fs in model.UNIQUE.get(etype, ()))):
            d["unique"] = True
        out.append({f.encode_name: d})
    return out


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
            out = self._dispatch(req)
            if inspect.isawaitable(out):   # POST /config: parsed and checked off the loop
                out = await out
            status, payload, extra = out
        except HTTPError as e:
            status, payload = e.status, e.body
        except (ConfigError, EntityNotFound) as e:
            status, payload = _error_response(e)
        except Exception:  # noqa: BLE001 - never let one request kill the listener
            log.exception("admin API error on %s %s", method, path)
            status, payload = 500, {"message": "An unexpected error occurred"}
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
            allow = ", ".join(sorted({*handlers, "OPTIONS"}))
            return 204, None, [("Allow", allow), ("Access-Control-Allow-Methods", allow)]
        h = handlers.get(req.method)
        if h is None:
            raise HTTPError(405, {"message": "Method not allowed"})
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
        if n == 1:
            if s0 == "status":
                return {"GET": self._status}
            if s0 == "config":
                return {"GET": self._get_config, "POST": self._post_config}
            if s0 == "metrics":
                return {"GET": self._metrics}
            if s0 == "tags":
                return {"GET": lambda r: self._tags(r, None)}
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
        if (s0, sub) in NESTED:
            if n == 3:
                return self._nested_collection(s0, key, sub)
            if n == 4:
                return self._nested_item(s0, key, sub, segs[3])
            return None
        if n == 3 and sub in FOREIGN[etype]:
            return self._foreign(etype, key, sub)
        return None

    # ------------------------------------------------------------------ entity handlers
    def _collection(self, etype: str, scope: dict[str, str] | None
                    ) -> dict[str, Callable[[_Req], Any]]:
        return {
            "GET": lambda r: self._list(r, etype, scope),
            "POST": lambda r: (201, entity_to_json(etype, self.store.create(
                etype, r.data(), forced=scope))),
        }

    def _item(self, etype: str, key: str, scope: dict[str, str] | None
              ) -> dict[str, Callable[[_Req], Any]]:
        def get(r: _Req) -> Any:
            e = self.store.find(etype, key, scope)
            if e is None:
                raise _not_found()
            return 200, entity_to_json(etype, e)

        def put(r: _Req) -> Any:
            e, _created = self.store.upsert(etype, key, r.data(), scope)
            return 200, entity_to_json(etype, e)

        def patch(r: _Req) -> Any:
            return 200, entity_to_json(etype, self.store.update(etype, key, r.data(), scope))

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
                try:
                    etype, scope = self._parent_scope(parent_url, parent_key, sub)
                except HTTPError:
                    if method == "DELETE":
                        return 204, None
                    raise
                return self._item(etype, key, scope)[method](r)
            return h
        return {m: call(m) for m in ("GET", "PUT", "PATCH", "DELETE")}

    def _foreign(self, etype: str, key: str, field: str) -> dict[str, Callable[[_Req], Any]]:
        parent_type = FOREIGN[etype][field]

        def parent_id() -> str:
            child = self.store.find(etype, key)
            if child is None or getattr(child, field) is None:
                raise _not_found()
            return getattr(child, field)

        def get(r: _Req) -> Any:
            p = self.store.get_by_id(parent_type, parent_id())
            if p is None:
                raise _not_found()
            return 200, entity_to_json(parent_type, p)

        def patch(r: _Req) -> Any:
            return 200, entity_to_json(parent_type,
                                       self.store.update(parent_type, parent_id(), r.data()))

        return {"GET": get, "PATCH": patch}

    def _list(self, r: _Req, etype: str, scope: dict[str, str] | None) -> Any:
        items = self.store.list(etype, scope)
        tags = r.q("tags")
        if tags:
            items = [e for e in items if _tags_match(e.tags, tags)]
        for field in ("custom_id", "username", "name") if etype in ("consumers", "plugins") \
                else ():
            v = r.q(field)
            if v is not None and hasattr(ENTITY_CLASSES[etype], "__struct_fields__") and \
                    field in ENTITY_CLASSES[etype].__struct_fields__:
                items = [e for e in items if getattr(e, field) == v]
        data = [entity_to_json(etype, e) for e in items]
        return 200, _paginate(data, r)

    # ------------------------------------------------------------------ other endpoints
    def _root(self, r: _Req) -> Any:
        cfg = self.store.config
        info = self.store.info()
        enabled = sorted({p.name for p in cfg.plugins})
        body: dict[str, Any] = {
            "tagline": "Welcome to fastgw",
            "version": __version__,
            "hostname": self._hostname,
            "node_id": None,
            "configuration": {
                "database": "off",
                "declarative_config": self.store.source_path,
                "persistence": info["persistence"],
                "persist_path": info["persist_path"],
                "config_hash": info["config_hash"],
                "entities": info["entities"],
            },
            "persistence": info["persistence"],
            "plugins": {"available_on_server": {n: True for n in model.available_plugins()},
                        "enabled_in_cluster": enabled},
        }
        body.update(self.gateway.node_info() or {})
        return 200, body

    def _status(self, r: _Req) -> Any:
        return 200, {"server": self.gateway.status(), "database": {"reachable": True},
                     "configuration_hash": self.store.hash,
                     "persistence": self.store.persistence}

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
        """Parse, validate, hash and dump on a worker thread; only the compile and the swap
        run on the event loop (they reuse what did not change: fastgw.config.reuse), so
        proxying goes on while a large file is read."""
        loop = asyncio.get_running_loop()
        res = await loop.run_in_executor(None, _paused, self._prepare_config, r)
        if len(res) == 2:
            return res
        new, new_hash = res[2], res[3]
        try:
            self.store.replace(new, checked=True, config_hash=new_hash)
        except ConfigError as e:
            return 400, _declarative_error(e)
        # the body (every entity) is encoded there too: no large object tree on the loop
        return 201, (await loop.run_in_executor(None, _paused, _dump_json, new), JSON_CT)

    def _prepare_config(self, r: _Req) -> Any:
        """(status, body) to answer at once, or ("apply", None, config, hash). Any thread."""
        ctype = r.content_type
        doc: Any = None
        try:
            if ctype == "application/x-www-form-urlencoded":
                text = r.data().get("config")
                if not isinstance(text, str):
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
            return 400, _declarative_error(e)
        finally:
            _release(doc)
        if _truthy(r.q("dry_run")):
            errs = model.check_integrity(new)
            if errs:
                return 400, _declarative_error(ConfigError(errs))
            return 200, {"dry_run": True, "diff": config_diff(self.store.config, new)}
        errs = model.check_integrity(new)
        if errs:
            return 400, _declarative_error(ConfigError(errs))
        new = reuse_unchanged(new, self.store.config)
        new_hash = model.config_hash(new)
        if _truthy(r.q("check_hash")) and new_hash == self.store.hash:
            return 304, None
        return "apply", None, new, new_hash

    def _schema(self, name: str) -> Any:
        etype = SCHEMA_NAMES.get(name)
        if etype is None:
            raise HTTPError(404, {"message": f"No entity named '{name}'"})
        return 200, {"fields": struct_fields_schema(ENTITY_CLASSES[etype], etype)}

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
        return 200, {"fields": fields}

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

    def _target_health(self, ukey: str, tkey: str, healthy: bool) -> Any:
        up = self.store.find("upstreams", ukey)
        if up is None:
            raise _not_found()
        t = self.store.find("targets", tkey, {"upstream": up.id})
        if t is None:
            raise _not_found()
        self.gateway.set_target_health(up.name, t.target, healthy)
        return 204, None

    def _tags(self, r: _Req, tag: str | None) -> Any:
        cfg = self.store.config
        rows = []
        for etype in model.ENTITY_TYPES:
            for e in getattr(cfg, etype):
                for t in e.tags or ():
                    if tag is None or t == tag:
                        rows.append({"entity_name": etype, "entity_id": e.id, "tag": t})
        return 200, _paginate(rows, r)


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


def _encode_offset(i: int) -> str:
    return base64.urlsafe_b64encode(f"o:{i}".encode()).decode().rstrip("=")


def _decode_offset(tok: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(tok + "=" * (-len(tok) % 4)).decode()
        if not raw.startswith("o:"):
            raise ValueError
        i = int(raw[2:])
        if i < 0:
            raise ValueError
        return i
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise HTTPError(400, {"code": 7, "name": "invalid offset",
                              "message": f"'{tok}' is not a valid offset: "
                                         "bad base64 encoding"}) from None


def _paginate(rows: list[Any], r: _Req) -> dict[str, Any]:
    size_s = r.q("size")
    size = PAGE_SIZE_DEFAULT
    if size_s is not None:
        try:
            size = int(size_s)
        except ValueError:
            size = -1
        if not 1 <= size <= PAGE_SIZE_MAX:
            raise HTTPError(400, {"code": 9, "name": "invalid size",
                                  "message": f"size must be an integer between 1 and "
                                             f"{PAGE_SIZE_MAX}"})
    start = 0
    tok = r.q("offset")
    if tok:
        start = _decode_offset(tok)
    page = rows[start:start + size]
    body: dict[str, Any] = {"data": page, "next": None}
    if start + size < len(rows):
        off = _encode_offset(start + size)
        params = [f"offset={off}"]
        if size_s is not None:
            params.insert(0, f"size={size}")
        if r.q("tags"):
            params.append("tags=" + quote(r.q("tags") or "", safe=",/"))
        body["next"] = r.path.split("?", 1)[0] + "?" + "&".join(params)
        body["offset"] = off
    return body
