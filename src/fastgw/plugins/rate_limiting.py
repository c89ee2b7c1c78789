"""rate-limiting: Kong's plugin (fields, defaults, headers, 429 body), exact under concurrency.

Policies:
- ``local`` (default): the node's :class:`fastgw._core.ratelimit.SharedCounters` table in
  shared memory, so every worker of the node counts together. Call :func:`init_shared` in the
  master before forking workers (without it the first use creates a process-local table).
  Ticks are milliseconds. A table too full to host a key fails open (counted in
  ``overflows`` and logged here, at most once a minute).
- ``redis``: :mod:`fastgw.cluster.redis_limits` (one atomic Lua script per request) for limits
  shared by several nodes. ``fault_tolerant`` (default true, as Kong) lets requests through
  when Redis fails; false answers Kong's 500.
- ``cluster`` needs Kong's database; fastgw is DB-less, so the config is rejected.

Counting is exact: a request over any of its limits is counted in none (a window already
counted is taken back), so N workers never allow more than a limit in a window.

Windows as Kong: second, minute, hour, day (UTC, epoch-aligned), month and year (UTC calendar);
counter keys ``route:service:identifier:period`` where route/service are the PLUGIN's scope
(Kong's ``conf.route_id``/``conf.service_id``), so a service-wide plugin counts across routes.
``window_type`` ``sliding`` (Kong Enterprise rate-limiting-advanced's field) weighs the previous
window: ``floor(previous * (window - elapsed) / window) + current``; its periods are fixed
lengths (month = 30 days, year = 365 days: Kong's EXPIRATION table).

Headers as Kong's handler: ``X-RateLimit-Limit-<Period>``/``X-RateLimit-Remaining-<Period>``
per window, ``RateLimit-Limit``/``RateLimit-Remaining``/``RateLimit-Reset`` of the window with
the least remaining (ties: the longer window), ``Retry-After`` on 429; none with
``hide_client_headers``.
"""

from __future__ import annotations

import calendar
import logging
import time
from typing import Any, Literal

import msgspec
import xxhash

from fastgw._core.ratelimit import FAIL_OPEN, MAX_COUNT, SharedCounters

from .base import KONG_SERVER_ERROR, Plugin, PluginEnv, Response, field_error

__all__ = ["RateLimiting", "RateLimitingConfig", "RedisConfig", "init_shared", "shared_counters"]

log = logging.getLogger("fastgw.plugins.rate_limiting")

# Kong's ORDERED_PERIODS and EXPIRATION (seconds)
PERIODS: tuple[str, ...] = ("second", "minute", "hour", "day", "month", "year")
EXPIRATION = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "month": 2592000, "year": 31536000}

_shared: SharedCounters | None = None


def init_shared(slots: int = 65536) -> SharedCounters:
    """Create the node's counter table. Call in the master before forking workers."""
    global _shared
    _shared = SharedCounters(slots)
    return _shared


def shared_counters() -> SharedCounters:
    s = _shared
    if s is None:
        s = init_shared()
    return s


class RedisConfig(msgspec.Struct, forbid_unknown_fields=True):
    """Kong 3.6+ ``config.redis`` (the flat ``redis_*`` fields of older configs fill it)."""

    host: str | None = None
    port: int = 6379
    timeout: int = 2000  # ms, Kong's default
    username: str | None = None
    password: str | None = None
    database: int = 0
    ssl: bool = False
    ssl_verify: bool = False
    server_name: str | None = None


_FLAT_REDIS = ("host", "port", "timeout", "username", "password", "database", "ssl", "ssl_verify", "server_name")


# Kong's SYNC_RATE_REALTIME: counters written on every request
SYNC_RATE_REALTIME = -1


