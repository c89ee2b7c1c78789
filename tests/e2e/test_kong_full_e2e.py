"""The full-feature Kong declarative file (kong_full_e2e.yml), end to end (issue #5).

One real `fastgw run` process per test loads the file (ports filled in by `${VAR}`
interpolation from the environment), three real echo upstreams answer, and every check goes
over 127.0.0.1 sockets: `fastgw check`, the GET /config round trip and POST /config?check_hash=1,
then traffic proving that each route, balancer and plugin behaves as the file configures it.

Each service in the file forwards to its own base path, so the path an echo upstream received
(its JSON answer's "path") names the route that matched; "port" names the target that answered.
"""
from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from base64 import b64encode
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt as pyjwt
import pytest
import yaml

from fastgw.config import declarative, model
from servers import HOST, Behaviour, EchoUpstream, FastgwProcess, free_port, wait_until

FILE = Path(__file__).with_name("kong_full_e2e.yml")
ALICE_ID = "alice-001"
JWT_SECRET = "alice-jwt-secret-0123456789abcdef"  # alice's jwt_secrets[0].secret in FILE
BUILTIN_PLUGINS = {"key-auth", "basic-auth", "jwt", "acl", "rate-limiting", "correlation-id",
                   "cors", "request-transformer", "response-transformer", "ip-restriction",
                   "bot-detection", "request-size-limiting", "prometheus"}
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


# ----------------------------------------------------------------------------------- helpers

@dataclass
class Resp:
    status: int
    headers: dict[str, str]  # lowercased names, last value wins
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def echo(self) -> dict[str, Any]:
        """The echo upstream's view of the request (path, port, headers lowercased)."""
        assert self.status == 200, (self.status, self.body[:300])
        j = self.json()
        j["h"] = {k.lower(): v for k, v in j["headers"]}
        return j


def call(port: int, method: str, path: str, headers: dict[str, str] | None = None,
         body: bytes | None = None) -> Resp:
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        # http.client sends no User-Agent: bot-detection sees none unless a test sets one
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    finally:
        conn.close()


@dataclass
class Full:
    gw: FastgwProcess
    a: EchoUpstream
    b: EchoUpstream
    c: EchoUpstream
    env: dict[str, str]

    def get(self, path: str, headers: dict[str, str] | None = None) -> Resp:
        return call(self.gw.port, "GET", path, headers)

    def req(self, method: str, path: str, headers: dict[str, str] | None = None,
            body: bytes | None = None) -> Resp:
        return call(self.gw.port, method, path, headers, body)

    def admin(self, method: str, path: str, body: bytes | None = None,
              headers: dict[str, str] | None = None) -> Resp:
        return call(self.gw.admin_port, method, path, headers, body)

    def name_of(self, port: int) -> str:
        return {self.a.port: "A", self.b.port: "B", self.c.port: "C"}[port]


def _env(a: EchoUpstream, b: EchoUpstream, c: EchoUpstream) -> dict[str, str]:
    return {"ECHO_A": str(a.port), "ECHO_B": str(b.port), "ECHO_C": str(c.port),
            "DEAD_PORT": str(free_port()), "ALICE_ID": ALICE_ID}


@pytest.fixture
def full(echo_factory, fastgw) -> Full:
    a, b, c = echo_factory(), echo_factory(), echo_factory()
    env = _env(a, b, c)
    environ = {k: v for k, v in os.environ.items() if k != "BOB_ID"}
    gw = fastgw(FILE, wait_admin=True, env={**environ, **env})
    return Full(gw, a, b, c, env)


def _proxied(up: EchoUpstream, prefix: str) -> list:
    """Requests `up` received under `prefix`, not the health checker's probes."""
    return [r for r in up.requests if r.path.startswith(prefix)]


# --------------------------------------------------------------------- the file and the CLI

