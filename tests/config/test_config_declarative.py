"""Declarative loading: every supported feature, defaults, round trip, stable ids, errors."""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from fastgw.config import declarative, model
from fastgw.config.errors import ConfigError

FULL = Path(__file__).with_name("kong_full.yml")


@pytest.fixture
def env(monkeypatch):
    monkeypatch.setenv("SVC_NAME", "envsvc")
    monkeypatch.setenv("ALICE_ID", "alice-001")


def by(items, **kw):
    out = [e for e in items if all(getattr(e, k) == v for k, v in kw.items())]
    assert len(out) == 1, (kw, out)
    return out[0]


def paths_of(exc: ConfigError) -> dict[str, str]:
    return {p: m for p, m in exc.errors}


def test_full_file_loads_every_feature(env):
    c = declarative.load_file(str(FULL))
    assert {t: len(getattr(c, t)) for t in model.ENTITY_TYPES} == {
        "services": 3, "routes": 3, "upstreams": 2, "targets": 3, "consumers": 2,
        "plugins": 6, "keyauth_credentials": 3, "basicauth_credentials": 1,
        "jwt_secrets": 1, "acls": 2, "certificates": 0, "snis": 0, "ca_certificates": 0,
        "hmacauth_credentials": 0, "oauth2_credentials": 0}
    orders = by(c.services, name="orders")
    # url shorthand parsed
    assert (orders.protocol, orders.host, orders.port, orders.path) == \
        ("https", "orders.internal", 8443, "/v1")
    assert orders.retries == 3 and orders.connect_timeout == 1000
    assert orders.read_timeout == 60000 and orders.write_timeout == 60000
    users = by(c.services, name="users")
    assert users.retries == 5 and users.port == 9000 and users.path == "/api"
    assert by(c.services, name="envsvc").host == "envhost.internal"  # ${SVC_NAME}
    # nested and top-level routes reference their service by id
    api = by(c.routes, name="orders-api")
    assert api.service == orders.id
    assert api.paths == ["/orders", "~/orders/(?<id>\\d+)$"]
    assert api.headers == {"x-version": ["1", "2"]}
    assert (api.strip_path, api.regex_priority, api.path_handling, api.preserve_host,
            api.https_redirect_status_code) == (False, 10, "v1", True, 308)
    legacy = by(c.routes, name=None)
    assert legacy.service == orders.id and legacy.strip_path is True
    assert (legacy.regex_priority, legacy.path_handling, legacy.preserve_host,
            legacy.protocols, legacy.https_redirect_status_code) == (0, "v0", False,
                                                                     ["http", "https"], 426)
    uapi = by(c.routes, name="users-api")
    assert uapi.service == users.id
    assert (uapi.request_buffering, uapi.response_buffering) == (False, False)
    # upstreams and targets
    up = by(c.upstreams, name="orders.internal")
    assert (up.algorithm, up.hash_on, up.hash_on_header, up.hash_fallback, up.slots) == \
        ("consistent-hashing", "header", "x-user-id", "ip", 1024)
    assert up.healthchecks.active.http_path == "/health"
    assert up.healthchecks.active.unhealthy.http_failures == 3
    assert by(c.upstreams, name="users.internal").slots == 10000
    ts = {t.target: t for t in c.targets}
    assert set(ts) == {"127.0.0.1:9001", "localhost:8000", "[::1]:9002"}
    assert ts["127.0.0.1:9001"].weight == 50 and ts["localhost:8000"].weight == 100
    assert ts["[::1]:9002"].upstream == by(c.upstreams, name="users.internal").id
    # consumers and credentials
    alice = by(c.consumers, username="alice")
    assert alice.custom_id == "alice-001"
    assert by(c.consumers, custom_id="bob-42").username is None
    keys = {k.key for k in c.keyauth_credentials}
    assert {"alice-key", "alice-key-2"} <= keys
    generated = [k for k in c.keyauth_credentials if k.tags == ["generated"]][0]
    assert re.fullmatch(r"[0-9a-f]{32}", generated.key)
    ba = c.basicauth_credentials[0]
    assert ba.consumer == alice.id
    assert ba.password == hashlib.sha1(b"open-sesame" + alice.id.encode()).hexdigest()
    jwt = c.jwt_secrets[0]
    assert (jwt.key, jwt.secret, jwt.algorithm) == ("alice-issuer", "shhh", "HS256")
    assert {a.group for a in c.acls} == {"admins", "readers"}
    assert all(a.consumer == alice.id for a in c.acls)
    # plugins: scope by id, config validated with defaults filled
    ka = by(c.plugins, name="key-auth")
    assert ka.service == orders.id and ka.route is None
    assert ka.config == {"key_names": ["x-api-key"], "hide_credentials": False}
    g = by(c.plugins, instance_name="global-limit")
    assert (g.service, g.route, g.consumer, g.enabled, g.protocols) == \
        (None, None, None, False, ["http", "https"])
    assert g.config["second"] == 50 and g.config["limit_by"] == "consumer"
    assert by(c.plugins, name="rate-limiting", consumer=alice.id).config["hour"] == 1000
    assert by(c.plugins, name="rate-limiting", service=orders.id).config["minute"] == 100
    cors = by(c.plugins, name="cors", route=uapi.id)
    assert cors.consumer == alice.id
    assert by(c.plugins, name="cors", route=api.id).protocols == \
        ["grpc", "grpcs", "http", "https"]
    assert orders.tags == ["team-a", "prod"]


