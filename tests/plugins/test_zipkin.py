"""zipkin through a real gateway to a Zipkin collector on 127.0.0.1 (Kong's
spec/03-plugins/34-zipkin): B3 / W3C / Jaeger / OT propagation, spans and their export."""
from __future__ import annotations

import asyncio
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from fastgw.plugins import _propagation as prop

from gw_helpers import config_errors, kong_config, route, serve

TRACE = "0af7651916cd43dd8448eb211c80319c"
SPAN = "b7ad6b7169203331"
PARENT = "00f067aa0ba902b7"


class _Collector(ThreadingHTTPServer):
    def __init__(self) -> None:
        self.batches: list = []
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def spans(self) -> list:
        return [s for b in self.batches for s in b]

    async def wait_spans(self, n: int, timeout: float = 5.0) -> list:
        """Polled on the gateway's loop: the reporter sends while the scenario waits."""
        deadline = time.monotonic() + timeout
        while len(self.spans) < n and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert len(self.spans) >= n, self.spans
        return self.spans


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server API
        body = self.rfile.read(int(self.headers["Content-Length"]))
        assert self.headers["Content-Type"] == "application/json"
        self.server.batches.append(json.loads(body))
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def collector():
    col = _Collector()
    threading.Thread(target=col.serve_forever, daemon=True).start()
    yield col
    col.shutdown()
    col.server_close()


def _zipkin(col, **conf):
    return {"name": "zipkin", "config": {"http_endpoint": f"http://127.0.0.1:{col.server_address[1]}/api/v2/spans",
                                         "sample_ratio": 1, **conf}}


def _seen(r):
    return {k.lower(): v for k, v in json.loads(r.body)["headers"]}


SCHEMA_CASES = [
    ({}, {}),
    ({"sample_ratio": 2}, {"config.sample_ratio": "value should be between 0 and 1"}),
    ({"http_endpoint": "not a url"}, {"config.http_endpoint": "missing host in url"}),
    ({"traceid_byte_count": 10}, {"config.traceid_byte_count": "expected one of: 8, 16"}),
    ({"static_tags": [{"name": "http.method", "value": "x"}]},
     {"config.static_tags[0].name": "must not be one of: " + ", ".join(
         ["error", "http.method", "http.path", "http.status_code", "kong.balancer.state", "kong.balancer.try",
          "kong.consumer", "kong.credential", "kong.node.id", "kong.route", "kong.service", "lc", "peer.hostname"])}),
    ({"static_tags": [{"name": "a", "value": "1"}, {"name": "a", "value": "2"}]},
     {"config.static_tags": "repeated tags are not allowed: a"}),
    ({"header_type": "nope"}, {"config.header_type": "expected one of: preserve, ignore, b3, b3-single, w3c, "
                                                      "jaeger, ot, aws, datadog, gcp, instana"}),
    ({"header_type": "datadog"}, {}),
    ({"propagation": {"extract": ["b3-single"]}},
     {"config.propagation.extract[0]": "expected one of: w3c, b3, jaeger, ot, datadog, aws, gcp, instana"}),
    ({"propagation": {"inject": ["preserve", "aws"]}}, {}),
    ({"propagation": {"inject": ["zipkin"]}},
     {"config.propagation.inject[0]": "expected one of: preserve, w3c, b3, b3-single, jaeger, ot, datadog, aws, "
                                      "gcp, instana"}),
    ({"propagation": {"clear": ["bad header"]}},
     {"config.propagation.clear[0]": "bad header name 'bad header', allowed characters are A-Z, a-z, 0-9, '_', and '-'"}),
]


@pytest.mark.parametrize("conf,errors", SCHEMA_CASES)
def test_schema(conf, errors):
    assert config_errors("zipkin", conf) == errors


