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

The window arithmetic, the exact counting (a request over any of its limits is counted in
none) and the response headers are the compiled :class:`fastgw._core.limiter.WindowLimiter`'s,
which the compiled plugin chain calls too; this module computes the identifier and the keys.

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

import logging
import time
from typing import Any, Literal

import msgspec
import xxhash

from fastgw._core.limiter import WindowLimiter
from fastgw._core.ratelimit import MAX_COUNT, SharedCounters

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
                 "limit_str", "suffix", "calendar")

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


# Kong's EMPTY_UUID for a missing scope
_EMPTY_UUID = "00000000-0000-0000-0000-000000000000"


def _scope_str(route_id: Any, service_id: Any) -> str:
    return f"{route_id or _EMPTY_UUID}:{service_id or _EMPTY_UUID}"


class RateLimiting(Plugin):
    name = "rate-limiting"
    PRIORITY = 910  # Kong's
    Config = RateLimitingConfig

    # Set by the chain builder when it knows the entity's scope: (route_id, service_id,
    # consumer_id). Until then the counters are keyed by the request's route and service.
    scope: tuple[Any, Any, Any] | None = None

    def __init__(self, config: RateLimitingConfig, env: PluginEnv) -> None:
        super().__init__(config, env)
        self.windows = [_Window(p, getattr(config, p), config.window_type == "sliding")
                         for p in PERIODS if getattr(config, p) is not None]
        self._sliding = config.window_type == "sliding"
        self._header_lower = (config.header_name or "").lower().encode("latin-1")
        self._last_overflow_log = 0.0
        self._scope_str: str | None = None
        self._scope_cache: dict[tuple[int, int], str] = {}
        self._seed_cache: dict[str, tuple[int, ...]] = {}
        self.table: SharedCounters | None = None
        self._redis: Any = None
        if config.policy == "redis":
            from fastgw.cluster.redis_limits import RedisLimiter, RedisParams

            r = config.redis
            self._redis = RedisLimiter(RedisParams(
                host=r.host or "", port=r.port, timeout_ms=r.timeout, username=r.username,
                password=r.password, database=r.database, ssl=r.ssl, ssl_verify=r.ssl_verify,
                server_name=r.server_name))
        else:
            self.table = shared_counters()
        # the window arithmetic, counting and headers (the redis policy uses its bounds and
        # headers; counting there is the Lua script's)
        self.limiter = WindowLimiter(self.table, self.windows, sliding=self._sliding,
                                     hide=config.hide_client_headers,
                                     error_code=config.error_code,
                                     error_message=config.error_message,
                                     on_overflow=self.log_overflow)

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

    def scope_prefix(self, ctx: Any) -> str:
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

    def seeds_for(self, scope: str) -> tuple[int, ...]:
        seeds = self._seed_cache.get(scope)
        if seeds is None:
            if len(self._seed_cache) > 4096:
                self._seed_cache.clear()
            seeds = self._seed_cache[scope] = tuple(
                xxhash.xxh3_64_intdigest(scope.encode() + b":" + w.suffix) for w in self.windows)
        return seeds

    # ---- phases ----
    def access(self, ctx: Any) -> Any:
        if self._redis is not None:
            return self._access_redis(ctx)
        # key = xxh3(identifier, seed = xxh3("route:service:period")): one small hash per window
        seeds = self.seeds_for(self.scope_prefix(ctx))
        ident = self._identifier(ctx).encode()
        h64 = xxhash.xxh3_64_intdigest
        status, headers = self.limiter.hit([h64(ident, seed) for seed in seeds], ctx.now)
        return self._result(ctx, status, headers)

    async def _access_redis(self, ctx: Any) -> Response | None:
        from fastgw.cluster.redis_limits import RedisError

        conf = self.config
        now_ms = int(ctx.now * 1000)
        now_s = now_ms // 1000
        base = f"ratelimit:{self.scope_prefix(ctx)}:{self._identifier(ctx)}:"
        resets: list[int] = []
        try:
            if self._sliding:
                sl = []
                for w in self.windows:
                    idx = now_ms // w.ms
                    weight = (w.ms - (now_ms - idx * w.ms)) / w.ms
                    sl.append((f"{base}{idx * w.ms}:{w.period}:s", f"{base}{(idx - 1) * w.ms}:{w.period}:s",
                               w.limit, 2 * w.ms, weight))
                    resets.append(w.seconds - (now_ms % w.ms) // 1000)
                res = await self._redis.hit_sliding(sl)
            else:
                fx = []
                for i, w in enumerate(self.windows):
                    start, end = self.limiter.window_bounds(i, now_s)
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
        status, headers = self.limiter.headers_for(res.counts, resets, res.denied)
        return self._result(ctx, status, headers)

    def _result(self, ctx: Any, status: int, headers: list[tuple[bytes, bytes]]) -> Response | None:
        if status:
            return Response.message(status, self.config.error_message, headers or None)
        if headers:
            ctx.vars["rate-limiting.headers"] = headers
        return None

    def header_filter(self, ctx: Any) -> None:
        headers = ctx.vars.get("rate-limiting.headers")
        if headers and ctx.response is not None:
            for name, value in headers:
                ctx.response.set_header(name, value)

    def log_overflow(self, table: SharedCounters) -> None:
        now = time.monotonic()
        if now - self._last_overflow_log >= 60.0:
            self._last_overflow_log = now
            log.error(
                "rate-limiting: the shared counter table is full (%d overflows, %d contended); "
                "requests of new keys are let through uncounted: raise the table size",
                table.overflows, table.contended,
            )
