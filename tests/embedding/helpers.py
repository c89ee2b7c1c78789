"""Config builders and a network upstream on the running loop for the embedding tests."""
from __future__ import annotations

import socket
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

from aiohttp import web


def upstream_config(targets: list[str], *, path: str = "/", healthchecks: dict | None = None,
                    plugins: list[dict] | None = None, retries: int = 0,
                    read_timeout_ms: int = 60000, algorithm: str = "round-robin") -> dict:
    up: dict[str, Any] = {"name": "up", "algorithm": algorithm,
                          "targets": [{"target": t} for t in targets]}
    if healthchecks is not None:
        up["healthchecks"] = healthchecks
    svc: dict[str, Any] = {"name": "svc", "host": "up", "port": 80, "retries": retries,
                           "read_timeout": read_timeout_ms,
                           "routes": [{"name": "r", "paths": [path]}]}
    if plugins:
        svc["plugins"] = plugins
    return {"_format_version": "3.0", "upstreams": [up], "services": [svc]}


@asynccontextmanager
async def network_upstream(name: str) -> AsyncIterator[int]:
    """An aiohttp server on 127.0.0.1:<port> answering "<name> <path>" (on the running loop)."""
    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        return web.Response(text=f"{name} {request.path} {len(body)}")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    site = web.SockSite(runner, sock)
    await site.start()
    try:
        yield sock.getsockname()[1]
    finally:
        await runner.cleanup()
