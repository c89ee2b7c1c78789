"""Kong's status listener (`status_listen`): GET /status and GET /metrics only.

Read-only and without configuration data, so unlike the Admin API it may listen on a
non-loopback address (for Prometheus scrapers and load-balancer health checks).
"""
from __future__ import annotations

from typing import Any

import orjson

from fastgw.admin.app import AdminAPI, Response
from fastgw.admin.server import AdminServer, start_admin_server

STATUS_PATHS = ("/status", "/metrics")
_JSON = [("Content-Type", "application/json; charset=utf-8")]


class StatusAPI:
    def __init__(self, admin: AdminAPI) -> None:
        self.admin = admin

    async def handle(self, method: str, path: str, query: dict[str, list[str]],
                     headers: dict[str, str], body: bytes) -> Response:
        if path.rstrip("/") not in STATUS_PATHS:
            return 404, list(_JSON), orjson.dumps({"message": "Not found"})
        if method.upper() not in ("GET", "HEAD"):
            return 405, list(_JSON), orjson.dumps({"message": "Method not allowed"})
        return await self.admin.handle(method, path.rstrip("/"), query, headers, b"")


async def start_status_server(admin: AdminAPI, host: str, port: int, *,
                              ssl: Any = None) -> AdminServer:
    return await start_admin_server(StatusAPI(admin), host, port,  # type: ignore[arg-type]
                                    read_only=True, ssl=ssl)
