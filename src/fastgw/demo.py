"""The built-in demo upstream behind the embedded default config (see default.yml).

A tiny HTTP/1.1 server on 127.0.0.1 that answers every request with a JSON description of what
it received (method, path, headers), so `fastgw run` shows what the proxy forwards.
"""
from __future__ import annotations

import asyncio

import orjson

from fastgw._core.http_parser import Data, EndOfMessage, HttpParseError, Request, RequestParser

DEMO_PORTS = (18081, 18082)


class _DemoProtocol(asyncio.Protocol):
    def __init__(self, name: str) -> None:
        self.name = name
        self.parser = RequestParser()
        self.transport: asyncio.Transport | None = None
        self.req: Request | None = None
        self.size = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        try:
            events = self.parser.feed(data)
        except HttpParseError as e:
            self.transport.write(b"HTTP/1.1 %d Bad Request\r\nContent-Length: 0\r\n"
                                 b"Connection: close\r\n\r\n" % e.status)
            self.transport.close()
            return
        for ev in events:
            if isinstance(ev, Request):
                self.req, self.size = ev, 0
            elif isinstance(ev, Data):
                self.size += len(ev.data)
            elif isinstance(ev, EndOfMessage) and self.req is not None:
                self.respond(self.req)

    def respond(self, req: Request) -> None:
        assert self.transport is not None
        body = orjson.dumps({
            "server": self.name,
            "method": req.method.decode(),
            "path": req.target.decode("latin-1"),
            "headers": {k.decode("latin-1"): v.decode("latin-1") for k, v in req.headers},
            "body_bytes": self.size,
        }, option=orjson.OPT_INDENT_2) + b"\n"
        self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\n%s\r\n%s" % (
                                 len(body), b"" if req.keep_alive else b"Connection: close\r\n",
                                 body))
        if not req.keep_alive:
            self.transport.close()


async def start_demo_upstreams(host: str = "127.0.0.1",
                               ports: tuple[int, ...] = DEMO_PORTS) -> list[asyncio.AbstractServer]:
    loop = asyncio.get_running_loop()
    servers = []
    for i, port in enumerate(ports, 1):
        name = f"demo-{i}"
        servers.append(await loop.create_server(lambda n=name: _DemoProtocol(n), host, port))
    return servers
