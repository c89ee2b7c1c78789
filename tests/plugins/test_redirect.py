"""redirect through a real gateway: Kong's spec/03-plugins/45-redirect."""
from __future__ import annotations

import pytest

from gw_helpers import config_errors, kong_config, route, serve

LOC = "https://example.com"

SCHEMA_CASES = [
    ({"status_code": 404, "location": LOC}, {}),
    ({"location": LOC}, {}),
    ({"status_code": "abcd", "location": LOC}, {"config.status_code": "expected an integer"}),
    ({"status_code": 99, "location": LOC}, {"config.status_code": "value should be between 100 and 599"}),
    ({"status_code": 600, "location": LOC}, {"config.status_code": "value should be between 100 and 599"}),
    ({"status_code": 301}, {"config.location": "required field missing"}),
    ({"status_code": 301, "location": "definitely_not_a_url"}, {"config.location": "missing host in url"}),
    ({"location": LOC, "keep_incoming_path": "invalid"}, {"config.keep_incoming_path": "expected a boolean"}),
]


@pytest.mark.parametrize("conf,errors", SCHEMA_CASES)
def test_schema(conf, errors):
    assert config_errors("redirect", conf) == errors


# (plugin config, request path, expected status, expected Location) from 02-access_spec.lua
CASES = [
    ({"location": LOC}, "/status/200", 301, LOC),
    ({"status_code": 302, "location": LOC}, "/status/200", 302, LOC),
    ({"location": "https://example.com/path?foo=bar"}, "/status/200", 301, "https://example.com/path?foo=bar"),
    ({"location": "https://example.com/some_path?foo=bar", "keep_incoming_path": True},
     "/status/200?keep=this", 301, "https://example.com/r3/status/200?keep=this"),
    ({"location": "https://example.com/some_path?foo=bar", "keep_incoming_path": True},
     "/x%20y", 301, "https://example.com/r4/x%20y"),
]


def test_redirects(echo_upstream):
    routes = [route(f"r{i}", [{"name": "redirect", "config": c}]) for i, (c, *_) in enumerate(CASES)]

    async def scenario(client):
        for i, (_, path, status, location) in enumerate(CASES):
            r = await client.get(f"/r{i}{path}")
            assert (r.status, r.headers.get("location"), r.body) == (status, location, b"redirecting"), i

    serve(kong_config(echo_upstream.port, routes), scenario)
    assert echo_upstream.requests == []
