"""The Admin API's own HTTP/1.1 listener (asyncio), separate from the proxy.

Rules:
- Loopback only unless an admin token is configured (Kong's admin_listen defaults to
  127.0.0.1:8001; an Admin API on a public address without auth is how gateways get owned).
- With a token, every request must carry it in `Kong-Admin-Token` (as Kong Enterprise) or it
  gets 401; the comparison is constant-time.
- Requests are parsed by the strict core parser (fastgw._core.http_parser.RequestParser):
  keep-alive, Content-Length and chunked bodies, pipelined requests answered in order.
  A parse error answers its status (400/413/414/431/501/505) and closes the connection.
- Bodies are bounded (MAX_BODY); an Admin API request is a config document at most.
"""
from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
from email.utils import formatdate
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs

import orjson

from fastgw._core.http_parser import EndOfMessage, HttpParseError, Request, RequestParser
from fastgw._core.http_parser import Data as BodyData
from fastgw.admin.app import JSON_CT, SERVER, AdminAPI

log = logging.getLogger("fastgw.admin")

# 64 MiB: a whole declarative config of tens of thousands of entities fits; nginx's default
# client_max_body_size is 1 MiB, Kong raises it for /config. Anything larger is refused (413).
MAX_BODY = 64 * 1024 * 1024
# requests parsed but not yet answered on one connection before reading pauses (pipelining)
MAX_PIPELINE = 16
TOKEN_HEADER = "kong-admin-token"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


class _Conn(asyncio.Protocol):
    def __init__(self, server: AdminServer) -> None:
        self.server = server
        self.parser = RequestParser()
        self.transport: asyncio.Transport | None = None
        self.queue: asyncio.Queue[tuple[Request, bytes] | None] = asyncio.Queue()
        self.cur: Request | None = None
        self.body: list[bytes] = []
        self.body_len = 0
        self.worker: asyncio.Task[None] | None = None
        self.closing = False
        self.paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop transports are not asyncio.Transport subclasses: no isinstance check here
        self.transport = transport
        self.server._conns.add(self)
        self.worker = asyncio.get_running_loop().create_task(self._work())

    def connection_lost(self, exc: Exception | None) -> None:
        self.server._conns.discard(self)
        self.closing = True
        if self.worker is not None:
            self.worker.cancel()

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        try:
            events = self.parser.feed(data)
        except HttpParseError as e:
            self._fail(e.status, e.reason)
            return
        for ev in events:
            if isinstance(ev, Request):
                self.cur = ev
                self.body = []
                self.body_len = 0
                if ev.content_length > MAX_BODY:
                    self._fail(413, "Request body too large")
                    return
                if ev.expect_continue and self.transport is not None:
                    self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            elif isinstance(ev, BodyData):
                self.body_len += len(ev.data)
                if self.body_len > MAX_BODY:
                    self._fail(413, "Request body too large")
                    return
                self.body.append(ev.data)
            elif isinstance(ev, EndOfMessage) and self.cur is not None:
                self.queue.put_nowait((self.cur, b"".join(self.body)))
                self.cur = None
                self.body = []
                if self.queue.qsize() >= MAX_PIPELINE and self.transport is not None:
                    self.transport.pause_reading()
                    self.paused = True

    def eof_received(self) -> bool | None:
        self.queue.put_nowait(None)  # answer what is queued, then close
        return True

    def _fail(self, status: int, reason: str) -> None:
        self.closing = True
        body = orjson.dumps({"message": reason})
        self._write(status, [("Content-Type", JSON_CT), ("Server", SERVER)], body, close=True)
        if self.transport is not None:
            self.transport.close()

    def _write(self, status: int, headers: list[tuple[str, str]], body: bytes,
               close: bool) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        lines = [f"HTTP/1.1 {status} {_reason(status)}", f"Date: {formatdate(usegmt=True)}"]
        has_len = False
        for k, v in headers:
            if k.lower() == "content-length":
                has_len = True
            lines.append(f"{k}: {v}")
        if not has_len and status not in (204, 304) and not 100 <= status < 200:
            lines.append(f"Content-Length: {len(body)}")
        if close:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.transport.write(head + body)

    async def _work(self) -> None:
        try:
            while True:
                item = await self.queue.get()
                if item is None:
                    break
                req, body = item
                if self.paused and self.queue.qsize() < MAX_PIPELINE // 2 and \
                        self.transport is not None:
                    self.transport.resume_reading()
                    self.paused = False
                status, headers, out = await self.server._respond(req, body)
                close = not req.keep_alive or self.server._closing
                self._write(status, headers, out, close)
                if close:
                    break
        except asyncio.CancelledError:
            pass
        finally:
            if self.transport is not None and not self.transport.is_closing():
                self.transport.close()


class AdminServer:
    """asyncio.Server-like: `close()`, `await wait_closed()`, `sockets`, `port`."""

    def __init__(self, api: AdminAPI, token: str | None) -> None:
        self.api = api
        self.token = token
        self._server: asyncio.base_events.Server | None = None
        self._conns: set[_Conn] = set()
        self._closing = False

    @property
    def sockets(self) -> Any:
        return self._server.sockets if self._server else ()

    @property
    def port(self) -> int:
        return int(self.sockets[0].getsockname()[1])

    async def _respond(self, req: Request, body: bytes) -> tuple[int, list[tuple[str, str]],
                                                                 bytes]:
        headers: dict[str, str] = {}
        for k, v in req.headers:
            name = k.decode("latin-1").lower()
            val = v.decode("latin-1")
            headers[name] = f"{headers[name]}, {val}" if name in headers else val
        if self.token is not None:
            given = headers.get(TOKEN_HEADER, "")
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                return 401, [("Content-Type", JSON_CT), ("Server", SERVER)], orjson.dumps(
                    {"message": "Invalid credentials. Token or User credentials required"})
        target = req.target.decode("latin-1")
        path, _, qs = target.partition("?")
        query = parse_qs(qs, keep_blank_values=True) if qs else {}
        return await self.api.handle(req.method.decode("latin-1"), path, query, headers, body)

    def close(self) -> None:
        self._closing = True
        if self._server is not None:
            self._server.close()
        for c in list(self._conns):
            if c.transport is not None:
                c.transport.close()

    async def wait_closed(self) -> None:
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> AdminServer:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()
        await self.wait_closed()


async def start_admin_server(api: AdminAPI, host: str = "127.0.0.1", port: int = 8001,
                             token: str | None = None, *, read_only: bool = False,
                             ssl: Any = None) -> AdminServer:
    """Listen for the Admin API. Refuses a non-loopback address unless `token` is set (or the
    API is the read-only status API, fastgw.admin.status)."""
    if not is_loopback(host) and not token and not read_only:
        raise ValueError(f"refusing to expose the Admin API on non-loopback address {host!r} "
                         "without an admin token (--admin-token)")
    srv = AdminServer(api, token or None)
    loop = asyncio.get_running_loop()
    srv._server = await loop.create_server(lambda: _Conn(srv), host, port, ssl=ssl)
    log.info("admin API listening on %s://%s:%d", "https" if ssl else "http", host, srv.port)
    return srv
