"""The plugin framework: registry, config validation, precedence, ordering, phases, errors."""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Any

import msgspec
import pytest

from fastgw import plugins
from fastgw.plugins import (
    Context,
    ListHeaders,
    Plugin,
    PluginConfigError,
    PluginEnv,
    PluginInstanceError,
    Response,
    apply_header_ops,
    build_chains,
    field_error,
    register,
    validate_config,
)

from plugin_helpers import NOW, Harness, body_json, consumer, make_ctx, resolve, upstream_headers

CALLS: list[str] = []


class _Rec(msgspec.Struct, forbid_unknown_fields=True):
    tag: str = ""
    fail: bool = False
    stop: int = 0


def _recorder(plugin_name: str, priority: int, is_async: bool = False) -> type[Plugin]:
    def access_sync(self: Any, ctx: Context) -> Response | None:
        CALLS.append(f"{plugin_name}:{self.config.tag}")
        if self.config.fail:
            raise RuntimeError("boom")
        if self.config.stop:
            return Response.message(self.config.stop, f"stopped by {plugin_name}")
        return None

    async def access_async(self: Any, ctx: Context) -> Response | None:
        await asyncio.sleep(0)
        return access_sync(self, ctx)

    def rewrite(self: Any, ctx: Context) -> None:
        CALLS.append(f"rewrite:{plugin_name}")

    def header_filter(self: Any, ctx: Context) -> None:
        CALLS.append(f"hf:{plugin_name}")
        ctx.response.set_header(f"x-{plugin_name}", self.config.tag)

    def log(self: Any, ctx: Context) -> None:
        CALLS.append(f"log:{plugin_name}")
        if self.config.fail:
            raise RuntimeError("log boom")

    cls = type(
        f"P_{plugin_name}",
        (Plugin,),
        {
            "name": plugin_name,
            "PRIORITY": priority,
            "Config": _Rec,
            "access": access_async if is_async else access_sync,
            "rewrite": rewrite,
            "header_filter": header_filter,
            "log": log,
        },
    )
    return register(cls)


HIGH = _recorder("t-high", 3000)
MID = _recorder("t-mid", 2000)
LOW = _recorder("t-low", 1000)
ASYNC_MID = _recorder("t-async", 1500, is_async=True)


@pytest.fixture(autouse=True)
def _clear() -> None:
    CALLS.clear()


# ------------------------------------------------------------------ registry
def test_builtins_are_registered_lazily_with_kong_priorities() -> None:
    expected = {
        "correlation-id": 100001, "bot-detection": 2500, "cors": 2000, "jwt": 1450,
        "key-auth": 1250, "basic-auth": 1100, "ip-restriction": 990,
        "request-size-limiting": 951, "acl": 950, "request-transformer": 801,
        "response-transformer": 800, "canary": 20, "opentelemetry": 14, "http-log": 12,
        "file-log": 9,
    }
    for name, prio in expected.items():
        cls = plugins.get(name)
        assert cls is not None and cls.name == name, name
        assert cls.PRIORITY == prio, name
    assert plugins.get("no-such-plugin") is None
    assert set(expected) <= set(plugins.names())


def test_register_rejects_bad_classes() -> None:
    class NoName(Plugin):
        pass

    with pytest.raises(ValueError):
        register(NoName)
    with pytest.raises(TypeError):
        register(int)  # type: ignore[arg-type]


def test_user_plugin_via_register_works_in_chains() -> None:
    @register
    class Hello(Plugin):
        name = "t-hello"
        PRIORITY = 5

        class Config(msgspec.Struct, forbid_unknown_fields=True):
            greeting: str = "hi"

        def access(self, ctx: Context) -> None:
            ctx.request.set_header("x-greeting", self.config.greeting)

    h = Harness([{"name": "t-hello", "config": {"greeting": "hey"}}])
    ctx, resp = h.access()
    assert resp is None
    assert upstream_headers(ctx) == {"x-greeting": ["hey"]}