def test_file_uses_every_supported_feature():
    """Guard on the fixture itself: every entity type, every built-in plugin, every scope."""
    env = {"ECHO_A": "1", "ECHO_B": "2", "ECHO_C": "3", "DEAD_PORT": "4", "ALICE_ID": ALICE_ID}
    raw = yaml.safe_load(FILE.read_text())
    assert {"_format_version", "_comment", "_transform"} <= set(raw)
    c = declarative.load_dict(raw, env=env)
    for etype in model.ENTITY_TYPES:
        assert getattr(c, etype), f"no {etype} in {FILE.name}"
    assert {p.name for p in c.plugins} == BUILTIN_PLUGINS
    scopes = {(p.route is not None, p.service is not None, p.consumer is not None)
              for p in c.plugins}
    assert scopes >= {(False, False, False), (True, False, False), (False, True, False),
                      (False, False, True)}
    assert {u.algorithm for u in c.upstreams} >= {"round-robin", "consistent-hashing",
                                                   "least-connections"}
    assert {s.name: s.port for s in c.services}["paths"] == 1  # ${ECHO_A} in the url shorthand
    assert any(r.path_handling == "v1" for r in c.routes)
    assert any(p.startswith("~") for r in c.routes for p in r.paths or ())
    assert any(h.startswith("*.") for r in c.routes for h in r.hosts or ())
    assert any(not p.enabled for p in c.plugins)
    assert all(s.tags for s in c.services if s.name in ("paths", "secure"))


def test_fastgw_check_accepts_the_file_and_needs_its_env(tmp_path):
    env = {**os.environ, "ECHO_A": "18001", "ECHO_B": "18002", "ECHO_C": "18003",
           "DEAD_PORT": "18004", "ALICE_ID": ALICE_ID}
    cmd = [sys.executable, "-m", "fastgw", "check", str(FILE)]
    ok = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    c = declarative.load_dict(yaml.safe_load(FILE.read_text()), env=env)
    assert (f"{len(c.services)} services, {len(c.routes)} routes, {len(c.upstreams)} upstreams, "
            f"{len(c.targets)} targets, {len(c.consumers)} consumers, "
            f"{len(c.plugins)} plugins") in ok.stdout
    # without ECHO_B the interpolation fails, naming where the variable was used
    env.pop("ECHO_B")
    bad = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1
    assert "ECHO_B" in bad.stderr and "upstreams[2].targets[0].target" in bad.stderr


# ----------------------------------------------------------------------- GET /config round trip

def test_config_round_trips_through_the_admin_api(full):
    expected = declarative.load_dict(yaml.safe_load(FILE.read_text()), env=full.env)
    status = full.admin("GET", "/status").json()
    as_json = full.admin("GET", "/config?format=json")
    assert as_json.status == 200
    dump = as_json.json()
    assert declarative.load_dict(dump) == expected
    assert model.config_hash(declarative.load_dict(dump)) == status["configuration_hash"]
    # the interpolated values are what is served back
    assert f"127.0.0.1:{full.b.port}" in {t["target"] for t in dump["targets"]}
    as_yaml = full.admin("GET", "/config")
    assert as_yaml.status == 200
    assert declarative.load_text(as_yaml.json()["config"]) == expected

    # posting either form back is "unchanged"
    r = full.admin("POST", "/config?check_hash=1", json.dumps(dump).encode(),
                   {"Content-Type": "application/json"})
    assert r.status == 304, r.body
    r = full.admin("POST", "/config?check_hash=1", as_yaml.json()["config"].encode(),
                   {"Content-Type": "text/yaml"})
    assert r.status == 304, r.body
    # ... while a real change is not (dry run: nothing applied)
    changed = dict(dump, routes=[x for x in dump["routes"] if x.get("name") != "strip"])
    r = full.admin("POST", "/config?dry_run=1", json.dumps(changed).encode(),
                   {"Content-Type": "application/json"})
    assert r.status == 200 and "strip" in json.dumps(r.json()["diff"])
    assert full.admin("GET", "/status").json()["configuration_hash"] == \
        status["configuration_hash"]
    assert full.get("/strip/x").echo["path"] == "/base/x"


