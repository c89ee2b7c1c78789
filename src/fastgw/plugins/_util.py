"""Helpers shared by the built-in plugins (not a plugin; not registered).

- request/response body codecs for the JSON and form bodies Kong's plugins understand;
- "name:value" list parsing for the transformer plugins (Kong splits at the first colon);
- the anonymous-consumer fallback every auth plugin shares.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

import orjson

from fastgw import multipart

from .base import Response
from .context import parse_query

JSON = "json"
FORM = "form"
MULTIPART = "multipart"


def body_kind(content_type: str | None) -> str | None:
    """"json" for application/json (and +json), "form" for urlencoded forms, "multipart" for
    multipart/form-data (Kong's plugins read all three), else None."""
    if not content_type:
        return None
    ct = content_type.split(";", 1)[0].strip().lower()
    if ct == "application/json" or (ct.startswith("application/") and ct.endswith("+json")):
        return JSON
    if ct == "application/x-www-form-urlencoded":
        return FORM
    if ct == "multipart/form-data":
        return MULTIPART
    return None


def decode_body(kind: str | None, raw: bytes | None, content_type: str | None = None) -> Any:
    """The body as a dict (JSON objects / forms), or None when it is not one (a multipart
    body that does not parse is not one either)."""
    if not raw or kind is None:
        return None
    if kind == MULTIPART:
        try:
            pairs = multipart.to_pairs(content_type or "", raw)
        except multipart.MultipartError:
            return None
        out: dict[str, Any] = {}
        for k, v in pairs:
            out[k] = _append_value(out[k], v) if k in out else v
        return out
    if kind == JSON:
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None
        return obj if isinstance(obj, dict) else None
    return dict(parse_query(raw))


def _append_value(cur: Any, v: Any) -> list[Any]:
    return [*cur, v] if isinstance(cur, list) else [cur, v]


def encode_body(kind: str, obj: dict[str, Any], content_type: str | None = None) -> bytes:
    """`obj` in the body format `kind`; a multipart body keeps the boundary of
    `content_type`, so the Content-Type header stays valid."""
    if kind == JSON:
        return orjson.dumps(obj)
    if kind == MULTIPART:
        boundary = multipart.boundary_of(content_type or "")
        return multipart.encode(list(_pairs(obj)), boundary)[1]
    return urlencode(list(_pairs(obj))).encode("latin-1")


def _pairs(obj: dict[str, Any]) -> Iterable[tuple[str, str]]:
    for k, v in obj.items():
        if isinstance(v, list):
            for x in v:
                yield k, str(x)
        else:
            yield k, str(v)


def split_colon_pairs(items: Iterable[str], field: str) -> tuple[tuple[str, str], ...]:
    """Kong's "name:value" config entries -> pairs (split at the first colon)."""
    out = []
    for i, item in enumerate(items):
        name, sep, value = item.partition(":")
        if not sep or not name:
            raise ValueError(f"invalid value '{item}': expected 'name:value' - at `$.{field}[{i}]`")
        out.append((name, value))
    return tuple(out)


def unauthorized(message: str, www_authenticate: str | None) -> Response:
    headers = {"WWW-Authenticate": www_authenticate} if www_authenticate else None
    return Response.message(401, message, headers)


def use_anonymous(ctx: Any, env: Any, anonymous: str | None, failure: Response) -> Response | None:
    """Kong's auth-plugin epilogue: on failure, authenticate as the configured anonymous
    consumer, or answer ``failure``. A configured anonymous consumer that does not exist is a
    500 naming it, as Kong 3.x (key-auth/handler.lua set_anonymous_consumer:
    ``anonymous consumer <id> is configured but doesn't exist``)."""
    if not anonymous:
        return failure
    consumer = env.find_consumer(anonymous)
    if consumer is None:
        import logging

        msg = f"anonymous consumer {anonymous} is configured but doesn't exist"
        logging.getLogger("fastgw.plugins").error(msg)
        return Response.message(500, msg)
    ctx.authenticate(consumer, None)
    return None