def test_entry_point_plugins_are_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    from fastgw.plugins import registry

    class FromEP(Plugin):
        name = "t-from-ep"
        PRIORITY = 1

    class EP:
        name = "t-from-ep"

        def load(self) -> type[Plugin]:
            return FromEP

    import importlib.metadata as md

    monkeypatch.setattr(registry, "_entry_points_loaded", False)
    monkeypatch.setattr(md, "entry_points", lambda group: [EP()] if group == "fastgw.plugins" else [])
    assert plugins.get("t-from-ep") is FromEP


# ------------------------------------------------------------ validation
def test_validate_config_applies_defaults() -> None:
    conf = validate_config("key-auth", {})
    assert conf.key_names == ["apikey"] and conf.hide_credentials is False
    assert conf.key_in_header and conf.key_in_query and not conf.key_in_body
    assert validate_config("key-auth", None).run_on_preflight is True


@pytest.mark.parametrize(
    "name,raw,path",
    [
        ("key-auth", {"key_names": "apikey"}, "config.key_names"),
        ("key-auth", {"bogus": 1}, "config.bogus"),
        ("key-auth", {"key_names": []}, "config.key_names"),
        ("key-auth", {"key_names": ["ok", "bad name"]}, "config.key_names[1]"),
        ("jwt", {"claims_to_verify": ["iat"]}, "config.claims_to_verify[0]"),
        ("jwt", {"maximum_expiration": 10}, "config.claims_to_verify"),
        ("ip-restriction", {"allow": ["10.0.0.0/8", "nope"]}, "config.allow[1]"),
        ("request-size-limiting", {"size_unit": "gigabytes"}, "config.size_unit"),
        ("response-transformer", {"add": {"json": ["novalue"]}}, "config.add.json[0]"),
        ("request-transformer", {"add": {"headers": ["x"]}}, "config.add.headers[0]"),
        ("cors", {"origins": ["(unclosed"]}, "config.origins[0]"),
        ("http-log", {"http_endpoint": "nohost"}, "config.http_endpoint"),
        ("canary", {"percentage": 10}, "config.upstream"),
        ("canary", {"upstream": "u", "percentage": 101}, "config.percentage"),
        ("bot-detection", {"deny": ["[a-"]}, "config.deny[0]"),
    ],
)
def test_validate_config_errors_name_the_path(name: str, raw: dict[str, Any], path: str) -> None:
    with pytest.raises(PluginConfigError) as ei:
        validate_config(name, raw)
    paths = [p for p, _ in ei.value.errors]
    assert paths == [path], ei.value.errors


def test_validate_unknown_plugin() -> None:
    with pytest.raises(PluginConfigError) as ei:
        validate_config("nope-plugin", {})
    assert ei.value.errors[0][0] == "name"


def test_field_error_helper_format() -> None:
    assert str(field_error("a.b", "bad")) == "bad - at `$.a.b`"


def test_build_chains_collects_every_error_with_entity_paths() -> None:
    with pytest.raises(PluginInstanceError) as ei:
        build_chains(
            [
                {"name": "key-auth", "config": {"key_names": 3}},
                {"name": "t-low"},
                {"name": "ghost"},
                {"name": "acl", "config": {}},
                {"name": "t-low"},
            ],
            PluginEnv(),
        )
    paths = [p for p, _ in ei.value.errors]
    assert paths == ["plugins[0].config.key_names", "plugins[2].name", "plugins[3].config", "plugins[4]"]


def test_canary_unknown_upstream_is_a_config_error() -> None:
    from types import SimpleNamespace

    env = PluginEnv(upstreams=[SimpleNamespace(name="v1")])
    with pytest.raises(PluginInstanceError) as ei:
        build_chains([{"name": "canary", "config": {"upstream": "v2", "percentage": 5}}], env)
    assert ei.value.errors[0][0] == "plugins[0].config.upstream"


# ------------------------------------------------------------ chains
def test_no_plugins_means_no_chain() -> None:
    idx = build_chains([], PluginEnv())
    assert idx.for_route("r1", "s1") is None
    idx = build_chains([{"name": "t-low", "route": "other"}], PluginEnv())
    assert idx.for_route("r1", "s1") is None
    assert idx.for_route("other", None) is not None
    disabled = build_chains([{"name": "t-low", "enabled": False}], PluginEnv())
    assert disabled.for_route("r1", "s1") is None