# ----------------------------------------------------------------------------------- routing

def test_routes_match_and_rewrite_as_configured(full):
    a = full.a.port
    # strip_path true (default), false (v0 join) and false with path_handling v1
    assert full.get("/strip/x").echo["path"] == "/base/x"
    assert full.get("/keep/x").echo["path"] == "/base/keep/x"
    assert full.get("/v1keep/x").echo["path"] == "/basev1keep/x"
    # the service url's host and port
    e = full.get("/strip/q?x=1").echo
    assert (e["port"], e["query"]) == (a, "x=1")

    # preserve_host true vs false, same path, told apart by the Host header
    e = full.get("/h", {"Host": "preserve.test"}).echo
    assert (e["path"], e["h"]["host"]) == ("/base", "preserve.test")
    e = full.get("/h", {"Host": "rewrite.test"}).echo
    assert e["h"]["host"] == f"127.0.0.1:{a}"
    assert full.get("/h", {"Host": "other.test"}).status == 404

    # wildcard host: any subdomain, never the bare domain or another domain
    assert full.get("/w", {"Host": "a.wild.test"}).status == 200
    assert full.get("/w", {"Host": "x.y.wild.test:8080"}).status == 200
    for host in ("wild.test", "a.wild.test.evil", "a.notwild.test"):
        r = full.get("/w", {"Host": host})
        assert r.status == 404, host
        assert r.json()["message"] == "no Route matched with those values"

    # regex_priority: both regex routes match /items/42, the higher priority wins; the
    # lower one takes what only it matches; the prefix route gets the rest
    assert full.get("/items/42").echo["path"] == "/hi/items/42"
    assert full.get("/items/42x").echo["path"] == "/lo/items/42x"
    assert full.get("/items/abc").echo["path"] == "/pre/items/abc"
    assert full.get("/items").echo["path"] == "/pre/items"

    # methods
    assert full.req("POST", "/m", body=b"x").echo["path"] == "/base"
    assert full.get("/m").status == 404
    assert full.req("PUT", "/m", body=b"x").status == 404

    # headers: the route with a header condition wins when the header matches (any value)
    assert full.get("/hv", {"X-Version": "2"}).echo["path"] == "/hi/hv"
    assert full.get("/hv", {"X-Version": "3"}).echo["path"] == "/hi/hv"
    assert full.get("/hv", {"X-Version": "1"}).echo["path"] == "/lo/hv"
    assert full.get("/hv").echo["path"] == "/lo/hv"

    assert full.get("/nothing-here").status == 404


# ------------------------------------------------------------------------ upstreams, targets

def test_round_robin_honours_target_weights(full):
    ports = [full.get(f"/rr/{i}").echo["port"] for i in range(40)]
    n_b, n_c = ports.count(full.b.port), ports.count(full.c.port)
    assert n_b + n_c == 40
    assert 24 <= n_b <= 36, (n_b, n_c)  # weights 300:100 -> 30:10
    assert all(r.path.startswith("/rr/") for r in _proxied(full.b, "/rr"))  # service path


def test_retries_and_read_timeout(full):
    # retry.up = a refusing target + A: with retries 3 every request ends on A ...
    for i in range(6):
        assert full.get(f"/retry/{i}").echo["path"] == f"/retried/{i}"
    # ... with retries 0 (same upstream, round-robin) every other one is a 502
    got = [full.get(f"/noretry/{i}") for i in range(6)]
    assert sorted(r.status for r in got) == [200] * 3 + [502] * 3
    assert {r.json()["message"] for r in got if r.status == 502} == \
        {"An invalid response was received from the upstream server"}
    # read_timeout 600 ms
    assert full.get("/slow/fast", {"X-Echo": "delay=0.1"}).status == 200
    t0 = time.monotonic()
    r = full.get("/slow/late", {"X-Echo": "delay=1.5"})
    elapsed = time.monotonic() - t0
    assert r.status == 504 and r.json()["message"] == "The upstream server is timing out"
    assert 0.5 < elapsed < 1.45, elapsed


