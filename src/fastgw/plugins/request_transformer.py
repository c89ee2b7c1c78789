"""request-transformer: change the request before it is proxied (Kong).

Order, as Kong: uri, method, headers, body, querystring; within each: remove, rename, replace,
add, append. ``replace``/``rename`` apply only when the name exists, ``add`` only when it does
not, ``append`` always (a second header line / a list value). Bodies are transformed only for
JSON and urlencoded forms, and only when a body rule is configured (then the proxy buffers the
body for this route: ``needs_request_body``).

Values may use Kong's templates ``$(headers.name)``, ``$(headers["name"])``,
``$(query_params.name)`` / ``$(query_params["name"])``, with an optional ``or "default"``;
a missing value renders as the default or the empty string. (Kong evaluates arbitrary Lua
there; fastgw supports these lookups only.)
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from ._util import body_kind, decode_body, encode_body, split_colon_pairs
from .base import Plugin, PluginEnv, field_error

_TEMPLATE = re.compile(
    r"""\$\(\s*(headers|query_params)\s*(?:\.([A-Za-z0-9_-]+)|\[\s*["']([^"']+)["']\s*\])"""
    r"""(?:\s+or\s+["']([^"']*)["'])?\s*\)"""
)


class RemoveRules(msgspec.Struct, forbid_unknown_fields=True):
    body: list[str] = []
    headers: list[str] = []
    querystring: list[str] = []


class PairRules(msgspec.Struct, forbid_unknown_fields=True):
    body: list[str] = []
    headers: list[str] = []
    querystring: list[str] = []


class ReplaceRules(msgspec.Struct, forbid_unknown_fields=True):
    body: list[str] = []
    headers: list[str] = []
    querystring: list[str] = []
    uri: str | None = None


class RequestTransformerConfig(msgspec.Struct, forbid_unknown_fields=True):
    http_method: str | None = None
    remove: RemoveRules = msgspec.field(default_factory=RemoveRules)
    rename: PairRules = msgspec.field(default_factory=PairRules)
    replace: ReplaceRules = msgspec.field(default_factory=ReplaceRules)
    add: PairRules = msgspec.field(default_factory=PairRules)
    append: PairRules = msgspec.field(default_factory=PairRules)

    def __post_init__(self) -> None:
        if self.http_method is not None and not re.fullmatch(r"[A-Z]+", self.http_method):
            raise field_error("http_method", "invalid value: must be an uppercase HTTP method")
        for section in ("rename", "replace", "add", "append"):
            rules = getattr(self, section)
            for part in ("body", "headers", "querystring"):
                split_colon_pairs(getattr(rules, part), f"{section}.{part}")
        if self.replace.uri is not None and not self.replace.uri.startswith("/") and "$(" not in self.replace.uri:
            raise field_error("replace.uri", "must start with '/'")


def _append(cur: Any, value: Any) -> list[Any]:
    if cur is None:
        return [value]
    if isinstance(cur, list):
        return [*cur, value]
    return [cur, value]


class RequestTransformer(Plugin):
    name = "request-transformer"
    PRIORITY = 801
    Config = RequestTransformerConfig

    def __init__(self, config: RequestTransformerConfig, env: PluginEnv) -> None:
        super().__init__(config, env)
        c = config
        self._h_remove = [n.lower() for n in c.remove.headers]
        self._h_rename = [(a.lower(), b) for a, b in split_colon_pairs(c.rename.headers, "")]
        self._h_replace = split_colon_pairs(c.replace.headers, "")
        self._h_add = split_colon_pairs(c.add.headers, "")
        self._h_append = split_colon_pairs(c.append.headers, "")
        self._q = (
            c.remove.querystring,
            split_colon_pairs(c.rename.querystring, ""),
            split_colon_pairs(c.replace.querystring, ""),
            split_colon_pairs(c.add.querystring, ""),
            split_colon_pairs(c.append.querystring, ""),
        )
        self._b = (
            c.remove.body,
            split_colon_pairs(c.rename.body, ""),
            split_colon_pairs(c.replace.body, ""),
            split_colon_pairs(c.add.body, ""),
            split_colon_pairs(c.append.body, ""),
        )
        self._has_q = any(self._q)
        self.needs_request_body = any(self._b)

    def _render(self, ctx: Any, value: str) -> str:
        if "$(" not in value:
            return value
        req = ctx.request

        def sub(m: re.Match[str]) -> str:
            source, name = m.group(1), m.group(2) or m.group(3)
            default = m.group(4) or ""
            if source == "headers":
                v = req.get_header(name)
            else:
                q = req.query.get(name)
                v = q[0] if isinstance(q, list) else q
            return default if v is None else v

        return _TEMPLATE.sub(sub, value)

    def access(self, ctx: Any) -> None:
        conf = self.config
        req = ctx.request
        if conf.replace.uri is not None:
            req.set_path(self._render(ctx, conf.replace.uri))
        if conf.http_method is not None:
            req.set_method(conf.http_method)
        self._headers(ctx)
        if self.needs_request_body:
            self._body(ctx)
        if self._has_q:
            self._query(ctx)
        return None

    def _headers(self, ctx: Any) -> None:
        req = ctx.request
        for name in self._h_remove:
            req.clear_header(name)
        for old, new in self._h_rename:
            vals = req.get_header_all_bytes(old.encode("latin-1"))
            if vals:
                req.clear_header(old)
                req.clear_header(new)
                for v in vals:
                    req.add_header(new, v)
        for name, value in self._h_replace:
            if req.get_header(name) is not None:
                req.set_header(name, self._render(ctx, value))
        for name, value in self._h_add:
            if req.get_header(name) is None:
                req.set_header(name, self._render(ctx, value))
        for name, value in self._h_append:
            req.add_header(name, self._render(ctx, value))

    def _apply(self, ctx: Any, params: dict[str, Any], rules: tuple[Any, ...]) -> bool:
        remove, rename, replace, add, append = rules
        changed = False
        for name in remove:
            if name in params:
                del params[name]
                changed = True
        for old, new in rename:
            if old in params:
                params[new] = params.pop(old)
                changed = True
        for name, value in replace:
            if name in params:
                params[name] = self._render(ctx, value)
                changed = True
        for name, value in add:
            if name not in params:
                params[name] = self._render(ctx, value)
                changed = True
        for name, value in append:
            params[name] = _append(params.get(name), self._render(ctx, value))
            changed = True
        return changed

    def _query(self, ctx: Any) -> None:
        req = ctx.request
        params = dict(req.query)
        if self._apply(ctx, params, self._q):
            req.set_query(params)

    def _body(self, ctx: Any) -> None:
        req = ctx.request
        kind = body_kind(req.get_header("content-type"))
        if kind is None:
            return
        raw = req.get_body()
        params = decode_body(kind, raw)
        if params is None:
            if raw:
                return  # a body we cannot parse is passed through untouched (Kong)
            params = {}
        if self._apply(ctx, params, self._b):
            req.set_body(encode_body(kind, params))
