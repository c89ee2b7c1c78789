"""request-/response-transformer, file-log, http-log, opentelemetry, the log serializer."""

from __future__ import annotations

import asyncio
import json
import os
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from fastgw.plugins import ListHeaders, PluginEnv
from fastgw.plugins import http_log as http_log_mod
from fastgw.plugins import response_transformer as rt_mod
from fastgw.plugins.opentelemetry import parse_traceparent

from plugin_helpers import NOW, Harness, consumer, cred, make_ctx, resolve, upstream_headers


def one(name: str, env: PluginEnv | None = None, **conf: Any) -> Harness:
    return Harness([{"name": name, "config": conf}], env)


# ------------------------------------------------------- request-transformer
def test_request_transformer_headers_in_kong_order() -> None:
    h = one(
        "request-transformer",
        remove={"headers": ["x-remove"]},
        rename={"headers": ["x-old:x-new"]},
        replace={"headers": ["x-rep:replaced", "x-absent:never"]},
        add={"headers": ["x-add:added", "x-rep:not-added"]},
        append={"headers": ["x-app:2"]},
    )
    ctx, resp = h.access(headers=[("X-Remove", "1"), ("X-Old", "o"), ("X-Rep", "r"), ("X-App", "1")])
    assert resp is None
    assert ctx.request.get_headers() == {
        "x-new": "o", "x-rep": "replaced", "x-app": ["1", "2"], "x-add": "added",
    }


def test_request_transformer_querystring_uri_method_and_templates() -> None:
    h = one(
        "request-transformer",
        http_method="POST",
        remove={"querystring": ["drop"]},
        rename={"querystring": ["old:new"]},
        replace={"querystring": ["rep:R"], "uri": "/v2/$(headers[\"x-tenant\"])/items"},
        add={"querystring": ["add:A", "keep:no"], "headers": ["x-user:$(query_params.user or 'anon')"]},
        append={"querystring": ["multi:2"]},
    )
    ctx, resp = h.access(target="/v1?drop=1&old=o&rep=r&keep=k&multi=1&user=bob", headers=[("X-Tenant", "acme")])
    assert resp is None
    req = ctx.request
    assert req.path_override == b"/v2/acme/items" and req.method == "POST"
    assert req.query == {"new": "o", "rep": "R", "keep": "k", "multi": ["1", "2"], "user": "bob", "add": "A"}
    assert upstream_headers(ctx)["x-user"] == ["bob"]
    ctx, _ = h.access(target="/v1", headers=[("X-Tenant", "t")])
    assert upstream_headers(ctx)["x-user"] == ["anon"]


def test_request_transformer_json_and_form_body() -> None:
    h = one(
        "request-transformer",
        remove={"body": ["secret"]},
        rename={"body": ["a:b"]},
        replace={"body": ["r:R"]},
        add={"body": ["n:new"]},
        append={"body": ["l:2"]},
    )
    assert h.chain().needs_request_body
    ctx, _ = h.access(method="POST", headers=[("Content-Type", "application/json")],
                      body=b'{"secret":1,"a":"x","r":"y","l":"1","n":"keep"}')
    assert orjson.loads(ctx.request.body_override) == {"b": "x", "r": "R", "l": ["1", "2"], "n": "keep"}
    assert upstream_headers(ctx)["content-length"] == [str(len(ctx.request.body_override))]
    ctx, _ = h.access(method="POST", headers=[("Content-Type", "application/x-www-form-urlencoded")], body=b"secret=1&a=x")
    assert ctx.request.body_override == b"b=x&n=new&l=2"
    ctx, _ = h.access(method="POST", headers=[("Content-Type", "text/plain")], body=b"secret=1")
    assert ctx.request.body_override is None
    ctx, _ = h.access(method="POST", headers=[("Content-Type", "application/json")], body=b"{broken")
    assert ctx.request.body_override is None  # unparseable bodies pass through
    assert not one("request-transformer", add={"headers": ["a:b"]}).chain().needs_request_body


# ------------------------------------------------------- response-transformer
def rt(**conf: Any) -> Harness:
    return one("response-transformer", **conf)


