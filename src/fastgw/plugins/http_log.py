"""http-log: send Kong log entries to an HTTP endpoint in batches, off the request path (Kong).

The log phase only serialises the entry and puts it in an in-memory queue (bounded by
``queue.max_entries``; overflow is dropped and counted). One sender task per endpoint
configuration and event loop takes up to ``queue.max_batch_size`` entries, waiting at most
``queue.max_coalescing_delay`` seconds for a batch to fill, and sends them with aiohttp:
a single JSON object when ``max_batch_size`` is 1, else a JSON array (Kong 3.x). Failed sends
(connection errors, non-2xx) are retried with exponential backoff from
``initial_retry_delay`` up to ``max_retry_delay`` for at most ``max_retry_time`` seconds, then
the batch is dropped with an error log, as Kong's queue does.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import msgspec
import orjson

from ._net_sender import close_registry, flush_registry
from .base import Plugin, PluginEnv, field_error
from .log_serializer import serialize

log = logging.getLogger("fastgw.plugins")


class QueueConfig(msgspec.Struct, forbid_unknown_fields=True):
    # Kong 3.x queue defaults.
    max_batch_size: int = 1
    max_coalescing_delay: float = 1.0
    max_entries: int = 10_000
    max_bytes: int | None = None
    max_retry_time: float = 60.0
    initial_retry_delay: float = 0.01
    max_retry_delay: float = 60.0
    concurrency_limit: Literal[1, -1] = 1

    def __post_init__(self) -> None:
        if not 1 <= self.max_batch_size <= 1_000_000:
            raise field_error("max_batch_size", "value should be between 1 and 1000000")
        if not 0 <= self.max_coalescing_delay <= 3600:
            raise field_error("max_coalescing_delay", "value should be between 0 and 3600")
        if not 1 <= self.max_entries <= 1_000_000:
            raise field_error("max_entries", "value should be between 1 and 1000000")
        if not 0.001 <= self.initial_retry_delay <= 1_000_000:
            raise field_error("initial_retry_delay", "value should be between 0.001 and 1000000")
        # Kong's queue fields fastgw's sender does not implement are refused, not ignored:
        # max_bytes bounds queues of strings (kong/tools/queue.lua), http-log queues records;
        # concurrency_limit -1 (a sender per batch) is not implemented: one sender, in order.
        if self.max_bytes is not None:
            raise field_error("max_bytes", "not supported by fastgw: http-log queues "
                              "log records, not strings; bound the queue with max_entries")
        if self.concurrency_limit != 1:
            raise field_error("concurrency_limit", "only 1 is supported by fastgw "
                              "(one sender per endpoint, batches sent in order)")


class HttpLogConfig(msgspec.Struct, forbid_unknown_fields=True):
    http_endpoint: str
    method: Literal["POST", "PUT", "PATCH"] = "POST"
    content_type: Literal["application/json", "application/json; charset=utf-8"] = "application/json"
    # Milliseconds (Kong defaults).
    timeout: int = 10_000
    keepalive: int = 60_000
    headers: dict[str, str] = {}
    queue: QueueConfig = msgspec.field(default_factory=QueueConfig)

    def __post_init__(self) -> None:
        parts = urlsplit(self.http_endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise field_error("http_endpoint", "missing host in url" if parts.scheme else "missing scheme in url")
        if self.timeout < 0:
            raise field_error("timeout", "value must be greater than or equal to 0")


class _Sender:
    """The queue and sender task of one endpoint configuration in one event loop."""

    def __init__(self, conf: HttpLogConfig, loop: asyncio.AbstractEventLoop) -> None:
        self.conf = conf
        self.loop = loop
        self.q: asyncio.Queue[dict[str, Any]] = asyncio.Queue(conf.queue.max_entries)
        self.dropped = 0
        self.sent_batches = 0
        self.failed_batches = 0
        self._busy = False
        self._session: Any = None
        parts = urlsplit(conf.http_endpoint)
        self.headers = {"Content-Type": conf.content_type, **conf.headers}
        if parts.username is not None:
            # userinfo in the URL becomes Basic auth (Kong does the same)
            cred = f"{parts.username}:{parts.password or ''}".encode()
            self.headers["Authorization"] = "Basic " + base64.b64encode(cred).decode()
            netloc = parts.hostname or ""
            if parts.port:
                netloc += f":{parts.port}"
            self.url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
        else:
            self.url = conf.http_endpoint
        self.task = loop.create_task(self._run())

    def put(self, entry: dict[str, Any]) -> None:
        try:
            self.q.put_nowait(entry)
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("[http-log] queue full, %d entries dropped", self.dropped)

    async def idle(self, timeout: float = 10.0) -> None:
        """Wait until the queue is empty and nothing is being sent (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while (not self.q.empty() or self._busy) and time.monotonic() < deadline:
            await asyncio.sleep(0.005)

    async def _run(self) -> None:
        import aiohttp

        qc = self.conf.queue
        timeout = aiohttp.ClientTimeout(total=self.conf.timeout / 1000)
        connector = aiohttp.TCPConnector(keepalive_timeout=self.conf.keepalive / 1000)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            self._session = session
            while True:
                first = await self.q.get()
                self._busy = True
                batch = [first]
                deadline = self.loop.time() + qc.max_coalescing_delay
                while len(batch) < qc.max_batch_size:
                    remaining = deadline - self.loop.time()
                    if remaining <= 0:
                        break
                    try:
                        batch.append(await asyncio.wait_for(self.q.get(), remaining))
                    except asyncio.TimeoutError:
                        break
                payload = orjson.dumps(batch[0] if qc.max_batch_size == 1 else batch)
                await self._send(session, payload)
                self._busy = False

    async def _send(self, session: Any, payload: bytes) -> None:
        qc = self.conf.queue
        delay = qc.initial_retry_delay
        started = self.loop.time()
        while True:
            try:
                async with session.request(self.conf.method, self.url, data=payload, headers=self.headers) as resp:
                    await resp.read()
                    if 200 <= resp.status < 300:
                        self.sent_batches += 1
                        return
                    err = f"HTTP {resp.status}"
            except Exception as e:  # connection refused, timeout, ...
                err = repr(e)
            if self.loop.time() - started + delay > qc.max_retry_time:
                self.failed_batches += 1
                log.error("[http-log] could not send entries to %s, dropping batch: %s", self.url, err)
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, qc.max_retry_delay)


_senders: dict[tuple[int, bytes], _Sender] = {}


def sender_for(conf: HttpLogConfig) -> _Sender | None:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    key = (id(loop), msgspec.json.encode(conf))
    s = _senders.get(key)
    if s is None or s.loop is not loop or s.task.done():
        s = _senders[key] = _Sender(conf, loop)
    return s


async def flush_all(timeout: float = 10.0) -> None:
    await flush_registry(_senders, timeout)


async def close_all() -> None:
    """Stop every sender of the running loop (after flush_all, at shutdown)."""
    await close_registry(_senders)


class HttpLog(Plugin):
    name = "http-log"
    PRIORITY = 12
    Config = HttpLogConfig

    def __init__(self, config: HttpLogConfig, env: PluginEnv) -> None:
        super().__init__(config, env)
        self.dropped_no_loop = 0

    def log(self, ctx: Any) -> None:
        s = sender_for(self.config)
        if s is None:
            self.dropped_no_loop += 1
            return None
        s.put(serialize(ctx))
        return None
