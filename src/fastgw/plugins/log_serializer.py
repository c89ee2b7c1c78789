"""Kong's basic log serializer: one JSON-ready dict per request (kong/pdk/log.lua serialize).

Shape (Kong 3.x field names)::

    {"request": {"method", "uri", "url", "size", "querystring", "headers"},
     "upstream_uri", "response": {"status", "size", "headers"},
     "latencies": {"request", "kong", "proxy", "receive"}, "tries": [...],
     "client_ip", "service", "route", "consumer", "authenticated_entity",
     "started_at" (epoch ms), "upstream_status", "source", **extra}

``Authorization`` and ``Proxy-Authorization`` request headers are written as ``REDACTED``
(Kong 3.x does the same), and extra fields come from ``ctx.set_serialize_value``
(correlation-id puts ``correlation_id`` there).
"""

from __future__ import annotations

from typing import Any

import msgspec

_REDACTED = ("authorization", "proxy-authorization")
# Entities serialised once per object (entities are immutable per snapshot): id -> (obj, dict).
_ENTITY_CACHE: dict[int, tuple[Any, dict[str, Any]]] = {}
_ENTITY_CACHE_SIZE = 4096


def entity_dict(obj: Any) -> dict[str, Any] | None:
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj
    hit = _ENTITY_CACHE.get(id(obj))
    if hit is not None and hit[0] is obj:
        return hit[1]
    if isinstance(obj, msgspec.Struct):
        d = msgspec.to_builtins(obj)
    else:
        d = {k: getattr(obj, k) for k in ("id", "name", "username", "custom_id") if getattr(obj, k, None) is not None}
    if len(_ENTITY_CACHE) >= _ENTITY_CACHE_SIZE:
        _ENTITY_CACHE.clear()
    _ENTITY_CACHE[id(obj)] = (obj, d)
    return d


def _ms(v: float | None) -> int:
    return -1 if v is None else int(round(v))


def serialize(ctx: Any) -> dict[str, Any]:
    req = ctx.request
    headers = req.get_headers()
    for name in _REDACTED:
        if name in headers:
            headers[name] = "REDACTED"
    original = req.original_target.decode("latin-1")
    host = req.host
    qpos = original.find("?")
    res = ctx.response
    entry: dict[str, Any] = {
        "request": {
            "method": req.method,
            "uri": original,
            "url": f"{req.scheme}://{host}{original}",
            "size": ctx.bytes_in,
            "querystring": req.query if qpos >= 0 else {},
            "headers": headers,
        },
        "upstream_uri": ctx.upstream_uri if ctx.upstream_uri is not None else req.target.decode("latin-1"),
        "response": {
            "status": res.status if res is not None else None,
            "size": ctx.bytes_out,
            "headers": res.get_headers() if res is not None else {},
        },
        "latencies": {
            "request": _ms(ctx.request_latency),
            "kong": _ms(ctx.proxy_latency),
            "proxy": _ms(ctx.upstream_latency),
            "receive": 0,
        },
        "tries": [{"target": ctx.upstream_target}] if ctx.upstream_target else [],
        "client_ip": ctx.client_ip,
        "started_at": int(ctx.started_at * 1000),
        "source": ("exit" if res is not None and res.source == "exit" else "service") if res is not None else "kong",
    }
    if ctx.upstream_status is not None:
        entry["upstream_status"] = str(ctx.upstream_status)
    service = entity_dict(ctx.service)
    if service is not None:
        entry["service"] = service
    route = entity_dict(ctx.route)
    if route is not None:
        entry["route"] = route
    if ctx.consumer is not None:
        entry["consumer"] = entity_dict(ctx.consumer)
    if ctx.credential is not None:
        cred_id = getattr(ctx.credential, "id", None)
        consumer_id = getattr(ctx.consumer, "id", None) if ctx.consumer is not None else None
        entry["authenticated_entity"] = {"id": cred_id, "consumer_id": consumer_id}
    if ctx.log_extra:
        entry.update(ctx.log_extra)
    return entry
