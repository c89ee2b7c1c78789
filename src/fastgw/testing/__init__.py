"""fastgw.testing: test routes and plugins deterministically, without sleeping.

- ``FakeClock``: a clock you move by hand. ``gateway_client(config, clock=clock)`` (or
  ``Gateway(clock=clock)`` + ``use_clock(gw, clock)``) makes it the time of
    * health checks (half-open cooldowns; every ``now`` the checkers read themselves),
    * plugins: ``ctx.now`` / ``ctx.started_at`` of every request (rate-limiting windows,
      JWT ``exp``/``nbf``, anything a plugin computes from ``ctx.now``).
  Not covered: the proxy's own timeouts (connect/read/write, keep-alive) follow the event loop's
  clock; test them with short timeouts in the config (e.g. ``read_timeout: 200`` ms), and
  passive health reports are stamped with the loop's time (a FakeClock created without a
  start value starts at ``time.monotonic()``, the loop's clock, so both stay close).
- ``MemoryUpstream``: an in-process target (an ASGI app) that records what it receives and can
  be told to answer, fail (500), hang (never answer: the proxy's read timeout gives 504) or
  reset (the connection dies before the response head: 502, or a retry on another target).
- ``gateway_client(config, handlers=..., clock=...)``: an async context manager that starts a
  Gateway on 127.0.0.1:0 on the running loop and yields an ``HttpClient`` for it
  (``await client.get("/path", headers={...})`` -> ``(status, headers, body)``).
- pytest: ``pytest_plugins = ["fastgw.testing.pytest_plugin"]`` in your top-level conftest.py
  (or ``-p fastgw.testing.pytest_plugin``) gives the fixtures ``gateway_client``,
  ``fastgw_run`` and ``loop_kind`` (see that module).
"""
from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable, Coroutine, Mapping, TypeVar

from fastgw.inprocess import AbortConnection
from fastgw.testing.client import ClientResponse, HttpClient

T = TypeVar("T")


# -------------------------------------------------------------------------------------------
class FakeClock:
    """A clock that moves only when told: ``clock()`` -> now (seconds), ``clock.advance(s)``.

    ``start`` defaults to ``time.monotonic()`` at creation (asyncio's and uvloop's loop clock),
    so a FakeClock given to health checkers agrees with the passive reports the proxy stamps
    with the loop's time. Pass a wall-clock value (e.g. ``1_700_000_000.0``) to test calendar
    windows (rate-limiting's month/year) at a chosen date.
    """

    __slots__ = ("_now",)

    def __init__(self, start: float | None = None) -> None:
        self._now = float(time.monotonic() if start is None else start)

    def __call__(self) -> float:
        return self._now

    def time(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("a clock does not go back; use set() for that on purpose")
        self._now += seconds
        return self._now

    def set(self, now: float) -> None:
        self._now = float(now)

    def __repr__(self) -> str:
        return f"FakeClock({self._now!r})"


def use_clock(gateway: Any, clock: Callable[[], float]) -> None:
    """Make `clock` the ``ctx.now`` of every plugin Context of a started Gateway (the health
    checkers take it through ``Gateway(clock=...)``)."""
    core = gateway.core
    if core is None:
        raise RuntimeError("use_clock() needs a started Gateway")
    make = gateway._make_context

    def context_factory(*args: Any) -> Any:
        ctx = make(*args)
        ctx.now = ctx.started_at = clock()
        return ctx

    core.context_factory = context_factory


# -------------------------------------------------------------------------------------------
@dataclass
class RecordedRequest:
    """One request as a MemoryUpstream received it (after the proxy's rewriting)."""

    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes = b""
    outcome: str = "answered"   # answered | failed | hung | reset

    def header(self, name: str) -> str | None:
        n = name.lower()
        for k, v in self.headers:
            if k == n:
                return v
        return None


@dataclass
class _Answer:
    status: int = 200
    body: bytes = b"ok"
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


class MemoryUpstream:
    """An in-process upstream (an ASGI app) that records requests and obeys instructions.

    Register it as a handler and point a target at it::

        up = MemoryUpstream()
        Gateway(cfg, handlers={"asgi:users": up})   # target: "asgi:users"

    ``respond(status, body, headers)`` sets the normal answer (and cancels hang/reset modes);
    ``fail_next(n)`` answers the next n requests with 500; ``hang(n=None)`` never answers
    (the next n requests, or all until ``respond()``); ``reset(n=None)`` kills the connection
    before the response head (likewise). Recorded requests are in ``.requests``.
    """

    def __init__(self, status: int = 200, body: bytes | str = b"ok",
                 headers: Mapping[str, str] | None = None, *, name: str = "memory") -> None:
        self.name = name
        self.requests: list[RecordedRequest] = []
        self._answer = _Answer()
        self._plan: list[str] = []        # one-shot behaviours, consumed in order
        self._mode = "answer"             # what happens when the plan is empty
        self._arrived: asyncio.Event | None = None
        self.respond(status, body, headers)

    # -- instructions ----------------------------------------------------------------------
    def respond(self, status: int = 200, body: bytes | str = b"ok",
                headers: Mapping[str, str] | None = None) -> "MemoryUpstream":
        self._answer = _Answer(status, body.encode() if isinstance(body, str) else body,
                               [(k.lower().encode("latin-1"), str(v).encode("latin-1"))
                                for k, v in (headers or {}).items()])
        self._mode = "answer"
        self._plan.clear()
        return self

    def fail_next(self, n: int = 1) -> "MemoryUpstream":
        self._plan.extend(["fail"] * n)
        return self

    def hang(self, n: int | None = None) -> "MemoryUpstream":
        if n is None:
            self._mode = "hang"
        else:
            self._plan.extend(["hang"] * n)
        return self

    def reset(self, n: int | None = None) -> "MemoryUpstream":
        if n is None:
            self._mode = "reset"
        else:
            self._plan.extend(["reset"] * n)
        return self

    def clear(self) -> None:
        self.requests.clear()

    @property
    def paths(self) -> list[str]:
        return [r.path for r in self.requests]

    async def wait_for_requests(self, n: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Wait until at least n requests arrived (a bounded wait, not a sleep)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.requests) < n:
            self._arrived = asyncio.Event()
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError(f"{self.name}: {len(self.requests)} of {n} requests arrived")
            try:
                await asyncio.wait_for(self._arrived.wait(), left)
            except asyncio.TimeoutError:
                pass
        return self.requests

    # -- the ASGI app ------------------------------------------------------------------------
    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return
        action = self._plan.pop(0) if self._plan else self._mode
        rec = RecordedRequest(
            scope["method"], scope["path"], scope["query_string"].decode("latin-1"),
            [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]])
        self.requests.append(rec)
        chunks = []
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                rec.outcome = "disconnected"
                return
            chunks.append(msg.get("body", b""))
            if not msg.get("more_body", False):
                break
        rec.body = b"".join(chunks)
        if self._arrived is not None:
            self._arrived.set()
        if action == "hang":
            rec.outcome = "hung"
            while (await receive())["type"] != "http.disconnect":
                pass
            return
        if action == "reset":
            rec.outcome = "reset"
            raise AbortConnection(f"{self.name}: reset as instructed")
        if action == "fail":
            rec.outcome = "failed"
            body = b"fail_next: upstream error"
            await send({"type": "http.response.start", "status": 500,
                        "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": body})
            return
        a = self._answer
        await send({"type": "http.response.start", "status": a.status, "headers": a.headers})
        await send({"type": "http.response.body", "body": a.body})

    def __repr__(self) -> str:
        return f"<MemoryUpstream {self.name} mode={self._mode} requests={len(self.requests)}>"


