"""Keeps the hostnames of the active configuration resolved, off the request path.

Rules:
- One Discovery per gateway (per worker process), one asyncio task over a min-heap of
  (refresh_at, name); each due name is resolved in its own task (Resolver.resolve, at most
  MAX_CONCURRENT_LOOKUPS at once) and re-armed at its Resolution.refresh_at (TTL expiry,
  or the failure's not-found/error TTL).
- current(name) is a dict read: what the snapshot compiler builds balancers from.
- watch(names) replaces the set of names the active snapshot uses; new names are resolved
  at once, names no longer used stop being refreshed.
- A Resolution that differs from the previous one in what a balancer sees (its addresses, or
  being empty vs. not, or its failure when empty) is reported to the listener with every other
  change of the same loop iteration, as one set of names: the listener rebuilds the balancers
  of those names and swaps them in.
"""
from __future__ import annotations

import asyncio
import heapq
import logging
import math
from collections.abc import Callable, Iterable

from fastgw.dns.resolver import Resolution, Resolver

log = logging.getLogger("fastgw.dns")

# Lookups in flight at once (nginx's resolver has no cap; c-ares defaults to unlimited; a
# bound keeps a config with thousands of names from bursting the nameserver)
MAX_CONCURRENT_LOOKUPS = 32
# How long start() waits for the first answers before serving anyway (names still unresolved
# then are added as they resolve). Kong's first lookup is bounded by its 2 s x 5 retries.
PRIME_TIMEOUT = 10.0  # s

Listener = Callable[[set[str]], None]


def _view(r: Resolution | None) -> tuple:
    # what a balancer depends on: the sorted addresses; when empty, the failure kind
    if r is None:
        return ()
    if r.addresses:
        return tuple(sorted((a.ip, a.port or 0, a.weight or 0, a.split, a.srv_name or "")
                            for a in r.addresses))
    return ("error", r.not_found, r.error)


class Discovery:
    def __init__(self, resolver: Resolver) -> None:
        self.resolver = resolver
        self.listener: Listener | None = None
        self._current: dict[str, Resolution] = {}
        self._watched: set[str] = set()
        self._heap: list[tuple[float, str]] = []
        self._due: dict[str, float] = {}
        self._wake: asyncio.Event | None = None
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._sem: asyncio.Semaphore | None = None
        self._lookups: set[asyncio.Task[None]] = set()
        self._changed: set[str] = set()

    # -- reads (compiler) ---------------------------------------------------------------
    def current(self, name: str) -> Resolution | None:
        """The last Resolution of `name`; IP literals and hosts-file names answer at once."""
        r = self._current.get(name)
        if r is None:
            r = self.resolver.static(name)
        return r

    # -- the watched set ----------------------------------------------------------------
    def watch(self, names: Iterable[str]) -> None:
        """The names the active snapshot uses (static ones are skipped)."""
        names = {n for n in names if self.resolver.static(n) is None}
        for n in names - self._watched:
            if n not in self._due:  # not already primed or in progress
                self._schedule(n, -math.inf)
        for n in self._watched - names:
            self._due.pop(n, None)
            self._current.pop(n, None)
        self._watched = names
        if self._wake is not None:
            self._wake.set()

    def _schedule(self, name: str, at: float) -> None:
        self._due[name] = at
        heapq.heappush(self._heap, (at, name))

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        """Start the refresh task on the running loop (idempotent)."""
        if self._task is not None:
            return
        self._wake = asyncio.Event()
        self._stopping = False
        self._sem = asyncio.Semaphore(MAX_CONCURRENT_LOOKUPS)
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def prime(self, names: Iterable[str], timeout: float = PRIME_TIMEOUT) -> None:
        """Resolve `names` now (startup: the first requests should find addresses)."""
        todo = [n for n in set(names) if self.resolver.static(n) is None]
        if not todo:
            return
        try:
            await asyncio.wait_for(asyncio.gather(*(self._refresh(n, notify=False)
                                                    for n in todo)), timeout)
        except asyncio.TimeoutError:
            log.warning("dns: not every name resolved within %gs; serving anyway", timeout)

    async def stop(self) -> None:
        # the refresh loop is woken to end by itself: cancelling it inside asyncio.wait_for
        # can leave the stop waiting forever on CPython 3.11's stock loop
        task, self._task = self._task, None
        self._stopping = True
        if self._wake is not None:
            self._wake.set()
        lookups = list(self._lookups)
        for t in lookups:
            t.cancel()
        await asyncio.gather(*lookups, return_exceptions=True)
        if task is not None:
            await task

    # -- the refresh loop ---------------------------------------------------------------------
    async def _run(self) -> None:
        assert self._wake is not None
        while not self._stopping:
            now = self.resolver.clock()
            while self._heap and self._heap[0][0] <= now:
                at, name = heapq.heappop(self._heap)
                if self._due.get(name) == at and name in self._watched:
                    self._due[name] = math.inf  # in progress: re-armed by _refresh
                    # one task per lookup: a name whose nameserver times out does not hold
                    # back the refresh of the others
                    task = asyncio.get_running_loop().create_task(self._refresh_one(name))
                    self._lookups.add(task)
                    task.add_done_callback(self._lookups.discard)
            delay = self._heap[0][0] - now if self._heap else 3600.0
            if self._stopping:
                return
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), max(delay, 0.0))
            except asyncio.TimeoutError:
                pass

    async def _refresh_one(self, name: str) -> None:
        try:
            changed = await self._refresh(name)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("dns: refreshing %s failed", name)
            if name in self._watched:
                self._schedule(name, self.resolver.clock() + 1.0)
            if self._wake is not None:
                self._wake.set()
            return
        if self._wake is not None:
            self._wake.set()   # the heap has a new deadline for this name
        if changed:
            if not self._changed:
                # changes that land in the same loop iteration are applied together
                asyncio.get_running_loop().call_soon(self._flush)
            self._changed.add(name)

    def _flush(self) -> None:
        changed, self._changed = self._changed, set()
        if changed and self.listener is not None:
            try:
                self.listener(changed)
            except Exception:
                log.exception("dns: applying new addresses failed")

    async def _refresh(self, name: str, notify: bool = True) -> bool:
        """Resolve one name, store it, re-arm it. True when a balancer would see a change."""
        sem = self._sem
        if sem is not None:
            async with sem:
                r = await self.resolver.resolve(name)
        else:
            r = await self.resolver.resolve(name)
        old = self._current.get(name)
        self._current[name] = r
        if name in self._watched or not notify:
            self._schedule(name, r.refresh_at)
        changed = _view(old) != _view(r)
        if changed:
            if r.addresses:
                log.info("dns: %s -> %s%s", name, ", ".join(
                    a.ip if a.port is None else f"{a.ip}:{a.port} (w={a.weight})"
                    for a in r.addresses), " (stale)" if r.error else "")
            else:
                log.warning("dns: %s has no addresses: %s", name, r.error)
        return changed
