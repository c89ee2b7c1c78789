"""ip-restriction, bot-detection, request-size-limiting, cors, canary, correlation-id."""

from __future__ import annotations

import re
from collections import Counter
from types import SimpleNamespace
from typing import Any

import pytest

from fastgw.plugins import PluginEnv

from plugin_helpers import NOW, Harness, body_json, consumer, cred, make_ctx, resolve, upstream_headers


def one(name: str, env: PluginEnv | None = None, **conf: Any) -> Harness:
    return Harness([{"name": name, "config": conf}], env)


# ------------------------------------------------------------ ip-restriction
@pytest.mark.parametrize(
    "conf,ip,blocked",
    [
        ({"allow": ["10.0.0.0/8"]}, "10.2.3.4", False),
        ({"allow": ["10.0.0.0/8"]}, "11.0.0.1", True),
        ({"allow": ["10.0.0.1"]}, "10.0.0.1", False),
        ({"deny": ["192.168.0.0/16", "1.2.3.4"]}, "1.2.3.4", True),
        ({"deny": ["192.168.0.0/16"]}, "192.168.9.9", True),
        ({"deny": ["192.168.0.0/16"]}, "8.8.8.8", False),
        ({"deny": ["10.0.0.5"], "allow": ["10.0.0.0/8"]}, "10.0.0.5", True),  # deny checked first
        ({"allow": ["2001:db8::/32"]}, "2001:db8::1", False),
        ({"allow": ["2001:db8::/32"]}, "2001:db9::1", True),
        ({"deny": ["::1"]}, "::1", True),
        ({"allow": ["127.0.0.1"]}, "::ffff:127.0.0.1", False),  # v4-mapped v6 peer
        ({"allow": ["10.0.0.0/8"]}, "unix:socket", True),
    ],
)
def test_ip_restriction(conf: dict[str, Any], ip: str, blocked: bool) -> None:
    h = one("ip-restriction", **conf)
    for _ in range(2):  # second time from the verdict cache
        _, resp = h.access(client=ip)
        if blocked:
            assert resp.status == 403 and body_json(resp) == {"message": f"IP address not allowed: {ip}"}
        else:
            assert resp is None


def test_ip_restriction_custom_status_message_and_xff() -> None:
    env = PluginEnv(trusted_ips=["10.0.0.0/8"])
    h = one("ip-restriction", env, deny=["6.6.6.6"], status=401, message="go away")
    _, resp = h.access(client="10.0.0.1", headers=[("X-Forwarded-For", "6.6.6.6")])
    assert resp.status == 401 and body_json(resp) == {"message": "go away"}
    _, resp = h.access(client="10.0.0.1", headers=[("X-Forwarded-For", "7.7.7.7")])
    assert resp is None
    # an untrusted peer cannot spoof its address
    _, resp = one("ip-restriction", env, allow=["7.7.7.7"]).access(client="6.6.6.6", headers=[("X-Forwarded-For", "7.7.7.7")])
    assert resp.status == 403


# ------------------------------------------------------------ bot-detection
@pytest.mark.parametrize(
    "ua,blocked",
    [
        ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", True),
        ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", True),
        ("facebookexternalhit/1.1", True),
        ("Twitterbot/1.0", True),
        ("Python-urllib/3.11", True),
        ("Apache-HttpClient/4.5.13 (Java/17)", True),
        ("Scrapy/2.11 (+https://scrapy.org)", True),
        ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36", False),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148", False),
        ("curl/8.4.0", False),
    ],
)
def test_bot_detection_default_rules(ua: str, blocked: bool) -> None:
    _, resp = one("bot-detection").access(headers=[("User-Agent", ua)])
    if blocked:
        assert resp.status == 403 and body_json(resp) == {"message": "Forbidden"}
    else:
        assert resp is None


def test_bot_detection_allow_deny_and_no_agent() -> None:
    h = one("bot-detection", allow=["Googlebot"], deny=["^curl/"])
    assert h.access(headers=[("User-Agent", "Googlebot/2.1")])[1] is None  # allow beats the bot list
    assert h.access(headers=[("User-Agent", "curl/8.0")])[1].status == 403
    assert h.access()[1] is None
    _, resp = h.access(headers=[("User-Agent", "a"), ("User-Agent", "b")])
    assert resp.status == 400