class RateLimitingConfig(msgspec.Struct, forbid_unknown_fields=True):
    # Limits per period (Kong: number > 0; at least one; a longer period's limit is not lower).
    second: float | None = None
    minute: float | None = None
    hour: float | None = None
    day: float | None = None
    month: float | None = None
    year: float | None = None
    # Whose requests are counted together; falls back to the client IP when missing (Kong).
    limit_by: Literal["consumer", "credential", "ip", "service", "header", "path"] = "consumer"
    header_name: str | None = None
    path: str | None = None
    policy: Literal["local", "cluster", "redis"] = "local"
    # Let requests through when the counter store fails (Kong default true).
    fault_tolerant: bool = True
    redis: RedisConfig = msgspec.field(default_factory=RedisConfig)
    # Kong < 3.6 flat redis fields (deprecated there); when set they fill config.redis.
    redis_host: str | None = None
    redis_port: int | None = None
    redis_timeout: int | None = None
    redis_username: str | None = None
    redis_password: str | None = None
    redis_database: int | None = None
    redis_ssl: bool | None = None
    redis_ssl_verify: bool | None = None
    redis_server_name: str | None = None
    hide_client_headers: bool = False
    error_code: int = 429
    error_message: str = "API rate limit exceeded"
    # Kong's batching of redis counter syncs. -1 (synchronous, Kong's default) is the only
    # value fastgw implements: its redis policy counts every request exactly; any other
    # value is rejected rather than silently treated as -1.
    sync_rate: float = SYNC_RATE_REALTIME
    # fastgw: Kong Enterprise rate-limiting-advanced's window_type ("fixed" is Kong OSS).
    window_type: Literal["fixed", "sliding"] = "fixed"

    def __post_init__(self) -> None:
        limits = [(p, getattr(self, p)) for p in PERIODS if getattr(self, p) is not None]
        if not limits:
            # Kong's entity check (at_least_one_of): reported under config.@entity
            raise ValueError(
                "at least one of these fields must be non-empty: 'config.second', 'config.minute', "
                "'config.hour', 'config.day', 'config.month', 'config.year'"
            )
        for p, v in limits:
            if not v > 0:
                raise field_error(p, "value must be greater than 0")
            if v > MAX_COUNT:
                raise field_error(p, f"value must be at most {MAX_COUNT}")
        # Kong's validate_periods_order
        for i, (lp, lv) in enumerate(limits):
            for up, uv in limits[i + 1 :]:
                if uv < lv:
                    raise field_error(
                        up, f"The limit for {up}({uv:.1f}) cannot be lower than the limit for {lp}({lv:.1f})"
                    )
        if self.limit_by == "header" and not self.header_name:
            raise field_error("header_name", "required field missing (limit_by is 'header')")
        if self.limit_by == "path" and not self.path:
            raise field_error("path", "required field missing (limit_by is 'path')")
        if self.path is not None and not self.path.startswith("/"):
            raise field_error("path", "should start with: /")
        if self.policy == "cluster":
            raise field_error(
                "policy",
                "policy 'cluster' needs Kong's database, which fastgw (DB-less) does not have: "
                "use 'local' (one node) or 'redis' (several nodes)",
            )
        for f in _FLAT_REDIS:
            v = getattr(self, "redis_" + f)
            if v is not None:
                setattr(self.redis, f, v)
        if self.policy == "redis" and not self.redis.host:
            raise field_error("redis.host", "required field missing (policy is 'redis')")
        if not 0 < self.redis.port < 65536:
            raise field_error("redis.port", "value should be between 0 and 65535")
        if self.redis.timeout <= 0:
            raise field_error("redis.timeout", "value must be greater than 0")
        if self.error_code <= 0:
            raise field_error("error_code", "value must be greater than 0")
        if self.sync_rate != SYNC_RATE_REALTIME:
            # Kong's custom_validator (rate-limiting/schema.lua) first, then fastgw's own limit
            if self.policy != "redis":
                raise ValueError("sync_rate can only be used with the redis policy")
            if self.sync_rate < 0.02:
                raise ValueError("sync_rate must be greater than 0.02, or -1 to disable")
            raise field_error("sync_rate", "fastgw counts redis limits synchronously: only -1 "
                              "is supported (batched syncs are not implemented)")


def _num(v: float) -> str:
    """Header value of a limit: Lua's tostring (5 -> "5", 2.5 -> "2.5")."""
    return str(int(v)) if float(v).is_integer() else repr(float(v))


