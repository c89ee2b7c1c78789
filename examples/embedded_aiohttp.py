"""fastgw embedded in an aiohttp application: one process, one event loop.

- the aiohttp app serves its own endpoints on APP_PORT (``/``, ``/gateway/status``);
- fastgw, started on the same loop, listens on GATEWAY_PORT and proxies
    ``/api/*``      to a network upstream (FASTGW_EXAMPLE_UPSTREAM="host:port", or a tiny
                    aiohttp server this example starts on 127.0.0.1 itself),
    ``/internal/*`` to an in-process Python handler (target "python:internal"; no socket hop).

Run:  python examples/embedded_aiohttp.py [--app-port 8080] [--gateway-port 8000] [--uvloop]
Then: curl localhost:8000/api/hello ; curl localhost:8000/internal/x ; curl localhost:8080/
The first line on stdout is JSON with the bound ports (tests read it). Ctrl-C stops it.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket

from aiohttp import web

from fastgw import Gateway
from fastgw.inprocess import Request, Response


# -- the in-process handler: plain Python, called with the proxied request ----------------------
async def internal(request: Request) -> Response:
    body = await request.body()
    return Response(200, {"Content-Type": "application/json"}, json.dumps({
        "handler": "internal", "path": request.path, "method": request.method,
        "client": request.client, "body_bytes": len(body),
    }))


# -- a stand-in network upstream (a real service would live elsewhere) -------------------------
async def start_demo_upstream() -> tuple[web.AppRunner, str]:
    async def hello(req: web.Request) -> web.Response:
        return web.json_response({"upstream": "network", "path": req.path})

    app = web.Application()
    app.router.add_get("/{tail:.*}", hello)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = _bind(0)
    await web.SockSite(runner, sock).start()
    return runner, f"127.0.0.1:{sock.getsockname()[1]}"


def gateway_config(upstream: str) -> dict:
    """Kong's declarative format, built in Python (a kong.yml path works the same)."""
    return {
        "_format_version": "3.0",
        "upstreams": [
            {"name": "api-upstream", "targets": [{"target": upstream}]},
            {"name": "internal-upstream", "targets": [{"target": "python:internal"}]},
        ],
        "services": [
            {"name": "api", "host": "api-upstream",
             "routes": [{"name": "api", "paths": ["/api"]}]},
            {"name": "internal", "host": "internal-upstream",
             "routes": [{"name": "internal", "paths": ["/internal"]}]},
        ],
    }


# -- the application ---------------------------------------------------------------------------
def make_app(gw: Gateway) -> web.Application:
    async def index(req: web.Request) -> web.Response:
        return web.json_response({"app": "aiohttp", "path": req.path})

    async def status(req: web.Request) -> web.Response:
        return web.json_response(gw.status())   # read access to the gateway's counters

    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_get("/gateway/status", status)
    return app


def _bind(port: int) -> socket.socket:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    return s


async def main(app_port: int, gateway_port: int) -> None:
    demo = None
    upstream = os.environ.get("FASTGW_EXAMPLE_UPSTREAM")
    if not upstream:
        demo, upstream = await start_demo_upstream()

    gw = Gateway(gateway_config(upstream), handlers={"python:internal": internal})
    await gw.start(listen=("127.0.0.1", gateway_port))   # on this loop; no signal handlers

    runner = web.AppRunner(make_app(gw), access_log=None)
    await runner.setup()
    app_sock = _bind(app_port)
    await web.SockSite(runner, app_sock).start()

    print(json.dumps({"app_port": app_sock.getsockname()[1], "gateway_port": gw.address[1],
                      "upstream": upstream}), flush=True)

    # the application owns the process, so it (not the library) handles signals
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()

    await gw.stop()           # graceful: in-flight requests finish
    await runner.cleanup()
    if demo is not None:
        await demo.cleanup()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--app-port", type=int, default=8080)
    ap.add_argument("--gateway-port", type=int, default=8000)
    ap.add_argument("--uvloop", action="store_true", help="run on uvloop (else stock asyncio)")
    args = ap.parse_args()
    if args.uvloop:
        import uvloop

        uvloop.run(main(args.app_port, args.gateway_port))
    else:
        asyncio.run(main(args.app_port, args.gateway_port))
