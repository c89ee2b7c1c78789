"""response-ratelimiting: limits counted from what the upstream says a response cost (Kong
kong/plugins/response-ratelimiting).

The upstream answers with ``<header_name>: video=1, image=2``; each named limit's counters
(one per configured period) grow by that amount in the log phase. In access the current usage
is read: the upstream gets ``X-RateLimit-Remaining-<limit>`` (the smallest remaining over the
periods), and with ``block_on_first_violation`` a limit at zero answers 429 before proxying.
In header_filter the client gets ``X-RateLimit-Limit-<limit>-<period>`` and
``X-RateLimit-Remaining-<limit>-<period>`` (unless ``hide_client_headers``), the cost header is
removed, and a response that costs something from an exhausted limit becomes a bodiless 429
(not counted).

Counters (windows as Kong's: epoch-aligned second..day, UTC calendar month and year, keyed by
the plugin's scope, identifier, limit name and period):
- ``local``: the node's shared table (:func:`fastgw.plugins.rate_limiting.shared_counters`,
  every worker counts together);
- ``redis``: Kong's keys ``response-ratelimit:<route>:<service>:<identifier>:<window start
  ms>:<name>:<period>`` in Redis (read in access, INCRBY in log), for several nodes;
  ``fault_tolerant`` lets requests through when Redis fails, else Kong's 500.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import msgspec
import xxhash

from fastgw._core.limiter import calendar_bounds
from fastgw._core.ratelimit import FAIL_OPEN, MAX_COUNT

from ._kong_schema import check_gt, check_len_min
from .base import KONG_SERVER_ERROR, Plugin, PluginEnv, Response, field_error
from .rate_limiting import _FLAT_REDIS, EXPIRATION, PERIODS, RedisConfig, _num, shared_counters

log = logging.getLogger("fastgw.plugins")

_EMPTY_UUID = "00000000-0000-0000-0000-000000000000"


class LimitConfig(msgspec.Struct, forbid_unknown_fields=True):
    second: float | None = None
    minute: float | None = None
    hour: float | None = None
    day: float | None = None
    month: float | None = None
    year: float | None = None


class ResponseRateLimitingConfig(msgspec.Struct, forbid_unknown_fields=True):
    limits: dict[str, LimitConfig]
    header_name: str = "x-kong-limit"
    limit_by: Literal["consumer", "credential", "ip"] = "consumer"
    policy: Literal["local", "cluster", "redis"] = "local"
    fault_tolerant: bool = True
    redis: RedisConfig = msgspec.field(default_factory=RedisConfig)
    block_on_first_violation: bool = False
    hide_client_headers: bool = False
    # Kong < 3.6 flat redis fields (shorthands of config.redis)
    redis_host: str | None = None
    redis_port: int | None = None
    redis_timeout: int | None = None
    redis_username: str | None = None
    redis_password: str | None = None
    redis_database: int | None = None
    redis_ssl: bool | None = None
    redis_ssl_verify: bool | None = None
    redis_server_name: str | None = None

    def __post_init__(self) -> None:
        check_len_min("limits", self.limits, 1)
        for name, lim in self.limits.items():
            given = [(p, getattr(lim, p)) for p in PERIODS if getattr(lim, p) is not None]
            if not given:
                raise field_error(
                    f"limits.{name}",
                    "at least one of these fields must be non-empty: 'second', 'minute', 'hour', "
                    "'day', 'month', 'year'",
                )
            for p, v in given:
                check_gt(f"limits.{name}.{p}", v, 0)
                if v > MAX_COUNT:
                    raise field_error(f"limits.{name}.{p}", f"value must be at most {MAX_COUNT}")
            for i, (lp, lv) in enumerate(given):  # Kong's validate_periods_order
                for up, uv in given[i + 1 :]:
                    if uv < lv:
                        raise field_error(
                            "limits", f"the limit for {up}({uv:.1f}) cannot be lower than the limit for {lp}({lv:.1f})"
                        )
        for f in _FLAT_REDIS:
            v = getattr(self, "redis_" + f)
            if v is not None:
                setattr(self.redis, f, v)
        if self.policy == "cluster":
            raise field_error(
                "policy",
                "policy 'cluster' needs Kong's database, which fastgw (DB-less) does not have: use 'local'",
            )
        if self.policy == "redis":
            if not self.redis.host:
                raise field_error("redis.host", "required field missing")
            if not 0 < self.redis.port < 65536:
                raise field_error("redis.port", "value should be between 0 and 65535")
            if self.redis.timeout <= 0:
                raise field_error("redis.timeout", "value must be greater than 0")


class _Usage:
    """One (limit name, period) of one request: its counter key, window and remaining."""

    __slots__ = ("name", "period", "limit", "key", "redis_key", "start_ms", "end_ms", "remaining")

    def __init__(self, name: str, period: str, limit: float, key: int, redis_key: str, start_ms: int, end_ms: int,
                 remaining: float):
        self.name = name
        self.period = period
        self.limit = limit
        self.key = key
        self.redis_key = redis_key
        self.start_ms = start_ms
        self.end_ms = end_ms
        self.remaining = remaining


class _State:
    __slots__ = ("usage", "increments", "headers", "stop")

    def __init__(self, usage: list[_Usage]) -> None:
        self.usage = usage
        self.increments: dict[str, int] = {}
        self.headers: list[tuple[bytes, bytes]] = []
        self.stop = False


class ResponseRateLimiting(Plugin):
    name = "response-ratelimiting"
    PRIORITY = 900
    Config = ResponseRateLimitingConfig

    scope: tuple[Any, Any, Any] | None = None

    def __init__(self, config: ResponseRateLimitingConfig, env: PluginEnv) -> None:
        super().__init__(config, env)
        self._limits = [
            (name, [(p, getattr(lim, p)) for p in PERIODS if getattr(lim, p) is not None])
            for name, lim in config.limits.items()
        ]
        self._header = config.header_name.lower().encode("latin-1")
        self._vkey = ("response-ratelimiting", id(self))
        self._table = shared_counters() if config.policy == "local" else None
        self._redis: Any = None
        if config.policy == "redis":
            from fastgw.cluster.redis_limits import RedisLimiter, RedisParams

            r = config.redis
            self._redis = RedisLimiter(RedisParams(
                host=r.host or "", port=r.port, timeout_ms=r.timeout, username=r.username, password=r.password,
                database=r.database, ssl=r.ssl, ssl_verify=r.ssl_verify, server_name=r.server_name))

    def _identifier(self, ctx: Any) -> str:
        by = self.config.limit_by
        ident: Any = None
        if by == "consumer":
            ent = ctx.consumer or ctx.credential
            ident = getattr(ent, "id", None) if ent is not None else None
        elif by == "credential":
            ident = getattr(ctx.credential, "id", None) if ctx.credential is not None else None
        return str(ident) if ident else ctx.client_ip

    def _scope(self, ctx: Any) -> str:
        scope = self.scope
        if scope is not None:
            return f"{scope[0] or _EMPTY_UUID}:{scope[1] or _EMPTY_UUID}"
        r, s = ctx.route, ctx.service
        return f"{getattr(r, 'id', None) or _EMPTY_UUID}:{getattr(s, 'id', None) or _EMPTY_UUID}"

    # ------------------------------------------------------------------ access
    def _windows(self, ctx: Any) -> list[_Usage]:
        now_ms = int(ctx.now * 1000)
        now_s = now_ms // 1000
        scope = self._scope(ctx)
        ident = self._identifier(ctx)
        route_id, service_id = scope.split(":", 1)
        usage = []
        for name, periods in self._limits:
            for period, limit in periods:
                if period in ("month", "year"):
                    start, end = calendar_bounds(period, now_s)
                else:
                    secs = EXPIRATION[period]
                    start = now_s - now_s % secs
                    end = start + secs
                key = xxhash.xxh3_64_intdigest(f"{scope}:{ident}:{name}:{period}".encode())
                rkey = f"response-ratelimit:{route_id}:{service_id}:{ident}:{start * 1000}:{name}:{period}"
                usage.append(_Usage(name, period, limit, key, rkey, start * 1000, end * 1000, limit))
        return usage

    def access(self, ctx: Any) -> Any:
        usage = self._windows(ctx)
        if self._redis is not None:
            return self._access_redis(ctx, usage)
        table = self._table
        assert table is not None
        now_ms = int(ctx.now * 1000)
        for u in usage:
            u.remaining = u.limit - table.peek(u.key, now_ms, u.start_ms)
        return self._finish_access(ctx, usage)

    async def _access_redis(self, ctx: Any, usage: list[_Usage]) -> Response | None:
        from fastgw.cluster.redis_limits import RedisError

        try:
            counts = await self._redis.usage([u.redis_key for u in usage])
        except (RedisError, OSError, TimeoutError) as e:
            if not self.config.fault_tolerant:
                log.error("[response-ratelimiting] failed to get usage: %s", e)
                return Response.json(500, KONG_SERVER_ERROR)
            log.error("[response-ratelimiting] failed to get usage (fault tolerant, request let through): %s", e)
            return None
        for u, c in zip(usage, counts):
            u.remaining = u.limit - c
        return self._finish_access(ctx, usage)

    def _finish_access(self, ctx: Any, usage: list[_Usage]) -> Response | None:
        smallest: dict[str, float] = {}
        for u in usage:
            if self.config.block_on_first_violation and u.remaining <= 0:
                return Response.message(429, f"API rate limit exceeded for '{u.name}'")
            cur = smallest.get(u.name)
            if cur is None or u.remaining < cur:
                smallest[u.name] = u.remaining
        for name, remaining in smallest.items():
            ctx.request.set_header(f"X-RateLimit-Remaining-{name}", _num(remaining))
        ctx.vars[self._vkey] = _State(usage)
        return None

    # ----------------------------------------------------------- header_filter
    def header_filter(self, ctx: Any) -> Response | None:
        v = ctx._vars
        st: _State | None = v.get(self._vkey) if v is not None else None
        if st is None:
            return None
        res = ctx.response
        if st.stop:
            # the 429 made below passes header_filter again: it keeps the limit headers
            for n, val in st.headers:
                res.set_header(n, val)
            return None
        st.increments = self._parse(res.get_header_all_bytes(self._header))
        for u in st.usage:
            inc = st.increments.get(u.name, 0)
            if not self.config.hide_client_headers:
                remain = max(0, u.remaining - inc)
                st.headers.append((f"X-RateLimit-Limit-{u.name}-{u.period}".encode(), _num(u.limit).encode()))
                st.headers.append((f"X-RateLimit-Remaining-{u.name}-{u.period}".encode(), _num(remain).encode()))
            if inc > 0 and u.remaining <= 0:
                st.stop = True
        for n, val in st.headers:
            res.set_header(n, val)
        res.clear_header(self._header)
        if st.stop:
            return Response(429)  # Kong: no body
        return None

    def _parse(self, values: list[bytes]) -> dict[str, int]:
        """``video=1, image=2`` (one or several header lines) -> increments of known limits."""
        out: dict[str, int] = {}
        parts: list[str] = []
        if len(values) == 1:
            parts = values[0].decode("latin-1").split(",")
        else:
            parts = [x.decode("latin-1") for x in values]
        for part in parts:
            name, sep, num = part.partition("=")
            if not sep or "=" in num:
                continue
            name = name.strip()
            if name in self.config.limits:
                try:
                    out[name] = int(num.strip(), 10)
                except ValueError:
                    continue
        return out

    # ----------------------------------------------------------------------- log
    def log(self, ctx: Any) -> Any:
        v = ctx._vars
        st: _State | None = v.get(self._vkey) if v is not None else None
        if st is None or st.stop:
            return None
        counted = [(u, st.increments.get(u.name, 0)) for u in st.usage]
        counted = [(u, inc) for u, inc in counted if inc > 0]
        if not counted:
            return None
        if self._redis is not None:
            return self._log_redis(counted)
        table = self._table
        assert table is not None
        now_ms = int(ctx.now * 1000)
        for u, inc in counted:
            r = table.hit(u.key, now_ms, u.start_ms, u.end_ms, MAX_COUNT, inc)
            if r == FAIL_OPEN:
                log.warning("[response-ratelimiting] counter table full, usage of '%s' not counted", u.name)
        return None

    async def _log_redis(self, counted: list[tuple[_Usage, int]]) -> None:
        from fastgw.cluster.redis_limits import RedisError

        by_name: dict[tuple[str, int], list[_Usage]] = {}
        for u, inc in counted:
            by_name.setdefault((u.name, inc), []).append(u)
        for (name, inc), windows in by_name.items():
            try:
                # Kong INCRBYs unconditionally: the limit given to the script is the largest count
                await self._redis.hit([(u.redis_key, MAX_COUNT, EXPIRATION[u.period] * 1000) for u in windows], inc)
            except (RedisError, OSError, TimeoutError) as e:
                log.error("[response-ratelimiting] failed to increment '%s' in redis: %s", name, e)
