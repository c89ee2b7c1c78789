"""request-termination through a real gateway: Kong's spec/03-plugins/14-request-termination."""
from __future__ import annotations

import os

import pytest

from gw_helpers import config_errors, kong_config, route, serve

RT = "request-termination"

# (config, expected errors) from 01-schema_spec.lua
SCHEMA_CASES = [
    ({"status_code": 404}, {}),
    ({"message": "Not found"}, {}),
    ({"content_type": "text/html", "body": "<body><h1>Not found</h1>"}, {}),
    ({"body": "<body><h1>Not found</h1>"}, {}),
    ({"echo": True, "trigger": "header_name"}, {}),
    ({"status_code": "abcd"}, {"config.status_code": "expected an integer"}),
    ({"status_code": 99}, {"config.status_code": "value should be between 100 and 599"}),
    ({"status_code": 600}, {"config.status_code": "value should be between 100 and 599"}),
    ({"message": "error", "body": "test"}, {"config.@entity": "message cannot be used with content_type or body"}),
    ({"message": "error", "content_type": "text/html", "body": "test"},
     {"config.@entity": "message cannot be used with content_type or body"}),
    ({"message": "error", "content_type": "text/html"},
     {"config.@entity": "message cannot be used with content_type or body"}),
    ({"content_type": "text/html"}, {"config.@entity": "content_type requires a body"}),
    ({"echo": True, "content_type": "text/html", "body": "<b/>"},
     {"config.@entity": "echo cannot be used with content_type and body"}),
    ({"trigger": "bad header"},
     {"config.trigger": "bad header name 'bad header', allowed characters are A-Z, a-z, 0-9, '_', and '-'"}),
    ({"unknown": 1}, {"config.unknown": "unknown field"}),
]


@pytest.mark.parametrize("conf,errors", SCHEMA_CASES)
def test_schema(conf, errors):
    assert config_errors(RT, conf) == errors


def _rt(name, **conf):
    return route(name, [{"name": RT, "config": conf}])


# (route config, expected status, expected JSON body or raw body, content-type) from 02-access_spec
ACCESS_CASES = [
    ({}, 503, {"message": "Service unavailable"}, "application/json; charset=utf-8"),
    ({"status_code": 404}, 404, {"message": "Not found"}, "application/json; charset=utf-8"),
    ({"status_code": 406, "message": "Invalid"}, 406, {"message": "Invalid"}, "application/json; charset=utf-8"),
    ({"body": "<html><body><h1>Service is down for maintenance</h1></body></html>"}, 503,
     b"<html><body><h1>Service is down for maintenance</h1></body></html>", None),
    ({"status_code": 451, "content_type": "text/html", "body": "<h1>infringement</h1>"}, 451,
     b"<h1>infringement</h1>", "text/html"),
    ({"status_code": 503, "body": '{"code": 1, "message": "Service unavailable"}'}, 503,
     b'{"code": 1, "message": "Service unavailable"}', None),
]


def test_status_message_and_body(echo_upstream):
    routes = [_rt(f"r{i}", **c) for i, (c, *_) in enumerate(ACCESS_CASES)]
    routes.append(_rt("r204", status_code=204))

    async def scenario(client):
        for i, (_, status, body, ctype) in enumerate(ACCESS_CASES):
            r = await client.get(f"/r{i}/status/200")
            assert r.status == status, (i, r)
            if isinstance(body, dict):
                assert r.json() == body
            else:
                assert r.body == body
            assert r.headers.get("content-type") == ctype
            assert r.headers.get("server", "").startswith("fastgw") or "server" in r.headers
        r = await client.get("/r204/status/204")
        assert r.status == 204 and r.body == b"" and "content-length" not in r.headers

    serve(kong_config(echo_upstream.port, routes), scenario)
    assert echo_upstream.requests == []  # nothing was proxied


def test_echo_and_trigger(echo_upstream):
    routes = [_rt("echo", echo=True, status_code=404),
              _rt("trig", echo=True, trigger="gimme-an-echo", status_code=404),
              route("rx", [{"name": RT, "config": {"echo": True}}], paths=["~/rx/(?<parameter>[^#?/]+)/200"])]

    async def scenario(client):
        r = await client.get("/echo/status/200?hello=there", body=b"cool body",
                             headers={"Host": "api9.request-termination.test"})
        assert r.status == 404
        doc = r.json()
        assert doc["message"] == "Not found"
        assert doc["kong"]["worker_pid"] == os.getpid()
        assert doc["kong"]["node_id"] == client.gateway.node_id
        req = doc["request"]
        assert req["headers"] == {"content-length": "9", "host": "api9.request-termination.test"}
        assert (req["host"], req["port"], req["scheme"]) == ("api9.request-termination.test", 80, "http")
        assert (req["method"], req["path"], req["query"]) == ("GET", "/echo/status/200", {"hello": "there"})
        assert req["raw_body"] == "cool body" and "body" not in req  # not a parseable body
        assert doc["matched_route"]["name"] == "echo" and doc["matched_service"]["name"] == "echo"
        assert req["uri_captures"] == {"named": {}, "unnamed": []}
        r = await client.get("/rx/status/200")
        assert r.json()["request"]["uri_captures"] == {"named": {"parameter": "status"}, "unnamed": ["status"]}

        r = await client.post("/echo/x", json={"a": 1})
        assert r.json()["request"]["body"] == {"a": 1}

        r = await client.get("/trig/status/200")
        assert r.status == 200  # trigger absent: proxied
        r = await client.get("/trig/status/200", headers={"Gimme-An-Echo": "anything will do"})
        assert r.status == 404 and r.json()["request"]["headers"]["gimme-an-echo"] == "anything will do"
        r = await client.get("/trig/status/200?gimme-an-echo=anything")
        assert r.status == 404 and r.json()["request"]["query"] == {"gimme-an-echo": "anything"}

    serve(kong_config(echo_upstream.port, routes), scenario)
    assert len(echo_upstream.requests) == 1


def test_consumer_scoped(echo_upstream):
    # 03-integration_spec: applied to a consumer, it answers that consumer's requests only
    routes = [route("auth", [{"name": "key-auth", "config": {}}])]
    consumers = [{"username": "bob", "keyauth_credentials": [{"key": "kb"}],
                  "plugins": [{"name": RT, "config": {}}]},
                 {"username": "amy", "keyauth_credentials": [{"key": "ka"}],
                  "plugins": [{"name": "redirect", "config": {"location": "https://example.com/path?foo=bar"}}]},
                 {"username": "eve", "keyauth_credentials": [{"key": "ke"}]}]

    async def scenario(client):
        r = await client.get("/auth/x", headers={"apikey": "kb"})
        assert r.status == 503 and r.json() == {"message": "Service unavailable"}
        r = await client.get("/auth/x", headers={"apikey": "ka"})
        assert r.status == 301 and r.headers["location"] == "https://example.com/path?foo=bar"
        assert (await client.get("/auth/x", headers={"apikey": "ke"})).status == 200

    serve(kong_config(echo_upstream.port, routes, consumers=consumers), scenario)
