"""session through a real gateway (Kong's spec/03-plugins/30-session): a key-auth login sets
the cookie, the cookie alone authenticates later requests, timeouts and logout."""
from __future__ import annotations

import json

import pytest

from fastgw.testing import FakeClock

from gw_helpers import config_errors, kong_config, route, serve

NOW = 1_800_000_000.0

SCHEMA_CASES = [
    ({}, {}),
    ({"storage": "kong"}, {"config.storage": "storage 'kong' needs Kong's database, which fastgw (DB-less) does "
                                              "not have: use 'cookie'"}),
    ({"storage": "redis"}, {"config.storage": "expected one of: cookie, kong"}),
    ({"cookie_same_site": "Sometimes"}, {"config.cookie_same_site": "expected one of: Strict, Lax, None, Default"}),
    ({"logout_methods": ["PUT"]}, {"config.logout_methods[0]": "expected one of: GET, POST, DELETE"}),
    ({"response_headers": ["id", "nope"]},
     {"config.response_headers[1]": "expected one of: id, audience, subject, timeout, idling-timeout, "
                                    "rolling-timeout, absolute-timeout"}),
    ({"store_metadata": True}, {"config.store_metadata": "session metadata is stored in Kong's database, which "
                                                         "fastgw (DB-less) does not have"}),
]


@pytest.mark.parametrize("conf,errors", SCHEMA_CASES)
def test_schema(conf, errors):
    assert config_errors("session", conf) == errors


def test_default_secret_is_random_and_shorthands_apply():
    from fastgw.plugins import validate_config

    a, b = validate_config("session", {}), validate_config("session", {})
    assert len(a.secret) == 44 and a.secret != b.secret
    c = validate_config("session", {"cookie_lifetime": 60, "cookie_samesite": "off", "cookie_persistent": True})
    assert (c.rolling_timeout, c.cookie_same_site, c.remember) == (60, "Lax", True)


def _routes(**session_conf):
    conf = {"secret": "s" * 32, "cookie_secure": False, **session_conf}
    # key-auth with `anonymous` steps aside when the session authenticated the request (Kong's
    # logical OR); the anonymous consumer never gets a session (no credential)
    return [route("p", [{"name": "session", "config": conf},
                        {"name": "key-auth", "config": {"anonymous": "anon"}}])]


CONSUMERS = [{"username": "alice", "keyauth_credentials": [{"id": "5f4f67c4-9f5e-4b52-9d1c-6c1d3ed7f0a1",
                                                            "key": "kalice"}]},
             {"username": "anon"}]


def _cookie(r, name="session"):
    for v in r.headers.get_all("set-cookie"):
        if v.startswith(name + "="):
            return v
    return None


def _seen(r):
    return {k.lower(): v for k, v in json.loads(r.body)["headers"]}


def test_login_then_cookie_only(echo_upstream):
    clock = FakeClock(NOW)

    async def scenario(client):
        r = await client.get("/p/x")
        assert _seen(r)["x-consumer-username"] == "anon" and _cookie(r) is None
        r = await client.get("/p/x", headers={"apikey": "kalice"})
        assert r.status == 200
        set_cookie = _cookie(r)
        assert set_cookie and "Path=/" in set_cookie and "SameSite=Strict" in set_cookie and "HttpOnly" in set_cookie
        assert "Secure" not in set_cookie
        value = set_cookie.split(";", 1)[0]
        # the cookie alone authenticates
        r = await client.get("/p/x", headers={"Cookie": value})
        assert r.status == 200, r.body
        seen = _seen(r)
        assert seen["x-consumer-username"] == "alice"
        assert seen["x-credential-identifier"] == "5f4f67c4-9f5e-4b52-9d1c-6c1d3ed7f0a1"
        assert _cookie(r) is None   # nothing to renew yet
        # tampered cookie: not a session
        r = await client.get("/p/x", headers={"Cookie": value[:-2] + "AA"})
        assert _seen(r)["x-consumer-username"] == "anon"
        # idle for more than half of idling_timeout (900 s): renewed
        clock.advance(500)
        r = await client.get("/p/x", headers={"Cookie": value})
        assert r.status == 200 and _cookie(r) is not None
        # idle past idling_timeout with the old cookie: expired
        clock.advance(500)
        assert _seen(await client.get("/p/x", headers={"Cookie": value}))["x-consumer-username"] == "anon"
        renewed = _cookie(r).split(";", 1)[0]
        assert _seen(await client.get("/p/x", headers={"Cookie": renewed}))["x-consumer-username"] == "alice"

    serve(kong_config(echo_upstream.port, _routes(), consumers=CONSUMERS), scenario, clock=clock)


