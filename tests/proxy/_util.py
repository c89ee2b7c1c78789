"""Helpers for the proxy's end-to-end tests (real sockets on 127.0.0.1).

Only what tests/servers.py does not already have:
    kong(*services, upstreams=()) -> dict          a declarative config
    service(name, url, routes, **fields) / route(name, **fields)
    RawClient(port, timeout)                        a raw socket with a small, independent
        .send(bytes) / .read_response(method="GET") -> Resp / .read_all() / .closed()
    read_response(sock_reader, method) -> Resp      HTTP/1.x response reader (CL, chunked,
                                                     until close, no-body statuses)
    admin_status(gw) -> dict                        GET /status "server" object of a FastgwProcess
    wait_idle(gw, timeout)                           connections_active back to 0
    rss_kib(pid) -> int                              VmRSS of a process
    InProcessGateway(config)                         fastgw.gateway.Gateway on a uvloop loop in
        a background thread: .port / .core / .call(fn) (runs fn on the loop) / stop()
"""
from __future__ import annotations

import asyncio
import json
import socket
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from servers import HOST, free_port, http_get, wait_until

NO_ROUTE = "no Route matched with those values"
BAD_GATEWAY = "An invalid response was received from the upstream server"
TIMING_OUT = "The upstream server is timing out"


# ------------------------------------------------------------------------------- config helpers

def route(name: str, **fields: Any) -> dict:
    return {"name": name, **fields}


def service(name: str, url: str | None = None, routes: list[dict] | None = None,
            **fields: Any) -> dict:
    s: dict[str, Any] = {"name": name}
    if url is not None:
        s["url"] = url
    s.update(fields)
    s["routes"] = routes or []
    return s


def kong(*services: dict, upstreams: list[dict] | tuple = ()) -> dict:
    cfg: dict[str, Any] = {"_format_version": "3.0", "services": list(services)}
    if upstreams:
        cfg["upstreams"] = list(upstreams)
    return cfg


# ----------------------------------------------------------------------------- raw HTTP client

@dataclass
class Resp:
    status: int
    reason: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes
    chunked: bool = False
    complete: bool = True          # the framing said the body ended (not a cut connection)
    raw_head: bytes = b""
    chunk_sizes: list[int] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    def header_all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def json(self) -> Any:
        return json.loads(self.body)


class Incomplete(Exception):
    """The connection ended before the framing said the message ended."""

    def __init__(self, resp: Resp | None, msg: str) -> None:
        super().__init__(msg)
        self.resp = resp


