"""proxy-cache through a real gateway: Kong's spec/03-plugins/31-proxy-cache (schema, access,
cache key). Time is a FakeClock (ctx.now), so TTLs are tested without sleeping."""
from __future__ import annotations

import hashlib
import json

import pytest

from fastgw.plugins import _proxy_cache_store as pcs
from fastgw.testing import FakeClock

from gw_helpers import config_errors, kong_config, route, serve

PC = "proxy-cache"

SCHEMA_CASES = [
    ({"strategy": "memory"}, {}),
    ({"strategy": "memory", "response_code": [200, 301], "request_method": ["GET"],
      "content_type": ["application/json"]}, {}),
    ({"strategy": "memory", "response_code": ["123", "200"]}, {}),
    ({"strategy": "memory", "response_code": [99]}, {"config.response_code[0]": "value should be between 100 and 900"}),
    ({"strategy": "memory", "response_code": []}, {"config.response_code": "length must be at least 1"}),
    ({"strategy": "memory", "response_code": "foo"}, {"config.response_code": "expected an array"}),
    ({"strategy": "memory", "response_code": ["foo", "bar"]}, {"config.response_code[0]": "expected an integer"}),
    ({"strategy": "memory", "response_code": [200.1]}, {"config.response_code[0]": "expected an integer"}),
    ({"strategy": "memory", "cache_ttl": -1}, {"config.cache_ttl": "value must be greater than 0"}),
    ({"strategy": "memory", "vary_query_params": ["foo"]}, {}),
    ({"strategy": "memory", "vary_headers": ["foo"]}, {}),
    ({"strategy": "memory", "content_type": ["*/*"]}, {}),
    ({}, {"config.strategy": "required field missing"}),
    ({"strategy": "redis"}, {"config.strategy": "expected one of: memory"}),
    ({"strategy": "memory", "request_method": ["DELETE"]},
     {"config.request_method[0]": "expected one of: HEAD, GET, POST, PATCH, PUT"}),
]


@pytest.mark.parametrize("conf,errors", SCHEMA_CASES)
def test_schema(conf, errors):
    assert config_errors(PC, conf) == errors


def test_defaults():
    from fastgw.plugins import validate_config

    c = validate_config(PC, {"strategy": "memory"})
    assert c.content_type == ["text/plain", "application/json"]
    assert (c.response_code, c.request_method, c.cache_ttl) == ([200, 301, 404], ["GET", "HEAD"], 300)
    assert validate_config(PC, {"strategy": "memory", "response_code": ["123"]}).response_code == [123]


# -- cache key (05-cache_key_spec.lua): a table of (args, vary, expected)
PARAMS = [({"a": 1, "b": 2}, None, "a=1:b=2"), ({}, None, ""), ({}, ["a"], ""),
          ({"a": 1, "b": 2}, ["a"], "a=1"), ({"a": [1, 2]}, ["a"], "a=1,2"),
          ({"a": [2, 1]}, ["a"], "a=1,2"), ({"a": [1, 2], "b": 2}, ["a", "b", "c"], "a=1,2:b=2"),
          ({"flag": True, "x": "y"}, None, "flag:x=y")]


@pytest.mark.parametrize("args,vary,expected", PARAMS)
def test_params_key(args, vary, expected):
    assert pcs.params_key(args, vary) == expected


def test_headers_key_and_prefix():
    assert pcs.headers_key({"a": 1, "b": 2}, None) == ""
    assert pcs.headers_key({"a": [2, 1], "b": 2}, ["a", "B", "c"]) == "a=1,2:b=2"
    assert pcs.prefix_uuid(None, None) == "default" and pcs.prefix_uuid("c", None) == "default"
    assert pcs.prefix_uuid("c", "r") == "c:r" and pcs.prefix_uuid(None, "r") == "r"
    key = pcs.build_cache_key(None, "r1", "GET", "GET /p HTTP/1.1", {"b": "2", "a": "1"}, {}, None, None)
    assert key == hashlib.sha256(b"r1|GET|GET /p HTTP/1.1|a=1:b=2|").hexdigest()


