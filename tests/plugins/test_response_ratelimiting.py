"""response-ratelimiting through a real gateway: Kong's spec/03-plugins/24-response-rate-limiting.
Each test runs at its own FakeClock second, so the node's shared counters never mix tests."""
from __future__ import annotations

import itertools
import json

import pytest

from fastgw.testing import FakeClock
from servers import Behaviour

from gw_helpers import config_errors, kong_config, route, serve

RRL = "response-ratelimiting"
_T0 = itertools.count(1_800_000_000, 1000)

SCHEMA_CASES = [
    ({"limits": {"video": {"second": 1}}}, {}),
    ({"limits": {"video": {"second": 1, "minute": 2, "hour": 3, "day": 4, "month": 5, "year": 6}}}, {}),
    ({}, {"config.limits": "required field missing"}),
    ({"limits": {}}, {"config.limits": "length must be at least 1"}),
    ({"limits": {"video": {"seco": 1}}}, {"config.limits[...].seco": "unknown field"}),
    ({"limits": {"video": {"second": None, "minute": 1}}}, {}),
    ({"limits": {"video": {"second": 2, "minute": 1}}},
     {"config.limits": "the limit for minute(1.0) cannot be lower than the limit for second(2.0)"}),
    ({"limits": {"video": {"second": 1, "minute": 2, "hour": 3, "day": 4, "month": 6, "year": 5}}},
     {"config.limits": "the limit for year(5.0) cannot be lower than the limit for month(6.0)"}),
    ({"limits": {"second": 10}}, {"config.limits[...]": "expected a record"}),
    ({"limits": {"video": {}}}, {"config.limits.video": "at least one of these fields must be non-empty: "
                                 "'second', 'minute', 'hour', 'day', 'month', 'year'"}),
    ({"limits": {"video": {"second": 0}}}, {"config.limits.video.second": "value must be greater than 0"}),
    ({"limits": {"video": {"second": 1}}, "limit_by": "path"},
     {"config.limit_by": "expected one of: consumer, credential, ip"}),
]


@pytest.mark.parametrize("conf,errors", SCHEMA_CASES)
def test_schema(conf, errors):
    assert config_errors(RRL, conf) == errors


def test_cluster_policy_is_rejected_and_redis_needs_a_host():
    errs = config_errors(RRL, {"limits": {"v": {"second": 1}}, "policy": "cluster"})
    assert "DB-less" in errs["config.policy"]
    assert config_errors(RRL, {"limits": {"v": {"second": 1}}, "policy": "redis"}) == {
        "config.redis.host": "required field missing"}
    assert config_errors(RRL, {"limits": {"v": {"second": 1}}, "policy": "redis", "redis_host": "127.0.0.1"}) == {}


def _rrl(name, **conf):
    return route(name, [{"name": RRL, "config": conf}])


def _cost(v):
    return {"X-Echo": f"headers=x-kong-limit:{v}"}


def test_counts_what_the_upstream_reports_and_blocks(echo_upstream):
    clock = FakeClock(float(next(_T0)))
    n = 3

    async def scenario(client):
        for i in range(n):
            r = await client.get("/one/x", headers=_cost("video=1"))
            assert r.status == 200
            assert r.headers["x-ratelimit-limit-video-second"] == str(n)
            assert r.headers["x-ratelimit-remaining-video-second"] == str(n - i - 1)
            assert "x-kong-limit" not in r.headers  # the cost header is not shown to the client
            seen = dict((k.lower(), v) for k, v in json.loads(r.body)["headers"])
            assert seen["x-ratelimit-remaining-video"] == str(n - i)
        r = await client.get("/one/x", headers=_cost("video=1"))
        assert r.status == 429 and r.body == b""
        assert r.headers["x-ratelimit-limit-video-second"] == str(n)
        assert r.headers["x-ratelimit-remaining-video-second"] == "0"
        # a response that costs nothing still passes
        assert (await client.get("/one/free")).status == 200
        clock.advance(1)  # the next second: a fresh window
        r = await client.get("/one/x", headers=_cost("video=1"))
        assert r.status == 200 and r.headers["x-ratelimit-remaining-video-second"] == str(n - 1)

    serve(kong_config(echo_upstream.port, [_rrl("one", limits={"video": {"second": n}})]), scenario, clock=clock)