class _Window:
    """One configured limit, with what is precomputed for it."""

    __slots__ = ("period", "limit", "count_limit", "seconds", "ms", "limit_header", "remaining_header",
                 "limit_str", "suffix", "calendar", "_lh", "_rh", "_limit_b")

    def __init__(self, period: str, limit: float, sliding: bool = False) -> None:
        self.period = period
        self.suffix = (period + (":s" if sliding else "")).encode()
        self.calendar = period in ("month", "year")
        self.limit = limit
        self.count_limit = int(limit)  # allowed while count <= floor(limit)
        self.seconds = EXPIRATION[period]
        self.ms = self.seconds * 1000
        cap = period.capitalize()
        self.limit_header = f"X-RateLimit-Limit-{cap}"
        self.remaining_header = f"X-RateLimit-Remaining-{cap}"
        self.limit_str = _num(limit)
        # Kong's spelling on the wire ("X-RateLimit-Limit-Minute"): the proxy keeps the case
        self._lh = self.limit_header.encode()
        self._rh = self.remaining_header.encode()
        self._limit_b = self.limit_str.encode()

    def allowed_headers(self, remaining: str, reset: str) -> list[tuple[bytes, bytes]]:
        """Headers of an allowed request limited by this window alone (header_filter form)."""
        rem = remaining.encode()
        return [(self._lh, self._limit_b), (self._rh, rem), (b"RateLimit-Limit", self._limit_b),
                (b"RateLimit-Remaining", rem), (b"RateLimit-Reset", reset.encode())]


# Kong's EMPTY_UUID for a missing scope
_EMPTY_UUID = "00000000-0000-0000-0000-000000000000"


def _scope_str(route_id: Any, service_id: Any) -> str:
    return f"{route_id or _EMPTY_UUID}:{service_id or _EMPTY_UUID}"


def _calendar_bounds(period: str, now_s: int) -> tuple[int, int]:
    """UTC [start, end) in seconds of the month or year containing ``now_s`` (Kong's
    timestamp.get_timestamps uses the UTC calendar for both)."""
    t = time.gmtime(now_s)
    if period == "month":
        start = calendar.timegm((t.tm_year, t.tm_mon, 1, 0, 0, 0))
        y, m = (t.tm_year + 1, 1) if t.tm_mon == 12 else (t.tm_year, t.tm_mon + 1)
        end = calendar.timegm((y, m, 1, 0, 0, 0))
    else:
        start = calendar.timegm((t.tm_year, 1, 1, 0, 0, 0))
        end = calendar.timegm((t.tm_year + 1, 1, 1, 0, 0, 0))
    return start, end