def test_directives_and_media_types():
    assert pcs.parse_directive_header(["max-age=10, No-Store", "private"]) == {"max-age": 10, "no-store": True, "private": True}
    assert pcs.resource_ttl({"s-maxage": 5, "max-age": 9}, None, 0) == 5
    assert pcs.resource_ttl({}, "Thu, 01 Jan 1970 00:01:40 GMT", 40) == 60
    assert pcs.resource_ttl({"max-age": -3}, None, 0) == 0
    exp = [pcs.parse_mime_type("application/json; charset=utf-8"), pcs.parse_mime_type("text/*")]
    assert pcs.content_type_matches("Application/JSON; Charset=utf-8", exp)
    assert not pcs.content_type_matches("application/json", exp)  # parameters must match exactly
    assert pcs.content_type_matches("text/html", exp)
    assert pcs.parse_mime_type("definitely not") is None


def test_store_lru_and_expiry():
    s = pcs.MemoryStore(max_bytes=3 * 300)
    for i in range(4):
        s.store(f"k{i}", pcs.Entry(200, [], b"x" * 10, 0, 10, None), ttl=5, now=0)
    assert len(s) == 3 and s.fetch("k0", 1) is None and s.fetch("k3", 1) is not None
    assert s.fetch("k3", 6) is None  # storage ttl passed
    assert not s.store("big", pcs.Entry(200, [], b"x" * 2000, 0, 10, None), ttl=5, now=0)


# -------------------------------------------------------------- through the gateway
def _pc(name, **conf):
    conf.setdefault("strategy", "memory")
    conf.setdefault("memory", {"dictionary_name": f"test-{name}"})
    return route(name, [{"name": PC, "config": conf}])


@pytest.fixture(autouse=True)
def _fresh_stores():
    pcs.STORES.clear()
    yield
    pcs.STORES.clear()


def test_miss_then_hit_and_ttl(echo_upstream):
    clock = FakeClock(1_700_000_000.0)
    routes = [_pc("simple"), _pc("ttl", cache_ttl=2)]

    async def scenario(client):
        r1 = await client.get("/simple/get")
        assert r1.status == 200 and r1.headers["x-cache-status"] == "Miss"
        key = r1.headers["x-cache-key"]
        assert len(key) == 64 and "age" not in r1.headers
        # the body is copied on the way through: the upstream's framing stays
        assert r1.headers["content-length"] == str(len(r1.body)) and "transfer-encoding" not in r1.headers
        clock.advance(1)
        r2 = await client.get("/simple/get")
        assert r2.headers["x-cache-status"] == "Hit" and r2.headers["x-cache-key"] == key
        assert r2.body == r1.body and r2.headers["age"] == "1"
        assert r2.headers["content-type"] == "application/json"
        assert r2.headers["content-length"] == str(len(r1.body))
        assert len(echo_upstream.requests) == 1

        r = await client.get("/ttl/x")
        assert r.headers["x-cache-status"] == "Miss"
        assert (await client.get("/ttl/x")).headers["x-cache-status"] == "Hit"
        clock.advance(3)  # past cache_ttl == storage ttl: the entry is gone
        assert (await client.get("/ttl/x")).headers["x-cache-status"] == "Miss"
        assert (await client.get("/ttl/x")).headers["x-cache-status"] == "Hit"

    serve(kong_config(echo_upstream.port, routes), scenario, clock=clock)


def test_refresh_when_stored_longer_than_cache_ttl(echo_upstream):
    clock = FakeClock(1_700_000_000.0)

    async def scenario(client):
        assert (await client.get("/st/a")).headers["x-cache-status"] == "Miss"
        clock.advance(3)
        assert (await client.get("/st/a")).headers["x-cache-status"] == "Refresh"
        assert (await client.get("/st/a")).headers["x-cache-status"] == "Hit"

    serve(kong_config(echo_upstream.port, [_pc("st", cache_ttl=2, storage_ttl=60)]), scenario, clock=clock)