def test_bot_detection_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from fastgw.plugins import bot_detection

    monkeypatch.setattr(bot_detection, "VERDICT_CACHE_SIZE", 2)
    h = one("bot-detection")
    for i in range(5):
        h.access(headers=[("User-Agent", f"agent-{i}")])
    assert len(h.chain().plugins[0]._verdicts) == 2


# ------------------------------------------------------- request-size-limiting
def test_request_size_limiting_content_length_and_units() -> None:
    h = one("request-size-limiting", allowed_payload_size=1, size_unit="kilobytes")
    assert h.access(method="POST", headers=[("Content-Length", "1024")])[1] is None
    _, resp = h.access(method="POST", headers=[("Content-Length", "1025")])
    assert resp.status == 413 and body_json(resp) == {"message": "Request size limit exceeded"}
    h = one("request-size-limiting")  # 128 megabytes
    assert h.access(method="POST", headers=[("Content-Length", str(128 * 1024 * 1024))])[1] is None
    assert h.access(method="POST", headers=[("Content-Length", str(128 * 1024 * 1024 + 1))])[1].status == 413
    h = one("request-size-limiting", allowed_payload_size=10, size_unit="bytes")
    assert h.access(method="POST", headers=[("Content-Length", "11")])[1].status == 413


def test_request_size_limiting_chunked_hands_limit_to_proxy() -> None:
    h = one("request-size-limiting", allowed_payload_size=2, size_unit="kilobytes")
    ctx, resp = h.access(method="POST", headers=[("Transfer-Encoding", "chunked")])
    assert resp is None and ctx.max_body_size == 2048
    h = one("request-size-limiting", require_content_length=True)
    # Kong exempts chunked bodies from require_content_length (counted while streaming)
    ctx, resp = h.access(method="POST", headers=[("Transfer-Encoding", "chunked")])
    assert resp is None and ctx.max_body_size == 128 * 1024 * 1024
    _, resp = h.access(method="POST")
    assert resp.status == 411 and body_json(resp) == {"message": "A valid Content-Length header is required"}


# ------------------------------------------------------------ cors
def preflight(h: Harness, origin: str = "http://a.example", **kw: Any) -> Any:
    headers = [("Origin", origin), ("Access-Control-Request-Method", "POST")] + kw.pop("extra", [])
    return h.access(method="OPTIONS", headers=headers, **kw)


def test_cors_preflight_defaults() -> None:
    h = one("cors")
    ctx, resp = preflight(h, extra=[("Access-Control-Request-Headers", "X-Foo")])
    assert resp.status == 200 and resp.body == b""
    assert resp.get_header("Access-Control-Allow-Origin") == "*"
    assert resp.get_header("Access-Control-Allow-Methods") == "GET,HEAD,PUT,PATCH,POST,DELETE,OPTIONS,TRACE,CONNECT"
    assert resp.get_header("Access-Control-Allow-Headers") == "X-Foo"
    assert resp.get_header("Access-Control-Max-Age") is None
    assert resp.get_header("Access-Control-Allow-Credentials") is None
    # after the exit, header_filter must not add headers again
    final = resolve(h.chain().run_exit(ctx, resp))
    assert [n for n, _ in final.headers].count(b"Access-Control-Allow-Origin") == 1


def test_cors_preflight_configured() -> None:
    h = one("cors", origins=["http://a.example", "https://b.example:8443"], methods=["GET", "POST"],
            headers=["X-A", "X-B"], max_age=3600, credentials=True, private_network=True)
    _, resp = preflight(h, "https://b.example:8443", extra=[("Access-Control-Request-Private-Network", "true")])
    assert resp.get_header("Access-Control-Allow-Origin") == "https://b.example:8443"
    assert resp.get_header("Vary") == "Origin"
    assert resp.get_header("Access-Control-Allow-Methods") == "GET,POST"
    assert resp.get_header("Access-Control-Allow-Headers") == "X-A,X-B"
    assert resp.get_header("Access-Control-Max-Age") == "3600"
    assert resp.get_header("Access-Control-Allow-Credentials") == "true"
    assert resp.get_header("Access-Control-Allow-Private-Network") == "true"
    _, resp = preflight(h, "http://evil.example")
    assert resp.status == 200 and resp.get_header("Access-Control-Allow-Origin") is None