def test_round_trip_dict_and_yaml(env):
    c = declarative.load_file(str(FULL))
    d = declarative.dump(c)
    assert d["_format_version"] == "3.0" and d["_transform"] is False
    # references by name where the parent has one
    assert {r["service"] for r in d["routes"]} == {"orders", "users"}
    assert all(isinstance(t["upstream"], str) and not model.is_uuid(t["upstream"])
               for t in d["targets"])
    assert declarative.load_dict(d) == c
    again = declarative.load_text(declarative.dump_yaml(c))
    assert again == c
    assert model.config_hash(again) == model.config_hash(c)
    assert declarative.load_text(declarative.dump_json(c)) == c


def test_ids_are_stable_across_reloads(env):
    a = declarative.load_file(str(FULL))
    b = declarative.load_file(str(FULL))
    for t in model.ENTITY_TYPES:
        assert [e.id for e in getattr(a, t)] == [e.id for e in getattr(b, t)], t
    assert all(model.is_uuid(e.id) for t in model.ENTITY_TYPES for e in getattr(a, t))
    # a given id is kept
    sid = "0b4b1d52-2bd4-4ba0-9d36-c64e9a7c2b53"
    c = declarative.load_dict({"_format_version": "3.0",
                               "services": [{"id": sid, "name": "s", "host": "h"}]})
    assert c.services[0].id == sid
    # the id derives from the endpoint key, not the position
    c1 = declarative.load_dict({"_format_version": "3.0", "services": [
        {"name": "x", "host": "a"}, {"name": "y", "host": "b"}]})
    c2 = declarative.load_dict({"_format_version": "3.0", "services": [
        {"name": "y", "host": "b"}]})
    assert c1.services[1].id == c2.services[0].id


def test_format_version():
    with pytest.raises(ConfigError) as ei:
        declarative.load_dict({"services": []})
    assert paths_of(ei.value)["_format_version"] == "required field missing"
    with pytest.raises(ConfigError) as ei:
        declarative.load_dict({"_format_version": "0.9"})
    assert "unsupported" in paths_of(ei.value)["_format_version"]
    # 1.1 is one of Kong 3.x's formats too (declarative_config.lua one_of), migrated like 2.1
    c = declarative.load_text('_format_version: "1.1"\nservices:\n- name: s\n  host: h\n'
                              '  routes:\n  - paths: ["/items/\\\\d+$"]\n')
    assert c.routes[0].paths == ["~/items/\\d+$"]
    # 2.1: regex paths without "~" get it, as Kong 3's migration
    c = declarative.load_text('_format_version: "2.1"\nservices:\n- name: s\n  host: h\n'
                              '  routes:\n  - paths: ["/plain", "/items/\\\\d+$"]\n')
    assert c.routes[0].paths == ["/plain", "~/items/\\d+$"]
    # unquoted YAML 3.0 is a float; still accepted
    assert declarative.load_text("_format_version: 3.0\n") == model.Config()


def test_transform_false_keeps_hashed_password():
    doc = {"_format_version": "3.0", "_transform": False, "consumers": [
        {"username": "u", "basicauth_credentials": [{"username": "u", "password": "abc123"}]}]}
    assert declarative.load_dict(doc).basicauth_credentials[0].password == "abc123"
    doc["_transform"] = True
    c = declarative.load_dict(doc)
    assert c.basicauth_credentials[0].password == hashlib.sha1(
        b"abc123" + c.consumers[0].id.encode()).hexdigest()


