"""pre-function / post-function in Python form through a real gateway (Kong's
spec/03-plugins/33-serverless-functions, with import paths instead of Lua strings)."""
from __future__ import annotations

import json

import pytest

import serverless_funcs

from gw_helpers import config_errors, kong_config, route, serve

F = "serverless_funcs"
NOT_CODE = ("pre-function/post-function takes Python functions named 'package.module:function', not "
            "code: fastgw never runs code taken from the configuration (Kong's Lua code strings are not "
            "supported)")
ONE_OF = ("at least one of these fields must be non-empty: 'config.certificate', 'config.rewrite', "
          "'config.access', 'config.header_filter', 'config.body_filter', 'config.log'")

SCHEMA_CASES = [
    ({"access": [f"{F}:deny_teapots"]}, {}),
    ({"access": [f"{F}:deny_teapots", f"{F}:slow_ok"], "log": [f"{F}:record"]}, {}),
    ({}, {"config.@entity": ONE_OF}),
    ({"access": []}, {"config.@entity": ONE_OF}),
    ({"access": ["kong.response.exit(418)"]}, {"config.access[0]": NOT_CODE}),
    ({"rewrite": [f"{F}:tag_upstream", "return function() end"]}, {"config.rewrite[1]": NOT_CODE}),
    ({"access": ["no_such_module_x:f"]},
     {"config.access[0]": "could not import module 'no_such_module_x': No module named 'no_such_module_x'"}),
    ({"access": [f"{F}:missing"]}, {"config.access[0]": f"module '{F}' has no attribute 'missing'"}),
    ({"access": [f"{F}:NOT_CALLABLE"]}, {"config.access[0]": f"'{F}:NOT_CALLABLE' is not callable"}),
    ({"header_filter": [f"{F}:async_header_filter"]},
     {"config.header_filter[0]": "header_filter functions cannot be async (the response head and body are streamed)"}),
    ({"certificate": [f"{F}:record"]},
     {"config.certificate": "the certificate phase is not available to fastgw plugins (TLS is terminated by the core)"}),
    ({"functions": ["return 1"]}, {"config.functions": "unknown field"}),
]


@pytest.mark.parametrize("plugin", ["pre-function", "post-function"])
@pytest.mark.parametrize("conf,errors", SCHEMA_CASES)
def test_schema(plugin, conf, errors):
    assert config_errors(plugin, conf) == errors


def test_no_consumer_scope():
    doc = {"_format_version": "3.0", "consumers": [{"username": "a", "plugins": [
        {"name": "pre-function", "config": {"access": [f"{F}:tag_upstream"]}}]}]}
    from fastgw.config.errors import ConfigError
    from fastgw.gateway import load_config

    with pytest.raises(ConfigError) as e:
        load_config(doc)
    assert any(m == "value must be null" and p.endswith(".consumer") for p, m in e.value.errors)


def test_phases_priorities_and_exits(echo_upstream):
    serverless_funcs.LOGGED.clear()
    routes = [route("fn", [
        {"name": "pre-function", "config": {"rewrite": [f"{F}:tag_upstream"],
                                            "access": [f"{F}:add_apikey", f"{F}:deny_teapots", f"{F}:slow_ok"]}},
        {"name": "key-auth", "config": {}},
        {"name": "post-function", "config": {"access": [f"{F}:consumer_header"],
                                             "header_filter": [f"{F}:response_header"],
                                             "body_filter": [f"{F}:upper_body"], "log": [f"{F}:record"]}},
    ]), route("plain", [{"name": "pre-function", "config": {"access": [f"{F}:tag_upstream"]}}])]
    consumers = [{"username": "alice", "keyauth_credentials": [{"key": "k-alice"}]}]

    async def scenario(client):
        r = await client.get("/fn/x")
        assert r.status == 200
        assert r.headers["x-post"] == "200"
        doc = json.loads(r.body.lower())  # the body filter upper-cased the echo
        seen = dict(doc["headers"])
        assert seen["x-pre"] == "rewrite" and seen["x-async"] == "yes"
        assert seen["x-seen-consumer"] == "alice" and seen["x-consumer-username"] == "alice"

        r = await client.get("/fn/tea", headers={"X-Teapot": "1"})
        assert r.status == 418 and r.json() == {"message": "I'm a teapot"}
        assert r.headers["x-from"] == "pre-function"
        assert r.headers["x-post"] == "418"   # header_filter runs on exits too (Kong)

        r = await client.get("/plain/y")
        assert r.status == 200 and "transfer-encoding" not in r.headers  # no body filter there

    serve(kong_config(echo_upstream.port, routes, consumers=consumers), scenario)
    assert ("/fn/x", 200, "alice") in serverless_funcs.LOGGED
    assert ("/fn/tea", 418, None) in serverless_funcs.LOGGED  # stopped before key-auth ran


def test_only_configured_phases_are_hooked():
    from fastgw.plugins import PluginEnv, get, validate_config

    cls = get("pre-function")
    p = cls(validate_config("pre-function", {"access": [f"{F}:tag_upstream"]}), PluginEnv())
    assert type(p).implements("access")
    assert not any(type(p).implements(ph) for ph in ("rewrite", "header_filter", "body_filter", "log"))
    assert p.PRIORITY == 1_000_000 and get("post-function").PRIORITY == -1000
