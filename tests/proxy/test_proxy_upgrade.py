"""Protocol upgrades (RFC 9110 7.8): WebSocket through the gateway, end to end with aiohttp as
the real client and the real upstream server."""
from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp import web

from fastgw.gateway import Gateway


async def _ws_upstream() -> tuple[web.AppRunner, int]:
    async def ws(request: web.Request) -> web.WebSocketResponse:
        sock = web.WebSocketResponse()
        await sock.prepare(request)
        async for msg in sock:
            if msg.type == aiohttp.WSMsgType.TEXT:
                await sock.send_str(f"echo:{msg.data}:{request.path}")
            elif msg.type == aiohttp.WSMsgType.BINARY:
                await sock.send_bytes(msg.data[::-1])
        return sock

    async def plain(request: web.Request) -> web.Response:
        return web.Response(text="plain")

    app = web.Application()
    app.router.add_get("/ws", ws)
    app.router.add_get("/plain", plain)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]


def _config(port: int) -> dict:
    return {"_format_version": "3.0",
            "services": [{"name": "ws", "url": f"http://127.0.0.1:{port}",
                          "routes": [{"name": "ws", "paths": ["/api"]}]}]}


@pytest.mark.parametrize("loop_kind", ["asyncio", "uvloop"])
def test_websocket_is_tunnelled(loop_kind):
    async def main() -> None:
        runner, port = await _ws_upstream()
        gw = Gateway(_config(port))
        await gw.start(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{gw.address[1]}/api/ws"
        try:
            async with aiohttp.ClientSession() as s:
                async with s.ws_connect(url) as ws:
                    for i in range(20):
                        await ws.send_str(f"m{i}")
                        assert (await ws.receive_str(timeout=5)) == f"echo:m{i}:/ws"
                    big = bytes(range(256)) * 1024          # 256 KiB frame
                    await ws.send_bytes(big)
                    assert (await ws.receive_bytes(timeout=5)) == big[::-1]
                # the same gateway still proxies plain requests
                async with s.get(f"http://127.0.0.1:{gw.address[1]}/api/plain") as r:
                    assert r.status == 200 and await r.text() == "plain"
            for _ in range(100):   # the closed tunnel is counted out
                if gw.status()["requests_active"] == 0:
                    break
                await asyncio.sleep(0.02)
            assert gw.status()["requests_active"] == 0
        finally:
            await gw.stop(timeout=2)
            await runner.cleanup()

    if loop_kind == "uvloop":
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())


def test_101_without_an_upgrade_request_is_502():
    async def main() -> None:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: evil\r\n"
                         b"Connection: upgrade\r\n\r\n")
            await writer.drain()
            await asyncio.sleep(0.5)
            writer.close()

        srv = await asyncio.start_server(handler, "127.0.0.1", 0)
        gw = Gateway(_config(srv.sockets[0].getsockname()[1]))
        await gw.start(("127.0.0.1", 0))
        try:
            async with aiohttp.ClientSession() as s:
                async with s.get(f"http://127.0.0.1:{gw.address[1]}/api/x") as r:
                    assert r.status == 502
        finally:
            await gw.stop(timeout=2)
            srv.close()

    asyncio.run(main())
