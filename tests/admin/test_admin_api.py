"""Admin API through AdminAPI.handle(): Kong's paths, verbs, status codes and error shapes."""
from __future__ import annotations

import hashlib
import re

import orjson
import pytest
import yaml
from admin_helpers import Client

from fastgw.config import declarative, model
from fastgw.config.errors import ConfigError

UUID = "0d3c2b1a-1111-4222-8333-444455556666"

DOC = {"_format_version": "3.0",
       "services": [{"name": "svc", "host": "svc.internal", "routes": [
           {"name": "r1", "paths": ["/r1"]}]}],
       "upstreams": [{"name": "up", "targets": [{"target": "127.0.0.1:9001"}]}],
       "consumers": [{"username": "alice"}]}


@pytest.fixture
def c():
    return Client(DOC)


def test_root_and_status(c):
    s, b = c.call("GET", "/")
    assert s == 200
    assert b["version"] and b["node_id"] == "node-1"
    assert b["configuration"]["persistence"] == "memory" and b["persistence"] == "memory"
    assert b["configuration"]["entities"]["services"] == 1
    assert "rate-limiting" in b["plugins"]["available_on_server"]
    assert c.headers["Content-Type"] == "application/json; charset=utf-8"
    assert c.headers["Server"].startswith("fastgw/")
    assert c.headers["X-Kong-Admin-Latency"].isdigit()
    s, b = c.call("GET", "/status")
    assert s == 200 and b["server"]["total_requests"] == 7
    assert b["configuration_hash"] == model.config_hash(c.store.config)


def test_service_crud_status_codes(c):
    s, b = c.call("POST", "/services", {"name": "a", "url": "https://a.example.com/p"})
    assert s == 201
    assert (b["protocol"], b["host"], b["port"], b["path"]) == ("https", "a.example.com", 443, "/p")
    assert b["retries"] == 5 and b["connect_timeout"] == 60000 and b["tags"] is None
    sid = b["id"]
    assert model.is_uuid(sid)
    assert c.call("GET", f"/services/{sid}")[1]["name"] == "a"
    assert c.call("GET", "/services/a")[1]["id"] == sid
    s, b = c.call("PATCH", "/services/a", {"retries": 2})
    assert s == 200 and b["retries"] == 2 and b["host"] == "a.example.com"
    s, b = c.call("PUT", "/services/a", {"host": "b.example.com"})
    assert s == 200 and b["id"] == sid and b["retries"] == 5 and b["protocol"] == "http"
    s, b = c.call("PUT", f"/services/{UUID}", {"name": "byid", "host": "c.com"})
    assert s == 200 and b["id"] == UUID
    assert c.call("DELETE", "/services/a") == (204, b"")
    assert c.call("DELETE", "/services/a") == (204, b"")  # as Kong: deleting nothing is 204
    assert c.call("GET", "/services/a") == (404, {"message": "Not found"})
    assert c.call("PATCH", "/services/a", {"retries": 1}) == (404, {"message": "Not found"})


def test_schema_violation_shape(c):
    s, b = c.call("POST", "/services", {"name": "x", "port": "http", "colour": "red",
                                        "retries": -1})
    assert s == 400
    assert b["code"] == 2 and b["name"] == "schema violation"
    assert b["fields"] == {"colour": "unknown field", "host": "required field missing",
                           "port": "expected an integer",
                           "retries": "value should be between 0 and 32767"}
    assert b["message"].startswith("4 schema violations (")
    s, b = c.call("POST", "/routes", {"paths": ["nope"], "service": {"id": c.store.config.services[0].id}})
    assert s == 400 and b["fields"] == {"paths": ["should start with: / (fixed path) or "
                                                     "~/ (regex path)"]}
    assert b["message"] == ("schema violation (paths.1: should start with: / (fixed path) "
                            "or ~/ (regex path))")
    s, b = c.call("POST", "/routes", {"name": "nomatch"})
    assert s == 400 and "must set one of" in b["fields"]["@entity"][0]


def test_unique_violation_shape(c):
    s, b = c.call("POST", "/services", {"name": "svc", "host": "x"})
    assert s == 409
    assert b == {"code": 5, "name": "unique constraint violation",
                 "message": "UNIQUE violation detected on '{name=\"svc\"}'",
                 "fields": {"name": "svc"}}
    s, b = c.call("POST", "/consumers", {"username": "alice"})
    assert s == 409 and b["fields"] == {"username": "alice"}