def test_response_headers_and_kong_debug(echo_upstream):
    off = {"age": False, "X-Cache-Status": False, "X-Cache-Key": False}

    async def scenario(client):
        for _ in range(2):
            r = await client.get("/quiet/get")
            assert not {"x-cache-status", "x-cache-key", "age"} & set(r.headers)
        r = await client.get("/quiet/get", headers={"Kong-Debug": "1"})
        assert r.headers["x-cache-status"] == "Hit" and "age" in r.headers and "x-cache-key" in r.headers

    serve(kong_config(echo_upstream.port, [_pc("quiet", response_headers=off)]), scenario)


def test_bypass_rules(echo_upstream):
    routes = [_pc("b"), _pc("codes", response_code=[418], request_method=["POST"])]

    async def scenario(client):
        r = await client.post("/b/x", body=b"{}")
        assert r.headers["x-cache-status"] == "Bypass"   # method not cacheable
        r = await client.get("/b/s", headers={"X-Echo": "status=500"})
        assert r.status == 500 and r.headers["x-cache-status"] == "Bypass"
        assert (await client.get("/b/s", headers={"X-Echo": "status=500"})).headers["x-cache-status"] == "Bypass"
        r = await client.get("/b/bin", headers={"X-Echo": "size=10"})  # application/octet-stream
        assert r.headers["x-cache-status"] == "Bypass"
        r = await client.get("/b/bin", headers={"X-Echo": "size=10"})
        assert r.headers["x-cache-status"] == "Bypass"

        r = await client.post("/codes/p", body=b"1", headers={"X-Echo": "status=418"})
        assert r.headers["x-cache-status"] == "Miss"
        r = await client.post("/codes/p", body=b"2", headers={"X-Echo": "status=418"})
        assert r.status == 418 and r.headers["x-cache-status"] == "Hit"

    serve(kong_config(echo_upstream.port, routes), scenario)


def test_cache_control(echo_upstream):
    clock = FakeClock(1_700_000_000.0)
    routes = [_pc("cc", cache_control=True)]

    def upstream_cc(v):
        return {"X-Echo": f"headers=Cache-Control:{v}"}

    async def scenario(client):
        # responses without a TTL, or private/no-store, are not stored
        assert (await client.get("/cc/none")).headers["x-cache-status"] == "Bypass"
        assert (await client.get("/cc/p", headers=upstream_cc("private"))).headers["x-cache-status"] == "Bypass"
        # max-age / s-maxage
        assert (await client.get("/cc/m", headers=upstream_cc("max-age=10"))).headers["x-cache-status"] == "Miss"
        assert (await client.get("/cc/m", headers=upstream_cc("max-age=10"))).headers["x-cache-status"] == "Hit"
        assert (await client.get("/cc/s", headers=upstream_cc("s-maxage=10"))).headers["x-cache-status"] == "Miss"
        # request directives
        r = await client.get("/cc/m", headers={**upstream_cc("max-age=10"), "Cache-Control": "no-cache"})
        assert r.headers["x-cache-status"] == "Bypass"
        r = await client.get("/cc/m", headers={**upstream_cc("max-age=10"), "Cache-Control": "min-fresh=30"})
        assert r.headers["x-cache-status"] == "Refresh"
        clock.advance(3)
        r = await client.get("/cc/m", headers={**upstream_cc("max-age=10"), "Cache-Control": "max-age=2"})
        assert r.headers["x-cache-status"] == "Refresh"
        r = await client.get("/cc/m", headers=upstream_cc("max-age=10"))
        assert r.headers["x-cache-status"] == "Hit"
        r = await client.get("/cc/not-here", headers={"Cache-Control": "only-if-cached"})
        assert r.status == 504

    serve(kong_config(echo_upstream.port, routes), scenario, clock=clock)


