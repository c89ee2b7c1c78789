"""fastgw as the whole program: `Gateway.serve()` runs until `stop()` (or cancellation).

Run:  python examples/serve_until_stopped.py
Prints one JSON line with the bound addresses (port 0: the kernel chose them), serves until
SIGINT/SIGTERM, then drains in-flight requests and exits.
"""
from __future__ import annotations

import asyncio
import json
import signal

from fastgw import Gateway
from fastgw.inprocess import Request, Response


async def hello(request: Request) -> Response:
    # Response arguments by keyword: status, headers (a mapping or (name, value) pairs), body
    return Response(status=200, headers={"content-type": "text/plain"},
                    body=f"hello from {request.path}\n")


CONFIG = {
    "_format_version": "3.0",
    "upstreams": [{"name": "local", "targets": [{"target": "python:hello"}]}],
    "services": [{"name": "hello", "host": "local", "routes": [{"paths": ["/hello"]}]}],
}


async def main() -> None:
    gw = Gateway(CONFIG, handlers={"python:hello": hello})
    loop = asyncio.get_running_loop()
    # the library installs no signal handlers: the program does
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda: asyncio.ensure_future(gw.stop()))
    server = asyncio.ensure_future(gw.serve("127.0.0.1:0", "127.0.0.1:0"))
    while not gw.started:                      # uvicorn's Server.started
        await asyncio.sleep(0.01)
        if server.done():                      # start() failed: show why
            server.result()
    print(json.dumps({"proxy": list(gw.address), "admin": list(gw.admin_address)}),
          flush=True)
    await server                               # returns after gw.stop() drained


if __name__ == "__main__":
    asyncio.run(main())
