"""h2c upgrades are never forwarded; header names with underscores are dropped by default
(nginx underscores_in_headers off)."""
from __future__ import annotations

from _util import InProcessGateway, RawClient, get, kong, route, service
from servers import EchoUpstream


def _cfg(echo: EchoUpstream) -> dict:
    return kong(service("echo", echo.url("/"), [route("r", paths=["/"], strip_path=False)]))


def _names(resp) -> set[str]:
    return {n.lower() for n, _ in resp.json()["headers"]}


def test_h2c_upgrade_is_not_forwarded(echo: EchoUpstream) -> None:
    with InProcessGateway(_cfg(echo)) as gw, RawClient(gw.port) as c:
        for upgrade in ("h2c", "H2C", "websocket, h2c"):
            r = c.request(get("/x", extra=f"Connection: Upgrade, HTTP2-Settings\r\n"
                                          f"Upgrade: {upgrade}\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n"))
            assert r.status == 200
            names = _names(r)
            assert "upgrade" not in names and "http2-settings" not in names
            assert "connection" not in names


def test_websocket_upgrade_still_forwarded(echo: EchoUpstream) -> None:
    with InProcessGateway(_cfg(echo)) as gw, RawClient(gw.port) as c:
        c.send(get("/ws", extra="Connection: Upgrade\r\nUpgrade: websocket\r\n"
                                "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"))
        echo.wait_requests(1)
        assert echo.requests[0].header("upgrade") == "websocket"


def test_underscore_header_names_are_dropped(echo: EchoUpstream) -> None:
    with InProcessGateway(_cfg(echo)) as gw, RawClient(gw.port) as c:
        r = c.request(get("/u", extra="Transfer_Encoding: chunked\r\nX_Api_Key: k\r\n"
                                      "X-Fine: 1\r\n"))
        assert r.status == 200
        names = _names(r)
        assert "transfer_encoding" not in names and "x_api_key" not in names
        assert "x-fine" in names


def test_underscores_allowed_when_configured(echo: EchoUpstream) -> None:
    with InProcessGateway(_cfg(echo), limits={"underscores_in_headers": True}) as gw, \
            RawClient(gw.port) as c:
        r = c.request(get("/u", extra="X_Api_Key: k\r\n"))
        assert "x_api_key" in _names(r)