def test_logout_and_audience(echo_upstream):
    clock = FakeClock(NOW)
    routes = _routes(response_headers=["id", "audience", "timeout"], request_headers=["subject"])
    other = [route("o", [{"name": "session", "config": {"secret": "s" * 32, "audience": "other"}},
                         {"name": "key-auth", "config": {}}])]

    async def scenario(client):
        r = await client.get("/p/x", headers={"apikey": "kalice"})
        assert r.headers["session-audience"] == "default" and len(r.headers["session-id"]) == 43
        assert r.headers["session-timeout"] == "900"
        cookie = _cookie(r).split(";", 1)[0]
        r = await client.get("/p/x", headers={"Cookie": cookie})
        assert _seen(r)["session-subject"] == "alice"
        assert (await client.get("/o/x", headers={"Cookie": cookie})).status == 401  # other audience
        r = await client.get("/p/x?session_logout=1", headers={"Cookie": cookie})
        assert r.status == 200 and "x-consumer-username" in _seen(r)  # GET is not a logout method
        r = await client.delete("/p/x?session_logout", headers={"Cookie": cookie})
        assert r.status == 200 and r.body == b""
        assert _cookie(r).startswith("session=;") and "Max-Age=0" in _cookie(r)

    serve(kong_config(echo_upstream.port, routes + other, consumers=CONSUMERS), scenario, clock=clock)


def test_remember_and_absolute_timeout(echo_upstream):
    clock = FakeClock(NOW)
    routes = _routes(remember=True, absolute_timeout=100, rolling_timeout=100, idling_timeout=0)

    async def scenario(client):
        r = await client.get("/p/x", headers={"apikey": "kalice"})
        session, remember = _cookie(r).split(";", 1)[0], _cookie(r, "remember")
        assert remember and remember.endswith("; Max-Age=604800") and "; Path=/; SameSite=Strict; HttpOnly; Expires=" in remember
        remember = remember.split(";", 1)[0]
        clock.advance(150)   # past the session's absolute timeout
        assert _seen(await client.get("/p/x", headers={"Cookie": session}))["x-consumer-username"] == "anon"
        r = await client.get("/p/x", headers={"Cookie": f"{session}; {remember}"})
        assert _seen(r)["x-consumer-username"] == "alice" and _cookie(r) is not None  # reopened from the remember cookie

    serve(kong_config(echo_upstream.port, routes, consumers=CONSUMERS), scenario, clock=clock)


def test_groups_are_kept_in_the_session(echo_upstream):
    conf = {"secret": "s" * 32}
    routes = [route("g", [{"name": "session", "config": conf},
                          {"name": "key-auth", "config": {"anonymous": "anon"}},
                          {"name": "post-function", "config": {"access": ["serverless_funcs:set_groups"]}}]),
              route("n", [{"name": "session", "config": conf},
                          {"name": "key-auth", "config": {"anonymous": "anon"}}])]

    async def scenario(client):
        r = await client.get("/g/x", headers={"apikey": "kalice"})
        cookie = _cookie(r)
        parts = cookie.split("; ")
        assert parts[1:] == ["Path=/", "SameSite=Strict", "Secure", "HttpOnly"]  # Kong's attributes
        r = await client.get("/n/x", headers={"Cookie": parts[0]})
        assert _seen(r)["x-authenticated-groups"] == "agents, doubleagents"
        assert "x-consumer-custom-id" not in _seen(r) and "x-anonymous-consumer" not in _seen(r)

    serve(kong_config(echo_upstream.port, routes, consumers=CONSUMERS), scenario)