def test_foreign_key_violations(c):
    s, b = c.call("POST", "/routes", {"paths": ["/x"], "service": {"id": UUID}})
    assert s == 400
    assert b["code"] == 4 and b["name"] == "foreign key violation"
    assert b["fields"] == {"service": {"id": UUID}}
    assert b["message"] == (f"the foreign key '{{id=\"{UUID}\"}}' does not reference an "
                            "existing 'services' entity.")
    s, b = c.call("DELETE", "/services/svc")
    assert s == 400 and b["code"] == 4 and b["fields"] == {"@referenced_by": "routes"}
    assert len(c.store.config.services) == 1


def test_method_not_allowed_and_not_found(c):
    assert c.call("PATCH", "/services") == (405, {"message": "Method not allowed"})
    assert c.call("DELETE", "/status") == (405, {"message": "Method not allowed"})
    assert c.call("GET", "/nope") == (404, {"message": "Not found"})
    assert c.call("GET", "/services/svc/nope") == (404, {"message": "Not found"})
    s, _ = c.call("OPTIONS", "/services")
    assert s == 204 and c.headers["Allow"] == "GET, HEAD, OPTIONS, POST"
    s, b = c.call("HEAD", "/services/svc")
    assert s == 200 and b == b"" and int(c.headers["Content-Length"]) > 0


def test_bad_json_and_form_bodies(c):
    s, b = c.call("POST", "/services", raw=b"{not json")
    assert s == 400 and b == {"message": "Cannot parse JSON body"}
    s, b = c.call("POST", "/services", form="name=f&url=http://f.com&tags[]=a&tags[]=b")
    assert s == 201 and b["tags"] == ["a", "b"] and b["port"] == 80
    s, b = c.call("POST", "/services/f/routes",
                  form="name=fr&paths[]=/f&methods=GET&headers.x-env=prod&strip_path=false"
                       "&regex_priority=3")
    assert s == 201
    assert (b["paths"], b["methods"], b["headers"], b["strip_path"], b["regex_priority"]) == \
        (["/f"], ["GET"], {"x-env": ["prod"]}, False, 3)
    s, b = c.call("POST", "/plugins", form="name=rate-limiting&config.minute=10"
                                           "&config.policy=local")
    assert s == 201 and b["config"]["minute"] == 10 and b["config"]["policy"] == "local"
    # an empty form value means null (Kong's way to unset)
    s, b = c.call("PATCH", "/services/f", form="path=")
    assert s == 200 and b["path"] is None


def test_pagination(c):
    for i in range(5):
        assert c.call("POST", "/consumers", {"username": f"u{i}"})[0] == 201
    s, b = c.call("GET", "/consumers?size=2")
    assert s == 200 and [x["username"] for x in b["data"]] == ["alice", "u0"]
    assert b["next"] == f"/consumers?offset={b['offset']}&size=2" and b["offset"]
    seen = [x["username"] for x in b["data"]]
    while b["next"]:
        s, b = c.call("GET", b["next"])
        seen += [x["username"] for x in b["data"]]
    assert seen == ["alice", "u0", "u1", "u2", "u3", "u4"]
    assert "offset" not in b
    s, b = c.call("GET", "/consumers?size=0")
    assert s == 400 and b["code"] == 9 and b["name"] == "invalid size"
    s, b = c.call("GET", "/consumers?size=1001")
    assert s == 400 and b["message"] == "size must be an integer between 1 and 1000"
    s, b = c.call("GET", "/consumers?offset=@@@")
    assert s == 400 and b["code"] == 7 and b["name"] == "invalid offset"
    s, b = c.call("GET", "/consumers")
    assert len(b["data"]) == 6 and b["next"] is None


def test_tags_filter(c):
    c.call("POST", "/services", {"name": "t1", "host": "h", "tags": ["a", "b"]})
    c.call("POST", "/services", {"name": "t2", "host": "h", "tags": ["a"]})
    c.call("POST", "/services", {"name": "t3", "host": "h", "tags": ["c"]})
    names = lambda q: [x["name"] for x in c.call("GET", "/services?tags=" + q)[1]["data"]]  # noqa: E731
    assert names("a,b") == ["t1"]
    assert names("b/c") == ["t1", "t3"]
    assert names("a") == ["t1", "t2"]
    s, b = c.call("GET", "/services?tags=a,b/c")
    assert s == 400 and b["code"] == 11
    s, b = c.call("GET", "/tags/a")
    assert {r["entity_id"] for r in b["data"]} == {
        e.id for e in c.store.config.services if e.tags and "a" in e.tags}