def test_cache_key_parts(echo_upstream):
    routes = [_pc("q"), _pc("vq", vary_query_params=["a"]), _pc("vh", vary_headers=["X-Tenant"]),
              _pc("case", ignore_uri_case=True), _pc("q2")]

    async def scenario(client):
        k = {}
        for path in ("/q/p?a=1&b=2", "/q/p?b=2&a=1", "/q/p?a=1&b=3", "/q2/p?a=1&b=2",
                     "/vq/p?a=1&b=2", "/vq/p?a=1&b=9", "/case/P", "/case/p"):
            k[path] = (await client.get(path)).headers["x-cache-key"]
        assert k["/q/p?a=1&b=2"] == k["/q/p?b=2&a=1"] != k["/q/p?a=1&b=3"]
        assert k["/q/p?a=1&b=2"] != k["/q2/p?a=1&b=2"]          # route id is part of the key
        assert k["/vq/p?a=1&b=2"] == k["/vq/p?a=1&b=9"]
        assert k["/case/P"] == k["/case/p"]
        route_id = client.gateway.config.routes[0].id
        assert k["/q/p?a=1&b=2"] == pcs.build_cache_key(None, route_id, "GET", "GET /q/p", {"a": "1", "b": "2"}, {}, None, None)
        h1 = (await client.get("/vh/x", headers={"X-Tenant": "a"})).headers
        h2 = (await client.get("/vh/x", headers={"X-Tenant": "b"})).headers
        h3 = (await client.get("/vh/x", headers={"x-tenant": "a"})).headers
        assert h1["x-cache-key"] != h2["x-cache-key"] and h3["x-cache-key"] == h1["x-cache-key"]
        assert h3["x-cache-status"] == "Hit"

    serve(kong_config(echo_upstream.port, routes), scenario)


def test_separate_cache_per_consumer(echo_upstream):
    routes = [route("auth", [{"name": "key-auth", "config": {}},
                             {"name": PC, "config": {"strategy": "memory"}}])]
    consumers = [{"username": "alice", "keyauth_credentials": [{"key": "ka"}]},
                 {"username": "bob", "keyauth_credentials": [{"key": "kb"}]}]

    async def scenario(client):
        assert (await client.get("/auth/x")).status == 401
        a = await client.get("/auth/x", headers={"apikey": "ka"})
        b = await client.get("/auth/x", headers={"apikey": "kb"})
        assert a.headers["x-cache-status"] == b.headers["x-cache-status"] == "Miss"
        assert a.headers["x-cache-key"] != b.headers["x-cache-key"]
        a2 = await client.get("/auth/x", headers={"apikey": "ka"})
        assert a2.headers["x-cache-status"] == "Hit"
        assert json.loads(a2.body)["headers"] == json.loads(a.body)["headers"]

    serve(kong_config(echo_upstream.port, routes, consumers=consumers), scenario)


def test_admin_api_purge(echo_upstream):
    from gw_helpers import serve_with_admin

    async def scenario(proxy, admin):
        key = (await proxy.get("/a/x")).headers["x-cache-key"]
        assert (await proxy.get("/a/x")).headers["x-cache-status"] == "Hit"
        r = await admin.get(f"/proxy-cache/{key}")
        assert r.status == 200 and r.json()["status"] == 200 and r.json()["version"] == 1
        plugin_id = proxy.gateway.config.plugins[0].id
        assert (await admin.get(f"/proxy-cache/{plugin_id}/caches/{key}")).status == 200
        assert (await admin.delete(f"/proxy-cache/{key}")).status == 204
        assert (await admin.get(f"/proxy-cache/{key}")).status == 404
        assert (await admin.delete(f"/proxy-cache/{key}")).status == 404
        assert (await proxy.get("/a/x")).headers["x-cache-status"] == "Miss"
        assert (await admin.delete("/proxy-cache")).status == 204
        assert (await proxy.get("/a/x")).headers["x-cache-status"] == "Miss"
        assert (await admin.get(f"/proxy-cache/{plugin_id}/caches/nope")).status == 404
        assert (await admin.get("/proxy-cache/not-a-plugin/caches/x")).status == 404

    serve_with_admin(kong_config(echo_upstream.port, [_pc("a")]), scenario)


def test_chunked_upstream_response_is_cached_whole(echo_upstream):
    async def scenario(client):
        r1 = await client.get("/ch/x", headers={"X-Echo": "chunked=1"})
        assert r1.headers["x-cache-status"] == "Miss" and r1.headers["transfer-encoding"] == "chunked"
        r2 = await client.get("/ch/x", headers={"X-Echo": "chunked=1"})
        assert r2.headers["x-cache-status"] == "Hit" and r2.body == r1.body
        assert r2.headers["content-length"] == str(len(r1.body))

    serve(kong_config(echo_upstream.port, [_pc("ch")]), scenario)