class RateLimiting(Plugin):
    name = "rate-limiting"
    PRIORITY = 910  # Kong's
    Config = RateLimitingConfig

    # Set by the chain builder when it knows the entity's scope: (route_id, service_id,
    # consumer_id). Until then the counters are keyed by the request's route and service.
    scope: tuple[Any, Any, Any] | None = None

    def __init__(self, config: RateLimitingConfig, env: PluginEnv) -> None:
        super().__init__(config, env)
        self._windows = [_Window(p, getattr(config, p), config.window_type == "sliding")
                         for p in PERIODS if getattr(config, p) is not None]
        self._sliding = config.window_type == "sliding"
        w0 = self._windows[0]
        self._one: _Window | None = (w0 if len(self._windows) == 1 and not self._sliding and not w0.calendar
                                     and config.policy == "local" else None)
        self._header_lower = (config.header_name or "").lower().encode("latin-1")
        self._calendar_cache: dict[tuple[str, int], tuple[int, int]] = {}
        self._last_overflow_log = 0.0
        self._scope_str: str | None = None
        self._scope_cache: dict[tuple[int, int], str] = {}
        self._seed_cache: dict[str, tuple[int, ...]] = {}
        self._table: SharedCounters | None = None
        self._redis: Any = None
        if config.policy == "redis":
            from fastgw.cluster.redis_limits import RedisLimiter, RedisParams

            r = config.redis
            self._redis = RedisLimiter(RedisParams(
                host=r.host or "", port=r.port, timeout_ms=r.timeout, username=r.username,
                password=r.password, database=r.database, ssl=r.ssl, ssl_verify=r.ssl_verify,
                server_name=r.server_name))
        else:
            self._table = shared_counters()

    # ---- identifier (Kong's get_identifier) ----
    def _identifier(self, ctx: Any) -> str:
        by = self.config.limit_by
        ident: Any = None
        if by == "consumer":
            ent = ctx.consumer or ctx.credential
            ident = getattr(ent, "id", None) if ent is not None else None
        elif by == "credential":
            ident = getattr(ctx.credential, "id", None) if ctx.credential is not None else None
        elif by == "service":
            ident = getattr(ctx.service, "id", None) if ctx.service is not None else None
        elif by == "header":
            v = ctx.request.get_header_bytes(self._header_lower)
            ident = v.decode("latin-1") if v is not None else None
        elif by == "path":
            if ctx.request.path == self.config.path:
                ident = self.config.path
        return str(ident) if ident else ctx.client_ip

    def _scope_prefix(self, ctx: Any) -> str:
        scope = self.scope
        if scope is not None:
            p = self._scope_str
            if p is None:
                p = self._scope_str = _scope_str(scope[0], scope[1])
            return p
        route, service = ctx.route, ctx.service
        # entities live as long as the snapshot that holds this instance: ids are stable keys
        ck = (id(route), id(service))
        p = self._scope_cache.get(ck)
        if p is None:
            if len(self._scope_cache) > 4096:
                self._scope_cache.clear()
            p = self._scope_cache[ck] = _scope_str(getattr(route, "id", None) if route is not None else None,
                                                   getattr(service, "id", None) if service is not None else None)
        return p

    def _seeds_for(self, scope: str) -> tuple[int, ...]:
        seeds = self._seed_cache.get(scope)
        if seeds is None:
            if len(self._seed_cache) > 4096:
                self._seed_cache.clear()
            seeds = self._seed_cache[scope] = tuple(
                xxhash.xxh3_64_intdigest(scope.encode() + b":" + w.suffix) for w in self._windows)
        return seeds

    def _bounds(self, w: _Window, now_s: int) -> tuple[int, int]:
        """[start, end) in seconds of the fixed window containing now_s."""
        if w.calendar:
            ck = (w.period, now_s // 86400)
            b = self._calendar_cache.get(ck)
            if b is None:
                if len(self._calendar_cache) > 64:
                    self._calendar_cache.clear()
                b = self._calendar_cache[ck] = _calendar_bounds(w.period, now_s)
            if not b[0] <= now_s < b[1]:
                b = _calendar_bounds(w.period, now_s)
            return b
        start = now_s - now_s % w.seconds
        return start, start + w.seconds

    # ---- phases ----
    def access(self, ctx: Any) -> Any:
        if self._redis is not None:
            return self._access_redis(ctx)
        now_ms = int(ctx.now * 1000)
        now_s = now_ms // 1000
        # key = xxh3(identifier, seed = xxh3("route:service:period")): one small hash per window
        seeds = self._seeds_for(self._scope_prefix(ctx))
        ident = self._identifier(ctx).encode()
        h64 = xxhash.xxh3_64_intdigest
        one = self._one
        if one is not None:
            # The common shape (one fixed second/minute/hour/day limit): no lists, no tuples
            # beyond the headers. Denials and every other shape take the general path below.
            seconds = one.seconds
            start = now_s - now_s % seconds
            r = self._table.hit(h64(ident, seeds[0]), now_ms, start * 1000,  # type: ignore[union-attr]
                                (start + seconds) * 1000, one.count_limit)
            if r >= 0:
                if not self.config.hide_client_headers:
                    rem = one.count_limit - r
                    reset = start + seconds - now_s
                    ctx.vars["rate-limiting.headers"] = one.allowed_headers(str(rem if rem > 0 else 0),
                                                                           str(reset if reset > 1 else 1))
                return None
            if r == FAIL_OPEN:
                self._log_overflow(self._table)  # type: ignore[arg-type]
                return None
        table = self._table
        assert table is not None
        counted: list[tuple[int, int, int]] = []  # (usage index, key, window start ms)
        usage: list[tuple[_Window, int, int]] = []  # (window, count, reset seconds)
        stop: _Window | None = None
        sliding = self._sliding
        for wi, w in enumerate(self._windows):
            key = h64(ident, seeds[wi])
            if sliding:
                start = 0
                reset = w.seconds - (now_ms % w.ms) // 1000
            else:
                start, end = self._bounds(w, now_s)
                start *= 1000
                reset = end - now_s
            if stop is not None:
                # after a denial: show the other windows' usage without counting (Kong shows all)
                cur = table.peek_sliding(key, now_ms, w.ms) if sliding else table.peek(key, now_ms, start)
                usage.append((w, cur, reset if reset > 1 else 1))
                continue
            if sliding:
                r = table.hit_sliding(key, now_ms, w.ms, w.count_limit)
            else:
                r = table.hit(key, now_ms, start, end * 1000, w.count_limit)
            if r == FAIL_OPEN:
                self._log_overflow(table)
                continue
            if r < 0:  # denied: the current usage, without this request
                stop = w
                cur = table.peek_sliding(key, now_ms, w.ms) if sliding else table.peek(key, now_ms, start)
                usage.append((w, cur, max(1, reset)))
                continue
            counted.append((len(usage), key, w.ms if sliding else start))
            usage.append((w, r, reset if reset > 1 else 1))
        if stop is not None:
            # exactness: a denied request counts in no window; those windows then show their
            # usage without this request, as Kong's do
            for i, key, arg in counted:
                if sliding:
                    table.unhit_sliding(key, now_ms, arg)
                else:
                    table.unhit(key, now_ms, arg)
                w, r, reset = usage[i]
                usage[i] = (w, r - 1, reset)
        return self._finish(ctx, usage, stop)

    async def _access_redis(self, ctx: Any) -> Response | None:
        from fastgw.cluster.redis_limits import RedisError

        conf = self.config
        now_ms = int(ctx.now * 1000)
        now_s = now_ms // 1000
        base = f"ratelimit:{self._scope_prefix(ctx)}:{self._identifier(ctx)}:"
        resets: list[int] = []
        try:
            if self._sliding:
                sl = []
                for w in self._windows:
                    idx = now_ms // w.ms
                    weight = (w.ms - (now_ms - idx * w.ms)) / w.ms
                    sl.append((f"{base}{idx * w.ms}:{w.period}:s", f"{base}{(idx - 1) * w.ms}:{w.period}:s",
                               w.limit, 2 * w.ms, weight))
                    resets.append(w.seconds - (now_ms % w.ms) // 1000)
                res = await self._redis.hit_sliding(sl)
            else:
                fx = []
                for w in self._windows:
                    start, end = self._bounds(w, now_s)
                    # Kong's key: ratelimit:<route>:<service>:<identifier>:<period_date ms>:<period>
                    fx.append((f"{base}{start * 1000}:{w.period}", w.limit, (end - start) * 1000))
                    resets.append(end - now_s)
                res = await self._redis.hit(fx)
        except (RedisError, OSError, TimeoutError) as e:
            if not conf.fault_tolerant:
                log.error("rate-limiting: failed to get usage from redis: %s", e)
                return Response.json(500, KONG_SERVER_ERROR)
            log.error("rate-limiting: failed to get usage from redis (fault tolerant, request let through): %s", e)
            return None
        usage = []
        stop = None
        for i, w in enumerate(self._windows):
            usage.append((w, res.counts[i], max(1, resets[i])))
            if res.denied == i:
                stop = w
        return self._finish(ctx, usage, stop)

    def _finish(self, ctx: Any, usage: list[tuple[_Window, int, int]], stop: _Window | None) -> Response | None:
        conf = self.config
        headers: list[tuple[str, str]] | None = None
        reset = 0
        if not conf.hide_client_headers and usage:
            headers = []
            best: _Window | None = None
            best_remaining = 0
            for w, count, w_reset in usage:
                # allowed: count includes this request (Kong's remaining - 1); the stopping
                # window shows 0; other windows of a denied request show what is left.
                remaining = w.count_limit - count if w is not stop else 0
                if remaining < 0:
                    remaining = 0
                headers.append((w.limit_header, w.limit_str))
                headers.append((w.remaining_header, str(remaining)))
                # Kong: the least remaining wins; on a tie the longer window
                if best is None or remaining < best_remaining or (remaining == best_remaining
                                                                  and w.seconds > best.seconds):
                    best, best_remaining, reset = w, remaining, w_reset
            assert best is not None
            headers.append(("RateLimit-Limit", best.limit_str))
            headers.append(("RateLimit-Remaining", str(best_remaining)))
            headers.append(("RateLimit-Reset", str(reset)))
        if stop is not None:
            if headers is not None:
                headers.append(("Retry-After", str(reset)))
            return Response.message(conf.error_code, conf.error_message, headers)
        if headers:
            ctx.vars["rate-limiting.headers"] = headers
        return None

    def header_filter(self, ctx: Any) -> None:
        headers = ctx.vars.get("rate-limiting.headers")
        if headers and ctx.response is not None:
            for name, value in headers:
                ctx.response.set_header(name, value)

    def _log_overflow(self, table: SharedCounters) -> None:
        now = time.monotonic()
        if now - self._last_overflow_log >= 60.0:
            self._last_overflow_log = now
            log.error(
                "rate-limiting: the shared counter table is full (%d overflows, %d contended); "
                "requests of new keys are let through uncounted: raise the table size",
                table.overflows, table.contended,
            )
