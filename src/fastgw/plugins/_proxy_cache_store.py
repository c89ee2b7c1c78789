"""proxy-cache's pieces that are not the plugin: Kong's cache key, Cache-Control directive
parsing, media-type matching and the in-memory store (Kong's "memory" strategy).

Cache key (kong/plugins/proxy-cache/cache_key.lua): sha256 hex of
``"<prefix>|<method>|<uri>|<params>|<headers>"`` where prefix is ``consumer_id:route_id``,
``route_id`` or ``default``; params are every query argument sorted by name (or only
``vary_query_params``, in config order) as ``name=value`` joined with ``:``, repeated values
sorted and joined with ``,``, a bare argument as ``name``; headers likewise for
``vary_headers`` only.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import unquote_plus

# Kong's memory strategy lives in the `kong_db_cache` lua_shared_dict, 128m by default
# (kong.conf mem_cache_size); one store of that size per dictionary_name here.
STORE_MAX_BYTES = 128 * 1024 * 1024
# An entry's fixed overhead in the byte accounting (slots, key, timestamps).
_ENTRY_OVERHEAD = 256


def prefix_uuid(consumer_id: str | None, route_id: str | None) -> str:
    if consumer_id and route_id:
        return f"{consumer_id}:{route_id}"
    if route_id:
        return route_id
    return "default"


def _render(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def generate_key_from(args: Mapping[str, Any], fields: Iterable[str]) -> str:
    parts: list[str] = []
    for field in fields:
        arg = args.get(field)
        if arg is None or arg is False:
            continue
        if isinstance(arg, list):
            parts.append(field + "=" + ",".join(sorted(_render(a) for a in arg)))
        elif arg is True:
            parts.append(field)
        else:
            parts.append(f"{field}={_render(arg)}")
    return ":".join(parts)


def params_key(params: Mapping[str, Any], vary_query_params: Sequence[str] | None) -> str:
    if not vary_query_params:
        return generate_key_from(params, sorted(params))
    return generate_key_from(params, vary_query_params)


def headers_key(headers: Mapping[str, Any], vary_headers: Sequence[str] | None) -> str:
    if not vary_headers:
        return ""
    # ngx.req.get_headers() answers any case (and '_' for '-')
    return generate_key_from(headers, [h.lower().replace("_", "-") for h in vary_headers])


def build_cache_key(
    consumer_id: str | None,
    route_id: str | None,
    method: str,
    uri: str,
    params: Mapping[str, Any],
    headers: Mapping[str, Any],
    vary_query_params: Sequence[str] | None,
    vary_headers: Sequence[str] | None,
) -> str:
    raw = "|".join(
        (
            prefix_uuid(consumer_id, route_id),
            method,
            uri,
            params_key(params, vary_query_params),
            headers_key(headers, vary_headers),
        )
    )
    return hashlib.sha256(raw.encode("utf-8", "surrogateescape")).hexdigest()


def decode_args(raw: str) -> dict[str, Any]:
    """ngx.decode_args semantics: a bare argument is True, ``a=`` is "", repeats are lists."""
    out: dict[str, Any] = {}
    for item in raw.split("&"):
        if not item:
            continue
        name, sep, value = item.partition("=")
        key = unquote_plus(name)
        val: Any = unquote_plus(value) if sep else True
        cur = out.get(key)
        if cur is None:
            out[key] = val
        elif isinstance(cur, list):
            cur.append(val)
        else:
            out[key] = [cur, val]
    return out


# -------------------------------------------------------------------- Cache-Control
_DIRECTIVE = re.compile(r"^\s*([^=]+)(?:=(.+))?")


def parse_directive_header(values: Sequence[str]) -> dict[str, Any]:
    """kong.tools.http.parse_directive_header: lowercase directive -> number, string or True."""
    if not values:
        return {}
    out: dict[str, Any] = {}
    for part in ", ".join(values).split(","):
        m = _DIRECTIVE.match(part)
        if not m:
            continue
        raw = m.group(2)
        val: Any = True
        if raw is not None:
            try:
                val = float(raw) if not raw.strip().isdigit() else int(raw)
            except ValueError:
                val = raw
        out[m.group(1).lower()] = val
    return out


def number(cc: Mapping[str, Any], name: str) -> float | None:
    v = cc.get(name)
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def resource_ttl(cc: Mapping[str, Any], expires: str | None, now: float) -> float:
    """kong.tools.http.calculate_resource_ttl: s-maxage, max-age, else Expires - now; >= 0."""
    max_age = number(cc, "s-maxage")
    if max_age is None:
        max_age = number(cc, "max-age")
    if max_age is None and expires:
        try:
            max_age = parsedate_to_datetime(expires).timestamp() - now
        except (TypeError, ValueError, IndexError):
            max_age = None
    return max(max_age, 0) if max_age is not None else 0


# -------------------------------------------------------------------- media types
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_MEDIA = re.compile(rf"^\s*(?:({_TOKEN})/({_TOKEN})|(\*))\s*((?:;\s*{_TOKEN}=(?:{_TOKEN}|\"(?:[^\"\\]|\\.)*\")\s*)*)$")
_PARAM = re.compile(rf";\s*({_TOKEN})=({_TOKEN}|\"(?:[^\"\\]|\\.)*\")")


def parse_mime_type(value: str) -> tuple[str, str, dict[str, str]] | None:
    """kong.tools.mime_type.parse_mime_type: (type, subtype, params) lowercased, or None."""
    m = _MEDIA.match(value)
    if not m:
        return None
    if m.group(3):
        t, sub = "*", "*"
    else:
        t, sub = m.group(1).lower(), m.group(2).lower()
    params = {}
    for name, val in _PARAM.findall(m.group(4) or ""):
        params[name.lower()] = val[1:-1] if val.startswith('"') else val
    return t, sub, params


def content_type_matches(content_type: str, expected: Sequence[tuple[str, str, dict[str, str]]]) -> bool:
    got = parse_mime_type(content_type)
    if got is None:
        return False
    t, sub, params = got
    for et, esub, eparams in expected:
        if (et == "*" or t == et) and (esub == "*" or sub == esub) and params == eparams:
            return True
    return False


# -------------------------------------------------------------------- the store
class Entry:
    """One cached response (Kong's `res` table: status, headers, body, timestamp, ttl)."""

    __slots__ = ("status", "headers", "body", "timestamp", "ttl", "req_body", "expires", "size")

    def __init__(
        self,
        status: int,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        timestamp: float,
        ttl: float,
        req_body: bytes | None,
    ) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.timestamp = timestamp
        self.ttl = ttl
        self.req_body = req_body
        self.expires = 0.0
        self.size = _ENTRY_OVERHEAD + len(body) + sum(len(n) + len(v) for n, v in headers)

    def to_json(self) -> dict[str, Any]:
        """The Admin API form of Kong's cached object."""
        headers: dict[str, Any] = {}
        for n, v in self.headers:
            name, val = n.decode("latin-1"), v.decode("latin-1")
            cur = headers.get(name)
            headers[name] = val if cur is None else (cur + [val] if isinstance(cur, list) else [cur, val])
        return {
            "status": self.status,
            "headers": headers,
            "body": self.body.decode("utf-8", "replace"),
            "body_len": len(self.body),
            "timestamp": int(self.timestamp),
            "ttl": self.ttl,
            "version": 1,
            "req_body": None if self.req_body is None else self.req_body.decode("utf-8", "replace"),
        }


class MemoryStore:
    """An LRU of entries bounded by bytes, each with a storage expiry (shdict exptime)."""

    def __init__(self, max_bytes: int = STORE_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[str, Entry] = OrderedDict()

    def fetch(self, key: str, now: float) -> Entry | None:
        e = self._entries.get(key)
        if e is None:
            return None
        if e.expires <= now:
            self.purge(key)
            return None
        self._entries.move_to_end(key)
        return e

    def peek(self, key: str) -> Entry | None:
        """The entry without touching its LRU position or expiry (Admin API)."""
        e = self._entries.get(key)
        return None if e is None or e.expires <= time.time() else e

    def store(self, key: str, entry: Entry, ttl: float, now: float) -> bool:
        if entry.size > self.max_bytes:
            return False
        self.purge(key)
        entry.expires = now + ttl
        self._entries[key] = entry
        self.bytes += entry.size
        while self.bytes > self.max_bytes:
            _, old = self._entries.popitem(last=False)
            self.bytes -= old.size
        return True

    def purge(self, key: str) -> bool:
        e = self._entries.pop(key, None)
        if e is None:
            return False
        self.bytes -= e.size
        return True

    def flush(self) -> None:
        self._entries.clear()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._entries)


# dictionary_name -> store; process-wide like a lua_shared_dict is node-wide
STORES: dict[str, MemoryStore] = {}


def store_for(dictionary_name: str) -> MemoryStore:
    s = STORES.get(dictionary_name)
    if s is None:
        s = STORES[dictionary_name] = MemoryStore()
    return s