def test_nested_collections_and_foreign(c):
    s, b = c.call("POST", "/services/svc/routes", {"name": "r2", "paths": ["/r2"]})
    sid = c.store.config.services[0].id
    assert s == 201 and b["service"] == {"id": sid}
    s, b = c.call("GET", "/services/svc/routes")
    assert [r["name"] for r in b["data"]] == ["r1", "r2"]
    assert c.call("GET", "/services/nope/routes")[0] == 404
    assert c.call("GET", "/services/svc/routes/r2")[1]["name"] == "r2"
    s, b = c.call("GET", "/routes/r2/service")
    assert s == 200 and b["id"] == sid
    s, b = c.call("PATCH", "/routes/r2/service", {"retries": 1})
    assert s == 200 and b["retries"] == 1
    for url in ("/services/svc/plugins", "/routes/r1/plugins", "/consumers/alice/plugins"):
        s, b = c.call("POST", url, {"name": "cors"})
        assert s == 201, b
    plugins = c.store.config.plugins
    assert [(p.service is not None, p.route is not None, p.consumer is not None)
            for p in plugins] == [(True, False, False), (False, True, False),
                                  (False, False, True)]
    assert len(c.call("GET", "/routes/r1/plugins")[1]["data"]) == 1
    s, b = c.call("GET", f"/plugins/{plugins[1].id}/route")
    assert s == 200 and b["name"] == "r1"
    # deleting a route takes its plugins with it
    assert c.call("DELETE", "/routes/r1")[0] == 204
    assert len(c.store.config.plugins) == 2


def test_plugins_validation_and_patch(c):
    s, b = c.call("POST", "/plugins", {"name": "rate-limiting", "config": {"minute": "x",
                                                                          "bogus": 1}})
    assert s == 400 and b["code"] == 2
    assert b["fields"] == {"config": {"minute": "expected an integer", "bogus": "unknown field"}}
    s, b = c.call("POST", "/plugins", {"name": "nope"})
    assert s == 400 and b["fields"]["name"].startswith("plugin 'nope' not enabled")
    s, b = c.call("POST", "/plugins", {"name": "rate-limiting", "instance_name": "rl",
                                       "config": {"minute": 5}})
    assert s == 201 and b["config"] == {"second": None, "minute": 5, "hour": None,
                                        "policy": "local", "limit_by": "consumer"}
    assert b["enabled"] is True and b["protocols"] == ["grpc", "grpcs", "http", "https"]
    s, b = c.call("PATCH", "/plugins/rl", {"config": {"hour": 100}})
    assert s == 200 and b["config"]["minute"] == 5 and b["config"]["hour"] == 100
    s, b = c.call("POST", "/plugins", {"name": "rate-limiting", "config": {"minute": 1}})
    assert s == 409  # same plugin, same (global) scope as "rl"
    s, b = c.call("POST", "/plugins", {"name": "rate-limiting", "config": {"minute": 1},
                                       "service": {"name": "svc"}})
    assert s == 201
    assert c.call("GET", "/plugins/enabled")[1]["enabled_plugins"] == ["cors", "key-auth",
                                                                        "rate-limiting"]


