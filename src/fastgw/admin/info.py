"""`GET /`, `GET /status` and `GET /endpoints` bodies (kong/api/routes/kong.lua).

`version` in `GET /` is the Kong version whose Admin API fastgw implements
(KONG_COMPAT_VERSION): decK, Kong Manager and Kong's SDKs read it to pick the API they speak
and refuse versions they do not know. fastgw's own version is in `fastgw_version`.
"""
from __future__ import annotations

from typing import Any

from fastgw import __version__
from fastgw.config import model
from fastgw.config.store import ConfigStore

# The Kong release whose Admin API, declarative format and plugin schemas fastgw follows
# (kong/meta.lua of the Kong sources its conformance tests are taken from).
KONG_COMPAT_VERSION = "3.10.0"

# Kong's /status "server" counters (ngx.location.capture of stub_status)
_SERVER_FIELDS = ("connections_accepted", "connections_active", "connections_handled",
                  "connections_reading", "connections_writing", "connections_waiting",
                  "total_requests")

# Endpoints besides the entity collections (sorted into /endpoints); other admin modules
# append theirs here at import time.
STATIC_ENDPOINTS: list[str] = [
    "/", "/status", "/config", "/metrics", "/endpoints", "/tags", "/tags/{tags}",
    "/schemas/{name}", "/schemas/{db_entity_name}/validate", "/schemas/plugins/{name}",
    "/schemas/plugins/validate", "/plugins/enabled", "/plugins/schema/{name}",
    "/upstreams/{upstreams}/health", "/upstreams/{upstreams}/targets/all",
    "/upstreams/{upstreams}/targets/{targets}/healthy",
    "/upstreams/{upstreams}/targets/{targets}/unhealthy",
]


def root_info(store: ConfigStore, gateway: Any, hostname: str) -> dict[str, Any]:
    cfg = store.config
    info = store.info()
    node = dict(gateway.node_info() or {})
    node.pop("version", None)
    node_conf = node.pop("configuration", None) or {}
    body: dict[str, Any] = {
        "tagline": "Welcome to fastgw",
        "version": KONG_COMPAT_VERSION,
        "fastgw_version": __version__,
        "edition": "community",
        "hostname": hostname,
        "node_id": None,
        "configuration": {
            **node_conf,
            "database": "off",
            "declarative_config": store.source_path,
            "persistence": info["persistence"],
            "persist_path": info["persist_path"],
            "config_hash": info["config_hash"],
            "entities": info["entities"],
        },
        "persistence": info["persistence"],
        "plugins": {"available_on_server": {n: {"version": KONG_COMPAT_VERSION, "priority":
                                                _priority(n)}
                                            for n in model.available_plugins()},
                    "enabled_in_cluster": sorted({p.name for p in cfg.plugins})},
    }
    body.update(node)
    return body


def _priority(name: str) -> int | None:
    cls = model.plugin_class(name)
    return getattr(cls, "PRIORITY", None) if cls is not None else None


def status_info(store: ConfigStore, gateway: Any) -> dict[str, Any]:
    raw = dict(gateway.status() or {})
    server = {k: int(raw.pop(k, 0) or 0) for k in _SERVER_FIELDS}
    if not server["connections_handled"]:
        server["connections_handled"] = server["connections_accepted"]
    # the proxy core parks idle keep-alive connections (Kong's "waiting"); the ones with a
    # request in flight are being read or written
    active_reqs = int(raw.get("requests_active", 0) or 0)
    if not (server["connections_reading"] or server["connections_writing"]
            or server["connections_waiting"]):
        server["connections_writing"] = min(active_reqs, server["connections_active"])
        server["connections_waiting"] = server["connections_active"] - \
            server["connections_writing"]
    server.update(raw)
    return {"server": server, "database": {"reachable": True},
            "configuration_hash": store.hash, "persistence": store.persistence}


def endpoint_list(top: dict[str, str], nested: dict[tuple[str, str], Any],
                  foreign: dict[str, dict[str, str]]) -> list[str]:
    """Every Admin API path template, sorted segment by segment as Kong sorts them."""
    out = set(STATIC_ENDPOINTS)
    for url in top:
        out.add(f"/{url}")
        out.add(f"/{url}/{{{top[url]}}}")
        for field in foreign.get(top[url], {}):
            out.add(f"/{url}/{{{top[url]}}}/{field}")
    for (parent, child), (ctype, _field) in nested.items():
        out.add(f"/{parent}/{{{top[parent]}}}/{child}")
        out.add(f"/{parent}/{{{top[parent]}}}/{child}/{{{ctype}}}")
    return sorted(out, key=lambda p: p.replace("/", "\x00"))