def test_consistent_hashing_is_sticky_per_header_value(full):
    first = full.get("/hash", {"X-User-Id": "user-1"}).echo
    assert first["h"]["host"] == "hash.example"  # the upstream's host_header
    sticky = {full.get("/hash", {"X-User-Id": "user-1"}).echo["port"] for _ in range(10)}
    assert sticky == {first["port"]}
    spread = {full.get("/hash", {"X-User-Id": f"u-{i}"}).echo["port"] for i in range(30)}
    assert spread == {full.b.port, full.c.port}  # both targets (top-level ones) are used
    assert full.get("/hash", {"X-User-Id": "user-1"}).echo["port"] == first["port"]


def test_least_connections_and_active_health_checks(full):
    b, c = full.b, full.c
    # a slow request holds one target busy: the following ones go to the idle target
    slow: list[Resp] = []
    t = threading.Thread(target=lambda: slow.append(
        full.get("/lc/slow", {"X-Echo": "delay=1.5"})))
    t.start()
    try:
        busy = wait_until(lambda: next((u for u in (b, c) if _proxied(u, "/lc/slow")), None),
                          timeout=5)
        idle = c if busy is b else b
        ports = {full.get(f"/lc/quick{i}").echo["port"] for i in range(4)}
        assert ports == {idle.port}, (full.name_of(busy.port), ports)
    finally:
        t.join(10)
    assert slow and slow[0].echo["port"] == busy.port

    # active checks probe GET /health on every target of lc.up
    wait_until(lambda: _proxied(b, "/health") and _proxied(c, "/health"), timeout=5)
    health = full.admin("GET", "/upstreams/lc.up/health").json()["data"]
    assert {h["target"]: h["health"] for h in health} == {
        f"127.0.0.1:{b.port}": "HEALTHY", f"127.0.0.1:{c.port}": "HEALTHY"}

    # C's probe fails (http_failures: 1) -> C leaves, traffic goes to B only
    c.on("/health", Behaviour(status=500))
    c_target = f"127.0.0.1:{c.port}"

    def c_health() -> str:
        data = full.admin("GET", "/upstreams/lc.up/health").json()["data"]
        return {h["target"]: h["health"] for h in data}[c_target]

    wait_until(lambda: c_health() == "UNHEALTHY", timeout=6)
    assert {full.get(f"/lc/after{i}").echo["port"] for i in range(6)} == {b.port}
    assert not _proxied(c, "/lc/after")
    # C's probes succeed again (successes: 1) -> C rejoins
    c.on("/health", Behaviour())
    wait_until(lambda: c_health() == "HEALTHY", timeout=6)
    assert c.port in {full.get(f"/lc/back{i}").echo["port"] for i in range(6)}


# ----------------------------------------------------------------------- auth and consumers

def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + b64encode(f"{user}:{password}".encode()).decode()}


def _jwt(secret: str = JWT_SECRET, iss: str = "alice-iss", exp_in: float = 60) -> dict[str, str]:
    token = pyjwt.encode({"iss": iss, "exp": int(time.time() + exp_in)}, secret, algorithm="HS256")
    return {"Authorization": f"Bearer {token}"}


