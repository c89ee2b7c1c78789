"""Rate-limit counters shared by several nodes in a real Redis server (the `redis` policy).

Algorithm: one Lua script per request checks every window of the request and only then counts
the request in all of them (INCRBY + PEXPIRE on a window's first hit). Redis runs a script
atomically, so the counts are exact across nodes and workers: a request that would pass any
limit is counted nowhere (Kong counts first and checks later, which lets bursts through).
Sliding windows read the previous window's key as well and weigh it like the local table does.

Connections: one ``redis.asyncio.Redis`` (with its connection pool) per connection
parameters and event loop, shared by every plugin instance and snapshot that uses the same
server; :func:`close_all` closes them at shutdown.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, NamedTuple

import redis.asyncio as aioredis
from redis.exceptions import RedisError

__all__ = ["RedisParams", "RedisLimiter", "RedisError", "close_all", "LimiterResult"]

# KEYS[i] = counter key of window i; ARGV[1] = cost;
# ARGV[2i] = limit of window i, ARGV[2i+1] = TTL (ms) given to a new key.
# -> {denied window index (0 = allowed), count_1 .. count_n}: counts after the hit when
#    allowed, current counts when denied.
_FIXED_LUA = """
local cost = tonumber(ARGV[1])
local n = #KEYS
local out = {0}
for i = 1, n do
  out[i + 1] = tonumber(redis.call('GET', KEYS[i]) or '0')
end
for i = 1, n do
  if out[i + 1] + cost > tonumber(ARGV[2 * i]) then
    out[1] = i
    return out
  end
end
if cost > 0 then
  for i = 1, n do
    local v = redis.call('INCRBY', KEYS[i], cost)
    if v == cost then redis.call('PEXPIRE', KEYS[i], ARGV[2 * i + 1]) end
    out[i + 1] = v
  end
end
return out
"""

# KEYS[2i-1] = current window key, KEYS[2i] = previous window key of limit i;
# ARGV[1] = cost; ARGV[3i-1] = limit, ARGV[3i] = TTL ms, ARGV[3i+1] = weight of the previous
# window (0..1). -> {denied index, estimate_1 .. estimate_n} with
# estimate = floor(prev * weight) + current (after the hit when allowed).
_SLIDING_LUA = """
local cost = tonumber(ARGV[1])
local n = #KEYS / 2
local out = {0}
local cur = {}
local base = {}
for i = 1, n do
  cur[i] = tonumber(redis.call('GET', KEYS[2 * i - 1]) or '0')
  local prev = tonumber(redis.call('GET', KEYS[2 * i]) or '0')
  base[i] = math.floor(prev * tonumber(ARGV[3 * i + 1]))
  out[i + 1] = base[i] + cur[i]
end
for i = 1, n do
  if out[i + 1] + cost > tonumber(ARGV[3 * i - 1]) then
    out[1] = i
    return out
  end
end
if cost > 0 then
  for i = 1, n do
    local v = redis.call('INCRBY', KEYS[2 * i - 1], cost)
    if v == cost then redis.call('PEXPIRE', KEYS[2 * i - 1], ARGV[3 * i]) end
    out[i + 1] = base[i] + v
  end
end
return out
"""


class RedisParams(NamedTuple):
    """Kong's redis connection fields (rate-limiting ``config.redis``)."""

    host: str
    port: int = 6379
    timeout_ms: int = 2000
    username: str | None = None
    password: str | None = None
    database: int = 0
    ssl: bool = False
    ssl_verify: bool = False
    server_name: str | None = None


class LimiterResult(NamedTuple):
    denied: int  # index of the first window over its limit, -1 when allowed
    counts: list[int]  # per window: count (estimate) after the hit, or current when denied


class _Conn(NamedTuple):
    client: aioredis.Redis
    fixed: Any  # AsyncScript: EVALSHA, falling back to EVAL after NOSCRIPT
    sliding: Any


_clients: dict[tuple[RedisParams, int], _Conn] = {}

# Connections per pool (per worker and server). A request waits (up to the Redis timeout) for a
# free connection instead of failing: redis-py's plain pool raises "Too many connections".
# Precedents: nginx/OpenResty lua_socket_pool_size 30; Kong rate-limiting-advanced
# redis.keepalive_pool_size 256.
REDIS_POOL_SIZE = 64


def _conn(params: RedisParams) -> _Conn:
    loop = asyncio.get_running_loop()
    key = (params, id(loop))
    conn = _clients.get(key)
    if conn is None:
        timeout = params.timeout_ms / 1000.0
        kwargs: dict[str, Any] = dict(
            max_connections=REDIS_POOL_SIZE,
            timeout=timeout,
            host=params.host,
            port=params.port,
            db=params.database,
            username=params.username,
            password=params.password,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
        )
        if params.ssl:
            kwargs.update(connection_class=aioredis.SSLConnection,
                          ssl_cert_reqs="required" if params.ssl_verify else "none",
                          ssl_check_hostname=bool(params.ssl_verify and params.server_name))
        c = aioredis.Redis(connection_pool=aioredis.BlockingConnectionPool(**kwargs))
        conn = _clients[key] = _Conn(c, c.register_script(_FIXED_LUA), c.register_script(_SLIDING_LUA))
    return conn


async def close_all() -> None:
    """Close every pool that belongs to the running loop."""
    loop_id = id(asyncio.get_running_loop())
    for key in [k for k in _clients if k[1] == loop_id]:
        await _clients.pop(key).client.aclose()


class RedisLimiter:
    """Window counters in Redis for one plugin instance's connection parameters."""

    __slots__ = ("params",)

    def __init__(self, params: RedisParams) -> None:
        self.params = params

    async def hit(self, windows: Sequence[tuple[str, float, int]], cost: int = 1) -> LimiterResult:
        """``windows``: ``(key, limit, ttl_ms)`` per fixed window. Raises RedisError/OSError
        (and asyncio.TimeoutError) on connection problems."""
        script = _conn(self.params).fixed
        args: list[Any] = [cost]
        for _key, limit, ttl in windows:
            args += [_num(limit), int(ttl)]
        res = await script(keys=[w[0] for w in windows], args=args)
        return LimiterResult(int(res[0]) - 1, [int(x) for x in res[1:]])

    async def hit_sliding(self, windows: Sequence[tuple[str, str, float, int, float]],
                          cost: int = 1) -> LimiterResult:
        """``windows``: ``(current_key, previous_key, limit, ttl_ms, previous_weight)``."""
        script = _conn(self.params).sliding
        keys: list[str] = []
        args: list[Any] = [cost]
        for cur, prev, limit, ttl, weight in windows:
            keys += [cur, prev]
            args += [_num(limit), int(ttl), repr(float(weight))]
        res = await script(keys=keys, args=args)
        return LimiterResult(int(res[0]) - 1, [int(x) for x in res[1:]])

    async def usage(self, keys: Sequence[str]) -> list[int]:
        """Current counts of fixed-window keys (tests, admin)."""
        vals = await _conn(self.params).client.mget(list(keys))
        return [int(v) if v is not None else 0 for v in vals]


def _num(limit: float) -> str:
    return str(int(limit)) if float(limit).is_integer() else repr(float(limit))
