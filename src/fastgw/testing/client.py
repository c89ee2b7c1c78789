"""A tiny HTTP/1.1 client over asyncio streams, so tests need nothing but fastgw.

Responses are parsed with fastgw's own strict ResponseParser. Keep-alive connections are
reused; a reused connection that turns out closed before any byte of the response is retried
once on a fresh one (as browsers and aiohttp do). Not a general-purpose client: whole bodies
are read into memory and every request has a deadline.
"""
from __future__ import annotations

import asyncio
import json
from typing import Any, Iterable, Mapping, NamedTuple

from fastgw._core.http_parser import (
    Data,
    EndOfMessage,
    HttpParseError,
    Response,
    ResponseParser,
)

#: per-request deadline by default (seconds): a test waits this long at most
DEFAULT_TIMEOUT = 10.0


class CIHeaders(dict):
    """Response headers: lower-cased names -> value (repeated fields joined with ", ",
    RFC 9110 5.3); every raw line is in ``.raw`` and ``get_all()`` reads them one by one."""

    raw: list[tuple[str, str]]

    def __init__(self, raw: list[tuple[str, str]]) -> None:
        super().__init__()
        self.raw = raw
        for k, v in raw:
            k = k.lower()
            super().__setitem__(k, v if k not in self else self[k] + ", " + v)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(key.lower(), default)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())

    def get_all(self, key: str) -> list[str]:
        k = key.lower()
        return [v for n, v in self.raw if n.lower() == k]


class ClientResponse(NamedTuple):
    """``status, headers, body = await client.get(...)``."""

    status: int
    headers: CIHeaders
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode()


class _Conn:
    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def close(self) -> None:
        self.writer.close()


class HttpClient:
    """``await client.get(path, headers=...)``, ``.post(path, body=..., json=...)``,
    ``.request(method, path, ...)`` -> ClientResponse. ``client.gateway`` is set by
    fastgw.testing.gateway_client."""

    def __init__(self, host: str, port: int, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.gateway: Any = None
        self._idle: list[_Conn] = []

    async def get(self, path: str, **kw: Any) -> ClientResponse:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, **kw: Any) -> ClientResponse:
        return await self.request("POST", path, **kw)

    async def put(self, path: str, **kw: Any) -> ClientResponse:
        return await self.request("PUT", path, **kw)

    async def delete(self, path: str, **kw: Any) -> ClientResponse:
        return await self.request("DELETE", path, **kw)

    async def head(self, path: str, **kw: Any) -> ClientResponse:
        return await self.request("HEAD", path, **kw)

    async def request(self, method: str, path: str, *,
                      headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
                      body: bytes | str | None = None, json: Any = None,
                      timeout: float | None = None) -> ClientResponse:
        if json is not None:
            import json as _json

            body = _json.dumps(json).encode()
            headers = [*(_items(headers)), ("Content-Type", "application/json")]
        if isinstance(body, str):
            body = body.encode()
        head = self._head(method, path, headers, body)
        deadline = timeout if timeout is not None else self.timeout
        return await asyncio.wait_for(self._exchange(method, head, body), deadline)

    def _head(self, method: str, path: str, headers: Any, body: bytes | None) -> bytes:
        lines = [f"{method} {path} HTTP/1.1"]
        names = set()
        for k, v in _items(headers):
            names.add(k.lower())
            lines.append(f"{k}: {v}")
        if "host" not in names:
            lines.append(f"Host: {self.host}:{self.port}")
        if body is not None and "content-length" not in names \
                and "transfer-encoding" not in names:
            lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    async def _exchange(self, method: str, head: bytes, body: bytes | None) -> ClientResponse:
        reused = bool(self._idle)
        conn = self._idle.pop() if reused else await self._connect()
        try:
            return await self._send(conn, method, head, body)
        except _ClosedBeforeResponse:
            conn.close()
            if not reused:
                raise ConnectionError("the server closed the connection without a response")
            # a keep-alive connection the server had closed: one retry on a fresh one
            conn = await self._connect()
            try:
                return await self._send(conn, method, head, body)
            except _ClosedBeforeResponse:
                conn.close()
                raise ConnectionError("the server closed the connection without a response")
        except BaseException:
            conn.close()
            raise

    async def _connect(self) -> _Conn:
        r, w = await asyncio.open_connection(self.host, self.port)
        return _Conn(r, w)

    async def _send(self, conn: _Conn, method: str, head: bytes,
                    body: bytes | None) -> ClientResponse:
        conn.writer.write(head + body if body else head)
        parser = ResponseParser()
        parser.set_request_method(method.encode())
        resp: Response | None = None
        chunks: list[bytes] = []
        got_any = False
        while True:
            data = await conn.reader.read(65536)
            if not data:
                if not got_any:
                    raise _ClosedBeforeResponse()
                try:
                    events = parser.feed_eof()
                except HttpParseError:
                    raise ConnectionError("connection closed in the middle of the response") \
                        from None
                done = any(type(e) is EndOfMessage for e in events)
                chunks.extend(e.data for e in events if type(e) is Data)
                if not done:
                    raise ConnectionError("connection closed in the middle of the response")
                conn.close()
                break
            got_any = True
            done = False
            for ev in parser.feed(data):
                t = type(ev)
                if t is Response:
                    if ev.status < 200:     # interim (100 Continue): wait for the real one
                        continue
                    resp = ev
                elif t is Data:
                    chunks.append(ev.data)
                elif t is EndOfMessage and resp is not None:
                    done = True
            if done:
                if resp is not None and resp.keep_alive:
                    self._idle.append(conn)
                else:
                    conn.close()
                break
        assert resp is not None
        hdrs = CIHeaders([(k.decode("latin-1"), v.decode("latin-1")) for k, v in resp.headers])
        return ClientResponse(resp.status, hdrs, b"".join(chunks))

    async def close(self) -> None:
        conns, self._idle = self._idle, []
        for c in conns:
            c.close()
        for c in conns:
            try:
                await c.writer.wait_closed()
            except (ConnectionError, OSError):
                pass

    async def __aenter__(self) -> "HttpClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()


class _ClosedBeforeResponse(ConnectionError):
    pass


def _items(headers: Any) -> list[tuple[str, str]]:
    if headers is None:
        return []
    if isinstance(headers, Mapping):
        return [(str(k), str(v)) for k, v in headers.items()]
    return [(str(k), str(v)) for k, v in headers]