def test_response_transformer_headers() -> None:
    h = rt(
        remove={"headers": ["x-internal"]},
        rename={"headers": ["x-old:x-new"]},
        replace={"headers": ["server:fastgw", "x-absent:no"]},
        add={"headers": ["x-added:1", "server:no"]},
        append={"headers": ["set-cookie:c=3"]},
    )
    ctx, _ = h.access()
    h.respond(ctx, 200, [("X-Internal", "1"), ("X-Old", "o"), ("Server", "up"), ("Set-Cookie", "a=1"), ("Content-Length", "5")])
    r = ctx.response
    assert r.get_headers() == {
        "x-new": "o", "server": "fastgw", "set-cookie": ["a=1", "c=3"], "content-length": "5", "x-added": "1",
    }


def run_body(h: Harness, ctx: Any, chunks: list[bytes]) -> bytes:
    chain = h.chain()
    out = b""
    for i, c in enumerate(chunks):
        out += chain.run_body_filter(ctx, c, i == len(chunks) - 1)
    return out


def test_response_transformer_json_body_buffered() -> None:
    h = rt(
        remove={"json": ["secret"]},
        rename={"json": ["a:b"]},
        replace={"json": ["r:1", "missing:x"], "json_types": ["number", "string"]},
        add={"json": ["flag:true", "r:no"], "json_types": ["boolean", "string"]},
        append={"json": ["list:x"]},
    )
    assert h.chain().has_body_filter
    ctx, _ = h.access()
    h.respond(ctx, 200, [("Content-Type", "application/json"), ("Content-Length", "60")])
    assert ctx.response.get_header("content-length") is None  # body size changes
    body = b'{"secret":"s","a":"x","r":"old","list":"first"}'
    out = run_body(h, ctx, [body[:10], body[10:30], body[30:]])
    assert orjson.loads(out) == {"b": "x", "r": 1, "list": ["first", "x"], "flag": True}


def test_response_transformer_skips_non_json_and_encoded_and_oversized(monkeypatch: pytest.MonkeyPatch) -> None:
    h = rt(remove={"json": ["a"]})
    ctx, _ = h.access()
    h.respond(ctx, 200, [("Content-Type", "text/html"), ("Content-Length", "3")])
    assert ctx.response.get_header("content-length") == "3"
    assert run_body(h, ctx, [b'{"a"', b":1}"]) == b'{"a":1}'
    ctx, _ = h.access()
    h.respond(ctx, 200, [("Content-Type", "application/json"), ("Content-Encoding", "gzip")])
    assert run_body(h, ctx, [b"\x1f\x8b", b"zz"]) == b"\x1f\x8bzz"
    monkeypatch.setattr(rt_mod, "MAX_BUFFERED_BODY", 8)
    ctx, _ = h.access()
    h.respond(ctx, 200, [("Content-Type", "application/json")])
    chain = h.chain()
    assert chain.run_body_filter(ctx, b'{"a":', False) == b""
    assert chain.run_body_filter(ctx, b'1,"b":2', False) == b'{"a":1,"b":2'  # gave up, released
    assert chain.run_body_filter(ctx, b"}", True) == b"}"
    ctx, _ = h.access()
    h.respond(ctx, 200, [("Content-Type", "application/json")])
    assert run_body(h, ctx, [b"[1,2]"]) == b"[1,2]"  # not an object: unchanged


