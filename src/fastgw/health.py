"""Health checks of upstream targets: Kong's active probes and passive circuit breaker.

Two layers:
- `TargetHealth`, a sans-IO state machine per target (no clock, no socket: every input carries
  `now`). It follows lua-resty-healthcheck, which Kong uses:
  * internal states healthy / mostly_healthy / mostly_unhealthy / unhealthy; the balancer sees
    the first two as healthy, the last two as unhealthy;
  * four counters per target, shared by active and passive checks (each with its own limits):
    successes, http_failures, tcp_failures, timeouts. A counter whose limit is 0 is off;
  * a failure clears the success counter; failures of one kind do not clear the others; the
    N-th failure of a kind (N = its limit) makes the target unhealthy; while unhealthy,
    failures are not counted; the M-th success (M = healthy.successes) makes it healthy;
    every transition resets all counters;
  * one deliberate difference: a success always clears the failure counters, even when
    healthy.successes is 0 (Kong then ignores successes, so e.g. 3 failures spread over a day of
    good traffic would trip a breaker with http_failures=3). Failures here are consecutive.
  * half-open (fastgw extension, passive.unhealthy.cooldown): a target tripped by passive
    checks, when no active probe of unhealthy targets runs, gets ONE trial request
    `cooldown` seconds later (Balancer.allow_trial). The first passive report after that
    decides: a healthy status closes the circuit, any failure re-opens it for another
    cooldown. A trial that was picked but never reported is re-armed after another cooldown.
- `HealthChecker`, one per upstream: owns the TargetHealth objects (attached to
  `Target.health`), runs the active probes and the half-open timer as asyncio tasks (never on
  the request path), takes the proxy's passive reports, and serves the Admin API
  (set_target_health, health_report).
- Health is per balancer entry, i.e. per resolved address of a target (fastgw.balancing
  TargetGroup): each address is probed, tripped and reported on its own, as Kong's
  healthchecker does per (ip, port, hostname). Probes connect to the address and send the
  target's hostname as Host (and SNI). The Admin API sets one address or all of a target's.

Every transition calls Balancer.set_healthy/allow_trial and is logged on logger "fastgw.health":
"upstream X target Y: healthy -> unhealthy (3 tcp failures)".
"""
from __future__ import annotations

import asyncio
import logging
import re
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Optional

from fastgw._core.balancer import Balancer, Target
from fastgw.balancing import TargetGroup
from fastgw.config.healthchecks import Healthchecks

log = logging.getLogger("fastgw.health")

Clock = Callable[[], float]

HEALTHY = "healthy"
MOSTLY_HEALTHY = "mostly_healthy"
MOSTLY_UNHEALTHY = "mostly_unhealthy"
UNHEALTHY = "unhealthy"
_UP_STATES = (HEALTHY, MOSTLY_HEALTHY)

# counter kinds (index into TargetHealth.counters) and their names in log lines
SUCCESS, HTTP, TCP, TIMEOUT = 0, 1, 2, 3
_KIND_NAMES = ("successes", "http failures", "tcp failures", "timeouts")
_KIND_ONE = ("success", "http failure", "tcp failure", "timeout")

# Longest status line a probe reads before calling the answer invalid (nginx reads the whole
# response head into proxy_buffer_size = 4 KiB / 8 KiB; a status line is far shorter).
PROBE_MAX_STATUS_LINE = 4096  # bytes
_STATUS_RE = re.compile(rb"^HTTP/\d\.\d[ \t]+(\d{3})")


@dataclass(frozen=True)
class TargetState:
    """A target's health, detached from any balancer: what survives a config reload."""
    internal: str = HEALTHY
    successes: int = 0
    http_failures: int = 0
    tcp_failures: int = 0
    timeouts: int = 0
    cause: Optional[str] = None        # "active" | "passive" | "manual" | None
    opened_at: Optional[float] = None  # `now` when a passive trip opened the circuit

    @property
    def healthy(self) -> bool:
        return self.internal in _UP_STATES


class _Limits:
    """One side's (active or passive) counter limits and status classification."""
    __slots__ = ("successes", "http_failures", "tcp_failures", "timeouts", "healthy_statuses",
                 "unhealthy_statuses", "limit")

    def __init__(self, side: Any, classify_http: bool = True) -> None:
        self.successes = side.healthy.successes
        self.http_failures = side.unhealthy.http_failures
        self.tcp_failures = side.unhealthy.tcp_failures
        self.timeouts = side.unhealthy.timeouts
        self.healthy_statuses = (frozenset(side.healthy.http_statuses) if classify_http
                                 else frozenset())
        self.unhealthy_statuses = (frozenset(side.unhealthy.http_statuses) if classify_http
                                   else frozenset())
        self.limit = (self.successes, self.http_failures, self.tcp_failures, self.timeouts)