def test_upstreams_targets_and_health(c):
    s, b = c.call("POST", "/upstreams/up/targets", {"target": "localhost"})
    assert s == 201 and b["target"] == "localhost:8000" and b["weight"] == 100
    s, b = c.call("POST", "/upstreams/up/targets", {"target": "h:1", "weight": 70000})
    assert s == 400 and b["fields"] == {"weight": "value should be between 0 and 65535"}
    s, b = c.call("POST", "/upstreams/up/targets", {"target": "localhost:8000"})
    assert s == 409
    s, b = c.call("GET", "/upstreams/up/targets")
    assert [t["target"] for t in b["data"]] == ["127.0.0.1:9001", "localhost:8000"]
    assert c.call("GET", "/upstreams/up/targets/all")[1]["data"] == b["data"]
    s, b = c.call("GET", "/upstreams/up/health")
    assert s == 200 and b["data"][0]["health"] == "HEALTHY"
    assert c.call("GET", "/upstreams/nope/health")[0] == 404
    assert c.call("PUT", "/upstreams/up/targets/127.0.0.1:9001/unhealthy") == (204, b"")
    assert c.call("PUT", "/upstreams/up/targets/localhost/healthy") == (204, b"")
    assert c.gw.health_calls == [("up", "127.0.0.1:9001", False), ("up", "localhost:8000", True)]
    assert c.call("PUT", "/upstreams/up/targets/1.2.3.4:1/healthy")[0] == 404
    assert c.call("DELETE", "/upstreams/up/targets/localhost:8000")[0] == 204
    assert len(c.store.config.targets) == 1
    s, b = c.call("POST", "/upstreams", {"name": "not a host"})
    assert s == 400 and "valid hostname" in b["fields"]["name"]
    # deleting an upstream cascades to its targets
    assert c.call("DELETE", "/upstreams/up")[0] == 204
    assert c.store.config.targets == []


def test_credentials(c):
    cid = c.store.config.consumers[0].id
    s, b = c.call("POST", "/consumers/alice/key-auth", {})
    assert s == 201 and re.fullmatch(r"[0-9a-f]{32}", b["key"]) and b["consumer"] == {"id": cid}
    s, b = c.call("POST", "/consumers/alice/key-auths", {"key": "mine"})
    assert s == 201
    assert c.call("GET", "/consumers/alice/key-auth/mine")[1]["key"] == "mine"
    assert len(c.call("GET", "/key-auths")[1]["data"]) == 2
    s, b = c.call("POST", "/consumers/alice/key-auth", {"key": "mine"})
    assert s == 409
    s, b = c.call("POST", "/consumers/alice/basic-auth", {"username": "al", "password": "pw"})
    assert s == 201 and b["password"] == hashlib.sha1(("pw" + cid).encode()).hexdigest()
    s, b = c.call("POST", "/consumers/alice/jwt", {})
    assert s == 201 and b["algorithm"] == "HS256" and b["key"] and b["secret"]
    s, b = c.call("POST", "/consumers/alice/jwt", {"algorithm": "RS256"})
    assert s == 400 and "rsa_public_key" in b["fields"]
    s, b = c.call("POST", "/consumers/alice/acls", {"group": "admins"})
    assert s == 201
    assert c.call("GET", "/consumers/alice/acls/admins")[1]["group"] == "admins"
    assert c.call("GET", f"/key-auths/mine/consumer")[1]["username"] == "alice"
    assert c.call("GET", "/consumers/nobody/acls")[0] == 404
    assert c.call("DELETE", "/consumers/alice")[0] == 204
    cfg = c.store.config
    assert not (cfg.keyauth_credentials or cfg.basicauth_credentials or cfg.jwt_secrets
                or cfg.acls)


def test_schemas(c):
    s, b = c.call("GET", "/schemas/services")
    assert s == 200
    fields = {k: v for f in b["fields"] for k, v in f.items()}
    assert fields["retries"] == {"type": "integer", "between": [0, 32767], "default": 5}
    assert fields["host"]["required"] is True
    assert fields["id"]["uuid"] is True and "required" not in fields["id"]
    s, b = c.call("GET", "/schemas/routes")
    fields = {k: v for f in b["fields"] for k, v in f.items()}
    assert fields["service"] == {"type": "foreign", "reference": "services"}
    assert fields["path_handling"]["one_of"] == ["v0", "v1"]
    s, b = c.call("GET", "/schemas/plugins/rate-limiting")
    conf = [f["config"] for f in b["fields"] if "config" in f][0]
    cf = {k: v for f in conf["fields"] for k, v in f.items()}
    assert cf["policy"] == {"type": "string", "one_of": ["local", "redis"], "default": "local"}
    assert c.call("GET", "/schemas/nope")[0] == 404
    assert c.call("GET", "/schemas/plugins/nope")[0] == 404
    s, b = c.call("POST", "/schemas/services/validate", {"host": "x.com"})
    assert s == 200
    s, b = c.call("POST", "/schemas/services/validate", {"port": 1})
    assert s == 400 and b["fields"] == {"host": "required field missing"}