def test_cors_origin_normalisation_and_regex() -> None:
    h = one("cors", origins=["http://a.example", r"https://.*\.good\.example", r"(.*\.)?host\.example"])
    for origin, allowed in [
        ("http://a.example:80", "http://a.example"),  # default port dropped
        ("https://x.good.example", "https://x.good.example"),
        ("https://x.good.example.evil", None),  # regexes are anchored
        ("http://api.host.example:9000", "http://api.host.example:9000"),  # no ':' in entry -> by host
        ("http://b.example", None),
    ]:
        _, resp = preflight(h, origin)
        assert resp.get_header("Access-Control-Allow-Origin") == allowed, origin


def test_cors_non_preflight_in_header_filter() -> None:
    h = one("cors", origins=["http://a.example", "http://c.example"], exposed_headers=["X-E"], credentials=True)
    ctx, resp = h.access(headers=[("Origin", "http://a.example")])
    assert resp is None
    assert h.respond(ctx, 200, [("Vary", "Accept-Encoding")]) is None
    r = ctx.response
    assert r.get_header("Access-Control-Allow-Origin") == "http://a.example"
    assert r.get_header_all("Vary") == ["Accept-Encoding", "Origin"]
    assert r.get_header("Access-Control-Expose-Headers") == "X-E"
    assert r.get_header("Access-Control-Allow-Credentials") == "true"


def test_cors_wildcard_with_credentials_echoes_origin_and_preflight_continue() -> None:
    h = one("cors", credentials=True)
    _, resp = preflight(h, "http://z.example")
    assert resp.get_header("Access-Control-Allow-Origin") == "http://z.example"
    assert resp.get_header("Access-Control-Allow-Credentials") == "true"
    h = one("cors", preflight_continue=True)
    ctx, resp = preflight(h)
    assert resp is None  # proxied upstream
    h.respond(ctx, 204)
    assert ctx.response.get_header("Access-Control-Allow-Origin") is None
    # OPTIONS without Access-Control-Request-Method is not a preflight
    _, resp = one("cors").access(method="OPTIONS", headers=[("Origin", "http://a")])
    assert resp is None


def test_cors_allow_origin_absent() -> None:
    h = one("cors")
    ctx, _ = h.access()
    h.respond(ctx)
    assert ctx.response.get_header("Access-Control-Allow-Origin") == "*"
    h = one("cors", allow_origin_absent=False)
    ctx, _ = h.access()
    h.respond(ctx)
    assert ctx.response.get_header("Access-Control-Allow-Origin") is None


def test_cors_headers_added_to_auth_failures_via_run_exit() -> None:
    h = Harness([{"name": "cors"}, {"name": "key-auth"}])
    ctx, resp = h.access(headers=[("Origin", "http://a.example")])
    assert resp.status == 401
    final = resolve(h.chain().run_exit(ctx, resp))
    assert final.get_header("Access-Control-Allow-Origin") == "*"
    assert final.get_header("WWW-Authenticate") == 'Key'


# ------------------------------------------------------------ canary
UPS = PluginEnv(upstreams=[SimpleNamespace(name="v1"), SimpleNamespace(name="v2")])


def test_canary_percentage_random() -> None:
    h = one("canary", UPS, upstream="v2", percentage=30)
    n = 4000
    hits = sum(1 for _ in range(n) if h.access()[0].upstream_override == "v2")
    assert 0.25 * n < hits < 0.35 * n
    assert all(h2 is None for h2 in (one("canary", UPS, upstream="v2").access()[0].upstream_override,))
    h = one("canary", UPS, upstream="v2", percentage=100)
    assert all(h.access()[0].upstream_override == "v2" for _ in range(50))


