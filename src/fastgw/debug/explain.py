"""Why a request matches the route it matches, and which routes no request can reach.

Both work from the configuration with the compiled router's own rules (fastgw._core.router):
- `explain(config, method, host, path, headers)`: every route path is one candidate (as in the
  router); the candidates are listed in the router's priority order, each with the fields that
  match or fail, so the winner is the first whose fields all match and "the candidates it beat"
  are the later ones that match too. Built per call from one-candidate routers: this is for
  GET /debug/route and for traced requests only, never the request path.
- `shadowed_routes(config)`: a route is shadowed when, for each of its paths, some candidate
  before it in priority order matches every request that path could match (a superset in every
  field). Conservative: regex paths are only compared for identity, so a listed route is
  certainly unreachable, an unlisted one may still be.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from fastgw._core.router import Router, RouteSpec, normalize_path


class _Headers:
    def __init__(self, headers: Mapping[str, str]) -> None:
        self.h = {k.lower().encode("latin-1"): v.encode("latin-1") for k, v in headers.items()}

    def get(self, name: bytes) -> bytes | None:
        return self.h.get(name)


def _spec(key: Any, r: Any, order: int, **override: Any) -> RouteSpec:
    # the router's own view of the route (fastgw.config.model.route_spec), some fields
    # replaced; ties rank by route id as in the router (order is only reported)
    fields = dict(hosts=list(r.hosts or []), paths=list(r.paths or []),
                  methods=list(r.methods or []), headers=dict(r.headers or {}),
                  snis=list(r.snis or []))
    fields.update(override)
    return RouteSpec(key, regex_priority=r.regex_priority, strip_path=r.strip_path,
                     preserve_host=r.preserve_host, path_handling=r.path_handling,
                     id=r.id, **fields)


def _candidates(config: Any) -> list[tuple[Any, str | None, int]]:
    """(route, path or None, order) in the router's priority order."""
    routes = [r for r in config.routes if r.service]
    by_key = {}
    specs = []
    for i, r in enumerate(routes):
        by_key[r.id] = r
        specs.append(_spec(r.id, r, i))
    order = Router(specs).priority_order() if specs else []
    index = {r.id: i for i, r in enumerate(routes)}
    return [(by_key[k], p, index[k]) for k, p in order]


def _one(r: Any, order: int, **fields: Any) -> Router:
    return Router([_spec(r.id, r, order, **fields)])


def _weight(r: Any) -> int:
    return sum(1 for f in (r.methods, r.hosts, r.headers, r.paths) if f)


def explain(config: Any, method: str, host: str | None, path: str,
            headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    m, h, p = method.upper().encode(), (host or "").encode("latin-1") or None, \
        (path or "/").encode("latin-1")
    hdrs = _Headers(headers or {})
    out: list[dict[str, Any]] = []
    winner = None
    for rank, (r, rpath, order) in enumerate(_candidates(config)):
        checks = {}
        if r.methods:
            checks["methods"] = method.upper() in [x.upper() for x in r.methods]
        if r.hosts:
            checks["hosts"] = _one(r, order, paths=[], methods=[], headers={}) \
                .match(b"GET", h, b"/", None) is not None
        if r.headers:
            checks["headers"] = _one(r, order, paths=[], methods=[], hosts=[]) \
                .match(b"GET", None, b"/", hdrs) is not None
        if rpath is not None:
            checks["paths"] = _one(r, order, paths=[rpath], methods=[], hosts=[], headers={}) \
                .match(b"GET", None, p, None) is not None
        matches = all(checks.values())
        entry = {"rank": rank, "route": r.name or r.id, "route_id": r.id, "path": rpath,
                 "matches": matches, "fields": checks,
                 "priority": {"match_weight": _weight(r), "regex_path": bool(
                     rpath and rpath.startswith("~")), "regex_priority": r.regex_priority,
                     "path_length": len(rpath) if rpath and not rpath.startswith("~") else 0,
                     "declaration_order": order}}
        if matches and winner is None:
            winner = entry
            entry["why"] = "first candidate in priority order whose every field matches"
        elif matches:
            entry["why"] = f"also matches, but ranks after {winner['route']}"
        out.append(entry)
    full = None
    if winner is not None:
        # the compiled router's own answer for the request (strip_path etc. applied)
        routes = [r for r in config.routes if r.service]
        router = Router([_spec(r.id, r, i) for i, r in enumerate(routes)])
        mm = router.match(m, h, normalize_path(p), hdrs)
        full = None if mm is None else {"upstream_path": mm.upstream_path.decode("latin-1")}
    return {"request": {"method": method.upper(), "host": host, "path": path,
                        "headers": dict(headers or {})},
            "matched": None if winner is None else {
                "route": winner["route"], "route_id": winner["route_id"],
                "path": winner["path"], **(full or {})},
            "beaten": [e["route"] for e in out if e["matches"] and e is not winner],
            "candidates": out}


# -- shadowing --------------------------------------------------------------------------------

def _covers_hosts(a: Iterable[str], b: Iterable[str]) -> bool:
    a, b = list(a or []), list(b or [])
    if not a:
        return True
    if not b:
        return False
    for hb in b:
        if not any(ha == hb or (ha.startswith("*.") and hb.endswith(ha[1:]))
                   or (ha.endswith(".*") and hb.startswith(ha[:-1])) for ha in a):
            return False
    return True


def _covers_methods(a: Iterable[str], b: Iterable[str]) -> bool:
    a, b = {x.upper() for x in a or []}, {x.upper() for x in b or []}
    return not a or (bool(b) and b <= a)


def _covers_headers(a: Mapping[str, list[str]] | None, b: Mapping[str, list[str]] | None) -> bool:
    a = {k.lower(): {v.lower() for v in vs} for k, vs in (a or {}).items()}
    b = {k.lower(): {v.lower() for v in vs} for k, vs in (b or {}).items()}
    for name, values in a.items():
        if name not in b or any(v.startswith("~*") for v in values) or not b[name] <= values:
            return False
    return True


def _covers_path(pa: str | None, pb: str | None) -> bool:
    if pa is None:
        return True
    if pb is None:
        return False
    if pa.startswith("~") or pb.startswith("~"):
        return pa == pb
    return normalize_path(pb.encode()).startswith(normalize_path(pa.encode()))


def shadowed_routes(config: Any) -> list[dict[str, Any]]:
    cands = _candidates(config)
    by_route: dict[str, list[tuple[str | None, str | None]]] = {}
    names = {}
    for i, (r, p, _) in enumerate(cands):
        names[r.id] = r.name or r.id
        shadow = None
        for a, pa, _ in cands[:i]:
            if a.id == r.id:
                continue
            if _covers_methods(a.methods, r.methods) and _covers_hosts(a.hosts, r.hosts) \
                    and _covers_headers(a.headers, r.headers) and _covers_path(pa, p):
                shadow = a.name or a.id
                break
        by_route.setdefault(r.id, []).append((p, shadow))
    out = []
    for rid, paths in by_route.items():
        if all(s is not None for _, s in paths):
            out.append({"route": names[rid], "route_id": rid,
                        "shadowed_by": sorted({s for _, s in paths if s}),
                        "paths": [p for p, _ in paths]})
    return out