def test_every_error_is_reported_with_its_path():
    doc = {
        "_format_version": "3.0",
        "bogus_top": 1,
        "services": [
            {"name": "a", "host": "h", "colour": "red", "retries": "many",
             "routes": [{"paths": ["/ok", "nope", "~/(unclosed"]},
                        {"methods": ["get"], "paths": ["/x"]}]},
            {"name": "a", "host": "h2"},
            {"host": "h3", "port": 70000},
        ],
        "routes": [{"name": "dangling", "service": "no-such-service", "paths": ["/d"]},
                   {"name": "nomatch", "service": "a"}],
        "upstreams": [{"name": "bad name!"}, {"name": "u", "targets": [
            {"target": "h:1", "weight": -1}, {"target": "h:1"}]}],
        "consumers": [{"tags": ["x"]}, {"username": "c", "acls": [{"group": "g"},
                                                                   {"group": "g"}]}],
        "plugins": [{"name": "rate-limiting", "config": {"minute": "lots", "colour": 1}},
                    {"name": "no-such-plugin"}],
    }
    with pytest.raises(ConfigError) as ei:
        declarative.load_dict(doc)
    errs = paths_of(ei.value)
    expected = {
        "bogus_top": "unknown field",
        "services[0].colour": "unknown field",
        "services[0].retries": "expected an integer",
        "services[0].routes[0].paths[1]": "should start with",
        "services[0].routes[0].paths[2]": "invalid regex",
        "services[0].routes[1].methods[0]": "invalid value",
        "services[1]": "uniqueness violation",
        "services[2].port": "value should be between 0 and 65535",
        "routes[0].service": "invalid reference 'service: no-such-service'",
        "routes[1]": "must set one of",
        "upstreams[0].name": "must be a valid hostname",
        "upstreams[1].targets[0].weight": "value should be between 0 and 65535",
        "consumers[0]": "at least one of these fields must be non-empty",
        "consumers[1].acls[1]": "uniqueness violation",
        "plugins[0].config.minute": "expected an integer",
        "plugins[0].config.colour": "unknown field",
        "plugins[1].name": "plugin 'no-such-plugin' not enabled",
    }
    for path, frag in expected.items():
        assert path in errs, (path, errs)
        assert frag in errs[path], (path, errs[path])
    # the duplicate target (same upstream + target) is reported too
    assert "uniqueness violation" in errs["upstreams[1].targets[1]"]
    # str(): one error per line
    text = str(ei.value)
    assert text.count("\n") == len(ei.value.errors)
    assert "services[0].colour: unknown field" in text.splitlines()


def test_plugin_config_entity_check_is_reported_at_config():
    with pytest.raises(ConfigError) as ei:
        declarative.load_dict({"_format_version": "3.0",
                               "plugins": [{"name": "rate-limiting", "config": {}}]})
    assert ei.value.errors[0][0] == "plugins[0].config.@entity"
    assert "at least one of" in ei.value.errors[0][1]


def test_env_interpolation(monkeypatch):
    monkeypatch.setenv("UP_HOST", "10.0.0.5")
    monkeypatch.delenv("NOPE", raising=False)
    doc = {"_format_version": "3.0", "services": [
        {"name": "s", "host": "${UP_HOST}", "path": "/a/$${LITERAL}/${DEF:-dflt}"}]}
    c = declarative.load_dict(doc)
    assert c.services[0].host == "10.0.0.5"
    assert c.services[0].path == "/a/${LITERAL}/dflt"
    # the dump escapes the literal so it survives a reload
    d = declarative.dump(c)
    assert d["services"][0]["path"] == "/a/$${LITERAL}/dflt"
    assert declarative.load_dict(d) == c
    with pytest.raises(ConfigError) as ei:
        declarative.load_dict({"_format_version": "3.0", "services": [
            {"name": "s", "host": "h", "tags": ["ok", "${NOPE}"]}]})
    assert ei.value.errors == [("services[0].tags[1]", "environment variable 'NOPE' is not set")]


def test_yaml_syntax_error_and_source():
    with pytest.raises(ConfigError) as ei:
        declarative.load_text("services: [\n", source="kong.yml")
    # Kong's key for a document that does not parse (fields.error)
    assert str(ei.value).startswith("kong.yml: error: failed parsing")


def test_top_level_references_by_id_and_nested_conflict():
    sid = "6a0f1c4e-5bf1-4b8e-9f0a-1a2b3c4d5e6f"
    c = declarative.load_dict({"_format_version": "3.0",
                               "services": [{"id": sid, "host": "h"}],
                               "routes": [{"service": {"id": sid}, "paths": ["/"]},
                                          {"service": sid, "paths": ["/2"]}]})
    assert [r.service for r in c.routes] == [sid, sid]
    # a nameless service is referenced by id in the dump
    assert declarative.dump(c)["routes"][0]["service"] == sid
    with pytest.raises(ConfigError) as ei:
        declarative.load_dict({"_format_version": "3.0", "services": [
            {"name": "a", "host": "h"}, {"name": "b", "host": "h",
                                         "routes": [{"service": "a", "paths": ["/"]}]}]})
    assert "services[1].routes[0].service" in paths_of(ei.value)


def test_msgpack_encoding_round_trip(env):
    c = declarative.load_file(str(FULL))
    assert model.decode_config(model.encode_config(c)) == c


def test_config_hash_tracks_content():
    a = declarative.load_dict({"_format_version": "3.0", "services": [{"name": "s", "host": "h"}]})
    b = declarative.load_dict({"_format_version": "3.0", "services": [{"name": "s", "host": "h"}]})
    c = declarative.load_dict({"_format_version": "3.0", "services": [{"name": "s", "host": "i"}]})
    assert model.config_hash(a) == model.config_hash(b) != model.config_hash(c)
    assert re.fullmatch(r"[0-9a-f]{32}", model.config_hash(a))