class _Reader:
    """Buffered reads over a blocking socket (the socket's timeout bounds every read)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()
        self.eof = False

    def _fill(self) -> bool:
        if self.eof:
            return False
        try:
            data = self.sock.recv(1 << 16)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def until(self, sep: bytes) -> bytes | None:
        while True:
            i = self.buf.find(sep)
            if i >= 0:
                out = bytes(self.buf[:i + len(sep)])
                del self.buf[:i + len(sep)]
                return out
            if not self._fill():
                return None

    def exactly(self, n: int, sink: Callable[[bytes], None]) -> int:
        """Pass n bytes to sink; returns how many arrived before EOF."""
        got = 0
        while got < n:
            if not self.buf and not self._fill():
                return got
            take = min(n - got, len(self.buf))
            sink(bytes(self.buf[:take]))
            del self.buf[:take]
            got += take
        return got

    def rest(self, sink: Callable[[bytes], None]) -> None:
        while True:
            if self.buf:
                sink(bytes(self.buf))
                self.buf.clear()
            if not self._fill():
                return


def read_response(r: _Reader, method: str = "GET", keep_body: bool = True,
                  sink: Callable[[bytes], None] | None = None) -> Resp:
    """One response (1xx interim responses are returned too: the caller loops if it wants)."""
    head = r.until(b"\r\n\r\n")
    if head is None:
        raise Incomplete(None, f"connection ended before a response head ({bytes(r.buf)!r})")
    lines = head[:-4].decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code, _, reason = rest.partition(" ")
    headers = []
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers.append((k, v.strip()))
    resp = Resp(int(code), reason, version, headers, b"", raw_head=head)
    body = bytearray()

    def take(data: bytes) -> None:
        if sink is not None:
            sink(data)
        if keep_body:
            body.extend(data)

    status = resp.status
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return resp
    te = (resp.header("transfer-encoding") or "").lower()
    cl = resp.header("content-length")
    if te:
        resp.chunked = True
        while True:
            line = r.until(b"\r\n")
            if line is None:
                resp.body, resp.complete = bytes(body), False
                raise Incomplete(resp, "connection ended inside a chunked body")
            size = int(line.split(b";")[0].strip(), 16)
            resp.chunk_sizes.append(size)
            if size == 0:
                while True:
                    t = r.until(b"\r\n")
                    if t is None:
                        resp.body, resp.complete = bytes(body), False
                        raise Incomplete(resp, "connection ended inside the trailer")
                    if t == b"\r\n":
                        break
                break
            if r.exactly(size, take) < size or r.until(b"\r\n") != b"\r\n":
                resp.body, resp.complete = bytes(body), False
                raise Incomplete(resp, "connection ended inside a chunk")
    elif cl is not None:
        n = int(cl)
        if r.exactly(n, take) < n:
            resp.body, resp.complete = bytes(body), False
            raise Incomplete(resp, f"connection ended before Content-Length {n}")
    else:
        r.rest(take)
    resp.body = bytes(body)
    return resp


class RawClient:
    """A raw TCP client for byte-exact requests; every read bounded by `timeout`."""

    def __init__(self, port: int, timeout: float = 5.0) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = _Reader(self.sock)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_response(self, method: str = "GET", skip_interim: bool = True,
                      **kw: Any) -> Resp:
        while True:
            resp = read_response(self.reader, method, **kw)
            if not (skip_interim and 100 <= resp.status < 200):
                return resp

    def request(self, data: bytes, method: str = "GET", **kw: Any) -> Resp:
        self.send(data)
        return self.read_response(method, **kw)

    def read_all(self) -> bytes:
        out = bytearray()
        self.reader.rest(out.extend)
        return bytes(out)

    def closed(self, timeout: float = 2.0) -> bool:
        """True when the peer closed (EOF or reset) within `timeout` with nothing more sent."""
        self.sock.settimeout(timeout)
        try:
            data = bytes(self.reader.buf) or self.sock.recv(1)
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False
        return data == b""

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "RawClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def get(path: str, host: str = "example.test", extra: str = "", method: str = "GET",
        version: str = "HTTP/1.1") -> bytes:
    """A request head as bytes (extra: more header lines, each ending with CRLF)."""
    return f"{method} {path} {version}\r\nHost: {host}\r\n{extra}\r\n".encode("latin-1")


# ----------------------------------------------------------------------------- process probes

def admin_status(gw: Any) -> dict:
    status, _, body = http_get(gw.admin_url("/status"))
    assert status == 200, body
    return json.loads(body)["server"]


def wait_idle(gw: Any, timeout: float = 5.0) -> dict:
    """Wait until the proxy has no client connection and no request in flight."""
    last: dict = {}

    def idle() -> bool:
        nonlocal last
        last = admin_status(gw)
        return last["connections_active"] == 0 and last["requests_active"] == 0

    try:
        wait_until(idle, timeout, 0.05)
    except TimeoutError:
        raise AssertionError(f"proxy not idle after {timeout}s: {last}") from None
    return last


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


# ----------------------------------------------------------------------- in-process gateway

class InProcessGateway:
    """fastgw.gateway.Gateway on its own uvloop loop in a daemon thread (for tests that need to
    reach ProxyCore attributes the CLI has no option for, e.g. header_timeout)."""

    def __init__(self, config: Any, **gateway_kw: Any) -> None:
        self.config = config
        self.gateway_kw = gateway_kw
        self.loop: asyncio.AbstractEventLoop | None = None
        self.gw: Any = None
        self.port = 0
        self._thread: threading.Thread | None = None

    def start(self) -> "InProcessGateway":
        import uvloop

        from fastgw.gateway import Gateway

        self.loop = uvloop.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True,
                                        name="fastgw-inprocess")
        self._thread.start()
        self.gw = Gateway(self.config, active_health=False, **self.gateway_kw)
        self.port = free_port()
        self.run(self.gw.start(f"{HOST}:{self.port}"))
        return self

    def run(self, coro: Any, timeout: float = 10.0) -> Any:
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[[], Any], timeout: float = 5.0) -> Any:
        async def wrapper() -> Any:
            return fn()
        return self.run(wrapper(), timeout)

    @property
    def core(self) -> Any:
        return self.gw.core

    def stop(self) -> None:
        if self.loop is None:
            return
        try:
            self.run(self.gw.stop(timeout=2.0), timeout=10.0)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            assert self._thread is not None
            self._thread.join(5.0)
            self.loop.close()
            self.loop = None

    def __enter__(self) -> "InProcessGateway":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