def test_multiple_limits_and_header_lines(echo_upstream):
    clock = FakeClock(float(next(_T0)))
    echo_upstream.on("/comma", Behaviour(headers=(("x-kong-limit", "video=2, image=1"),)))
    limits = {"video": {"second": 6, "minute": 12}, "image": {"second": 3}}

    async def scenario(client):
        r = await client.get("/multi/comma")
        assert r.headers["x-ratelimit-remaining-video-second"] == "4"
        assert r.headers["x-ratelimit-remaining-video-minute"] == "10"
        assert r.headers["x-ratelimit-remaining-image-second"] == "2"
        assert r.headers["x-ratelimit-limit-video-minute"] == "12"
        # two header lines combine like one comma list
        r = await client.get("/multi/lines", headers={"X-Echo": "headers=x-kong-limit:video=2,x-kong-limit:image=1"})
        assert r.headers["x-ratelimit-remaining-video-second"] == "2"
        assert r.headers["x-ratelimit-remaining-image-second"] == "1"
        seen = dict((k.lower(), v) for k, v in json.loads(r.body)["headers"])
        assert (seen["x-ratelimit-remaining-video"], seen["x-ratelimit-remaining-image"]) == ("4", "2")
        r = await client.get("/multi/lines", headers=_cost("image=1"))
        assert r.status == 200 and r.headers["x-ratelimit-remaining-image-second"] == "0"
        r = await client.get("/multi/lines", headers=_cost("image=1"))
        assert r.status == 429
        # unknown names and garbage are ignored
        r = await client.get("/multi/lines", headers=_cost("audio=5"))
        assert r.status == 200

    serve(kong_config(echo_upstream.port, [_rrl("multi", limits=limits)]), scenario, clock=clock)


def test_block_on_first_violation_and_hidden_headers(echo_upstream):
    clock = FakeClock(float(next(_T0)))
    routes = [_rrl("first", limits={"video": {"second": 5}, "image": {"second": 4}}, block_on_first_violation=True),
              _rrl("hidden", limits={"video": {"second": 5}}, hide_client_headers=True)]

    async def scenario(client):
        r = await client.get("/first/x", headers=_cost("image=4"))
        assert r.status == 200
        n = len(echo_upstream.requests)
        r = await client.get("/first/x", headers=_cost("video=1"))
        assert r.status == 429 and r.json() == {"message": "API rate limit exceeded for 'image'"}
        assert len(echo_upstream.requests) == n  # blocked before proxying
        r = await client.get("/hidden/x", headers=_cost("video=1"))
        assert r.status == 200 and not [h for h in r.headers if h.startswith("x-ratelimit")]

    serve(kong_config(echo_upstream.port, routes), scenario, clock=clock)


def test_limit_by_consumer(echo_upstream):
    clock = FakeClock(float(next(_T0)))
    routes = [route("auth", [{"name": "key-auth", "config": {}},
                             {"name": RRL, "config": {"limits": {"video": {"minute": 1}}}}])]
    consumers = [{"username": "a", "keyauth_credentials": [{"key": "ka"}]},
                 {"username": "b", "keyauth_credentials": [{"key": "kb"}]}]

    async def scenario(client):
        assert (await client.get("/auth/x", headers={"apikey": "ka", **_cost("video=1")})).status == 200
        assert (await client.get("/auth/x", headers={"apikey": "ka", **_cost("video=1")})).status == 429
        assert (await client.get("/auth/x", headers={"apikey": "kb", **_cost("video=1")})).status == 200

    serve(kong_config(echo_upstream.port, routes, consumers=consumers), scenario, clock=clock)


def test_redis_policy_counts_in_redis(echo_upstream, redis_server):
    clock = FakeClock(float(next(_T0)))
    conf = {"limits": {"video": {"minute": 2}}, "policy": "redis",
            "redis": {"host": "127.0.0.1", "port": redis_server.port}}

    async def scenario(client):
        for left in ("1", "0"):
            r = await client.get("/rd/x", headers=_cost("video=1"))
            assert r.status == 200 and r.headers["x-ratelimit-remaining-video-minute"] == left
        r = await client.get("/rd/x", headers=_cost("video=1"))
        assert r.status == 429
        return client.gateway.config.routes[0].id

    route_id = serve(kong_config(echo_upstream.port, [_rrl("rd", **conf)]), scenario, clock=clock)
    start_ms = int(clock()) // 60 * 60 * 1000
    # Kong's key: the plugin's own scope (a route plugin has no service: the empty uuid)
    key = f"response-ratelimit:{route_id}:00000000-0000-0000-0000-000000000000:127.0.0.1:{start_ms}:video:minute"
    with redis_server.client() as c:
        assert c.get(key) == b"2" and 0 < c.ttl(key) <= 60


def test_redis_down_is_fault_tolerant_or_500(echo_upstream):
    import socket as s

    with s.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    base = {"limits": {"video": {"minute": 2}}, "policy": "redis", "redis": {"host": "127.0.0.1", "port": dead,
                                                                             "timeout": 200}}
    routes = [_rrl("tol", **base), _rrl("strict", **base, fault_tolerant=False)]

    async def scenario(client):
        r = await client.get("/tol/x", headers=_cost("video=1"))
        assert r.status == 200 and "x-ratelimit-remaining-video-minute" not in r.headers
        r = await client.get("/strict/x")
        assert r.status == 500 and r.json() == {"message": "An unexpected error occurred"}

    serve(kong_config(echo_upstream.port, routes), scenario)
