"""response-transformer: change upstream response headers and JSON bodies (Kong).

Headers change in header_filter (remove, rename, replace, add, append). JSON body rules make
the plugin buffer the body in body_filter — only when the response is ``application/json``
without a content coding, and at most ``MAX_BUFFERED_BODY`` bytes (past that the body is passed
through untransformed). When a body will be transformed, Content-Length is removed in
header_filter (Kong does the same) and the proxy sends the new body chunked.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec
import orjson

from ._util import JSON, body_kind, split_colon_pairs
from .base import Plugin, PluginEnv

# Bound of one buffered response body (Kong buffers without a bound; nginx's default
# proxy_buffers are 8 x 4k/8k, client_max_body_size 1m): 8 MiB keeps one worker safe.
MAX_BUFFERED_BODY = 8 * 1024 * 1024
_STATE = "response-transformer.buffer"

JsonType = Literal["boolean", "number", "string"]


class RemoveRules(msgspec.Struct, forbid_unknown_fields=True):
    headers: list[str] = []
    json: list[str] = []


class RenameRules(msgspec.Struct, forbid_unknown_fields=True):
    headers: list[str] = []
    json: list[str] = []


class ValueRules(msgspec.Struct, forbid_unknown_fields=True):
    headers: list[str] = []
    json: list[str] = []
    json_types: list[JsonType] = []


class ResponseTransformerConfig(msgspec.Struct, forbid_unknown_fields=True):
    remove: RemoveRules = msgspec.field(default_factory=RemoveRules)
    rename: RenameRules = msgspec.field(default_factory=RenameRules)
    replace: ValueRules = msgspec.field(default_factory=ValueRules)
    add: ValueRules = msgspec.field(default_factory=ValueRules)
    append: ValueRules = msgspec.field(default_factory=ValueRules)

    def __post_init__(self) -> None:
        for section in ("rename", "replace", "add", "append"):
            rules = getattr(self, section)
            split_colon_pairs(rules.headers, f"{section}.headers")
            split_colon_pairs(rules.json, f"{section}.json")


def _cast(value: str, typ: str | None) -> Any:
    if typ == "number":
        try:
            f = float(value)
        except ValueError:
            return None
        return int(f) if f.is_integer() and "." not in value and "e" not in value.lower() else f
    if typ == "boolean":
        return value == "true"
    return value


def _typed(rules: ValueRules) -> tuple[tuple[str, Any], ...]:
    out = []
    for i, (name, value) in enumerate(split_colon_pairs(rules.json, "")):
        typ = rules.json_types[i] if i < len(rules.json_types) else None
        out.append((name, _cast(value, typ)))
    return tuple(out)


class ResponseTransformer(Plugin):
    name = "response-transformer"
    PRIORITY = 800
    Config = ResponseTransformerConfig

    def __init__(self, config: ResponseTransformerConfig, env: PluginEnv) -> None:
        super().__init__(config, env)
        c = config
        self._h_remove = list(c.remove.headers)
        self._h_rename = split_colon_pairs(c.rename.headers, "")
        self._h_replace = split_colon_pairs(c.replace.headers, "")
        self._h_add = split_colon_pairs(c.add.headers, "")
        self._h_append = split_colon_pairs(c.append.headers, "")
        self._j_remove = list(c.remove.json)
        self._j_rename = split_colon_pairs(c.rename.json, "")
        self._j_replace = _typed(c.replace)
        self._j_add = _typed(c.add)
        self._j_append = _typed(c.append)
        self._has_json = bool(self._j_remove or self._j_rename or self._j_replace or self._j_add or self._j_append)

    def header_filter(self, ctx: Any) -> None:
        res = ctx.response
        for name in self._h_remove:
            res.clear_header(name)
        for old, new in self._h_rename:
            vals = res.get_header_all(old)
            if vals:
                res.clear_header(old)
                res.clear_header(new)
                for v in vals:
                    res.add_header(new, v)
        for name, value in self._h_replace:
            if res.get_header(name) is not None:
                res.set_header(name, value)
        for name, value in self._h_add:
            if res.get_header(name) is None:
                res.add_header(name, value)
        for name, value in self._h_append:
            res.add_header(name, value)
        if self._has_json and body_kind(res.get_header("content-type")) == JSON:
            coding = res.get_header("content-encoding")
            if coding is None or coding.strip().lower() == "identity":
                res.clear_header("content-length")
                ctx.vars[_STATE] = []
        return None

    def body_filter(self, ctx: Any, chunk: bytes, eof: bool) -> bytes:
        buf = ctx._vars.get(_STATE) if ctx._vars else None
        if buf is None:
            return chunk
        buf.append(chunk)
        size = ctx.vars.get(_STATE + ".size", 0) + len(chunk)
        ctx.vars[_STATE + ".size"] = size
        if size > MAX_BUFFERED_BODY:
            del ctx.vars[_STATE]  # too big: give up transforming, release what we held
            return b"".join(buf)
        if not eof:
            return b""
        del ctx.vars[_STATE]
        body = b"".join(buf)
        return self.transform_json(body)

    def transform_json(self, body: bytes) -> bytes:
        try:
            obj = orjson.loads(body)
        except orjson.JSONDecodeError:
            return body
        if not isinstance(obj, dict):
            return body
        for name in self._j_remove:
            obj.pop(name, None)
        for old, new in self._j_rename:
            if old in obj:
                obj[new] = obj.pop(old)
        for name, value in self._j_replace:
            if name in obj and value is not None:
                obj[name] = value
        for name, value in self._j_add:
            if name not in obj and value is not None:
                obj[name] = value
        for name, value in self._j_append:
            if value is None:
                continue
            cur = obj.get(name)
            if cur is None:
                obj[name] = [value]
            elif isinstance(cur, list):
                cur.append(value)
            else:
                obj[name] = [cur, value]
        return orjson.dumps(obj)
