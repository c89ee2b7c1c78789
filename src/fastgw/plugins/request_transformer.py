"""request-transformer: change the request before it is proxied (Kong).

Order, as Kong: uri, method, headers, body, querystring; within each: remove, rename, replace,
add, append. ``replace``/``rename`` apply only when the name exists, ``add`` only when it does
not, ``append`` always (a second header line / a list value). Bodies are transformed only for
JSON, urlencoded and multipart forms, and only when a body rule is configured (then the proxy
buffers the body for this route: ``needs_request_body``).

Values may use Kong's templates ``$(headers.name)``, ``$(headers["name"])``,
``$(query_params.name)``, ``$(uri_captures.name)`` / ``$(uri_captures[1])``, ``$(shared.x)``,
with ``or "default"``, ``and``, ``..``, ``type(...)`` and the other expressions of
``_template.py``: a safe expression language, parsed when the config is loaded (Kong evaluates
sandboxed Lua; fastgw never runs code from a config). Templates read the request as the client
sent it (Kong's template environment is ``kong.request``, not the service request), so a
header removed or replaced by this plugin still renders with its original value. A template
that fails at request time answers 500, as Kong.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from typing import Any

import msgspec

from ._template import Template, TemplateError, compile_template
from ._util import FORM, body_kind, decode_body, encode_body, split_colon_pairs
from .base import Plugin, PluginEnv, Response, field_error
from .context import parse_query

log = logging.getLogger("fastgw.plugins")
_BODYLESS_METHODS = ("GET", "HEAD", "TRACE")
# per-request template environment, shared by the plugin's rules (ctx.vars key)
_ENV_KEY = "request-transformer.template_env"


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
                pairs = split_colon_pairs(getattr(rules, part), f"{section}.{part}")
                if section == "rename":
                    continue
                for i, (_name, value) in enumerate(pairs):
                    _check_template(value, f"{section}.{part}[{i}]")
        if self.replace.uri is not None:
            if not self.replace.uri.startswith("/") and "$(" not in self.replace.uri:
                raise field_error("replace.uri", "must start with '/'")
            _check_template(self.replace.uri, "replace.uri")


def _check_template(value: str, field: str) -> None:
    try:
        compile_template(value)
    except TemplateError as e:
        raise field_error(field, f"value '{value}' is not in supported format, error: {e}") from None


def _compiled(pairs: tuple[tuple[str, str], ...]) -> tuple[tuple[str, Template], ...]:
    return tuple((n, compile_template(v)) for n, v in pairs)


class _Headers(Mapping[str, Any]):
    """The client's request headers for templates: case-insensitive, `_` read as `-`
    (ngx.req.get_headers' metatable); a repeated header is a list."""

    __slots__ = ("_src",)

    def __init__(self, src: Any) -> None:
        self._src = src

    def __getitem__(self, key: str) -> Any:
        if not isinstance(key, str):
            raise KeyError(key)
        vals = self._src.get_all(key.lower().replace("_", "-").encode("latin-1"))
        if not vals:
            raise KeyError(key)
        out = [v.decode("latin-1") for v in vals]
        return out[0] if len(out) == 1 else out

    def __iter__(self) -> Iterator[str]:
        return iter({k.decode("latin-1").lower(): None for k, _ in self._src.items()})

    def __len__(self) -> int:
        return len({k.lower() for k, _ in self._src.items()})


class _Env(Mapping[str, Any]):
    """Kong's lazily loaded template environment, over the original request."""

    __slots__ = ("_ctx", "_cache")

    def __init__(self, ctx: Any) -> None:
        self._ctx = ctx
        self._cache: dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        if key in self._cache:
            return self._cache[key]
        ctx = self._ctx
        req = ctx.request
        if key == "headers":
            v: Any = _Headers(req._headers)
        elif key == "query_params":
            tgt = req.original_target
            q = tgt.find(b"?")
            v = parse_query(tgt[q + 1:]) if q >= 0 else {}
        elif key == "uri_captures":
            v = _template_captures(ctx.uri_captures())
        elif key == "shared":
            v = ctx.vars
        else:
            raise KeyError(key)
        self._cache[key] = v
        return v

    def __iter__(self) -> Iterator[str]:
        return iter(("headers", "query_params", "uri_captures", "shared"))

    def __len__(self) -> int:
        return 4


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
        self._h_replace = _compiled(split_colon_pairs(c.replace.headers, ""))
        self._h_add = _compiled(split_colon_pairs(c.add.headers, ""))
        self._h_append = _compiled(split_colon_pairs(c.append.headers, ""))
        self._q = (
            c.remove.querystring,
            split_colon_pairs(c.rename.querystring, ""),
            _compiled(split_colon_pairs(c.replace.querystring, "")),
            _compiled(split_colon_pairs(c.add.querystring, "")),
            _compiled(split_colon_pairs(c.append.querystring, "")),
        )
        self._b = (
            c.remove.body,
            split_colon_pairs(c.rename.body, ""),
            _compiled(split_colon_pairs(c.replace.body, "")),
            _compiled(split_colon_pairs(c.add.body, "")),
            _compiled(split_colon_pairs(c.append.body, "")),
        )
        self._uri = compile_template(c.replace.uri) if c.replace.uri is not None else None
        self._has_q = any(self._q)
        # Kong's transform_method: turning a request into GET/HEAD/TRACE moves a form body's
        # parameters into the query string, so those routes read the body too
        self._body_to_query = c.http_method in _BODYLESS_METHODS
        self._has_body_rules = any(self._b)
        self.needs_request_body = self._has_body_rules or self._body_to_query

    def _render(self, ctx: Any, value: Template) -> str:
        if value.is_static:
            return value.source
        env = ctx.vars.get(_ENV_KEY)
        if env is None:
            env = ctx.vars[_ENV_KEY] = _Env(ctx)
        return value.render(env)

    def access(self, ctx: Any) -> Response | None:
        try:
            self._transform(ctx)
        except TemplateError as e:
            # Kong: "[request-transformer] failed to render the template ..." -> 500
            log.error("[request-transformer] failed to render a template: %s", e)
            return Response.message(500, "An unexpected error occurred")
        return None

    def _transform(self, ctx: Any) -> None:
        conf = self.config
        req = ctx.request
        if self._uri is not None:
            req.set_path(self._render(ctx, self._uri))
        if conf.http_method is not None:
            req.set_method(conf.http_method)
            if self._body_to_query:
                self._form_to_query(ctx)
        self._headers(ctx)
        if self._has_body_rules:
            self._body(ctx)
        if self._has_q:
            self._query(ctx)

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

    def _form_to_query(self, ctx: Any) -> None:
        req = ctx.request
        ctype = req.get_header("content-type")
        if body_kind(ctype) != FORM:
            return
        params = decode_body(FORM, req.get_body(), ctype)
        if not params:
            return
        query = dict(req.query)
        for name, value in params.items():
            query[name] = _append(query[name], value) if name in query else value
        req.set_query(query)

    def _query(self, ctx: Any) -> None:
        req = ctx.request
        params = dict(req.query)
        if self._apply(ctx, params, self._q):
            req.set_query(params)

    def _body(self, ctx: Any) -> None:
        req = ctx.request
        ctype = req.get_header("content-type")
        kind = body_kind(ctype)
        if kind is None:
            return
        raw = req.get_body()
        params = decode_body(kind, raw, ctype)
        if params is None:
            if raw:
                return  # a body we cannot parse is passed through untouched (Kong)
            params = {}
        if self._apply(ctx, params, self._b):
            req.set_body(encode_body(kind, params, ctype))


def _template_captures(caps: dict[str, Any]) -> dict[Any, str]:
    """Kong's router_matches.uri_captures as templates index it: [1..] the positional groups
    and the named groups."""
    out: dict[Any, str] = dict(enumerate(caps["unnamed"], 1))
    out.update(caps["named"])
    return out
