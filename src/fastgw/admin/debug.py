"""Admin API debugging endpoints (registered by AdminAPI._route for the `debug` prefix):

GET /debug/route?method=&host=&path=&headers=name:value   what would match, and why
    (fastgw.debug.explain); `headers` may repeat; nothing is sent anywhere
GET /debug/traces/{request_id}   a request traced with X-Fastgw-Trace (fastgw.debug.trace),
    from a bounded store (with --workers N the workers send finished traces to the master with
    their heartbeat, every 0.5 s)
"""
from __future__ import annotations

from typing import Any, Callable

#: the longest path / host explained (the proxy's own request-line limit, consts.pxd)
MAX_FIELD = 8192


def routes(api: Any, segs: list[str]) -> dict[str, Callable[[Any], Any]] | None:
    if segs == ["debug", "route"]:
        return {"GET": lambda r: _route(api, r)}
    if len(segs) == 3 and segs[:2] == ["debug", "traces"]:
        return {"GET": lambda r: _trace(api, segs[2])}
    return None


def _bad(message: str) -> tuple[int, Any]:
    return 400, {"message": message}


def _route(api: Any, r: Any) -> tuple[int, Any]:
    from fastgw.debug.explain import explain

    path = r.q("path") or "/"
    method = r.q("method") or "GET"
    host = r.q("host")
    if not path.startswith("/"):
        return _bad("path must start with '/'")
    if len(path) > MAX_FIELD or (host and len(host) > MAX_FIELD):
        return _bad(f"path and host are limited to {MAX_FIELD} bytes")
    if not method.isalpha():
        return _bad(f"invalid method {method!r}")
    headers: dict[str, str] = {}
    for h in r.query.get("headers", []):
        for item in h.split(","):
            if not item.strip():
                continue
            name, sep, value = item.partition(":")
            if not sep or not name.strip():
                return _bad(f"headers: expected name:value, got {item!r}")
            headers[name.strip().lower()] = value.strip()
    return 200, explain(api.store.config, method, host, path, headers)


def _trace(api: Any, request_id: str) -> tuple[int, Any]:
    tracer = getattr(api.gateway, "tracer", None)
    found = tracer.get(request_id) if tracer is not None else None
    if found is None:
        return 404, {"message": "Not found"}
    return 200, found