class TargetHealth:
    """The sans-IO state machine of one target (see the module docstring for the rules)."""
    __slots__ = ("target", "checker", "internal", "counters", "cause", "opened_at",
                 "trial_armed", "trial_at")

    def __init__(self, target: Target, checker: HealthChecker,
                 state: TargetState | None = None) -> None:
        self.target = target
        self.checker = checker
        self.internal = HEALTHY
        self.counters = [0, 0, 0, 0]
        self.cause: str | None = None
        self.opened_at: float | None = None
        self.trial_armed = False   # half-open: allow_trial() was issued, verdict pending
        self.trial_at = 0.0        # `now` when the trial was (re-)armed
        if state is not None:
            self.restore(state)

    @property
    def healthy(self) -> bool:
        return self.internal in _UP_STATES

    # -- inputs -------------------------------------------------------------------------
    def report(self, kind: int, limits: _Limits, now: float, source: str,
               detail: str = "") -> None:
        """One observation: kind SUCCESS/HTTP/TCP/TIMEOUT, judged with `limits`."""
        if self.trial_armed and source == "passive":
            # half-open: the first verdict after the trial decides, whatever the counters say
            if kind == SUCCESS:
                self._transition(HEALTHY, now, None, "half-open trial succeeded")
            else:
                self._open(now, f"half-open trial failed: {detail or _KIND_ONE[kind]}")
            return
        c = self.counters
        if kind == SUCCESS:
            if self.internal in _UP_STATES:
                if self.internal == MOSTLY_HEALTHY:  # a success ends the failure streaks
                    c[HTTP] = c[TCP] = c[TIMEOUT] = 0
                    self.internal = HEALTHY
                return
            limit = limits.successes
            if limit == 0:
                return
            c[HTTP] = c[TCP] = c[TIMEOUT] = 0
            c[SUCCESS] += 1
            if c[SUCCESS] >= limit:
                self._transition(HEALTHY, now, source, f"{c[SUCCESS]} {_KIND_NAMES[SUCCESS]}")
            else:
                self.internal = MOSTLY_UNHEALTHY
            return
        limit = limits.limit[kind]
        if limit == 0 or self.internal == UNHEALTHY:
            return  # counter off, or failures are not counted while unhealthy (Kong)
        c[SUCCESS] = 0
        if self.internal == MOSTLY_UNHEALTHY:
            self.internal = UNHEALTHY  # the success streak towards recovery is broken
            return
        c[kind] += 1
        if c[kind] >= limit:
            reason = f"{c[kind]} {_KIND_NAMES[kind]}"
            if detail:
                reason += f", last: {detail}"
            if source == "passive":
                self._open(now, reason)
            else:
                self._transition(UNHEALTHY, now, source, reason)
        else:
            self.internal = MOSTLY_HEALTHY

    def tick(self, now: float) -> float | None:
        """Half-open timer: arm the trial when the cooldown has passed. Returns seconds until
        this target next needs a tick, or None."""
        cooldown = self.checker.half_open_cooldown
        if cooldown <= 0 or self.cause != "passive" or self.internal in _UP_STATES:
            return None
        if not self.trial_armed:
            due = (self.opened_at or 0.0) + cooldown
            if now < due:
                return due - now
            self.trial_armed = True
            self.trial_at = now
            self.checker.balancer.allow_trial(self.target)
            log.info("upstream %s target %s: unhealthy -> half-open (one trial request after "
                     "%gs cooldown)", self.checker.upstream_name, self.target.name, cooldown)
            return cooldown
        if not self.target.trial:  # the trial was picked: wait for its verdict
            due = self.trial_at + cooldown
            if now < due:
                return due - now
            # picked but never reported (the request died without a verdict): re-arm
            self.trial_at = now
            self.checker.balancer.allow_trial(self.target)
            log.info("upstream %s target %s: half-open trial got no verdict, re-armed",
                     self.checker.upstream_name, self.target.name)
        return cooldown

    def force(self, healthy: bool, now: float) -> None:
        """Manual override (Admin API): set the state and clear the counters."""
        self._transition(HEALTHY if healthy else UNHEALTHY, now, "manual", "set manually",
                         force_log=True)

    # -- transitions --------------------------------------------------------------------
    def _open(self, now: float, reason: str) -> None:
        # a passive trip (or a failed trial): the circuit opens, the cooldown starts now
        was_armed = self.trial_armed
        self._transition(UNHEALTHY, now, "passive", reason, force_log=was_armed)
        self.opened_at = now
        self.checker._wake()

    def _transition(self, new: str, now: float, cause: str | None, reason: str,
                    force_log: bool = False) -> None:
        old_up = self.internal in _UP_STATES
        old_label = "half-open" if self.trial_armed else ("healthy" if old_up else "unhealthy")
        new_up = new in _UP_STATES
        self.internal = new
        self.counters = [0, 0, 0, 0]
        self.trial_armed = False
        self.cause = None if new_up else cause
        self.opened_at = None
        # always re-assert in the balancer: also clears a pending trial
        self.checker.balancer.set_healthy(self.target, new_up)
        if old_up != new_up or force_log or old_label == "half-open":
            log.log(logging.INFO if new_up else logging.WARNING,
                    "upstream %s target %s: %s -> %s (%s)", self.checker.upstream_name,
                    self.target.name, old_label, "healthy" if new_up else "unhealthy", reason)

    # -- state transfer -----------------------------------------------------------------
    def snapshot(self) -> TargetState:
        c = self.counters
        return TargetState(self.internal, c[SUCCESS], c[HTTP], c[TCP], c[TIMEOUT], self.cause,
                           self.opened_at)

    def restore(self, s: TargetState) -> None:
        """Adopt a carried-over state (config reload). A pending trial is not carried: the
        next tick re-arms it since its cooldown has already run."""
        self.internal = s.internal
        self.counters = [s.successes, s.http_failures, s.tcp_failures, s.timeouts]
        self.cause = s.cause
        self.opened_at = s.opened_at
        self.trial_armed = False
        if not self.checker.config.enabled and s.cause != "manual":
            # checks were switched off: nothing could ever bring the target back
            self.internal, self.counters = HEALTHY, [0, 0, 0, 0]
            self.cause = self.opened_at = None
        self.checker.balancer.set_healthy(self.target, self.internal in _UP_STATES)
        if self.cause == "passive" and self.internal not in _UP_STATES:
            self.checker._wake()

    def __repr__(self) -> str:
        return (f"<TargetHealth {self.target.name} {self.internal} counters={self.counters} "
                f"cause={self.cause} trial={self.trial_armed}>")


