"""In-process targets: ASGI apps and plain async handlers behind the proxy, with no socket hop.

The proxy treats an in-process target exactly like a network one: it creates its
``UpstreamProtocol`` and, instead of ``loop.create_connection``, calls
``open_inprocess(handler, protocol, loop)``. Everything above the transport (keep-alive reuse,
timeouts, retries, passive health, plugins, balancing) is unchanged because the bytes are the
same HTTP/1.1 bytes a socket would carry.

Rules of this module:
- The proxy's calls into the transport (``write``, ``close``, ``pause_reading`` ...) never call
  back into the proxy synchronously; anything that would (delivering bytes, ``connection_lost``,
  flow control) is deferred with ``loop.call_soon`` or happens from the app's own task.
  The proxy's state machine is written for a socket and a socket never re-enters it.
- Bodies are streamed both ways, never buffered whole. Request bytes the app has not taken yet
  are bounded by ``HIGH_WATER`` (above it the proxy is told ``pause_writing()`` and stops reading
  its client); response bytes the proxy cannot take (it paused reading because its client is
  slow) are bounded the same way by making the app's ``send()`` wait.
- One request at a time per connection, as HTTP/1.1 without pipelining; the proxy reuses a
  connection only after a response that allowed it.
- App failures map to what a socket would show: an exception before the response started ->
  a 500 response; after it started -> the connection is aborted (the proxy then truncates the
  client's response, as for an upstream that died mid-body). ``AbortConnection`` raised by an app
  resets the connection at any point (used by fastgw.testing to simulate resets).
"""
from __future__ import annotations

import asyncio
import collections
import logging
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable, Mapping
from urllib.parse import unquote

from fastgw._core.http_parser import (
    Data,
    EndOfMessage,
    HttpParseError,
    Request as _ParsedRequest,
    RequestParser,
)

log = logging.getLogger("fastgw.inprocess")

#: bytes queued in one direction before the producer is asked to wait (asyncio's default
#: transport high-water mark is 64 KiB; uvicorn's flow control uses the same)
HIGH_WATER = 64 * 1024
#: resume the producer once the queue drains below this (asyncio: high // 4)
LOW_WATER = HIGH_WATER // 4

_ASGI = {"version": "3.0", "spec_version": "2.3"}
_NO_BODY_STATUS = frozenset((204, 304))
_REASONS: dict[int, bytes] = {}


def _reason(status: int) -> bytes:
    r = _REASONS.get(status)
    if r is None:
        from http import HTTPStatus

        try:
            r = HTTPStatus(status).phrase.encode()
        except ValueError:
            r = b"Unknown"
        _REASONS[status] = r
    return r


class AbortConnection(Exception):
    """Raised by an in-process app to reset its connection (as a socket RST would): the proxy
    sees the upstream connection die, before or after the response started."""