# ------------------------------------------------------------ serializer
def test_log_serializer_fields() -> None:
    from fastgw.plugins.log_serializer import serialize

    alice = consumer("c1", "alice")
    route = SimpleNamespace(id="r1", name="route-1")
    service = {"id": "s1", "name": "svc"}
    ctx = make_ctx("POST", "/p?a=1", [("Host", "h.example"), ("Authorization", "Bearer x")], client="1.2.3.4",
                   route=route, service=service, now=NOW)
    ctx.authenticate(alice, cred(id="k1"), "k1")
    ctx.set_response(201, ListHeaders([("Content-Type", "text/plain")]))
    ctx.bytes_in, ctx.bytes_out = 120, 340
    ctx.request_latency, ctx.proxy_latency, ctx.upstream_latency = 12.4, 1.2, 11.0
    ctx.upstream_target, ctx.upstream_uri, ctx.upstream_status = "127.0.0.1:9000", "/p?a=1", 201
    ctx.set_serialize_value("correlation_id", "cid-1")
    e = serialize(ctx)
    assert e["request"] == {
        "method": "POST", "uri": "/p?a=1", "url": "http://h.example/p?a=1", "size": 120,
        "querystring": {"a": "1"},
        "headers": {"host": "h.example", "authorization": "REDACTED", "x-consumer-id": "c1",
                    "x-consumer-username": "alice", "x-credential-identifier": "k1"},
    }
    assert e["response"] == {"status": 201, "size": 340, "headers": {"content-type": "text/plain"}}
    assert e["latencies"] == {"request": 12, "kong": 1, "proxy": 11, "receive": 0}
    assert e["client_ip"] == "1.2.3.4" and e["started_at"] == int(NOW * 1000)
    assert e["route"] == {"id": "r1", "name": "route-1"} and e["service"] == service
    assert e["consumer"] == {"id": "c1", "username": "alice"}
    assert e["authenticated_entity"] == {"id": "k1", "consumer_id": "c1"}
    assert e["upstream_uri"] == "/p?a=1" and e["upstream_status"] == "201"
    assert e["tries"] == [{"target": "127.0.0.1:9000"}] and e["correlation_id"] == "cid-1"
    json.dumps(e)  # JSON-ready


# ------------------------------------------------------------ file-log
def _finished_ctx(h: Harness, target: str = "/x", status: int = 200) -> Any:
    ctx, resp = h.access(target=target, headers=[("Host", "h")])
    assert resp is None
    h.respond(ctx, status)
    return ctx


def test_file_log_writes_one_json_line_per_request(tmp_path: Any) -> None:
    path = tmp_path / "access.log"
    h = one("file-log", path=str(path))
    for i in range(5):
        assert h.chain().run_log(_finished_ctx(h, f"/r{i}")) is None
    assert h.chain().plugins[0].writer.flush()
    lines = path.read_bytes().splitlines()
    assert [orjson.loads(x)["request"]["uri"] for x in lines] == [f"/r{i}" for i in range(5)]
    assert oct(os.stat(path).st_mode & 0o777) == "0o644"


def test_file_log_reopen_follows_rotation(tmp_path: Any) -> None:
    path = tmp_path / "rot.log"
    h = one("file-log", path=str(path), reopen=True)
    w = h.chain().plugins[0].writer
    h.chain().run_log(_finished_ctx(h, "/before"))
    assert w.flush()
    os.rename(path, tmp_path / "rot.log.1")
    h.chain().run_log(_finished_ctx(h, "/after"))
    assert w.flush()
    assert orjson.loads(path.read_bytes())["request"]["uri"] == "/after"
    assert orjson.loads((tmp_path / "rot.log.1").read_bytes())["request"]["uri"] == "/before"


def test_file_log_bad_directory_is_logged_not_raised(tmp_path: Any, caplog: pytest.LogCaptureFixture) -> None:
    h = one("file-log", path=str(tmp_path / "missing-dir" / "x.log"))
    assert h.chain().run_log(_finished_ctx(h)) is None
    assert h.chain().plugins[0].writer.flush()


# ------------------------------------------------------------ http-log
class Collector:
    """A loopback HTTP server recording JSON bodies (aiohttp)."""

    def __init__(self) -> None:
        self.bodies: list[Any] = []
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.fail_first = 0

    async def start(self) -> str:
        from aiohttp import web

        async def handle(request: web.Request) -> web.Response:
            self.requests.append((request.method, request.path, dict(request.headers)))
            if self.fail_first > 0:
                self.fail_first -= 1
                return web.Response(status=503)
            self.bodies.append(json.loads(await request.read()))
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        await self.runner.cleanup()


async def _http_log_run(conf: dict[str, Any], n: int, fail_first: int = 0) -> Collector:
    col = Collector()
    col.fail_first = fail_first
    base = await col.start()
    try:
        h = one("http-log", http_endpoint=base + "/logs", **conf)
        for i in range(n):
            ctx = _finished_ctx(h, f"/r{i}")
            assert h.chain().run_log(ctx) is None  # enqueue only: never awaits on the request path
        await http_log_mod.flush_all(timeout=10)
        await http_log_mod.close_all()
    finally:
        await col.stop()
    return col