class HealthChecker:
    """Health checks of one upstream: passive reports, active probes, half-open timer.

    `clock` gives `now` (seconds) to everything time-based; the default, time.monotonic, is
    the clock of asyncio's loop.time(), which the proxy uses for its `now`.
    """

    def __init__(self, upstream_name: str, balancer: Balancer,
                 config: Healthchecks | None = None, *, clock: Clock = time.monotonic,
                 host_header: str | None = None,
                 ssl_context: ssl.SSLContext | None = None,
                 groups: list[TargetGroup] | None = None) -> None:
        self.upstream_name = upstream_name
        self.balancer = balancer
        # the configured targets and their entries; by default one target per entry
        self.groups = groups if groups is not None else [
            TargetGroup(t.name, t.id, t.host, t.port, t.weight, "A", [t])
            for t in balancer.targets]
        self.config = config if config is not None else Healthchecks()
        self.clock = clock
        self.host_header = host_header
        cfg = self.config
        self.active_limits = _Limits(cfg.active, classify_http=True)
        self.passive_limits = _Limits(cfg.passive, classify_http=cfg.passive.type != "tcp")
        # half-open only when nothing else would bring a passively tripped target back
        self.half_open_cooldown = (float(cfg.passive.unhealthy.cooldown)
                                   if cfg.passive_enabled and cfg.active.unhealthy.interval == 0
                                   else 0.0)
        self._ssl_context = ssl_context
        self._probe_head = self._build_probe_head()
        self._tasks: list[asyncio.Task[None]] = []
        self._wake_event: asyncio.Event | None = None
        self.states: dict[str, TargetHealth] = {}
        for t in balancer.targets:
            # a state carried over from the previous config, or from a previous checker of
            # this same balancer (re-created for a healthchecks change)
            h = t.health
            carried = (h if isinstance(h, TargetState)
                       else h.snapshot() if isinstance(h, TargetHealth) else None)
            th = TargetHealth(t, self)
            t.health = th
            self.states[t.name] = th
            if carried is not None:
                th.restore(carried)

    # -- configuration views ----------------------------------------------------------------
    @property
    def enabled(self) -> bool:
        return self.config.enabled

    @property
    def active_enabled(self) -> bool:
        return self.config.active_enabled

    @property
    def passive_enabled(self) -> bool:
        return self.config.passive_enabled

    # -- passive reports (called by the proxy for every response/failure) --------------------
    def report_http_status(self, target: Target, status: int, now: float) -> None:
        th = target.health
        if type(th) is not TargetHealth:
            return
        lim = self.passive_limits
        if status in lim.healthy_statuses:
            # fast path for the common case: healthy target, nothing to reset
            if th.internal == HEALTHY and not th.trial_armed:
                return
            th.report(SUCCESS, lim, now, "passive")
        elif status in lim.unhealthy_statuses or (status == 0 and lim.unhealthy_statuses):
            th.report(HTTP, lim, now, "passive", f"status {status}")

    def report_tcp_failure(self, target: Target, now: float) -> None:
        th = target.health
        if type(th) is TargetHealth:
            th.report(TCP, self.passive_limits, now, "passive", "tcp failure")

    def report_timeout(self, target: Target, now: float) -> None:
        th = target.health
        if type(th) is TargetHealth:
            th.report(TIMEOUT, self.passive_limits, now, "passive", "timeout")

    # -- active probe results -------------------------------------------------------------
    def report_probe(self, target: Target, kind: int, now: float, detail: str = "") -> None:
        th = target.health
        if type(th) is TargetHealth:
            th.report(kind, self.active_limits, now, "active", detail)

    def report_probe_status(self, target: Target, status: int, now: float) -> None:
        """Classify a probe's HTTP status (0 = invalid response) as Kong does."""
        lim = self.active_limits
        if status in lim.healthy_statuses:
            self.report_probe(target, SUCCESS, now)
        elif status in lim.unhealthy_statuses or status == 0:
            self.report_probe(target, HTTP, now,
                              f"status {status}" if status else "bad status line")
        # any other status is ignored (lua-resty-healthcheck)

    # -- half-open ------------------------------------------------------------------------
    def tick(self, now: float | None = None) -> float | None:
        """Arm due half-open trials. Returns seconds until the next tick is needed, or None."""
        if self.half_open_cooldown <= 0:
            return None
        if now is None:
            now = self.clock()
        nxt: float | None = None
        for th in self.states.values():
            d = th.tick(now)
            if d is not None and (nxt is None or d < nxt):
                nxt = d
        return nxt

    def _wake(self) -> None:
        if self._wake_event is not None:
            self._wake_event.set()

    # -- Admin API ------------------------------------------------------------------------
    def set_target_health(self, target_name: str, healthy: bool,
                          address: str | None = None) -> bool:
        """PUT /upstreams/{u}/targets/{t}[/{address}]/healthy|unhealthy: every address of
        target `target_name` ("host:port", or an entry's own name), or only the one at
        `address` ("ip:port"). False if there is no such target or address."""
        entries: list[Target] = []
        for g in self.groups:
            if g.target == target_name:
                entries = list(g.entries)
                break
        else:
            th = self.states.get(target_name)
            if th is not None:
                entries = [th.target]
        if address is not None:
            entries = [t for t in entries if _addr(t) == address or t.host == address]
        if not entries:
            return False
        now = self.clock()
        for t in entries:
            self.states[t.name].force(healthy, now)
        return True

    def _entry_health(self, t: Target) -> str:
        if t.healthy:
            return "HEALTHY" if self.enabled else "HEALTHCHECKS_OFF"
        return "UNHEALTHY"

    def health_report(self) -> list[dict[str, Any]]:
        """GET /upstreams/{u}/health items: Kong's per-target shape with every resolved
        address under data.addresses, plus a "fastgw" detail record per address.
        A target whose name resolves to nothing is "DNS_ERROR" (Kong's targets DAO)."""
        out = []
        for g in self.groups:
            addresses = []
            details = []
            total = available = 0
            for t in g.entries:
                th = self.states[t.name]
                # Kong: the addresses of a weight-0 (disabled) target are HEALTHCHECKS_OFF
                h = self._entry_health(t) if g.weight > 0 else "HEALTHCHECKS_OFF"
                addresses.append({"ip": t.host, "port": t.port, "health": h,
                                  "weight": t.weight})
                total += t.weight
                if t.healthy or t.trial:
                    available += t.weight
                details.append({"address": _addr(t), "state": th.internal,
                                "half_open": th.trial_armed, "cause": th.cause,
                                "inflight": t.inflight,
                                "counters": dict(zip(("successes", "http_failures",
                                                      "tcp_failures", "timeouts"),
                                                     th.counters))})
            healths = {a["health"] for a in addresses}
            if not addresses:
                health = "DNS_ERROR"
            elif "HEALTHY" in healths:
                health = "HEALTHY"   # Kong: any healthy address makes the target healthy
            elif "UNHEALTHY" in healths:
                health = "UNHEALTHY"
            else:
                health = "HEALTHCHECKS_OFF"
            out.append({
                "target": g.target,
                "id": g.id,
                "weight": g.weight,
                "health": health,
                "data": {
                    "host": g.host,
                    "port": g.port,
                    "dns": g.dns,
                    "nodeWeight": g.weight,
                    "addresses": addresses,
                    "weight": {"total": total, "available": available,
                               "unavailable": total - available},
                    "fastgw": details,
                },
            })
        return out

    def upstream_health(self) -> dict[str, Any]:
        """GET /upstreams/{u}/health?balancer_health=1 (Kong: health by threshold)."""
        b = self.balancer
        if not self.enabled:
            health = "HEALTHCHECKS_OFF"
        else:
            health = "HEALTHY" if b.is_up() else "UNHEALTHY"
        return {"health": health, "data": {"total_weight": b.total_weight,
                                           "available_weight": b.available_weight,
                                           "threshold": b.threshold}}

    def snapshot(self) -> dict[str, TargetState]:
        return {name: th.snapshot() for name, th in self.states.items()}

    # -- asyncio tasks ----------------------------------------------------------------------
    def start(self) -> None:
        """Start the probe loops and the half-open timer on the running loop (idempotent)."""
        if self._tasks:
            return
        loop = asyncio.get_running_loop()
        a = self.config.active
        if a.healthy.interval > 0:
            self._tasks.append(loop.create_task(self._active_loop(HEALTHY, a.healthy.interval)))
        if a.unhealthy.interval > 0:
            self._tasks.append(loop.create_task(self._active_loop(UNHEALTHY,
                                                                  a.unhealthy.interval)))
        if self.half_open_cooldown > 0:
            self._wake_event = asyncio.Event()
            self._tasks.append(loop.create_task(self._half_open_loop()))

    def stop(self) -> None:
        """Cancel the tasks (safe to call from anywhere; await wait_closed() to join them)."""
        for task in self._tasks:
            task.cancel()
        self._wake_event = None

    async def wait_closed(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _active_loop(self, mode: str, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.probe_once(mode)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug in one round must not end the checks for good
                log.exception("upstream %s: active health check round failed",
                              self.upstream_name)

    async def _half_open_loop(self) -> None:
        ev = self._wake_event
        assert ev is not None
        cooldown = self.half_open_cooldown
        while True:
            ev.clear()
            nxt = self.tick(self.clock())
            try:
                await asyncio.wait_for(ev.wait(), nxt if nxt is not None else cooldown)
            except asyncio.TimeoutError:
                pass

    async def probe_once(self, mode: str | None = None) -> None:
        """One round of probes: targets whose state matches `mode` ("healthy" probes healthy
        and mostly_healthy targets, "unhealthy" the others, None all), at most
        active.concurrency at once."""
        if mode == HEALTHY:
            ths = [th for th in self.states.values() if th.internal in _UP_STATES]
        elif mode == UNHEALTHY:
            ths = [th for th in self.states.values() if th.internal not in _UP_STATES]
        else:
            ths = list(self.states.values())
        if not ths:
            return
        sem = asyncio.Semaphore(self.config.active.concurrency)

        async def one(th: TargetHealth) -> None:
            async with sem:
                await self.probe(th.target)

        await asyncio.gather(*(one(th) for th in ths))

    async def probe(self, target: Target) -> None:
        """Probe one target and report the result (timeout covers the whole probe)."""
        a = self.config.active
        try:
            status = await asyncio.wait_for(self._probe_io(target), a.timeout)
        except asyncio.TimeoutError:
            self.report_probe(target, TIMEOUT, self.clock(), "probe timed out")
        except (OSError, ssl.SSLError, EOFError) as exc:
            self.report_probe(target, TCP, self.clock(), f"{type(exc).__name__}: {exc}")
        else:
            if status is None:  # tcp check: connected
                self.report_probe(target, SUCCESS, self.clock())
            else:
                self.report_probe_status(target, status, self.clock())

    def _build_probe_head(self) -> bytes:
        a = self.config.active
        lines = [f"GET {a.http_path} HTTP/1.1"]
        for name, values in (a.headers or {}).items():
            for v in values:
                lines.append(f"{name}: {v}")
        lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n").encode("latin-1")

    async def _probe_io(self, target: Target) -> int | None:
        a = self.config.active
        ctx = None
        if a.type == "https":
            ctx = self._ssl_context
            if ctx is None:
                ctx = ssl.create_default_context()
                if not a.https_verify_certificate:
                    ctx.check_hostname = False
                    ctx.verify_mode = ssl.CERT_NONE
                self._ssl_context = ctx
        handler = getattr(target.pool, "handler", None)
        # a resolved address: connect to it, name its target (Host, SNI)
        name = getattr(target.pool, "hostname", None) or target.host
        if handler is not None:
            # an in-process target (fastgw.inprocess): probe it in memory, not over a socket
            from fastgw.inprocess import open_connection

            reader, writer = await open_connection(handler, limit=PROBE_MAX_STATUS_LINE)
        else:
            reader, writer = await asyncio.open_connection(
                target.host, target.port, ssl=ctx,
                server_hostname=(a.https_sni or name) if ctx is not None else None,
                limit=PROBE_MAX_STATUS_LINE)
        try:
            if a.type == "tcp":
                return None
            host = self.host_header or name
            writer.write(self._probe_head + f"Host: {host}\r\n\r\n".encode("latin-1"))
            await writer.drain()
            try:
                line = await reader.readuntil(b"\n")
            except asyncio.LimitOverrunError:
                return 0  # no status line within the limit: an invalid response
            except asyncio.IncompleteReadError as exc:
                if not exc.partial:
                    raise EOFError("connection closed before the status line") from None
                line = exc.partial
            m = _STATUS_RE.match(line)
            return int(m.group(1)) if m else 0
        finally:
            writer.close()


def _addr(t: Target) -> str:
    return f"[{t.host}]:{t.port}" if ":" in t.host else f"{t.host}:{t.port}"


# -- module-level passive reports: dispatch through Target.health ------------------------------
def report_http_status(target: Target, status: int, now: float) -> None:
    th = target.health
    if type(th) is TargetHealth:
        th.checker.report_http_status(target, status, now)


def report_tcp_failure(target: Target, now: float) -> None:
    th = target.health
    if type(th) is TargetHealth:
        th.checker.report_tcp_failure(target, now)


def report_timeout(target: Target, now: float) -> None:
    th = target.health
    if type(th) is TargetHealth:
        th.checker.report_timeout(target, now)


def carry_over(old: HealthChecker | Balancer | Mapping[str, TargetState] | None,
               new_balancer: Balancer | HealthChecker) -> int:
    """Copy health state of targets present (by "host:port") in both `old` and `new_balancer`.

    `old` is the previous HealthChecker, the previous Balancer, or HealthChecker.snapshot();
    the destination is the new Balancer or the new HealthChecker (its balancer).
    Works before or after the new HealthChecker is built: targets that already have a
    TargetHealth restore into it; others keep a TargetState in Target.health that the new
    HealthChecker adopts. Returns the number of targets carried. The caller stops the old
    checker's tasks (old.stop()).
    """
    if old is None:
        return 0
    if isinstance(new_balancer, HealthChecker):
        new_balancer = new_balancer.balancer
    if isinstance(old, HealthChecker):
        states = old.snapshot()
    elif isinstance(old, Balancer):
        states = {}
        for t in old.targets:
            h = t.health
            if isinstance(h, TargetHealth):
                states[t.name] = h.snapshot()
            elif isinstance(h, TargetState):
                states[t.name] = h
            elif not t.healthy:
                states[t.name] = TargetState(internal=UNHEALTHY, cause="manual")
    else:
        states = dict(old)
    n = 0
    for t in new_balancer.targets:
        s = states.get(t.name)
        if s is None:
            continue
        if isinstance(t.health, TargetHealth):
            t.health.restore(s)
        else:
            t.health = s
            new_balancer.set_healthy(t, s.healthy)
        n += 1
    return n