def test_chain_is_ordered_by_priority_and_memoised() -> None:
    h = Harness([{"name": "t-low"}, {"name": "t-high"}, {"name": "t-mid"}])
    chain = h.chain()
    assert chain.names == ["t-high", "t-mid", "t-low"]
    assert h.chain() is chain
    ctx, resp = h.access()
    assert resp is None
    assert CALLS == ["rewrite:t-high", "rewrite:t-mid", "rewrite:t-low", "t-high:", "t-mid:", "t-low:"]


def test_eager_resolution_from_env_routes() -> None:
    from types import SimpleNamespace

    env = PluginEnv(routes=[SimpleNamespace(id="r1", service="s1")])
    idx = build_chains([{"name": "t-low", "service": "s1"}], env)
    assert idx.for_route("r1", "s1").names == ["t-low"]


@pytest.mark.parametrize(
    "scopes,expected",
    [
        # (route, service, consumer) of each t-mid instance -> winning tag
        ([(None, None, None), (None, "s1", None)], "s"),
        ([(None, "s1", None), ("r1", None, None)], "r"),
        ([("r1", None, None), ("r1", "s1", None)], "rs"),
        ([("r1", "s1", None), (None, None, "c1")], "rs"),
        ([("r1", None, None), (None, None, "c1")], "c"),
        ([(None, None, "c1"), (None, "s1", "c1")], "sc"),
        ([(None, "s1", "c1"), ("r1", None, "c1")], "rc"),
        ([("r1", None, "c1"), ("r1", "s1", "c1")], "rsc"),
        ([(None, None, None), ("r2", None, None), (None, "s2", None)], "g"),
        ([(None, None, None), (None, None, "c2")], "g"),
    ],
)
def test_precedence_most_specific_wins(scopes: list[tuple[Any, Any, Any]], expected: str) -> None:
    def tag(r: Any, s: Any, c: Any) -> str:
        return ("r" if r else "") + ("s" if s else "") + ("c" if c else "") or "g"

    ents = [{"name": "key-auth"}]
    ents += [
        # t-low (1000) runs after key-auth (1250), so consumer-scoped instances can apply
        {"name": "t-low", "route": r, "service": s, "consumer": c, "config": {"tag": tag(r, s, c)}}
        for r, s, c in scopes
    ]
    env = PluginEnv(consumers=[consumer("c1", "alice")], credentials={"key-auth": [(consumer("c1", "alice"), SimpleNS(key="k1", id="cr1"))]})
    h = Harness(ents, env)
    ctx, resp = h.access(target="/?apikey=k1")
    assert resp is None
    assert ctx.consumer.id == "c1"
    assert [c for c in CALLS if c.startswith("t-low")] == [f"t-low:{expected}"]


class SimpleNS:
    def __init__(self, **kw: Any) -> None:
        self.__dict__.update(kw)


def test_consumer_scoped_plugin_applies_after_authentication_only_to_that_consumer() -> None:
    alice, bob = consumer("c1", "alice"), consumer("c2", "bob")
    env = PluginEnv(
        consumers=[alice, bob],
        credentials={"key-auth": [(alice, SimpleNS(key="ka", id="k1")), (bob, SimpleNS(key="kb", id="k2"))]},
    )
    h = Harness(
        [
            {"name": "key-auth"},
            {"name": "t-mid", "config": {"tag": "global"}},  # runs BEFORE key-auth (2000 > 1250)
            {"name": "t-low", "config": {"tag": "global"}},
            {"name": "t-low", "consumer": "c1", "config": {"tag": "alice", "stop": 429}},
        ],
        env,
    )
    ctx, resp = h.access(headers=[("apikey", "ka")])
    assert resp is not None and resp.status == 429 and body_json(resp) == {"message": "stopped by t-low"}
    assert [c for c in CALLS if ":" in c and not c.startswith("rewrite")] == ["t-mid:global", "t-low:alice"]
    CALLS.clear()
    ctx, resp = h.access(headers=[("apikey", "kb")])
    assert resp is None
    assert [c for c in CALLS if not c.startswith("rewrite")] == ["t-mid:global", "t-low:global"]