def test_config_get_round_trip_and_check_hash(c):
    c.call("POST", "/consumers/alice/basic-auth", {"username": "al", "password": "pw"})
    c.call("POST", "/plugins", {"name": "cors", "service": {"name": "svc"}})
    s, b = c.call("GET", "/config")
    assert s == 200
    text = b["config"]
    assert yaml.safe_load(text)["_format_version"] == "3.0"
    assert declarative.load_text(text) == c.store.config
    h = c.store.hash
    applied = len(c.applied)
    assert c.call("POST", "/config?check_hash=1", {"config": text}) == (304, b"")
    assert len(c.applied) == applied
    # the JSON form loads the same
    s, b = c.call("GET", "/config?format=json")
    assert declarative.load_dict(b) == c.store.config
    s, b = c.call("POST", "/config", b)
    assert s == 201 and c.store.hash == h


def test_post_config_yaml_form_and_errors(c):
    y = ("_format_version: '3.0'\nservices:\n- name: only\n  host: only.internal\n"
         "  routes:\n  - paths: [/only]\n")
    s, b = c.call("POST", "/config", raw=y.encode(), ctype="application/yaml")
    assert s == 201 and [x["name"] for x in b["services"].values()] == ["only"]
    assert [x.name for x in c.store.config.services] == ["only"]
    s, b = c.call("POST", "/config", form={"config": y.replace("only", "form")})
    assert s == 201 and c.store.config.services[0].name == "form"
    before = c.store.config
    bad = {"_format_version": "3.0", "services": [{"name": "a", "host": "h", "bogus": 1},
                                                  {"name": "a", "host": "h"}],
           "routes": [{"service": "zzz", "paths": ["/"]}]}
    s, b = c.call("POST", "/config", bad)
    assert s == 400 and b["code"] == 14 and b["name"] == "invalid declarative configuration"
    paths = {e["path"] for e in b["errors"]}
    # a duplicate name is an error of the whole entity, as Kong's declarative errors
    assert paths == {"services[0].bogus", "services[1]", "routes[0].service"}
    assert b["fields"]["services"][0]["bogus"] == "unknown field"
    assert c.store.config is before
    assert c.call("POST", "/config", raw=b"", ctype="application/yaml")[0] == 400


def test_post_config_dry_run(c):
    before = c.store.config
    doc = {"_format_version": "3.0",
           "services": [{"name": "svc", "host": "changed.internal",
                         "routes": [{"name": "r1", "paths": ["/r1"]}]},
                        {"name": "new", "host": "n"}],
           "consumers": [{"username": "alice"}]}
    s, b = c.call("POST", "/config?dry_run=1", doc)
    assert s == 200 and b["dry_run"] is True
    d = b["diff"]
    assert [(x["entity"], x["key"]) for x in d["added"]] == [("services", "new")]
    assert [(x["entity"], x["key"], x["fields"]) for x in d["changed"]] == \
        [("services", "svc", ["host"])]
    assert {(x["entity"], x["key"]) for x in d["removed"]} == {
        ("upstreams", "up"), ("targets", "127.0.0.1:9001")}
    assert c.store.config is before and c.applied == []


def test_apply_failure_is_a_400_and_changes_nothing():
    def refuse(cfg):
        if len(cfg.services) > 1:
            raise ConfigError([("services[1]", "cannot compile")])

    c = Client(DOC, apply=refuse)
    before = c.store.config
    s, b = c.call("POST", "/services", {"name": "x", "host": "h"})
    assert s == 400 and b["fields"] == {"services": [None, "cannot compile"]}
    assert c.store.config is before


def test_metrics(c):
    s, b = c.call("GET", "/metrics")
    assert s == 200 and b == b"fastgw_requests_total 3\n"
    assert c.headers["Content-Type"] == "text/plain; version=0.0.4"
    c.gw.metrics_value = None
    assert c.call("GET", "/metrics")[0] == 404


def test_persistence_through_admin(tmp_path):
    path = tmp_path / "kong.yml"
    c = Client(DOC, persist=str(path))
    assert c.call("GET", "/")[1]["persistence"] == "file"
    c.call("POST", "/services", {"name": "p", "host": "h"})
    assert declarative.load_file(str(path)) == c.store.config
    assert orjson.loads(orjson.dumps(c.call("GET", "/status")[1]))["persistence"] == "file"