# -------------------------------------------------------------------------------------------
@asynccontextmanager
async def gateway_client(config: Any = None, *, handlers: Mapping[str, Any] | None = None,
                         clock: Callable[[], float] | None = None,
                         timeout: float = 10.0, **gateway_kwargs: Any
                         ) -> AsyncIterator[HttpClient]:
    """Start a Gateway on 127.0.0.1:0 on the running loop; yield an HttpClient for it.

    ``client.gateway`` is the Gateway (``update()``, ``status()``, ``snapshot``...). The
    gateway is stopped (graceful, 2 s at most) and the client closed on exit."""
    from fastgw.gateway import Gateway

    if clock is not None:
        gateway_kwargs.setdefault("clock", clock)
    gw = Gateway(config, handlers=handlers, **gateway_kwargs)
    await gw.start("127.0.0.1:0")
    try:
        if clock is not None:
            use_clock(gw, clock)
        assert gw.address is not None
        client = HttpClient("127.0.0.1", gw.address[1], timeout=timeout)
        client.gateway = gw
        try:
            yield client
        finally:
            await client.close()
    finally:
        await gw.stop(timeout=2.0)


def new_loop(kind: str = "asyncio") -> asyncio.AbstractEventLoop:
    """A fresh event loop: "asyncio" (the stock loop) or "uvloop". No policy is installed."""
    if kind == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    if kind == "asyncio":
        return asyncio.SelectorEventLoop()
    raise ValueError(f"unknown loop kind {kind!r}")


def run(coro: Coroutine[Any, Any, T], loop_kind: str = "asyncio") -> T:
    """Run a coroutine to completion on a fresh loop of `loop_kind`, then close the loop
    (remaining tasks cancelled, async generators shut down), like asyncio.run."""
    loop = new_loop(loop_kind)
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(coro)
    finally:
        try:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for t in pending:
                t.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


__all__ = ["FakeClock", "MemoryUpstream", "RecordedRequest", "HttpClient", "ClientResponse",
           "gateway_client", "use_clock", "run", "new_loop", "AbortConnection"]
