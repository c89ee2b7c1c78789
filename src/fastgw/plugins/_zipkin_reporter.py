"""zipkin's spans (kong/plugins/zipkin/span.lua) and their delivery: Zipkin v2 JSON arrays
POSTed to ``http_endpoint`` in batches from a queue, off the request path (Kong's queue
semantics: ``max_batch_size``, ``max_coalescing_delay``, ``max_entries``, retries with
backoff up to ``max_retry_time``)."""

from __future__ import annotations

import asyncio
import logging
import math
import os
from typing import Any

import orjson

from ._net_sender import _forget_closed_loops

log = logging.getLogger("fastgw.plugins")


class Span:
    __slots__ = ("kind", "name", "trace_id", "span_id", "parent_id", "timestamp", "duration",
                 "should_sample", "baggage", "tags", "annotations", "ip", "port", "service_name")

    def __init__(self, kind: str, name: str, start_mu: float, should_sample: bool, trace_id: bytes,
                 span_id: bytes | None = None, parent_id: bytes | None = None,
                 baggage: dict[str, str] | None = None) -> None:
        self.kind = kind
        self.name = name
        self.trace_id = trace_id
        self.span_id = span_id if span_id is not None else os.urandom(8)
        self.parent_id = parent_id
        self.timestamp = math.floor(start_mu)
        self.duration: int | None = None
        self.should_sample = should_sample
        self.baggage = baggage
        self.tags: dict[str, Any] = {}
        self.annotations: list[dict[str, Any]] = []
        self.ip: str | None = None
        self.port: int | None = None
        self.service_name: str | None = None

    def child(self, kind: str, name: str, start_mu: float) -> Span:
        return Span(kind, name, start_mu, self.should_sample, self.trace_id, os.urandom(8), self.span_id, self.baggage)

    def finish(self, end_mu: float) -> None:
        self.duration = max(0, math.floor(end_mu - self.timestamp))

    def set_tag(self, key: str, value: Any) -> None:
        if value is None:
            self.tags.pop(key, None)
        else:
            self.tags[key] = value

    def annotate(self, value: str, ts_mu: float) -> None:
        self.annotations.append({"value": value, "timestamp": math.floor(ts_mu)})

    def to_zipkin(self, local_service_name: str, default_service_name: str | None) -> dict[str, Any]:
        """reporter.lua's zipkin_span: tags as strings (empty ones dropped)."""
        tags = {k: _tag(v) for k, v in self.tags.items() if v != ""}
        service = self.service_name or default_service_name
        remote: dict[str, Any] | None = None
        if self.port is not None or service:
            remote = {}
            if service:
                remote["serviceName"] = service
            if self.port is not None:
                remote["port"] = self.port
            if self.ip:
                remote["ipv6" if ":" in self.ip else "ipv4"] = self.ip
        out: dict[str, Any] = {
            "traceId": self.trace_id.hex(),
            "name": self.name,
            "id": self.span_id.hex(),
            "kind": self.kind,
            "timestamp": self.timestamp,
            "duration": self.duration,
            "localEndpoint": {"serviceName": local_service_name},
            "remoteEndpoint": remote,
        }
        if self.parent_id is not None:
            out["parentId"] = self.parent_id.hex()
        if tags:
            out["tags"] = tags
        if self.annotations:
            out["annotations"] = self.annotations
        return out


def _tag(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


class Reporter:
    """One endpoint + queue config in one event loop."""

    def __init__(self, endpoint: str, queue: Any, timeouts_ms: tuple[int, int, int], loop: asyncio.AbstractEventLoop) -> None:
        self.endpoint = endpoint
        self.qc = queue
        self.timeouts = timeouts_ms
        self.loop = loop
        self.q: asyncio.Queue[dict[str, Any]] = asyncio.Queue(queue.max_entries)
        self.dropped = 0
        self.sent_batches = 0
        self._busy = False
        self.task = loop.create_task(self._run())

    def put(self, span: dict[str, Any]) -> None:
        try:
            self.q.put_nowait(span)
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("[zipkin] queue full, %d spans dropped", self.dropped)

    async def idle(self, timeout: float = 5.0) -> None:
        deadline = self.loop.time() + timeout
        while (not self.q.empty() or self._busy) and self.loop.time() < deadline:
            await asyncio.sleep(0.005)

    async def _run(self) -> None:
        import aiohttp

        connect, send, read = (t / 1000 for t in self.timeouts)
        timeout = aiohttp.ClientTimeout(sock_connect=connect, sock_read=max(send, read))
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                batch = [await self.q.get()]
                self._busy = True
                deadline = self.loop.time() + self.qc.max_coalescing_delay
                while len(batch) < self.qc.max_batch_size:
                    left = deadline - self.loop.time()
                    if left <= 0:
                        break
                    try:
                        batch.append(await asyncio.wait_for(self.q.get(), left))
                    except asyncio.TimeoutError:
                        break
                await self._send(session, orjson.dumps(batch))
                self._busy = False

    async def _send(self, session: Any, payload: bytes) -> None:
        delay = self.qc.initial_retry_delay
        started = self.loop.time()
        while True:
            try:
                async with session.post(self.endpoint, data=payload, headers={"content-type": "application/json"}) as r:
                    await r.read()
                    if 200 <= r.status < 300:
                        self.sent_batches += 1
                        return
                    err = f"zipkin server responded unexpectedly: {r.status} {r.reason}"
            except Exception as e:
                err = f"zipkin request failed: {e!r}"
            if self.loop.time() - started + delay > self.qc.max_retry_time:
                log.error("[zipkin] dropping batch: %s", err)
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.qc.max_retry_delay)


_reporters: dict[tuple[int, bytes], Reporter] = {}


def reporter_for(key: bytes, make: Any) -> Reporter | None:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    k = (id(loop), key)
    r = _reporters.get(k)
    if r is None or r.loop is not loop or r.task.done():
        _forget_closed_loops(_reporters)
        r = _reporters[k] = make(loop)
    return r