# -------------------------------------------------------------------------------------------
# the transport the proxy writes to
# -------------------------------------------------------------------------------------------
class InProcessTransport(asyncio.Transport):
    """The asyncio.Transport surface the proxy's UpstreamProtocol uses, backed by an app.

    Works with a BufferedProtocol (the proxy: ``get_buffer``/``buffer_updated``) and with a
    plain Protocol (``data_received``, e.g. asyncio streams in ``open_connection``)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, protocol: Any, app: Callable,
                 name: str = "inprocess") -> None:
        super().__init__()
        self._loop = loop
        self._protocol = protocol
        self._buffered = hasattr(protocol, "get_buffer")
        self._closing = False
        self._lost = False
        self._reading_paused = False
        self._pending: collections.deque[bytes] = collections.deque()  # response bytes held
        self._pending_size = 0
        self._send_waiter: asyncio.Future[None] | None = None
        self._flush_scheduled = False
        self._extra = {"peername": (name, 0), "sockname": (name, 0), "inprocess": True}
        self._conn = _Connection(self, app, loop)

    # -- proxy -> app ------------------------------------------------------------------------
    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing:
            return
        self._conn.feed(data)

    def writelines(self, list_of_data: Iterable[bytes]) -> None:
        for d in list_of_data:
            self.write(d)

    def can_write_eof(self) -> bool:
        return False

    def write_eof(self) -> None:
        raise NotImplementedError("in-process connections do not half-close")

    def get_write_buffer_size(self) -> int:
        return self._conn.queued

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return LOW_WATER, HIGH_WATER

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass  # fixed marks: the proxy never sets them

    # -- app -> proxy ------------------------------------------------------------------------
    def pause_reading(self) -> None:
        self._reading_paused = True

    def resume_reading(self) -> None:
        if not self._reading_paused:
            return
        self._reading_paused = False
        # deferred: the proxy calls this from inside its own processing
        if self._pending and not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def is_reading(self) -> bool:
        return not self._reading_paused and not self._closing

    def _deliver(self, data: bytes) -> None:
        """Response bytes from the app (called from the app's task, never from the proxy)."""
        if self._lost or not data:
            return
        if self._reading_paused or self._pending:
            self._pending.append(data)
            self._pending_size += len(data)
            return
        self._push(data)

    def _push(self, data: bytes) -> None:
        # the proxy takes bytes synchronously: copy into its buffer until all is delivered,
        # stopping if it pauses reading or closes meanwhile
        proto = self._protocol
        if not self._buffered:
            proto.data_received(bytes(data))
            return
        mv = memoryview(data)
        while mv:
            if self._lost:
                return
            if self._reading_paused:
                rest = bytes(mv)
                self._pending.appendleft(rest)
                self._pending_size += len(rest)
                return
            buf = proto.get_buffer(len(mv))
            n = min(len(buf), len(mv))
            if n == 0:
                # a full receive buffer without pause_reading(): the proxy cannot take more
                # (its head limit is below its buffer size); treat as a protocol error
                self._fail(ConnectionError("upstream protocol buffer full"))
                return
            buf[:n] = mv[:n]
            mv = mv[n:]
            proto.buffer_updated(n)

    def _flush(self) -> None:
        self._flush_scheduled = False
        while self._pending and not self._reading_paused and not self._lost:
            data = self._pending.popleft()
            self._pending_size -= len(data)
            self._push(data)
        if self._pending_size < LOW_WATER:
            self._wake_sender()
        if self._closing and not self._pending and not self._lost:
            self._finish(None)   # a Connection: close response is now fully delivered

    async def _wait_writable(self) -> None:
        """The app's send() waits here while the proxy holds too many undelivered bytes."""
        while self._pending_size > HIGH_WATER and not self._lost:
            if self._send_waiter is None or self._send_waiter.done():
                self._send_waiter = self._loop.create_future()
            await self._send_waiter

    def _wake_sender(self) -> None:
        w = self._send_waiter
        if w is not None and not w.done():
            w.set_result(None)

    def _eof(self) -> None:
        """The app side ended the connection cleanly (after a Connection: close response)."""
        if self._lost:
            return
        if not self._pending:
            self._finish(None)
        else:
            self._closing = True  # ignore further requests; flush then finish

    # -- lifecycle ---------------------------------------------------------------------------
    def close(self) -> None:
        if self._closing and self._lost:
            return
        self._closing = True
        self._pending.clear()
        self._pending_size = 0
        self._conn.disconnect()
        if not self._lost:
            self._lost = True
            self._wake_sender()
            self._loop.call_soon(self._protocol.connection_lost, None)

    def abort(self) -> None:
        self.close()

    def is_closing(self) -> bool:
        return self._closing

    def _fail(self, exc: BaseException | None) -> None:
        """The app side broke the connection (reset): the proxy sees connection_lost(exc)."""
        if self._lost:
            return
        self._closing = True
        self._lost = True
        self._pending.clear()
        self._pending_size = 0
        self._wake_sender()
        self._conn.disconnect()
        self._loop.call_soon(self._protocol.connection_lost, exc)

    def _finish(self, exc: BaseException | None) -> None:
        self._fail(exc)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._extra.get(name, default)

    def set_protocol(self, protocol: Any) -> None:
        self._protocol = protocol
        self._buffered = hasattr(protocol, "get_buffer")

    def get_protocol(self) -> Any:
        return self._protocol

    def __repr__(self) -> str:
        state = "closed" if self._lost else "open"
        return f"<InProcessTransport {self._extra['peername'][0]} {state}>"


# -------------------------------------------------------------------------------------------
# one connection: parse what the proxy writes, run one exchange at a time
# -------------------------------------------------------------------------------------------
class _Connection:
    __slots__ = ("transport", "app", "loop", "parser", "current", "waiting", "queued",
                 "write_paused", "dead", "_running")

    def __init__(self, transport: InProcessTransport, app: Callable,
                 loop: asyncio.AbstractEventLoop) -> None:
        self.transport = transport
        self.app = app
        self.loop = loop
        # the proxy sends well-formed heads with Host; the limits only bound memory
        self.parser = RequestParser()
        self.current: _Exchange | None = None        # the exchange receiving body bytes
        self.waiting: collections.deque[_Exchange] = collections.deque()  # not yet started
        self.queued = 0          # request body bytes the app has not taken yet
        self.write_paused = False
        self.dead = False
        self._running: _Exchange | None = None   # the exchange whose app task runs

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        try:
            events = self.parser.feed(data)
        except HttpParseError as e:
            log.error("in-process target: the proxy sent an unparseable request: %s", e)
            self.dead = True
            self.loop.call_soon(self.transport._fail, ConnectionError(str(e)))
            return
        for ev in events:
            cls = type(ev)
            if cls is Data:
                ex = self.current
                if ex is not None:
                    ex.push_body(ev.data)  # type: ignore[union-attr]
            elif cls is _ParsedRequest:
                ex = _Exchange(self, ev)
                self.current = ex
                if self.waiting or self._busy():
                    self.waiting.append(ex)
                else:
                    ex.start()
            elif cls is EndOfMessage:
                ex = self.current
                if ex is not None:
                    ex.end_body()
                self.current = None

    def _busy(self) -> bool:
        return self._running is not None

    def exchange_done(self, ex: "_Exchange", keep_alive: bool) -> None:
        if self._running is ex:
            self._running = None
        if not keep_alive:
            self.transport._eof()
            return
        if self.waiting and not self.dead:
            self.waiting.popleft().start()

    # request-body flow control towards the proxy (UpstreamProtocol.pause_writing)
    def add_queued(self, n: int) -> None:
        self.queued += n
        if self.queued > HIGH_WATER and not self.write_paused:
            self.write_paused = True
            # deferred: we are inside the proxy's transport.write()
            self.loop.call_soon(self._call_flow, "pause_writing")

    def take_queued(self, n: int) -> None:
        self.queued -= n
        if self.write_paused and self.queued <= LOW_WATER:
            self.write_paused = False
            self.loop.call_soon(self._call_flow, "resume_writing")

    def _call_flow(self, name: str) -> None:
        if not self.transport._lost:
            getattr(self.transport._protocol, name)()

    def disconnect(self) -> None:
        self.dead = True
        running = self._running
        if running is not None:
            running.disconnect()
        if self.current is not None and self.current is not running:
            self.current.disconnect()
        for ex in self.waiting:
            ex.disconnect()
        self.waiting.clear()


class _Exchange:
    """One request/response: the ASGI receive/send pair and the response serializer."""

    __slots__ = ("conn", "req", "body", "body_done", "disconnected", "waiter", "started",
                 "head", "chunked", "remaining", "complete", "keep_alive", "no_body",
                 "task", "_request_sent")

    def __init__(self, conn: _Connection, req: Any) -> None:
        self.conn = conn
        self.req = req
        self.body: collections.deque[bytes] = collections.deque()
        self.body_done = req.body_kind == 0
        self.disconnected = False
        self.waiter: asyncio.Future[None] | None = None
        self.started = False
        self.head: bytes | None = None
        self.chunked = False
        self.remaining = -1
        self.complete = False
        self.keep_alive = req.keep_alive
        self.no_body = req.method == b"HEAD"
        self.task: asyncio.Task[None] | None = None
        self._request_sent = False

    # -- proxy side ----------------------------------------------------------------------------
    def start(self) -> None:
        conn = self.conn
        conn._running = self
        self.task = conn.loop.create_task(self.run())

    def push_body(self, data: bytes) -> None:
        if self.disconnected or self.complete and self._request_sent:
            return
        self.body.append(data)
        self.conn.add_queued(len(data))
        self._wake()

    def end_body(self) -> None:
        self.body_done = True
        self._wake()

    def disconnect(self) -> None:
        if not self.disconnected:
            self.disconnected = True
            self._wake()

    def _wake(self) -> None:
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(None)

    # -- ASGI ----------------------------------------------------------------------------------
    def scope(self) -> dict[str, Any]:
        req = self.req
        target: bytes = req.target
        raw_path, _, query = target.partition(b"?")
        if b"%" in raw_path:
            path = unquote(raw_path.decode("ascii", "surrogateescape"))
        else:
            path = raw_path.decode("latin-1")
        headers = []
        client = None
        for name, value in req.headers:
            lname = name.lower()
            headers.append((lname, value))
            if lname == b"x-forwarded-for":
                # the proxy appends the client's address last (Kong's behaviour)
                client = (value.rpartition(b",")[2].strip().decode("latin-1"), 0)
        return {
            "type": "http",
            "asgi": _ASGI,
            "http_version": "1.1" if req.version[1] else "1.0",
            "method": req.method.decode("ascii"),
            "scheme": "http",
            "path": path,
            "raw_path": raw_path,
            "query_string": query,
            "root_path": "",
            "headers": headers,
            "client": client,
            "server": None,
            "extensions": {},
        }

    async def receive(self) -> dict[str, Any]:
        while True:
            if self.disconnected:
                return {"type": "http.disconnect"}
            if self.body:
                data = self.body.popleft() if len(self.body) == 1 else b"".join(self.body)
                self.body.clear()
                self.conn.take_queued(len(data))
                more = not self.body_done
                if not more:
                    self._request_sent = True
                return {"type": "http.request", "body": data, "more_body": more}
            if self.body_done and not self._request_sent:
                self._request_sent = True
                return {"type": "http.request", "body": b"", "more_body": False}
            # nothing to give: wait for body bytes, or (after the whole request) for the end
            # of the exchange, which ASGI reports as http.disconnect
            self.waiter = self.conn.loop.create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None

    async def send(self, message: Mapping[str, Any]) -> None:
        t = message["type"]
        tr = self.conn.transport
        if t == "http.response.start":
            if self.started:
                raise RuntimeError("http.response.start sent twice")
            self.started = True
            if self.disconnected:
                return
            self._start(message.get("status", 200), message.get("headers") or ())
        elif t == "http.response.body":
            if not self.started:
                raise RuntimeError("http.response.body before http.response.start")
            if self.complete:
                raise RuntimeError("http.response.body after the response completed")
            if self.disconnected:
                return
            body = message.get("body", b"")
            more = message.get("more_body", False)
            self._body(bytes(body) if not isinstance(body, bytes) else body, more)
            if tr._pending_size > HIGH_WATER:
                await tr._wait_writable()
        else:
            # http.response.trailers / pathsend etc. are not advertised in scope extensions
            raise RuntimeError(f"unsupported ASGI message type {t!r}")

    def _start(self, status: int, headers: Iterable[tuple[bytes, bytes]]) -> None:
        parts = [b"HTTP/1.1 %d %s\r\n" % (status, _reason(status))]
        clen = -1
        for name, value in headers:
            lname = name.lower()
            if lname == b"content-length":
                clen = int(value)
                continue  # re-added with the framing below
            elif lname == b"transfer-encoding":
                continue  # the framing is ours to choose
            elif lname == b"connection" and b"close" in value.lower():
                self.keep_alive = False
            parts.append(name + b": " + value + b"\r\n")
        if status in _NO_BODY_STATUS or status < 200:
            self.no_body = True
        self.remaining = clen
        self.head = b"".join(parts)   # sent with the first body bytes (one delivery)

    def _body(self, body: bytes, more: bool) -> None:
        tr = self.conn.transport
        out: list[bytes] = []
        if self.head is not None:
            head, self.head = self.head, None
            if self.no_body:
                # HEAD keeps the length the app announced; 1xx/204/304 carry no framing
                if self.remaining >= 0 and self.req.method == b"HEAD":
                    head += b"Content-Length: %d\r\n\r\n" % self.remaining
                else:
                    head += b"\r\n"
                self.remaining = 0
            elif self.remaining >= 0:
                head += b"Content-Length: %d\r\n\r\n" % self.remaining
            elif not more:
                # the whole body in one message: a length beats chunked framing
                self.remaining = len(body)
                head += b"Content-Length: %d\r\n\r\n" % self.remaining
            else:
                self.chunked = True
                head += b"Transfer-Encoding: chunked\r\n\r\n"
            out.append(head)
        if self.no_body:
            body = b""
        if body:
            if self.chunked:
                out.append(b"%x\r\n" % len(body))
                out.append(body)
                out.append(b"\r\n")
            else:
                if len(body) > self.remaining:
                    raise RuntimeError("response body longer than its Content-Length")
                self.remaining -= len(body)
                out.append(body)
        if not more:
            if self.chunked:
                out.append(b"0\r\n\r\n")
            elif self.remaining > 0:
                raise RuntimeError("response body shorter than its Content-Length")
            self.complete = True
        data = out[0] if len(out) == 1 else b"".join(out)
        tr._deliver(data)

    async def run(self) -> None:
        conn = self.conn
        try:
            await conn.app(self.scope(), self.receive, self.send)
            if not self.complete and not self.disconnected:
                if self.started:
                    raise RuntimeError("the app returned before finishing its response")
                raise RuntimeError("the app returned without a response")
        except AbortConnection:
            conn.transport._fail(ConnectionResetError("in-process app reset the connection"))
            return
        except Exception as exc:
            if self.disconnected:
                return
            if not self.started or self.head is not None:
                log.exception("in-process app failed before its response started: 500")
                self.started = True
                self.head = None
                self.keep_alive = False
                body = b"Internal Server Error"
                conn.transport._deliver(
                    b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\n"
                    b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
                self.complete = True
                conn.exchange_done(self, False)
            else:
                log.exception("in-process app failed mid-response: connection aborted")
                conn.transport._fail(ConnectionResetError(f"in-process app failed: {exc!r}"))
            return
        if self.disconnected:
            conn.exchange_done(self, False)
            return
        self.disconnect()  # after the response: a later receive() says http.disconnect
        conn.exchange_done(self, self.keep_alive)


# -------------------------------------------------------------------------------------------
# plain Python handlers
# -------------------------------------------------------------------------------------------
class Headers:
    """Request headers: case-insensitive lookup over the raw (name, value) list."""

    __slots__ = ("raw",)

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self.raw = raw

    def get(self, name: str, default: str | None = None) -> str | None:
        n = name.lower().encode("latin-1")
        for k, v in self.raw:
            if k == n:
                return v.decode("latin-1")
        return default

    def get_all(self, name: str) -> list[str]:
        n = name.lower().encode("latin-1")
        return [v.decode("latin-1") for k, v in self.raw if k == n]

    def items(self) -> list[tuple[str, str]]:
        return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in self.raw]

    def __getitem__(self, name: str) -> str:
        v = self.get(name)
        if v is None:
            raise KeyError(name)
        return v

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __repr__(self) -> str:
        return f"Headers({self.items()!r})"


class Request:
    """What a ``python:<name>`` handler receives.

    ``method`` ("GET"), ``path`` (percent-decoded), ``raw_path`` (bytes), ``query`` (the raw
    query string without '?'), ``headers`` (case-insensitive ``Headers``), ``client`` (the
    client's address from X-Forwarded-For, or None). The body is streamed:
    ``await request.body()`` reads it whole, ``async for chunk in request.stream()`` piece by
    piece (one of the two, once).
    """

    __slots__ = ("method", "path", "raw_path", "query", "headers", "client", "_receive",
                 "_consumed")

    def __init__(self, scope: Mapping[str, Any], receive: Callable[[], Awaitable[dict]]) -> None:
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.raw_path: bytes = scope["raw_path"]
        self.query: str = scope["query_string"].decode("latin-1")
        self.headers = Headers(scope["headers"])
        c = scope.get("client")
        self.client: str | None = c[0] if c else None
        self._receive = receive
        self._consumed = False

    async def stream(self) -> AsyncIterator[bytes]:
        if self._consumed:
            raise RuntimeError("the request body was already read")
        self._consumed = True
        while True:
            msg = await self._receive()
            if msg["type"] == "http.disconnect":
                raise ConnectionError("the proxy closed the connection")
            if msg["body"]:
                yield msg["body"]
            if not msg.get("more_body", False):
                return

    async def body(self) -> bytes:
        return b"".join([c async for c in self.stream()])

    async def json(self) -> Any:
        import json

        return json.loads(await self.body())


class Response:
    """What a ``python:<name>`` handler returns.

    ``Response(status=200, headers={"content-type": "text/plain"}, body=b"...")``; ``body`` is
    bytes, str (UTF-8) or an async iterator of bytes (streamed, chunked framing). ``headers`` is
    a mapping or a list of (name, value) pairs. A handler may also return bytes/str (200).
    """

    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int = 200,
                 headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
                 body: bytes | str | AsyncIterator[bytes] = b"") -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        h = self.headers
        if h is None:
            return []
        items = h.items() if isinstance(h, Mapping) else h
        return [(_b(k), _b(v)) for k, v in items]