def test_key_auth_acl_and_consumer_scoped_plugin(full):
    assert full.get("/secure/open").status == 401
    assert full.get("/secure/open", {"apikey": "nope"}).status == 401
    e = full.get("/secure/open", {"apikey": "alice-key"}).echo
    assert e["path"] == "/secure"
    assert (e["h"]["x-consumer-username"], e["h"]["x-consumer-custom-id"]) == ("alice", ALICE_ID)
    assert "apikey" not in e["h"]  # hide_credentials
    assert e["h"]["x-consumer-scope"] == "alice"  # alice's own request-transformer
    # bob: credential declared top-level, referencing him by name; no alice-only plugin
    e = full.get("/secure/open", {"apikey": "bob-key"}).echo
    assert (e["h"]["x-consumer-username"], e["h"]["x-consumer-custom-id"]) == ("bob", "bob-42")
    assert "x-consumer-scope" not in e["h"]

    # acl allow [admins]: alice (nested acl) in, bob (top-level acl "guests") out
    assert full.get("/secure/admin").status == 401
    e = full.get("/secure/admin", {"apikey": "alice-key"}).echo
    assert "admins" in e["h"]["x-consumer-groups"]
    full.a.clear()
    r = full.get("/secure/admin", {"apikey": "bob-key"})
    assert r.status == 403, r.body
    assert not full.a.requests  # refused at the gateway


def test_rate_limiting_per_consumer(full):
    # fixed minute windows: don't straddle a minute boundary
    left = 60 - time.time() % 60
    if left < 4:
        time.sleep(left + 0.2)
    alice = {"apikey": "alice-key"}
    got = [full.get("/secure/limit", alice) for _ in range(4)]
    assert [r.status for r in got] == [200, 200, 200, 429], [r.body for r in got]
    assert got[0].headers["x-ratelimit-limit-minute"] == "3"
    assert got[2].headers["x-ratelimit-remaining-minute"] == "0"
    assert got[3].json()["message"] == "API rate limit exceeded"
    # limit_by consumer: bob has his own counter
    assert full.get("/secure/limit", {"apikey": "bob-key"}).status == 200
    # the global limit (1/s) is disabled: no limit headers, no 429 elsewhere
    burst = [full.get("/strip/x") for _ in range(5)]
    assert [r.status for r in burst] == [200] * 5
    assert not any(k.startswith("x-ratelimit") for r in burst for k in r.headers)


def test_basic_auth_and_jwt(full):
    r = full.get("/basic")
    assert r.status == 401 and r.headers["www-authenticate"].startswith("Basic")
    assert full.get("/basic", _basic("alice", "wrong")).status == 401
    e = full.get("/basic", _basic("alice", "open-sesame")).echo
    assert e["h"]["x-consumer-username"] == "alice"
    assert "authorization" not in e["h"]  # hide_credentials

    assert full.get("/jwt").status == 401
    e = full.get("/jwt", _jwt()).echo
    assert e["h"]["x-consumer-username"] == "alice"
    assert full.get("/jwt", _jwt(secret="another-secret-0123456789abcdef0")).status == 401
    assert full.get("/jwt", _jwt(exp_in=-120)).status == 401  # claims_to_verify: [exp]
    assert full.get("/jwt", _jwt(iss="unknown-iss")).status == 401


# ------------------------------------------------------------------------------ other plugins

def test_cors(full):
    pre = full.req("OPTIONS", "/cors", {"Origin": "http://app.test",
                                        "Access-Control-Request-Method": "POST",
                                        "Access-Control-Request-Headers": "x-custom"})
    assert pre.status == 200, pre.body
    h = pre.headers
    assert h["access-control-allow-origin"] == "http://app.test"
    assert h["access-control-allow-credentials"] == "true"
    assert h["access-control-max-age"] == "600"
    assert set(h["access-control-allow-methods"].split(",")) == {"GET", "POST"}
    assert h["access-control-allow-headers"] == "x-custom"
    assert not _proxied(full.a, "/plug")  # the gateway answered the preflight itself
    r = full.get("/cors", {"Origin": "http://app.test"})
    assert r.status == 200
    assert r.headers["access-control-allow-origin"] == "http://app.test"
    assert r.headers["access-control-expose-headers"] == "x-echo-conn"
    r = full.get("/cors", {"Origin": "http://evil.test"})
    assert r.headers.get("access-control-allow-origin") != "http://evil.test"


