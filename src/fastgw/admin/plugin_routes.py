"""Admin API endpoints that belong to plugins (Kong's kong/plugins/<name>/api.lua and the
credential DAOs' admin_api_name / admin_api_nested_name).

- Credential collections are plain entities: ``TOP_EXTRA`` and ``NESTED_EXTRA`` extend the
  Admin app's URL tables (``/hmac-auths``, ``/consumers/{c}/hmac-auth``), so the generic
  collection/item handlers serve them.
- ``route(app, segs)`` answers the proxy-cache endpoints: ``DELETE /proxy-cache`` (flush every
  proxy-cache store), ``GET|DELETE /proxy-cache/{key}`` (any instance's store) and
  ``GET|DELETE /proxy-cache/{plugin_id}/caches/{key}``. Stores are per process: under several
  workers these reach the stores of the process serving the Admin API.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# URL collection name -> entity type (Kong's admin_api_name)
TOP_EXTRA: dict[str, str] = {"hmac-auths": "hmacauth_credentials", "oauth2": "oauth2_credentials"}

# (parent URL collection, child segment) -> (child entity type, foreign key field)
NESTED_EXTRA: dict[tuple[str, str], tuple[str, str]] = {
    ("consumers", "hmac-auth"): ("hmacauth_credentials", "consumer"),
    ("consumers", "oauth2"): ("oauth2_credentials", "consumer"),
}

# Generated fields a /schemas/{entity}/validate body may leave out (Kong generates them on write)
SCHEMA_PLACEHOLDERS: dict[str, dict[str, str]] = {
    "hmacauth_credentials": {"secret": "x"},
    "oauth2_credentials": {"client_id": "x", "client_secret": "x"},
}

Handlers = dict[str, Callable[[Any], Any]]


def _not_found() -> tuple[int, dict[str, str]]:
    return 404, {"message": "Not found"}


def _stores(app: Any) -> list[Any]:
    from fastgw.plugins import _proxy_cache_store as pcs

    names = []
    for p in app.store.list("plugins"):
        if p.name == "proxy-cache":
            name = (p.config.get("memory") or {}).get("dictionary_name", "kong_db_cache")
            if name not in names:
                names.append(name)
    return [pcs.store_for(n) for n in names]


def _store_of(app: Any, plugin_id: str) -> Any | None:
    from fastgw.plugins import _proxy_cache_store as pcs

    p = app.store.get_by_id("plugins", plugin_id)
    if p is None or p.name != "proxy-cache":
        return None
    return pcs.store_for((p.config.get("memory") or {}).get("dictionary_name", "kong_db_cache"))


def _get(stores: list[Any], key: str) -> Any:
    for s in stores:
        e = s.peek(key)
        if e is not None:
            return 200, e.to_json()
    return _not_found()


def _delete(stores: list[Any], key: str) -> Any:
    for s in stores:
        if s.purge(key):
            return 204, None
    return _not_found()


def _flush(stores: list[Any]) -> Any:
    for s in stores:
        s.flush()
    return 204, None


def route(app: Any, segs: list[str]) -> Handlers | None:
    """Handlers for a plugin-owned path, or None when the path is not one."""
    if not segs or segs[0] != "proxy-cache":
        return None
    n = len(segs)
    if n == 1:
        return {"DELETE": lambda r: _flush(_stores(app))}
    if n == 2:
        key = segs[1]
        return {"GET": lambda r: _get(_stores(app), key), "DELETE": lambda r: _delete(_stores(app), key)}
    if n == 4 and segs[2] == "caches":
        pid, key = segs[1], segs[3]

        def one(fn: Callable[[list[Any], str], Any]) -> Callable[[Any], Any]:
            def handler(r: Any) -> Any:
                store = _store_of(app, pid)
                return _not_found() if store is None else fn([store], key)

            return handler

        return {"GET": one(_get), "DELETE": one(_delete)}
    return None