def _b(v: str | bytes) -> bytes:
    return v if isinstance(v, bytes) else str(v).encode("latin-1")


Handler = Callable[[Request], Awaitable["Response | bytes | str"]]


def python_app(handler: Handler) -> Callable:
    """Adapt ``async def handler(request) -> Response`` to ASGI 3."""

    async def app(scope: dict, receive: Callable, send: Callable) -> None:
        resp = await handler(Request(scope, receive))
        if not isinstance(resp, Response):
            resp = Response(200, None, resp)
        body = resp.body
        if isinstance(body, str):
            body = body.encode()
        await send({"type": "http.response.start", "status": resp.status,
                    "headers": resp.raw_headers()})
        if isinstance(body, (bytes, bytearray, memoryview)):
            await send({"type": "http.response.body", "body": bytes(body)})
            return
        async for chunk in body:
            if chunk:
                await send({"type": "http.response.body", "body": _b(chunk), "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    app.__fastgw_handler__ = handler  # type: ignore[attr-defined]
    return app


# -------------------------------------------------------------------------------------------
# entry points
# -------------------------------------------------------------------------------------------
_adapted: dict[int, tuple[Any, Callable]] = {}


def as_asgi(handler: Any) -> Callable:
    """The ASGI app for a registered handler. ASGI apps take (scope, receive, send); a
    ``python:`` handler takes (request): told apart once by signature and cached (the Pool
    keeps the registered object, not its scheme). ``wrap("python:x", h)`` makes it explicit."""
    cached = getattr(handler, "__fastgw_asgi__", None)
    if cached is not None:
        return cached
    hit = _adapted.get(id(handler))
    if hit is not None and hit[0] is handler:
        return hit[1]
    app = python_app(handler) if _positional_arity(handler) == 1 else handler
    _adapted[id(handler)] = (handler, app)
    return app


def _positional_arity(fn: Any) -> int:
    import inspect

    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return 3
    n = 0
    for p in sig.parameters.values():
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty:
            n += 1
        elif p.kind == p.VAR_POSITIONAL:
            return 3
    return n


def open_inprocess(handler: Any, protocol: Any, loop: asyncio.AbstractEventLoop,
                   name: str = "inprocess") -> InProcessTransport:
    """Connect `protocol` (the proxy's UpstreamProtocol, or any asyncio protocol) to an
    in-process handler and call ``protocol.connection_made(transport)``. The handler is an
    ASGI 3 app, or a ``python:`` handler wrapped by ``wrap(kind, handler)``."""
    tr = InProcessTransport(loop, protocol, as_asgi(handler), name)
    protocol.connection_made(tr)
    return tr


def wrap(name: str, handler: Any) -> Any:
    """What the Gateway should register for a target named `name`: ASGI apps unchanged,
    ``python:`` handlers adapted once (the adapter is cached on a wrapper object)."""
    scheme = name.partition(":")[0]
    if scheme == "python":
        return _PythonTarget(handler)
    return handler


class _PythonTarget:
    """A python: handler with its ASGI adapter attached (so the adapter is built once)."""

    __slots__ = ("handler", "__fastgw_asgi__")

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.__fastgw_asgi__ = python_app(handler)

    def __repr__(self) -> str:
        return f"<python handler {self.handler!r}>"


async def open_connection(handler: Any, *, limit: int = 2 ** 16,
                          name: str = "inprocess"
                          ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """``asyncio.open_connection`` to an in-process handler: HTTP/1.1 bytes over streams.
    Used by active health checks of in-process targets, and handy in tests."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=limit, loop=loop)
    protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
    tr = open_inprocess(handler, protocol, loop, name)
    writer = asyncio.StreamWriter(tr, protocol, reader, loop)
    return reader, writer


__all__ = ["AbortConnection", "Headers", "InProcessTransport", "Request", "Response",
           "open_connection", "open_inprocess", "python_app", "wrap", "HIGH_WATER"]