def test_transformers(full):
    e = full.get("/reqx?q=1", {"X-Remove-Me": "1", "X-Old": "v", "X-Keep": "k"}).echo
    assert (e["path"], e["h"]["x-new"], e["h"]["x-added"], e["h"]["x-keep"]) == \
        ("/plug", "v", "yes", "k")
    assert "x-old" not in e["h"] and "x-remove-me" not in e["h"]
    assert sorted(e["query"].split("&")) == ["added=1", "q=1"]
    assert e["h"]["x-literal"] == "${NOT_A_VAR}"  # `$${` in the file

    r = full.get("/respx")
    assert r.status == 200
    assert r.headers["x-resp-added"] == "1" and "x-echo-conn" not in r.headers
    body = r.json()
    assert body["extra"] == "added" and body["path"] == "/plug"
    # service-scope response-transformer: prio-hi's routes only
    assert full.get("/items/7").headers["x-svc"] == "prio-hi"
    assert full.get("/hv", {"X-Version": "2"}).headers["x-svc"] == "prio-hi"
    assert "x-svc" not in full.get("/items/abc").headers


def test_ip_restriction_bot_detection_and_size_limit(full):
    r = full.get("/ip/denied")
    assert r.status == 403 and r.json()["message"] == "IP address not allowed: 127.0.0.1"
    assert full.get("/ip/allowed").status == 200
    assert not any(q.target.startswith("/plug") and q.header("x-forwarded-path") == "/ip/denied"
                   for q in full.a.requests)

    assert full.get("/bots", {"User-Agent": "curl/8.5.0"}).status == 403  # config.deny
    google = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
    assert full.get("/bots", {"User-Agent": google}).status == 403  # the default bot list
    ff = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"
    assert full.get("/bots", {"User-Agent": ff}).status == 200
    assert full.get("/bots").status == 200
    assert full.get("/strip/x", {"User-Agent": "curl/8.5.0"}).status == 200  # route scope only

    r = full.req("POST", "/upload", {"Content-Type": "application/octet-stream"}, b"x" * 2048)
    assert r.status == 413, r.body
    e = full.req("POST", "/upload", {"Content-Type": "application/octet-stream"},
                 b"x" * 1000).echo
    assert e["body_len"] == 1000


def test_correlation_id_and_prometheus(full):
    r = full.get("/strip/x")
    cid = r.headers["x-corr-id"]
    assert UUID_RE.fullmatch(cid)
    assert r.echo["h"]["x-corr-id"] == cid  # the same id upstream and downstream
    other = full.get("/strip/x").headers["x-corr-id"]
    assert other != cid
    given = str(uuid.uuid4())
    r = full.get("/strip/x", {"X-Corr-Id": given})
    assert r.headers["x-corr-id"] == given and r.echo["h"]["x-corr-id"] == given
    # gateway answers carry it too
    assert UUID_RE.fullmatch(full.get("/ip/denied").headers["x-corr-id"])

    full.get("/secure/open", {"apikey": "alice-key"})
    m = full.admin("GET", "/metrics")
    assert m.status == 200
    text = m.body.decode()
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    assert lines and all(ln.startswith("kong_") for ln in lines)

    def value(metric: str, **labels: str) -> float:
        for ln in lines:
            name, _, rest = ln.partition("{")
            if name != metric:
                continue
            got = dict(re.findall(r'(\w+)="([^"]*)"', rest))
            if all(got.get(k) == v for k, v in labels.items()):
                return float(ln.rsplit(" ", 1)[1])
        raise AssertionError(f"{metric} {labels} not in /metrics:\n{text}")

    assert value("kong_http_requests_total", service="paths", route="strip", code="200") >= 3
    assert value("kong_http_requests_total", service="plug", route="ip-denied",
                 code="403") >= 1
    assert value("kong_http_requests_total", service="secure", route="secure-open",
                 code="200", consumer="alice") >= 1
    assert value("kong_upstream_target_health", upstream="lc.up",
                 target=f"127.0.0.1:{full.b.port}", state="healthy") == 1
    assert "kong_request_latency_ms_bucket" in text and "kong_bandwidth_bytes" in text