def test_b3_propagation_and_spans(echo_upstream, collector):
    routes = [route("z", [_zipkin(collector, static_tags=[{"name": "env", "value": "test"}],
                                  http_response_header_for_traceid="X-Trace-Id")])]

    async def scenario(client):
        r = await client.get("/z/x", headers={"x-b3-traceid": TRACE, "x-b3-spanid": SPAN,
                                              "x-b3-parentspanid": PARENT, "x-b3-sampled": "1",
                                              "Zipkin-Tags": "foo=bar; baz = qux"})
        await collector.wait_spans(3)
        return r, client.gateway.node_id

    r, node_id = serve(kong_config(echo_upstream.port, routes), scenario)
    assert r.status == 200 and r.headers["x-trace-id"] == TRACE
    seen = _seen(r)
    assert seen["x-b3-traceid"] == TRACE and seen["x-b3-sampled"] == "1"
    assert seen["x-b3-parentspanid"] == SPAN          # B3 shares the span: ours is its child
    proxy_id = seen["x-b3-spanid"]
    assert proxy_id != SPAN
    spans = collector.spans
    by_kind = {s["name"]: s for s in spans}
    req, proxy = by_kind["GET"], by_kind["GET (proxy)"]
    bal = next(s for s in spans if "balancer try" in s["name"])
    assert {s["traceId"] for s in spans} == {TRACE}
    assert (req["id"], req.get("parentId"), req["kind"]) == (SPAN, PARENT, "SERVER")
    assert (proxy["id"], proxy["parentId"], proxy["kind"]) == (proxy_id, SPAN, "CLIENT")
    assert bal["parentId"] == SPAN and bal["tags"]["kong.balancer.try"] == "1"
    assert req["tags"]["http.method"] == "GET" and req["tags"]["http.path"] == "/z/x"
    assert req["tags"]["http.status_code"] == "200" and req["tags"]["lc"] == "kong"
    assert req["tags"]["env"] == "test" and req["tags"]["foo"] == "bar" and req["tags"]["baz"] == "qux"
    assert req["tags"]["kong.node.id"] == node_id
    assert proxy["tags"]["kong.route_name"] == "z" and proxy["tags"]["kong.service_name"] == "echo"
    assert proxy["remoteEndpoint"]["port"] == echo_upstream.port and proxy["remoteEndpoint"]["serviceName"] == "echo"
    assert req["localEndpoint"] == {"serviceName": "kong"}
    assert [a["value"] for a in proxy["annotations"]] == ["khs", "kas", "kaf", "khf", "kbf"]
    assert req["timestamp"] <= proxy["timestamp"] and proxy["duration"] <= req["duration"]


# (incoming headers, header that must go upstream, check) — preserve keeps the incoming format
PRESERVE_CASES = [
    ({"b3": f"{TRACE}-{SPAN}-1-{PARENT}"}, "b3", lambda v: v.startswith(TRACE + "-") and v.endswith("-1-" + SPAN)),
    ({"traceparent": f"00-{TRACE}-{SPAN}-01"}, "traceparent",
     lambda v: v.startswith(f"00-{TRACE}-") and v.endswith("-01") and SPAN not in v),
    ({"uber-trace-id": f"{TRACE}:{SPAN}:0:1", "uberctx-user": "a b"}, "uber-trace-id",
     lambda v: v.startswith(TRACE + ":") and v.endswith(f":{SPAN}:01")),
    ({"ot-tracer-traceid": TRACE, "ot-tracer-spanid": SPAN, "ot-tracer-sampled": "1"}, "ot-tracer-traceid",
     lambda v: v == TRACE),
    ({"x-datadog-trace-id": "123456789", "x-datadog-parent-id": "42", "x-datadog-sampling-priority": "1"},
     "x-datadog-trace-id", lambda v: v == "123456789"),
    ({"x-amzn-trace-id": f"Root=1-{TRACE[:8]}-{TRACE[8:]};Parent={SPAN};Sampled=1"}, "x-amzn-trace-id",
     lambda v: v.startswith(f"Root=1-{TRACE[:8]}-{TRACE[8:]};Parent=") and SPAN not in v and v.endswith(";Sampled=1")),
    ({"x-cloud-trace-context": f"{TRACE}/12345;o=1"}, "x-cloud-trace-context",
     lambda v: v.startswith(TRACE + "/") and v.endswith(";o=1") and "/12345;" not in v),
    ({"x-instana-t": TRACE, "x-instana-s": SPAN, "x-instana-l": "1"}, "x-instana-t", lambda v: v == TRACE),
    ({}, "x-b3-traceid", lambda v: len(v) == 32),   # nothing incoming: default_format b3
]


def test_preserve_keeps_the_incoming_format(echo_upstream, collector):
    async def scenario(client):
        out = []
        for headers, _, _ in PRESERVE_CASES:
            out.append(_seen(await client.get("/p/x", headers=headers)))
        await collector.wait_spans(3 * len(PRESERVE_CASES))
        return out

    results = serve(kong_config(echo_upstream.port, [route("p", [_zipkin(collector)])]), scenario)
    for (headers, name, check), seen in zip(PRESERVE_CASES, results):
        assert name in seen and check(seen[name]), (headers, seen)
    assert results[2]["uberctx-user"] == "a%20b"   # jaeger baggage passes on