def test_consumer_only_plugin_runs_for_that_consumer() -> None:
    alice = consumer("c1", "alice")
    env = PluginEnv(consumers=[alice], credentials={"key-auth": [(alice, SimpleNS(key="ka", id="k1"))]})
    h = Harness([{"name": "key-auth"}, {"name": "t-low", "consumer": "c1", "config": {"tag": "only-alice"}}], env)
    ctx, resp = h.access(headers=[("apikey", "ka")])
    assert resp is None and CALLS == ["t-low:only-alice"]
    # header_filter/log of the consumer variant run too
    assert h.respond(ctx) is None
    assert ctx.response.get_header("x-t-low") == "only-alice"


def test_sync_chain_creates_no_coroutine_and_async_phase_resumes() -> None:
    h = Harness([{"name": "t-high"}, {"name": "t-low"}])
    ctx = make_ctx()
    assert h.chain().run_access(ctx) is None  # plain None, not an awaitable
    CALLS.clear()

    h2 = Harness([{"name": "t-high"}, {"name": "t-async", "config": {"tag": "a"}}, {"name": "t-low"}])
    ctx = make_ctx()
    r = h2.chain().run_access(ctx)
    assert inspect.isawaitable(r)
    assert CALLS[-1] == "t-high:"  # ran synchronously up to the async plugin
    assert resolve(r) is None
    assert [c for c in CALLS if not c.startswith("rewrite")] == ["t-high:", "t-async:a", "t-low:"]


def test_async_phase_can_stop_the_request() -> None:
    h = Harness([{"name": "t-async", "config": {"stop": 403}}, {"name": "t-low"}])
    ctx, resp = h.access()
    assert resp.status == 403
    assert "t-low:" not in CALLS


def test_exception_in_access_becomes_kong_500(caplog: pytest.LogCaptureFixture) -> None:
    h = Harness([{"name": "t-high", "config": {"fail": True}}, {"name": "t-low"}])
    with caplog.at_level(logging.ERROR, logger="fastgw.plugins"):
        ctx, resp = h.access()
    assert resp.status == 500
    assert body_json(resp) == {"message": "An unexpected error occurred"}
    assert resp.get_header("content-type") == "application/json; charset=utf-8"
    assert "t-low:" not in CALLS
    assert any("t-high" in r.getMessage() and r.exc_info for r in caplog.records)


def test_exception_in_async_access_becomes_500() -> None:
    h = Harness([{"name": "t-async", "config": {"fail": True}}])
    ctx, resp = h.access()
    assert resp.status == 500


def test_exception_in_header_filter_becomes_500() -> None:
    class BadHF(Plugin):
        name = "t-bad-hf"
        PRIORITY = 1

        def header_filter(self, ctx: Context) -> None:
            raise ValueError("nope")

    register(BadHF)
    h = Harness([{"name": "t-bad-hf"}])
    ctx, _ = h.access()
    resp = h.respond(ctx)
    assert resp is not None and resp.status == 500


def test_log_exceptions_are_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    h = Harness([{"name": "t-high", "config": {"fail": False}}, {"name": "t-low", "config": {"fail": False}}])
    ctx, _ = h.access()
    h2 = Harness([{"name": "t-mid", "config": {"fail": True}}, {"name": "t-low"}])
    ctx2 = make_ctx()
    # t-mid fails in access too, so run only log here
    with caplog.at_level(logging.ERROR, logger="fastgw.plugins"):
        assert h2.chain().run_log(ctx2) is None
    assert CALLS[-2:] == ["log:t-mid", "log:t-low"]
    assert any("log" in r.getMessage() for r in caplog.records)


def test_async_log_returns_awaitable() -> None:
    class AsyncLog(Plugin):
        name = "t-async-log"
        PRIORITY = 1

        async def log(self, ctx: Context) -> None:
            await asyncio.sleep(0)
            CALLS.append("async-log")

    register(AsyncLog)
    h = Harness([{"name": "t-async-log"}])
    ctx, _ = h.access()
    r = h.chain().run_log(ctx)
    assert inspect.isawaitable(r)
    resolve(r)
    assert CALLS == ["async-log"]


