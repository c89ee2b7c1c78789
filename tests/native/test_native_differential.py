"""The compiled plugin chain (fastgw._core.native) answers exactly like the Python plugins.

Each test runs one request script twice through a real Gateway on 127.0.0.1 in front of a real
upstream (EchoUpstream): once with the native chain, once with FASTGW_NATIVE_PLUGINS=0, each
with fresh shared tables and the same FakeClock. Compared: statuses, response heads (names,
values, order; Date dropped), bodies, the upstream's raw request heads, the rate-limit counters
in the shared table and the prometheus series. Fails when any of them differs, or when a route
did not take the path the test expects (native when supported, Python otherwise).
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _diff import run_script  # noqa: E402
from servers import Behaviour  # noqa: E402

CONSUMERS = [
    {"username": "alice", "custom_id": "cust-a", "id": "2f6f2a4e-0000-4000-8000-00000000000a",
     "keyauth_credentials": [{"key": "k-alice", "id": "3f6f2a4e-0000-4000-8000-0000000000a1"}]},
    {"username": "bob", "keyauth_credentials": [{"key": "k-bob"}, {"key": "k-b\u00f6b2"}]},
    # only reachable through the query (UTF-8 percent-encoded: not a latin-1 header value)
    {"username": "euro", "keyauth_credentials": [{"key": "k-\u20ac"}]},
    # ctx.authenticate cannot latin-1 encode this username: the Python plugin fails (500)
    {"username": "\u0141ukasz", "keyauth_credentials": [{"key": "k-lukasz"}]},
]

ALL_METRICS = {"status_code_metrics": True, "latency_metrics": True, "bandwidth_metrics": True,
               "per_consumer": True}


def config(port: int) -> dict:
    svc_plugins = [
        {"name": "key-auth", "config": {"key_names": ["apikey", "x-key"]}},
        {"name": "rate-limiting", "config": {"minute": 3, "hour": 5, "policy": "local"}},
        {"name": "prometheus", "config": ALL_METRICS},
    ]
    return {
        "_format_version": "3.0",
        "consumers": CONSUMERS,
        "services": [{
            "name": "svc", "url": f"http://127.0.0.1:{port}", "plugins": svc_plugins,
            "routes": [
                # the service's three plugins: two windows (the general path)
                {"name": "multi", "paths": ["/multi"]},
                # one fixed window: the plugin's fast path (its own header spelling)
                {"name": "one", "paths": ["/one"], "plugins": [
                    {"name": "rate-limiting", "config": {"second": 2, "limit_by": "consumer"}}]},
                # query-only keys, no preflight auth, no realm, limit by credential, own error
                {"name": "query", "paths": ["/query"], "plugins": [
                    {"name": "key-auth", "config": {"key_in_header": False, "run_on_preflight": False,
                                                    "realm": None}},
                    {"name": "rate-limiting", "config": {"minute": 2, "limit_by": "credential",
                                                         "error_code": 418,
                                                         "error_message": "slow down"}}]},
                # not supported natively: the Python chain, in both runs
                {"name": "hidden", "paths": ["/hidden"], "plugins": [
                    {"name": "key-auth", "config": {"hide_credentials": True}}]},
            ]},
            # key-auth + prometheus only: no header_filter in the chain
            {"name": "svc-b", "url": f"http://127.0.0.1:{port}",
             "plugins": [{"name": "key-auth"}, {"name": "prometheus", "config": ALL_METRICS}],
             "routes": [{"name": "noratelimit", "paths": ["/norl"]}]},
        ],
    }


def config_rl_only(port: int) -> dict:
    return {
        "_format_version": "3.0",
        "services": [{
            "name": "svc2", "url": f"http://127.0.0.1:{port}",
            "routes": [
                # calendar window (month) next to a fixed one; by client IP
                {"name": "ip", "paths": ["/ip"], "plugins": [
                    {"name": "rate-limiting", "config": {"minute": 2, "month": 3, "limit_by": "ip"}},
                    {"name": "prometheus", "config": {"status_code_metrics": True}}]},
                # by service, headers hidden
                {"name": "svc", "paths": ["/svc"], "plugins": [
                    {"name": "rate-limiting", "config": {"second": 1, "limit_by": "service",
                                                         "hide_client_headers": True}},
                    {"name": "prometheus", "config": {"bandwidth_metrics": True}}]},
                # a consumer limit without an auth plugin counts by IP
                {"name": "anon", "paths": ["/anon"], "plugins": [
                    {"name": "rate-limiting", "config": {"hour": 1, "limit_by": "consumer"}}]},
            ]}],
    }


def req(path: str, *headers: str, method: str = "GET") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: gw", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def get(label_path: str, *headers: str, method: str = "GET") -> tuple[str, bytes]:
    return (label_path, req(label_path, *headers, method=method))


SCRIPT = [
    get("/multi"),                                          # 401 no key
    get("/multi", "apikey: nope"),                          # 401 invalid
    get("/multi", "apikey: k-alice", "ApiKey: k-bob"),      # 401 duplicate (case-insensitive)
    get("/multi", "apikey:"),                               # 401: an empty key ends the search
    get("/multi?apikey=a&apikey=b"),                        # 401 duplicate in the query
    get("/multi?api%5Fkey=k-alice"),                        # 401: "api_key" is not a key name
    # spoofed consumer headers are replaced; the key stays (hide_credentials false)
    get("/multi", "X-Consumer-ID: evil", "apikey: k-alice", "x-credential-identifier: x",
        "X-Anonymous-Consumer: true", "X-Other: 1"),
    get("/multi?apikey=k-alice&x=1"),                       # key from the query
    get("/multi", "x-key: k-alice"),                        # the second key name
    get("/multi", "apikey: k-alice"),                       # 429: minute limit 3 reached
    get("/multi", "apikey: k-bob"),                         # another consumer still counts
    get("/multi?apikey=k-%E2%82%AC"),                       # a non-latin-1 key via the query
    get("/multi", "apikey: k-b\u00f6b2"),                   # latin-1 key bytes in a header
    get("/multi", "apikey: k-lukasz"),                      # authenticate fails: 500
    get("/multi", "apikey: k-alice", method="HEAD"),        # still 429, HEAD: no body
    ("advance", 60.0),                                      # next minute: the hour limit (5)
    get("/multi", "apikey: k-alice"),
    get("/multi", "apikey: k-alice"),
    get("/multi", "apikey: k-alice"),                       # 429 by the hour window
    get("/one", "apikey: k-alice"),
    get("/one", "apikey: k-alice"),
    get("/one", "apikey: k-alice"),                         # 429 (fast path denial)
    ("advance", 1.0),
    get("/one", "apikey: k-alice", method="POST"),
    get("/query", "apikey: k-alice"),                       # headers are not looked at: 401
    get("/query?apikey=k-bob"),
    get("/query?apikey=k-bob", method="OPTIONS"),           # preflight: no auth, limit by IP
    get("/query?apikey=k-bob"),
    get("/query?apikey=k-bob"),                             # 418 slow down
    get("/norl"),                                           # 401 without a header_filter
    get("/norl", "apikey: k-bob"),
    get("/hidden", "apikey: k-bob"),                        # Python path in both runs
    get("/nowhere", "apikey: k-bob"),                       # 404 (no route)
]

SCRIPT_RL = [
    get("/ip"), get("/ip"), get("/ip"),                    # 429 by the minute
    ("advance", 61.0),
    get("/ip"), get("/ip"),                                # 429 by the month (3)
    get("/svc"), get("/svc"),                              # 429, no rate-limit headers
    get("/anon"), get("/anon"),
]


@pytest.fixture
def echo(echo_factory):
    def make():
        up = echo_factory()
        # a deterministic body, and headers the rate-limiting plugin replaces on the way back
        up.set_default(Behaviour(size=7, headers=(("RateLimit-Limit", "999"),
                                                  ("X-RateLimit-Remaining-Minute", "77"),
                                                  ("X-Upstream", "yes"))))
        return up
    return make


def _compare(fastgw_run, monkeypatch, echo, cfg, script, idents, expect_native):
    native = run_script(fastgw_run, monkeypatch, echo, cfg, script, True, idents)
    python = run_script(fastgw_run, monkeypatch, echo, cfg, script, False, idents)
    assert native.native_routes == expect_native
    assert not any(python.native_routes.values())
    assert len(native.responses) == len([s for s in script if s[0] != "advance"])
    for i, (n, p) in enumerate(zip(native.responses, python.responses)):
        assert n == p, f"response {i} differs"
    assert native.upstream == python.upstream
    assert native.counters == python.counters
    assert native.metrics == python.metrics
    return native


def test_auth_ratelimit_prometheus_identical(fastgw_run, monkeypatch, echo):
    idents = ["2f6f2a4e-0000-4000-8000-00000000000a", "127.0.0.1"]
    rec = _compare(fastgw_run, monkeypatch, echo, config, SCRIPT, idents,
                   {"multi": True, "one": True, "query": True, "noratelimit": True,
                    "hidden": False})
    statuses = [s for s, _, _ in rec.responses]
    # the script reaches every outcome it was written for (a broken script cannot pass)
    assert statuses == [401, 401, 401, 401, 401, 401, 200, 200, 200, 429, 200, 200, 200, 500,
                        429, 200, 200, 429, 200, 200, 429, 200, 401, 200, 200, 200, 418, 401,
                        200, 200, 404]
    # the upstream saw ctx.authenticate's lines instead of the spoofed ones
    first = rec.upstream[0]
    assert b"X-Consumer-ID: evil" not in first and b"x-credential-identifier: x\r\n" not in first
    # in Kong's spelling
    assert b"X-Consumer-ID: 2f6f2a4e-0000-4000-8000-00000000000a\r\n" in first
    assert b"X-Consumer-Username: alice\r\n" in first and b"X-Other: 1\r\n" in first
    # prometheus saw the exits with source "kong" and the consumer label (per_consumer)
    assert any('code="429"' in ln and 'source="kong"' in ln and 'consumer="alice"' in ln
               for ln in rec.metrics)
    # a 401 on a chain without header_filter is recorded with its code, source "kong"
    assert any('route="noratelimit"' in ln and 'code="401"' in ln and 'source="kong"' in ln
               for ln in rec.metrics)
    assert not any('code="0"' in ln for ln in rec.metrics)


def test_ratelimit_only_identical(fastgw_run, monkeypatch, echo):
    rec = _compare(fastgw_run, monkeypatch, echo, config_rl_only, SCRIPT_RL,
                   ["127.0.0.1"], {"ip": True, "svc": True, "anon": True})
    assert [s for s, _, _ in rec.responses] == [200, 200, 429, 200, 429, 200, 429, 200, 429]
    assert rec.counters  # the table was read
