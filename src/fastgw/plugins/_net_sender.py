"""Fire-and-forget delivery of log payloads over TCP (optionally TLS), UDP or a unix datagram
socket, off the request path (tcp-log, udp-log, syslog, statsd).

The log phase calls :meth:`Sender.put` (a queue append, never I/O). One sender task per
destination and event loop takes payloads from the queue and writes them: over TCP on one
kept-alive connection (reconnected when it breaks or after ``keepalive`` ms idle, as Kong's
socket pool), over datagrams one payload per packet. A payload that cannot be delivered is
dropped with an error log, as Kong's timers do (no retry).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Hashable
from typing import Any

log = logging.getLogger("fastgw.plugins")

# Payloads waiting per destination when it is slower than the traffic; past it they are
# dropped and counted (Kong's queue max_entries default is 10000).
MAX_PENDING = 10_000


class Sender:
    """One destination in one event loop: ``kind`` is "tcp", "udp" or "unix_dgram"."""

    def __init__(
        self,
        kind: str,
        address: Any,
        loop: asyncio.AbstractEventLoop,
        *,
        timeout_ms: float = 10_000,
        keepalive_ms: float = 60_000,
        tls: bool = False,
        tls_sni: str | None = None,
        name: str = "log",
    ) -> None:
        self.kind = kind
        self.address = address
        self.loop = loop
        self.timeout = timeout_ms / 1000
        self.keepalive = keepalive_ms / 1000
        self.tls = tls
        self.tls_sni = tls_sni
        self.name = name
        self.q: asyncio.Queue[bytes] = asyncio.Queue(MAX_PENDING)
        self.dropped = 0
        self.sent = 0
        self.failed = 0
        self._busy = False
        self._writer: asyncio.StreamWriter | None = None
        self._sock: socket.socket | None = None
        self.task = loop.create_task(self._run())

    def put(self, payload: bytes) -> None:
        try:
            self.q.put_nowait(payload)
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("[%s] queue full, %d entries dropped", self.name, self.dropped)

    async def idle(self, timeout: float = 5.0) -> None:
        deadline = self.loop.time() + timeout
        while (not self.q.empty() or self._busy) and self.loop.time() < deadline:
            await asyncio.sleep(0.005)

    async def _run(self) -> None:
        try:
            while True:
                try:
                    payload = await asyncio.wait_for(self.q.get(), self.keepalive) if self._writer else await self.q.get()
                except asyncio.TimeoutError:
                    self._close_stream()  # idle past keepalive: give the connection back
                    continue
                self._busy = True
                try:
                    await self._send(payload)
                    self.sent += 1
                except Exception as e:  # refused, reset, timeout, DNS, TLS
                    self.failed += 1
                    self._close_stream()
                    log.error("[%s] failed to send data to %s: %s", self.name, _fmt(self.address), e or repr(e))
                self._busy = False
        finally:
            self._close_stream()
            if self._sock is not None:
                self._sock.close()

    async def _send(self, payload: bytes) -> None:
        if self.kind == "tcp":
            w = self._writer
            if w is None or w.is_closing():
                w = self._writer = await asyncio.wait_for(self._connect(), self.timeout)
            w.write(payload)
            await asyncio.wait_for(w.drain(), self.timeout)
            return
        sock = self._sock
        if sock is None:
            sock = self._sock = await self._datagram_socket()
        await asyncio.wait_for(self.loop.sock_sendall(sock, payload), self.timeout)

    async def _connect(self) -> asyncio.StreamWriter:
        host, port = self.address
        ctx = None
        if self.tls:
            # Kong's sslhandshake(false, tls_sni, false): no certificate verification
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        _, w = await asyncio.open_connection(host, port, ssl=ctx, server_hostname=(self.tls_sni or host) if ctx else None)
        return w

    async def _datagram_socket(self) -> socket.socket:
        if self.kind == "unix_dgram":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.setblocking(False)
            sock.connect(self.address)
            return sock
        host, port = self.address
        infos = await self.loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        family, stype, proto, _, addr = infos[0]
        sock = socket.socket(family, stype, proto)
        sock.setblocking(False)
        sock.connect(addr)
        return sock

    def _close_stream(self) -> None:
        w = self._writer
        self._writer = None
        if w is not None:
            w.close()


def _fmt(address: Any) -> str:
    return f"{address[0]}:{address[1]}" if isinstance(address, tuple) else str(address)


_senders: dict[tuple[int, Hashable], Sender] = {}


def sender_for(key: Hashable, make: Any) -> Sender | None:
    """The running loop's sender for ``key`` (``make(loop)`` builds it), or None off a loop."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    k = (id(loop), key)
    s = _senders.get(k)
    if s is None or s.loop is not loop or s.task.done():
        _forget_closed_loops(_senders)
        s = _senders[k] = make(loop)
    return s


def _forget_closed_loops(registry: dict[Any, Any]) -> None:
    """Drop the entries of loops that are gone (embedding and tests run many loops in one
    process; a kept entry would keep its whole loop alive)."""
    for k in [k for k, v in registry.items() if v.loop.is_closed()]:
        del registry[k]


async def flush_registry(registry: dict[Any, Any], timeout: float) -> None:
    """Wait until every sender of the running loop in `registry` has sent what it holds."""
    loop = asyncio.get_running_loop()
    for s in list(registry.values()):
        if s.loop is loop:
            await s.idle(timeout)


async def close_registry(registry: dict[Any, Any]) -> None:
    """Stop and forget every sender of the running loop in `registry` (at shutdown)."""
    loop = asyncio.get_running_loop()
    for k, s in list(registry.items()):
        if s.loop is loop:
            s.task.cancel()
            try:
                await s.task
            except (asyncio.CancelledError, Exception):
                pass
            del registry[k]


async def flush_all(timeout: float = 5.0) -> None:
    await flush_registry(_senders, timeout)


async def close_all() -> None:
    await close_registry(_senders)