def test_header_filter_order_and_run_exit_applies_ops() -> None:
    h = Harness([{"name": "t-low", "config": {"tag": "L"}}, {"name": "t-high", "config": {"tag": "H", "stop": 401}}])
    ctx, resp = h.access()
    assert resp.status == 401
    final = resolve(h.chain().run_exit(ctx, resp))
    assert final.status == 401
    assert final.get_header("x-t-high") == "H" and final.get_header("x-t-low") == "L"
    assert [c for c in CALLS if c.startswith("hf")] == ["hf:t-high", "hf:t-low"]
    assert ctx.response.source == "exit"


def test_protocols_filter_plugins_by_scheme() -> None:
    h = Harness([{"name": "t-high", "protocols": ["https"]}, {"name": "t-low", "protocols": ["http", "https"]}])
    ctx, _ = h.access(scheme="http")
    assert [c for c in CALLS if not c.startswith("rewrite")] == ["t-low:"]
    CALLS.clear()
    ctx, _ = h.access(scheme="https")
    assert [c for c in CALLS if not c.startswith("rewrite")] == ["t-high:", "t-low:"]


def test_close_calls_every_instance() -> None:
    closed = []

    class Closable(Plugin):
        name = "t-closable"
        PRIORITY = 1

        def close(self) -> None:
            closed.append(self)

    register(Closable)
    idx = build_chains([{"name": "t-closable"}, {"name": "t-closable", "route": "r1"}], PluginEnv())
    idx.close()
    assert len(closed) == 2


def test_plugin_entities_as_objects() -> None:
    from types import SimpleNamespace

    ent = SimpleNamespace(name="t-low", config={"tag": "obj"}, enabled=True, route=SimpleNamespace(id="r1"),
                          service=None, consumer=None, protocols=["grpc", "grpcs", "http", "https"])
    idx = build_chains([ent], PluginEnv())
    assert idx.for_route("r1", None).names == ["t-low"]
    assert idx.for_route("r2", None) is None


# ------------------------------------------------------------ context API
def test_request_reads_are_lazy_and_see_ops() -> None:
    ctx = make_ctx("POST", "/a/b?x=1&y=2&x=3&flag", [("Host", "example.com"), ("X-Multi", "1"), ("x-multi", "2")])
    req = ctx.request
    assert req.method == "POST" and req.path == "/a/b" and req.raw_query == b"x=1&y=2&x=3&flag"
    assert req._query is None  # not parsed until asked
    assert req.query == {"x": ["1", "3"], "y": "2", "flag": ""}
    assert req.get_header("X-MULTI") == "1"
    assert req.get_header_all("x-multi") == ["1", "2"]
    assert req.get_headers() == {"host": "example.com", "x-multi": ["1", "2"]}
    req.add_header("x-multi", "3")
    req.set_header("x-new", "n")
    req.clear_header("host")
    assert req.get_header_all("x-multi") == ["1", "2", "3"]
    assert req.get_header("host") is None
    assert req.get_headers() == {"x-multi": ["1", "2", "3"], "x-new": "n"}
    assert req.header_ops == {b"x-multi": [b"1", b"2", b"3"], b"x-new": [b"n"], b"host": None}
    req.set_path("/c")
    req.set_query({"k": "v w", "l": ["1", "2"], "b": True})
    req.set_method("put")
    assert req.path_override == b"/c" and req.method_override == b"PUT" and req.method == "PUT"
    assert req.query_override == b"k=v+w&l=1&l=2&b"
    assert req.target == b"/c?k=v+w&l=1&l=2&b"
    assert req.query == {"k": "v w", "l": ["1", "2"], "b": ""}
    with pytest.raises(ValueError):
        req.set_path("relative")
    req.set_body(b"{}", "application/json")
    assert req.header_ops[b"content-length"] == [b"2"] and req.header_ops[b"transfer-encoding"] is None


def test_context_without_ops_has_none() -> None:
    ctx = make_ctx(headers=[("a", "b")])
    assert ctx.request.header_ops is None and ctx._vars is None
    assert ctx.request.target == b"/"
    ctx.vars["k"] = 1
    assert ctx.vars == {"k": 1}