def test_http_log_single_entries() -> None:
    col = asyncio.run(_http_log_run({"headers": {"X-Token": "t"}}, 3))
    assert [b["request"]["uri"] for b in col.bodies] == ["/r0", "/r1", "/r2"]
    method, path, headers = col.requests[0]
    assert method == "POST" and path == "/logs"
    assert headers["Content-Type"] == "application/json" and headers["X-Token"] == "t"


def test_http_log_batches_and_method() -> None:
    col = asyncio.run(_http_log_run({"method": "PUT", "queue": {"max_batch_size": 10, "max_coalescing_delay": 0.2}}, 25))
    assert all(isinstance(b, list) for b in col.bodies)
    assert [e["request"]["uri"] for b in col.bodies for e in b] == [f"/r{i}" for i in range(25)]
    assert len(col.bodies) >= 3 and all(len(b) <= 10 for b in col.bodies)
    assert {m for m, _, _ in col.requests} == {"PUT"}


def test_http_log_retries_failed_sends() -> None:
    col = asyncio.run(_http_log_run({"queue": {"initial_retry_delay": 0.01}}, 1, fail_first=2))
    assert len(col.requests) == 3 and [b["request"]["uri"] for b in col.bodies] == ["/r0"]


def test_http_log_queue_bound_drops() -> None:
    async def run() -> int:
        h = one("http-log", http_endpoint="http://127.0.0.1:9/x", queue={"max_entries": 2, "max_retry_time": 0.05})
        for _ in range(10):
            h.chain().run_log(_finished_ctx(h))
        sender = http_log_mod.sender_for(h.chain().plugins[0].config)
        dropped = sender.dropped
        await http_log_mod.close_all()
        return dropped

    assert asyncio.run(run()) == 8


def test_http_log_without_loop_does_not_raise() -> None:
    h = one("http-log", http_endpoint="http://127.0.0.1:9/x")
    assert h.chain().run_log(_finished_ctx(h)) is None
    assert h.chain().plugins[0].dropped_no_loop == 1


# ------------------------------------------------------------ opentelemetry
TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_traceparent_parsing() -> None:
    assert parse_traceparent(TP) == ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", 1)
    for bad in (None, "", "garbage", "00-" + "0" * 32 + "-00f067aa0ba902b7-01",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-" + "0" * 16 + "-01",
                "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                TP + "-extra"):
        assert parse_traceparent(bad) is None, bad
    assert parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-future") is not None


def test_otel_keeps_trace_id_and_makes_new_span_per_hop() -> None:
    h = one("opentelemetry", http_response_header_for_traceid="X-Trace-Id")
    ctx, _ = h.access(headers=[("traceparent", TP), ("tracestate", "vendor=1")])
    out = upstream_headers(ctx)["traceparent"][0]
    trace_id, span_id, flags = parse_traceparent(out)
    assert trace_id == "4bf92f3577b34da6a3ce929d0e0e4736" and flags == 1
    assert span_id != "00f067aa0ba902b7"
    assert "tracestate" not in upstream_headers(ctx)  # forwarded unchanged
    h.respond(ctx)
    assert ctx.response.get_header("X-Trace-Id") == trace_id
    ctx2, _ = h.access(headers=[("traceparent", TP)])
    assert parse_traceparent(upstream_headers(ctx2)["traceparent"][0])[1] != span_id


def test_otel_starts_trace_when_missing_or_ignored_and_samples() -> None:
    h = one("opentelemetry")
    ids = set()
    for _ in range(20):
        ctx, _ = h.access()
        tid, sid, flags = parse_traceparent(upstream_headers(ctx)["traceparent"][0])
        ids.add(tid)
        assert flags == 1
    assert len(ids) == 20
    ctx, _ = one("opentelemetry", header_type="ignore").access(headers=[("traceparent", TP)])
    assert parse_traceparent(upstream_headers(ctx)["traceparent"][0])[0] != "4bf92f3577b34da6a3ce929d0e0e4736"
    h0 = one("opentelemetry", sampling_rate=0)
    ctx, _ = h0.access()
    assert parse_traceparent(upstream_headers(ctx)["traceparent"][0])[2] == 0
    ctx, _ = h0.access(headers=[("traceparent", TP)])  # a sampled parent stays sampled
    assert parse_traceparent(upstream_headers(ctx)["traceparent"][0])[2] == 1