def test_propagation_options_and_sampling(echo_upstream, collector):
    routes = [route("conv", [_zipkin(collector, propagation={"extract": ["w3c"], "inject": ["b3-single", "jaeger"],
                                                             "clear": ["traceparent"]})]),
              route("ignore", [_zipkin(collector, header_type="ignore", default_header_type="w3c")]),
              route("never", [_zipkin(collector, sample_ratio=0)])]

    async def scenario(client):
        conv = _seen(await client.get("/conv/x", headers={"traceparent": f"00-{TRACE}-{SPAN}-01"}))
        ign = _seen(await client.get("/ignore/x", headers={"x-b3-traceid": TRACE, "x-b3-spanid": SPAN}))
        never = _seen(await client.get("/never/x"))
        unsampled = _seen(await client.get("/conv/y", headers={"traceparent": f"00-{TRACE}-{SPAN}-00"}))
        await collector.wait_spans(6)
        await asyncio.sleep(1.5)  # past the queue's coalescing delay: nothing more may arrive
        return conv, ign, never, unsampled

    conv, ign, never, unsampled = serve(kong_config(echo_upstream.port, routes), scenario)
    assert "traceparent" not in conv
    # W3C gives the parent's id only: our SERVER span gets a new id, the proxy span is its child
    t, sid, sampled, parent = conv["b3"].split("-")
    assert (t, sampled) == (TRACE, "1") and SPAN not in (sid, parent)
    assert conv["uber-trace-id"].startswith(TRACE + ":")
    assert ign["traceparent"].startswith("00-") and TRACE not in ign["traceparent"]  # a new trace
    assert never["x-b3-sampled"] == "0"
    assert unsampled["b3"].split("-")[2] == "0"
    assert len(collector.spans) == 6   # conv (3) + ignore (3); never / unsampled: none


def test_extractors_follow_kong():
    ctx, src = prop.extract({"x-b3-traceid": "bad", "x-b3-spanid": SPAN, "x-b3-sampled": "1"}, ["b3"])
    assert src == "b3" and ctx.trace_id is None and ctx.should_sample is True
    ctx, src = prop.extract({"x-b3-traceid": TRACE[16:], "x-b3-spanid": SPAN}, ["b3"])
    assert ctx.trace_id == bytes(8) + bytes.fromhex(TRACE[16:]) and ctx.original_size == 8
    assert prop.inject(ctx, "b3")["x-b3-traceid"] == TRACE[16:]   # written in its incoming size
    assert prop.inject(ctx, "w3c")["traceparent"].startswith("00-" + "0" * 16 + TRACE[16:])
    assert prop.extract({"traceparent": f"01-{TRACE}-{SPAN}-01"}, ["w3c"])[1] is None  # version 01
    assert prop.extract({"traceparent": f"00-{'0' * 32}-{SPAN}-01"}, ["w3c"])[1] is None
    ctx, _ = prop.extract({"b3": "d"}, ["b3"])
    assert ctx.flags == "1" and prop.inject(ctx, "b3-single") == {"b3": "d"}
    assert prop.inject(prop.TraceContext(), "w3c") is None
    ctx, src = prop.extract({"x-datadog-trace-id": "256", "x-datadog-sampling-priority": "2"}, ["datadog"])
    assert src == "datadog" and ctx.trace_id == bytes(14) + b"\x01\x00" and ctx.original_size == 2
    assert prop.inject(ctx, "datadog") == {"x-datadog-trace-id": "256", "x-datadog-sampling-priority": "1"}
    assert prop.extract({"x-datadog-sampling-priority": "7"}, ["datadog"])[1] is None
    assert prop.extract({"x-amzn-trace-id": "Root=2-abc"}, ["aws"])[1] is None
    assert prop.extract({"x-cloud-trace-context": "XYZ/1"}, ["gcp"])[1] is None


def test_without_endpoint_propagates_only(echo_upstream):
    routes = [route("ne", [{"name": "zipkin", "config": {"sample_ratio": 1}}])]

    async def scenario(client):
        return _seen(await client.get("/ne/x", headers={"traceparent": f"00-{TRACE}-{SPAN}-01"}))

    seen = serve(kong_config(echo_upstream.port, routes), scenario)
    assert seen["traceparent"].startswith(f"00-{TRACE}-")   # preserve: the incoming format


def test_queue_batches_spans(echo_upstream, collector):
    routes = [route("q", [_zipkin(collector, queue={"max_batch_size": 6, "max_coalescing_delay": 2})])]

    async def scenario(client):
        for _ in range(2):
            await client.get("/q/x")
        await collector.wait_spans(6)

    serve(kong_config(echo_upstream.port, routes), scenario)
    assert [len(b) for b in collector.batches] == [6]   # two requests' spans in one POST