@pytest.mark.parametrize(
    "trusted,peer,xff,expected",
    [
        ([], "10.0.0.1", ["1.2.3.4"], "10.0.0.1"),  # trust none by default
        (["10.0.0.0/8"], "10.0.0.1", ["1.2.3.4"], "1.2.3.4"),
        (["10.0.0.0/8"], "10.0.0.1", ["6.6.6.6, 1.2.3.4, 10.1.1.1"], "1.2.3.4"),  # recursive
        (["10.0.0.0/8"], "10.0.0.1", ["6.6.6.6", "1.2.3.4"], "1.2.3.4"),  # multiple header lines
        (["10.0.0.0/8"], "192.168.1.1", ["1.2.3.4"], "192.168.1.1"),  # untrusted peer
        (["10.0.0.0/8"], "10.0.0.1", [], "10.0.0.1"),
        (["10.0.0.0/8"], "10.0.0.1", ["10.0.0.9"], "10.0.0.9"),  # all trusted: leftmost
        (["10.0.0.0/8"], "10.0.0.1", ["garbage"], "10.0.0.1"),
        (["::1/128"], "::1", ["2001:db8::1"], "2001:db8::1"),
        (["127.0.0.1"], "::ffff:127.0.0.1", ["5.5.5.5"], "5.5.5.5"),
    ],
)
def test_client_ip_honours_trusted_proxies(trusted: list[str], peer: str, xff: list[str], expected: str) -> None:
    env = PluginEnv(trusted_ips=trusted)
    ctx = make_ctx(client=peer, headers=[("X-Forwarded-For", v) for v in xff], env=env)
    assert ctx.client_ip == expected


def test_authenticate_sets_kong_headers() -> None:
    ctx = make_ctx(headers=[("X-Consumer-ID", "spoofed"), ("X-Anonymous-Consumer", "true")])
    ctx.authenticate(consumer("c1", "alice", "cust"), SimpleNS(id="k1"), "k1")
    assert upstream_headers(ctx) == {
        "x-consumer-id": ["c1"], "x-consumer-custom-id": ["cust"], "x-consumer-username": ["alice"],
        "x-credential-identifier": ["k1"], "x-anonymous-consumer": None,
    }
    ctx = make_ctx()
    ctx.authenticate(consumer("anon", None), None)
    assert upstream_headers(ctx) == {
        "x-consumer-id": ["anon"], "x-consumer-custom-id": None, "x-consumer-username": None,
        "x-credential-identifier": None, "x-anonymous-consumer": ["true"],
    }
    assert ctx.credential is None and ctx.consumer.id == "anon"


def test_response_view_and_apply_header_ops() -> None:
    ctx = make_ctx()
    view = ctx.set_response(200, ListHeaders([("Content-Type", "a"), ("Set-Cookie", "1"), ("Set-Cookie", "2"), ("X-Drop", "x")]))
    view.add_header("Set-Cookie", "3")
    view.clear_header("x-drop")
    view.set_header("X-New", "n")
    view.set_status(201)
    assert view.status == 201
    out = apply_header_ops([(b"Content-Type", b"a"), (b"Set-Cookie", b"1"), (b"Set-Cookie", b"2"), (b"X-Drop", b"x")], view.header_ops)
    assert out == [(b"Content-Type", b"a"), (b"Set-Cookie", b"1"), (b"Set-Cookie", b"2"), (b"Set-Cookie", b"3"), (b"x-new", b"n")]


def test_response_helpers() -> None:
    r = Response.json(401, {"message": "x"}, {"WWW-Authenticate": 'Key realm="kong"'})
    assert r.headers == [(b"Content-Type", b"application/json; charset=utf-8"), (b"WWW-Authenticate", b'Key realm="kong"')]
    assert r.body == b'{"message":"x"}'
    r2 = Response(204, "", [("a", ["1", "2"])])
    assert r2.headers == [(b"a", b"1"), (b"a", b"2")] and r2.body == b""


def test_context_now_is_used_for_started_at() -> None:
    ctx = make_ctx(now=NOW)
    assert ctx.started_at == NOW and ctx.now == NOW
