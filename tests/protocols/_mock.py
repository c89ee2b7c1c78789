"""Mock transports for the proxy's protocols (uvicorn tests/protocols/test_http.py style): no
sockets, no running loop. A ProxyCore is built from a real Snapshot whose only target is an
in-process one; its connector attaches a MockTransport, so a test plays the upstream too."""
from __future__ import annotations

import asyncio
from typing import Any

from fastgw._core.proxy import Limits, ProxyCore
from fastgw.config.snapshot import Compiler
from fastgw.gateway import load_config


class MockTransport:
    def __init__(self, protocol: Any = None, peer: tuple[str, int] = ("127.0.0.1", 40000)) -> None:
        self.protocol = protocol
        self.peer = peer
        self.buffer = bytearray()
        self.closed = False
        self.aborted = False
        self.reading = True
        self.high = 65536
        self.queued = 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.peer if name == "peername" else default

    def write(self, data: bytes) -> None:
        assert not self.closed, "write after close"
        self.buffer += data

    def take(self) -> bytes:
        out = bytes(self.buffer)
        self.buffer.clear()
        return out

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = self.aborted = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self.high = high or self.high

    def get_write_buffer_size(self) -> int:
        return self.queued


def feed(protocol: Any, data: bytes) -> None:
    """Deliver bytes the way uvloop does: get_buffer, copy, buffer_updated."""
    while data:
        buf = protocol.get_buffer(len(data))
        n = min(len(buf), len(data))
        assert n > 0, "the protocol offered no room"
        buf[:n] = data[:n]
        protocol.buffer_updated(n)
        data = data[n:]


#: Kong's request_buffering / response_buffering off: bodies stream (most tests watch that)
STREAMING_ROUTE = {"name": "r", "paths": ["/"], "request_buffering": False,
                   "response_buffering": False}


class Rig:
    """One ProxyCore, routes to the in-process target "python:up", upstream connections
    recorded in `ups` (each an UpstreamProtocol with a MockTransport)."""

    def __init__(self, routes: list[dict] | None = None, plugins: list[dict] | None = None,
                 **limits: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.core = ProxyCore(self.loop, limits=Limits(**limits),
                              inprocess_connect=self._connect)
        self.ups: list[Any] = []
        cfg = load_config({
            "_format_version": "3.0",
            "upstreams": [{"name": "u", "targets": [{"target": "python:up"}]}],
            "services": [{"name": "s", "host": "u", "retries": 2,
                          "routes": routes or [STREAMING_ROUTE]}],
            "plugins": plugins or [],
        })
        compiler = Compiler(self.core, handlers={"python:up": object()}, active_health=False)
        compiler.activate(compiler.compile(cfg))

    def _connect(self, handler: Any, protocol: Any, loop: Any) -> None:
        tr = MockTransport(protocol)
        protocol.connection_made(tr)
        self.ups.append((protocol, tr))

    def client(self) -> tuple[Any, MockTransport]:
        proto = self.core.protocol()
        tr = MockTransport(proto)
        proto.connection_made(tr)
        return proto, tr

    def up(self, i: int = -1) -> tuple[Any, MockTransport]:
        return self.ups[i]

    def close(self) -> None:
        self.loop.close()


def head_of(data: bytes) -> tuple[str, dict[str, str], bytes]:
    """(start line, lower-cased fields, body) of one message."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    fields = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        fields[k.strip().lower()] = v.strip()
    return lines[0], fields, body


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"
