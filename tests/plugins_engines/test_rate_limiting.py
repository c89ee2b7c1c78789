"""rate-limiting plugin: Kong's config, headers and 429; local policy exactness (incl. forks);
redis policy against a real redis-server."""
from __future__ import annotations

import asyncio
import os
from types import SimpleNamespace

import orjson
import pytest

from fastgw.plugins import PluginConfigError, validate_config
from fastgw.plugins import rate_limiting as rl
from fastgw.plugins.chain import PluginInstanceError

from plugins_engines import helpers
from plugins_engines.helpers import ENGINES, NOW, Gateway, hdrs

ALICE = SimpleNamespace(id="c-alice", username="alice", custom_id=None)
BOB = SimpleNamespace(id="c-bob", username="bob", custom_id=None)


@pytest.fixture(autouse=True)
def fresh_table() -> None:
    rl.init_shared(4096)  # each test counts in its own table


@pytest.fixture(autouse=True, params=ENGINES)
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test of this file runs on the Python chain and on the compiled chain; those that
    reach into the Python chain itself are marked python_only."""
    if request.param == "native" and request.node.get_closest_marker("python_only"):
        pytest.skip("drives the Python chain directly")
    monkeypatch.setattr(helpers, "engine", request.param)
    return request.param


def gw(**config: object) -> Gateway:
    return Gateway([{"name": "rate-limiting", "config": config}])


# ---------------------------------------------------------------- config

def test_defaults_are_kongs() -> None:
    c = validate_config("rate-limiting", {"minute": 5})
    assert (c.limit_by, c.policy, c.fault_tolerant, c.hide_client_headers) == ("consumer", "local", True, False)
    assert (c.error_code, c.error_message) == (429, "API rate limit exceeded")
    assert c.window_type == "fixed"
    assert (c.redis.port, c.redis.timeout, c.redis.database) == (6379, 2000, 0)


@pytest.mark.parametrize(
    "config, path, fragment",
    [
        ({}, "config", "at least one of these fields must be non-empty"),
        ({"minute": 0}, "config.minute", "greater than 0"),
        ({"second": 10, "minute": 5}, "config.minute", "The limit for minute(5.0) cannot be lower than the limit for second(10.0)"),
        ({"minute": 5, "limit_by": "header"}, "config.header_name", "required"),
        ({"minute": 5, "limit_by": "path"}, "config.path", "required"),
        ({"minute": 5, "policy": "cluster"}, "config.policy", "DB-less"),
        ({"minute": 5, "policy": "redis"}, "config.redis.host", "required"),
        ({"minute": 5, "limit_by": "nope"}, "config.limit_by", ""),
        ({"minute": 5, "bogus": 1}, "config.bogus", "unknown field"),
        ({"minute": 2**33}, "config.minute", "at most"),
    ],
)
def test_invalid_configs_name_the_field(config: dict, path: str, fragment: str) -> None:
    with pytest.raises(PluginConfigError) as e:
        validate_config("rate-limiting", config)
    (got_path, msg), = e.value.errors
    assert got_path == path
    assert fragment in msg


def test_flat_redis_fields_fill_nested_form() -> None:
    c = validate_config("rate-limiting", {"minute": 5, "policy": "redis", "redis_host": "10.1.1.1",
                                          "redis_port": 6380, "redis_password": "pw", "redis_timeout": 50,
                                          "redis_database": 2})
    assert (c.redis.host, c.redis.port, c.redis.password, c.redis.timeout, c.redis.database) == (
        "10.1.1.1", 6380, "pw", 50, 2)
    c = validate_config("rate-limiting", {"minute": 5, "policy": "redis", "redis": {"host": "h", "port": 1}})
    assert (c.redis.host, c.redis.port) == ("h", 1)


def test_bad_config_in_a_snapshot_is_reported_with_its_path() -> None:
    with pytest.raises(PluginInstanceError) as e:
        Gateway([{"name": "rate-limiting", "config": {"policy": "cluster", "minute": 1}}])
    assert e.value.errors[0][0] == "plugins[0].config.policy"


# ---------------------------------------------------------------- local policy

def test_headers_on_allowed_requests_and_429_with_kong_body() -> None:
    g = gw(minute=3, limit_by="ip")
    for remaining in (2, 1, 0):
        ctx, resp = g.request()
        assert resp is None
        h = g.respond(ctx)
        assert h["x-ratelimit-limit-minute"] == "3"
        assert h["x-ratelimit-remaining-minute"] == str(remaining)
        assert h["ratelimit-limit"] == "3"
        assert h["ratelimit-remaining"] == str(remaining)
        # NOW is 20.25 s into its minute: the window ends in 40 s
        assert h["ratelimit-reset"] == "40"
    ctx, resp = g.request()
    assert resp is not None and resp.status == 429
    assert orjson.loads(resp.body) == {"message": "API rate limit exceeded"}
    h = hdrs(resp)
    assert h["content-type"] == "application/json; charset=utf-8"
    assert h["retry-after"] == "40"
    assert h["x-ratelimit-remaining-minute"] == "0"
    assert h["ratelimit-remaining"] == "0"


def test_new_window_allows_again() -> None:
    g = gw(second=2, limit_by="ip")
    assert [g.request()[1] is None for _ in range(3)] == [True, True, False]
    assert g.request(now=NOW + 1)[1] is None


def test_error_code_and_message_are_configurable() -> None:
    g = gw(second=1, limit_by="ip", error_code=503, error_message="slow down")
    g.request()
    resp = g.request()[1]
    assert resp.status == 503 and orjson.loads(resp.body) == {"message": "slow down"}


def test_hide_client_headers() -> None:
    g = gw(second=1, limit_by="ip", hide_client_headers=True)
    ctx, resp = g.request()
    assert resp is None and g.respond(ctx) == {}
    resp = g.request()[1]
    assert resp.status == 429
    assert not any(k.startswith(("x-ratelimit", "ratelimit", "retry-after")) for k in hdrs(resp))


def test_several_windows_report_the_tightest_and_count_denied_nowhere() -> None:
    g = gw(second=2, minute=3, limit_by="ip")
    ctx, _ = g.request()
    h = g.respond(ctx)
    assert (h["x-ratelimit-remaining-second"], h["x-ratelimit-remaining-minute"]) == ("1", "2")
    # tie-break: equal remaining -> the longer window; here second has 1 < 2
    assert (h["ratelimit-limit"], h["ratelimit-remaining"], h["ratelimit-reset"]) == ("2", "1", "1")
    g.request()
    resp = g.request()[1]  # third in the same second: the second-limit stops it
    assert resp.status == 429
    h = hdrs(resp)
    assert h["x-ratelimit-remaining-second"] == "0"
    assert h["x-ratelimit-remaining-minute"] == "1"  # 2 used: the denied one was not counted
    assert h["retry-after"] == "1"
    # next second: one more fits in the minute, then the minute stops it
    assert g.request(now=NOW + 1)[1] is None
    resp = g.request(now=NOW + 1)[1]
    assert resp.status == 429
    h = hdrs(resp)
    assert h["x-ratelimit-remaining-minute"] == "0"
    assert h["x-ratelimit-remaining-second"] == "1"  # shown without counting
    assert h["ratelimit-reset"] == "39"
    # the minute's denial took back the second-window hit: 1 still fits in this second... but
    # the minute is full
    assert g.request(now=NOW + 1)[1].status == 429


@pytest.mark.python_only
@pytest.mark.parametrize("limit_by", ["consumer", "credential"])
def test_limit_by_consumer_or_credential_separates_and_falls_back_to_ip(limit_by: str) -> None:
    g = gw(second=1, limit_by=limit_by)

    def req(who: SimpleNamespace | None, ip: str = "10.0.0.1") -> int:
        from plugins_engines.helpers import make_ctx, resolve

        ctx = make_ctx(g.env, client=ip)
        if who is not None:
            ctx.consumer = who
            ctx.credential = SimpleNamespace(id="cred-" + who.id)
        r = resolve(g.chain.run_access(ctx))
        return 200 if r is None else r.status

    assert req(ALICE) == 200
    assert req(ALICE) == 429
    assert req(BOB) == 200
    assert req(None) == 200  # no consumer: the client IP
    assert req(None) == 429
    assert req(None, ip="10.0.0.2") == 200


def test_limit_by_header_path_service_ip() -> None:
    g = gw(second=1, limit_by="header", header_name="X-Tenant")
    assert g.request(headers=[("x-tenant", "a")])[1] is None
    assert g.request(headers=[("X-Tenant", "a")])[1].status == 429
    assert g.request(headers=[("x-tenant", "b")])[1] is None
    assert g.request()[1] is None  # header missing: by IP

    rl.init_shared(1024)
    g = gw(second=1, limit_by="path", path="/login")
    assert g.request(target="/login?x=1")[1] is None
    assert g.request(target="/login", client="10.9.9.9")[1].status == 429  # same path, any client
    assert g.request(target="/other")[1] is None  # not that path: by IP

    rl.init_shared(1024)
    g = gw(second=1, limit_by="service")
    assert g.request(client="1.1.1.1")[1] is None
    assert g.request(client="2.2.2.2")[1].status == 429

    rl.init_shared(1024)
    g = gw(second=1, limit_by="ip")
    assert g.request(client="1.1.1.1")[1] is None
    assert g.request(client="1.1.1.1")[1].status == 429
    assert g.request(client="2.2.2.2")[1] is None


def test_month_and_year_windows_use_the_utc_calendar() -> None:
    g = gw(month=1, year=2, limit_by="ip")
    ctx, _ = g.request()  # 2023-11-14T22:13:20Z
    h = g.respond(ctx)
    dec1 = 1701388800  # 2023-12-01T00:00:00Z
    assert h["ratelimit-limit"] == "1"  # the month has 0 left, the tighter one
    assert h["ratelimit-reset"] == str(dec1 - int(NOW))
    assert g.request(now=dec1 - 1)[1].status == 429
    assert g.request(now=dec1)[1] is None  # new month; the year has its second
    resp = g.request(now=dec1 + 5)[1]
    assert resp.status == 429


def test_counters_are_shared_across_snapshots_of_the_same_scope() -> None:
    g1 = gw(second=2, limit_by="ip")
    g2 = gw(second=2, limit_by="ip")  # a reload: new instances, same scope
    assert g1.request()[1] is None
    assert g2.request()[1] is None
    assert g1.request()[1].status == 429


def test_scope_from_the_chain_keys_like_kong() -> None:
    """Service-scoped instance: counts across routes (Kong's conf.service_id, empty route)."""
    g = gw(second=1, limit_by="ip")
    p = g.plugin("rate-limiting")
    p.scope = (None, "s1", None)
    from plugins_engines.helpers import ROUTE

    other_route = SimpleNamespace(id="r2", name="route-two")
    assert g.request(route=ROUTE)[1] is None
    assert g.request(route=other_route)[1].status == 429


def test_sliding_window() -> None:
    g = gw(second=10, limit_by="ip", window_type="sliding")
    base = 1_700_000_000.0
    assert all(g.request(now=base + 0.1)[1] is None for _ in range(10))
    assert g.request(now=base + 0.1)[1].status == 429
    # half-way into the next second the previous 10 weigh 5: 5 more fit
    results = [g.request(now=base + 1.5)[1] for _ in range(6)]
    assert [r is None for r in results] == [True] * 5 + [False]
    ctx, _ = g.request(now=base + 2.99)  # previous window (5) weighs ~0 -> fits
    assert g.respond(ctx)["x-ratelimit-remaining-second"] == "9"


def test_table_full_fails_open_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    rl.init_shared(16)
    g = gw(second=1, limit_by="ip")
    for i in range(16):
        assert g.request(client=f"10.1.0.{i}")[1] is None
    with caplog.at_level("ERROR"):
        for _ in range(3):
            ctx, resp = g.request(client="10.2.0.1")
            assert resp is None  # failed open
    assert rl.shared_counters().overflows >= 3
    assert sum("table is full" in r.message for r in caplog.records) == 1  # rate-limited log


def _hammer_plugin(limit: int, tries: int, wfd: int) -> None:
    g = gw(minute=limit, limit_by="ip")
    ok = sum(1 for _ in range(tries) if g.request()[1] is None)
    os.write(wfd, f"{ok}\n".encode())
    os.close(wfd)


def test_local_policy_is_exact_across_two_forked_workers() -> None:
    rl.init_shared(1024)  # the master's table, inherited by both workers
    rfd, wfd = os.pipe()
    pids = []
    for _ in range(2):
        pid = os.fork()
        if pid == 0:
            try:
                os.close(rfd)
                _hammer_plugin(300, 400, wfd)
            finally:
                os._exit(0)
        pids.append(pid)
    os.close(wfd)
    data = b""
    while chunk := os.read(rfd, 1024):
        data += chunk
    for pid in pids:
        os.waitpid(pid, 0)
    counts = [int(x) for x in data.split()]
    assert len(counts) == 2 and sum(counts) == 300


# ---------------------------------------------------------------- redis policy

def redis_gw(port: int, **config: object) -> Gateway:
    return gw(policy="redis", redis={"host": "127.0.0.1", "port": port}, **config)


@pytest.mark.needs_redis
def test_redis_policy_headers_and_429(redis_server) -> None:
    g = redis_gw(redis_server.port, minute=2, limit_by="ip")

    async def run() -> list:
        out = []
        for _ in range(3):
            ctx, resp = await g.arequest()
            out.append((ctx, resp))
        from fastgw.cluster.redis_limits import close_all

        await close_all()
        return out

    (c1, r1), (c2, r2), (c3, r3) = asyncio.run(run())
    assert r1 is None and r2 is None
    assert g.respond(c1)["x-ratelimit-remaining-minute"] == "1"
    assert g.respond(c2)["x-ratelimit-remaining-minute"] == "0"
    assert r3.status == 429 and hdrs(r3)["retry-after"] == "40"
    # Kong's key layout, with the window start in ms
    with redis_server.client() as c:
        keys = [k.decode() for k in c.keys("ratelimit:*")]
        start_ms = (int(NOW) // 60 * 60) * 1000
        # a global plugin: Kong keys its counters by the PLUGIN's scope (EMPTY_UUID here)
        empty = "00000000-0000-0000-0000-000000000000"
        assert keys == [f"ratelimit:{empty}:{empty}:10.0.0.1:{start_ms}:minute"]
        assert int(c.get(keys[0])) == 2
        assert 0 < c.pttl(keys[0]) <= 60_000


@pytest.mark.needs_redis
def test_redis_policy_is_exact_with_concurrent_clients_and_two_nodes(redis_server) -> None:
    g1 = redis_gw(redis_server.port, minute=50, limit_by="ip")
    g2 = redis_gw(redis_server.port, minute=50, limit_by="ip")  # another node, same Redis

    async def run() -> int:
        from fastgw.cluster.redis_limits import close_all

        results = await asyncio.gather(*[(g1 if i % 2 else g2).arequest() for i in range(120)])
        await close_all()
        return sum(1 for _, r in results if r is None)

    assert asyncio.run(run()) == 50


@pytest.mark.needs_redis
def test_redis_multi_window_denial_counts_nowhere(redis_server) -> None:
    g = redis_gw(redis_server.port, second=5, minute=6, limit_by="ip")

    async def run() -> list:
        from fastgw.cluster.redis_limits import close_all

        out = [(await g.arequest(now=NOW))[1] for _ in range(6)]
        out += [(await g.arequest(now=NOW + 1))[1] for _ in range(2)]
        await close_all()
        return out

    res = asyncio.run(run())
    assert [r is None for r in res] == [True] * 5 + [False] + [True, False]
    h = hdrs(res[-1])
    assert h["x-ratelimit-remaining-minute"] == "0"
    assert h["x-ratelimit-remaining-second"] == "4"


@pytest.mark.needs_redis
def test_redis_sliding(redis_server) -> None:
    g = redis_gw(redis_server.port, second=4, limit_by="ip", window_type="sliding")
    base = 1_700_000_000.0

    async def run() -> list:
        from fastgw.cluster.redis_limits import close_all

        out = [(await g.arequest(now=base + 0.2))[1] is None for _ in range(5)]
        out += [(await g.arequest(now=base + 1.5))[1] is None for _ in range(3)]
        await close_all()
        return out

    assert asyncio.run(run()) == [True] * 4 + [False] + [True, True, False]


def _closed_port() -> int:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_redis_down_fault_tolerant_lets_through(caplog: pytest.LogCaptureFixture) -> None:
    g = redis_gw(_closed_port(), second=1, limit_by="ip", redis_timeout=200)
    with caplog.at_level("ERROR"):
        ctx, resp = g.request()
    assert resp is None
    assert g.respond(ctx) == {}  # no usage, no headers (Kong)
    assert any("failed to get usage" in r.message for r in caplog.records)


def test_redis_down_not_fault_tolerant_is_kongs_500() -> None:
    g = redis_gw(_closed_port(), second=1, limit_by="ip", fault_tolerant=False, redis_timeout=200)
    resp = g.request()[1]
    assert resp.status == 500
    assert orjson.loads(resp.body) == {"message": "An unexpected error occurred"}


def test_sliding_multi_window_denial_counts_nowhere() -> None:
    g = gw(second=3, minute=4, limit_by="ip", window_type="sliding")
    base = 1_700_000_000.0
    assert [g.request(now=base)[1] is None for _ in range(4)] == [True, True, True, False]
    # the 4th was stopped by the second-limit and taken back from the minute window:
    # 999 ms into the next second the previous 3 weigh floor(3 * 0.001) = 0
    ctx, resp = g.request(now=base + 1.999)
    assert resp is None  # minute: 3 -> 4
    assert g.respond(ctx)["x-ratelimit-remaining-second"] == "2"
    resp = g.request(now=base + 1.999)[1]
    assert resp.status == 429  # the minute stops it; the second window takes it back
    h = hdrs(resp)
    assert (h["x-ratelimit-remaining-minute"], h["x-ratelimit-remaining-second"]) == ("0", "2")
