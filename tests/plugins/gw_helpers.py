"""Run plugin scenarios through a real in-process Gateway on 127.0.0.1:0 (real sockets).

``serve(config, scenario)`` starts a Gateway with the declarative ``config`` on a fresh asyncio
loop, calls ``await scenario(client)`` with an HttpClient connected to it, stops the gateway
and returns what the scenario returned. Upstreams are EchoUpstream instances (tests/servers.py:
their own thread and loop, real sockets), so the upstream can be reached while the gateway's
loop waits on the client.
"""
from __future__ import annotations

import asyncio
import socket
from typing import Any, Awaitable, Callable, TypeVar

from fastgw import testing
from fastgw.config.errors import ConfigError
from fastgw.gateway import load_config

T = TypeVar("T")


def kong_config(upstream_port: int, routes: list[dict[str, Any]], **top: Any) -> dict[str, Any]:
    """One service on the echo upstream holding ``routes``; ``top`` adds top-level lists."""
    return {
        "_format_version": "3.0",
        "services": [{"name": "echo", "url": f"http://127.0.0.1:{upstream_port}", "routes": routes}],
        **top,
    }


def route(name: str, plugins: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
    return {"name": name, "paths": kw.pop("paths", [f"/{name}"]), "plugins": plugins, **kw}


def serve(config: dict[str, Any], scenario: Callable[[Any], Awaitable[T]], **gateway_kwargs: Any) -> T:
    async def main() -> T:
        async with testing.gateway_client(config, **gateway_kwargs) as client:
            return await scenario(client)

    return testing.run(main())


def config_errors(plugin: str, config: dict[str, Any]) -> dict[str, str]:
    """Load a one-plugin config and return its errors as {path under the plugin: message}."""
    doc = {"_format_version": "3.0", "plugins": [{"name": plugin, "config": config}]}
    try:
        load_config(doc)
    except ConfigError as e:
        return {p.removeprefix("plugins[0]."): m for p, m in e.errors}
    return {}


# ------------------------------------------------------------------ loopback log collectors


class Collector:
    """What a loopback collector received: ``items`` (lines or datagrams, bytes)."""

    def __init__(self) -> None:
        self.items: list[bytes] = []
        self.port = 0
        self.connections = 0
        self._close: Any = None

    async def wait(self, n: int, timeout: float = 5.0) -> list[bytes]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.items) < n and loop.time() < deadline:
            await asyncio.sleep(0.01)
        assert len(self.items) >= n, f"collector got {len(self.items)} of {n}: {self.items!r}"
        return self.items

    def close(self) -> None:
        if self._close is not None:
            self._close()


async def tcp_collector(ssl_ctx: Any = None) -> Collector:
    """A TCP server on 127.0.0.1:0 on the running loop, one item per received line."""
    col = Collector()

    writers: set[asyncio.StreamWriter] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        col.connections += 1
        writers.add(writer)
        try:
            while line := await reader.readline():
                col.items.append(line)
        except (ConnectionError, OSError):
            pass
        writers.discard(writer)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ssl_ctx)
    col.port = server.sockets[0].getsockname()[1]

    def close() -> None:
        server.close()
        for w in list(writers):  # the handlers see EOF and end before the loop closes
            w.transport.abort()

    col._close = close
    return col


class _Dgram(asyncio.DatagramProtocol):
    def __init__(self, col: Collector) -> None:
        self.col = col

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.col.items.append(data)


async def udp_collector(unix_path: str | None = None) -> Collector:
    """A datagram socket on 127.0.0.1:0 (or a unix datagram socket at ``unix_path``)."""
    col = Collector()
    loop = asyncio.get_running_loop()
    if unix_path is None:
        transport, _ = await loop.create_datagram_endpoint(lambda: _Dgram(col), local_addr=("127.0.0.1", 0))
        col.port = transport.get_extra_info("sockname")[1]
    else:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(unix_path)
        transport, _ = await loop.create_datagram_endpoint(lambda: _Dgram(col), sock=sock)
    col._close = transport.close
    return col


def serve_with_admin(config: dict[str, Any], scenario: Callable[[Any, Any], Awaitable[T]],
                     **gateway_kwargs: Any) -> T:
    """Like serve(), with the Admin API on 127.0.0.1:0: ``await scenario(proxy, admin)``."""
    from fastgw.testing.client import HttpClient

    async def main() -> T:
        async with testing.gateway_client(config, admin_listen="127.0.0.1:0", **gateway_kwargs) as client:
            admin = HttpClient("127.0.0.1", client.gateway.admin.port)
            try:
                return await scenario(client, admin)
            finally:
                await admin.close()

    return testing.run(main())