def test_canary_header_forces() -> None:
    h = one("canary", UPS, upstream="v2", header="X-Canary", header_value="always")
    assert h.access(headers=[("X-Canary", "always")])[0].upstream_override == "v2"
    assert h.access(headers=[("X-Canary", "nope")])[0].upstream_override is None
    assert h.access()[0].upstream_override is None
    h = one("canary", UPS, upstream="v2", header="X-Canary")
    assert h.access(headers=[("X-Canary", "")])[0].upstream_override == "v2"


def test_canary_ip_hash_is_stable_and_monotonic() -> None:
    ips = [f"10.1.{i // 250}.{i % 250}" for i in range(2000)]
    h20 = one("canary", UPS, upstream="v2", percentage=20, hash="ip")
    h40 = one("canary", UPS, upstream="v2", percentage=40, hash="ip")
    in20 = {ip for ip in ips if h20.access(client=ip)[0].upstream_override == "v2"}
    assert in20 == {ip for ip in ips if h20.access(client=ip)[0].upstream_override == "v2"}  # stable
    in40 = {ip for ip in ips if h40.access(client=ip)[0].upstream_override == "v2"}
    assert in20 < in40  # raising the percentage only adds clients
    assert 0.15 * len(ips) < len(in20) < 0.25 * len(ips)


def test_canary_consumer_hash_falls_back_to_ip() -> None:
    alice = consumer("c-alice", "alice")
    env = PluginEnv(consumers=[alice], upstreams=UPS.upstreams,
                    credentials={"key-auth": [(alice, cred(id="k", key="ka"))]})
    h = Harness([{"name": "key-auth", "config": {"anonymous": None}},
                 {"name": "canary", "config": {"upstream": "v2", "percentage": 50, "hash": "consumer"}}], env)
    results = {h.access(headers=[("apikey", "ka")], client=f"1.1.1.{i}")[0].upstream_override for i in range(30)}
    assert len(results) == 1  # same consumer, any IP -> same side
    plugin = h.chain().plugins[-1]
    ctx = make_ctx(client="9.9.9.9")
    assert plugin.bucket(ctx) == plugin.bucket(make_ctx(client="9.9.9.9"))


# ------------------------------------------------------------ correlation-id
def test_correlation_id_generators() -> None:
    ctx, _ = one("correlation-id").access()  # uuid#counter by default
    v1 = upstream_headers(ctx)["kong-request-id"][0]
    ctx, _ = one("correlation-id").access()
    v2 = upstream_headers(ctx)["kong-request-id"][0]
    u1, n1 = v1.split("#")
    u2, n2 = v2.split("#")
    assert u1 == u2 and int(n2) == int(n1) + 1
    assert re.fullmatch(r"[0-9a-f-]{36}", u1)
    ctx, _ = one("correlation-id", generator="uuid", header_name="X-Req").access()
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", upstream_headers(ctx)["x-req"][0])
    env = PluginEnv(settings={"server_addr": "127.0.0.1", "server_port": 8000})
    ctx, _ = one("correlation-id", env, generator="tracker").access(now=NOW)
    pattern = r"127\.0\.0\.1-8000-\d+-\d+-1-" + re.escape(f"{NOW:.3f}")
    assert re.fullmatch(pattern, upstream_headers(ctx)["kong-request-id"][0])
    assert ctx.log_extra["correlation_id"] == upstream_headers(ctx)["kong-request-id"][0]


def test_correlation_id_keeps_incoming_and_echoes() -> None:
    h = one("correlation-id", echo_downstream=True)
    ctx, _ = h.access(headers=[("Kong-Request-ID", "given-1")])
    assert ctx.request.header_ops is None  # kept as is
    h.respond(ctx)
    assert ctx.response.get_header("Kong-Request-ID") == "given-1"
    ctx, _ = h.access()
    h.respond(ctx)
    assert ctx.response.get_header("kong-request-id") == upstream_headers(ctx)["kong-request-id"][0]
    ctx, _ = one("correlation-id").access()
    one("correlation-id").respond(ctx)
    assert ctx.response.get_header("kong-request-id") is None


def test_correlation_id_unique_over_many() -> None:
    h = one("correlation-id")
    ids = Counter(upstream_headers(h.access()[0])["kong-request-id"][0] for _ in range(500))
    assert max(ids.values()) == 1
