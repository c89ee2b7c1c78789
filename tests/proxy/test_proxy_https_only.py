"""Routes whose protocols are https only, reached on fastgw's plain-http listener: Kong's 426
(Please use HTTPS protocol) or the route's https_redirect_status_code redirect."""
from __future__ import annotations

import asyncio
import json

from fastgw.gateway import Gateway


def _config() -> dict:
    return {"_format_version": "3.0",
            "services": [{"name": "s", "url": "http://127.0.0.1:9", "routes": [
                {"name": "tls", "paths": ["/tls"], "protocols": ["https"]},
                {"name": "moved", "paths": ["/moved"], "protocols": ["https"],
                 "https_redirect_status_code": 308},
            ]}]}


async def _request(port: int, target: str) -> tuple[int, dict[str, str], bytes]:
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(f"GET {target} HTTP/1.1\r\nHost: api.example:{port}\r\n\r\n".encode())
    head = (await r.readuntil(b"\r\n\r\n")).decode()
    lines = head.split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
    body = await r.readexactly(int(headers.get("content-length", 0)))
    w.close()
    return int(lines[0].split()[1]), headers, body


def test_https_only_routes_answer_426_or_redirect():
    async def main() -> None:
        gw = Gateway(_config())
        await gw.start(("127.0.0.1", 0))
        port = gw.address[1]
        try:
            status, headers, body = await _request(port, "/tls/x")
            assert status == 426
            assert json.loads(body) == {"message": "Please use HTTPS protocol"}
            assert headers["upgrade"] == "TLS/1.2, HTTP/1.1"
            status, headers, _ = await _request(port, "/moved/a?b=1")
            assert status == 308
            assert headers["location"] == "https://api.example/moved/a?b=1"
        finally:
            await gw.stop(timeout=1)

    asyncio.run(main())
