"""The dashboard: Kong Manager's place (admin_gui_listen, Kong's port 8002), as one page.

GET /                 the page (dashboard_static/index.html, .js, .css: served from the
                      package, no CDN, nothing fetched from anywhere else)
GET /api/overview     services, routes, upstreams with live target health, consumers, plugins
GET /api/traffic      counters: responses by status, latency histogram, the node's totals

Rules:
- The static files carry no data and are served to anyone who can reach the listener; every
  /api/ call needs the admin token (Kong-Admin-Token header) when one is set: the page asks
  for it (or takes it from the URL fragment #token=..., which browsers never send).
- Data comes from the Admin API object in-process (the same JSON as GET /services etc.) and
  from the workers' compiled TrafficStats; nothing here touches the proxy path.
- Like the Admin API, a non-loopback listener needs the admin token.
"""
from __future__ import annotations

import hmac
import logging
import time
from importlib import resources
from typing import Any, Callable

import orjson

from fastgw.admin.app import JSON_CT, SERVER, AdminAPI
from fastgw.admin.server import TOKEN_HEADER, AdminServer, _Conn, is_loopback

log = logging.getLogger("fastgw.admin")

STATIC = {"/": ("index.html", "text/html; charset=utf-8"),
          "/index.html": ("index.html", "text/html; charset=utf-8"),
          "/dashboard.js": ("dashboard.js", "text/javascript; charset=utf-8"),
          "/dashboard.css": ("dashboard.css", "text/css; charset=utf-8")}
#: the page's own sources only (no inline script, no other origin)
CSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'"
#: entities listed per kind (the Admin API's page size maximum)
LIST_SIZE = 1000

Response = tuple[int, list[tuple[str, str]], bytes]


def _static(name: str) -> bytes:
    return resources.files("fastgw.admin").joinpath("dashboard_static", name).read_bytes()


class DashboardServer(AdminServer):
    """AdminServer's connection handling; its own routes and token rule (module doc)."""

    def __init__(self, api: AdminAPI, token: str | None,
                 traffic: Callable[[], dict[str, Any]]) -> None:
        super().__init__(api, token)
        self.traffic = traffic
        self.files = {path: (_static(name), ctype) for path, (name, ctype) in STATIC.items()}

    async def _respond(self, req: Any, body: bytes) -> Response:
        target = req.target.decode("latin-1")
        path = target.partition("?")[0]
        method = req.method.decode("latin-1")
        if method not in ("GET", "HEAD"):
            return _json(405, {"message": "Method not allowed"})
        if path in self.files:
            data, ctype = self.files[path]
            return 200, [("Content-Type", ctype), ("Content-Security-Policy", CSP),
                         ("Cache-Control", "no-cache"), ("Server", SERVER)], data
        if not path.startswith("/api/"):
            return _json(404, {"message": "Not found"})
        if self.token is not None:
            given = b""
            for k, v in req.headers:
                if k.decode("latin-1").lower() == TOKEN_HEADER:
                    given = v
            if not hmac.compare_digest(given, self.token.encode()):
                return _json(401, {"message": "Invalid credentials. Token or User credentials "
                                   "required"})
        if path == "/api/overview":
            return _json(200, await self.overview())
        if path == "/api/traffic":
            return _json(200, {"time": time.time(), **self.traffic()})
        return _json(404, {"message": "Not found"})

    async def _get(self, path: str) -> Any:
        status, _, body = await self.api.handle("GET", path, {"size": [str(LIST_SIZE)]}, {},
                                                b"")
        return orjson.loads(body) if status == 200 else None

    async def overview(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for kind in ("services", "routes", "upstreams", "consumers", "plugins"):
            page = await self._get(f"/{kind}")
            out[kind] = page["data"] if page else []
        for u in out["upstreams"]:
            health = await self._get(f"/upstreams/{u['id']}/health")
            u["targets"] = [{"target": t["target"], "weight": t["weight"],
                             "health": t["health"]} for t in (health or {}).get("data", [])]
        out["node"] = await self._get("/")
        if out["node"]:
            out["node"] = {k: out["node"].get(k) for k in ("version", "hostname", "node_id")}
        return out


def _json(status: int, data: Any) -> Response:
    return status, [("Content-Type", JSON_CT), ("Server", SERVER),
                    ("Cache-Control", "no-store")], orjson.dumps(data)


async def start_dashboard(api: AdminAPI, host: str, port: int, *, token: str | None,
                          traffic: Callable[[], dict[str, Any]]) -> DashboardServer:
    import asyncio

    if not is_loopback(host) and not token:
        raise ValueError(f"refusing to expose the dashboard on non-loopback address {host!r} "
                         "without an admin token (--admin-token)")
    srv = DashboardServer(api, token or None, traffic)
    loop = asyncio.get_running_loop()
    srv._server = await loop.create_server(lambda: _Conn(srv), host, port)
    log.info("dashboard listening on http://%s:%d/", host, srv.port)
    return srv
