"""_core.metrics and the prometheus plugin: Kong 3.x names/labels/buckets, aggregation across
forked workers, config switches."""
from __future__ import annotations

import os
import re
from types import SimpleNamespace

import pytest
from prometheus_client.parser import text_string_to_metric_families

from fastgw._core import metrics as m
from fastgw.plugins import PluginConfigError, PluginEnv, validate_config
from fastgw.plugins import prometheus as prom

from plugins_engines.helpers import ROUTE, SERVICE, Gateway


@pytest.fixture(autouse=True)
def fresh_metrics() -> None:
    prom.init_shared(strings=256, counters=1024, histograms=256, node_id="node-1")
    prom.set_upstream_health_provider(None)


def samples(text: bytes) -> dict[tuple[str, tuple], float]:
    out = {}
    for fam in text_string_to_metric_families(text.decode()):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


# families that carry Kong's workspace label (always "default" in fastgw)
_WORKSPACED = ("kong_http_requests_total", "kong_bandwidth_bytes", "kong_kong_latency_ms",
               "kong_upstream_latency_ms", "kong_request_latency_ms")


def sample(text: bytes, name: str, **labels: str) -> float | None:
    if name.startswith(_WORKSPACED) and "workspace" not in labels:
        labels["workspace"] = "default"
    return samples(text).get((name, tuple(sorted(labels.items()))))


ALL_ON = {"per_consumer": True, "status_code_metrics": True, "latency_metrics": True,
          "bandwidth_metrics": True, "upstream_health_metrics": True}


def run_request(g: Gateway, status: int = 200, consumer=None, source: str = "service",
                bytes_in: int = 100, bytes_out: int = 2000, request_ms=12.0, upstream_ms=8.0, kong_ms=3.0) -> None:
    ctx, resp = g.request()
    assert resp is None
    ctx.consumer = consumer
    from fastgw.plugins import ListHeaders

    ctx.set_response(status, ListHeaders([]), source)
    ctx.bytes_in, ctx.bytes_out = bytes_in, bytes_out
    ctx.request_latency, ctx.upstream_latency, ctx.proxy_latency = request_ms, upstream_ms, kong_ms
    assert g.chain.run_log(ctx) is None


def test_config_defaults_are_kong_3x() -> None:
    c = validate_config("prometheus", {})
    assert (c.per_consumer, c.status_code_metrics, c.latency_metrics, c.bandwidth_metrics,
            c.upstream_health_metrics) == (False, False, False, False, False)
    with pytest.raises(PluginConfigError):
        validate_config("prometheus", {"per_consumer": "maybe"})


def test_requests_latency_bandwidth_with_kong_names_and_labels() -> None:
    alice = SimpleNamespace(id="c1", username="alice")
    env = PluginEnv(consumers=[alice], services=[SERVICE], routes=[ROUTE])
    g = Gateway([{"name": "prometheus", "config": ALL_ON}], env)
    run_request(g, consumer=alice)
    run_request(g, consumer=alice, request_ms=300.0, upstream_ms=None, kong_ms=0.5)
    run_request(g, status=401, source="exit", consumer=None, upstream_ms=None)
    text = prom.metrics_text()
    base = {"service": "service-one", "route": "route-one", "workspace": "default"}
    assert sample(text, "kong_http_requests_total", **base, code="200", source="service", consumer="alice") == 2
    assert sample(text, "kong_http_requests_total", **base, code="401", source="kong", consumer="") == 1
    assert sample(text, "kong_bandwidth_bytes_total", **base, direction="ingress", consumer="alice") == 200
    assert sample(text, "kong_bandwidth_bytes_total", **base, direction="egress", consumer="alice") == 4000
    # Kong's exact family and sample name (the parser above reads counters as "<name>_total")
    assert b"# TYPE kong_bandwidth_bytes counter" in text
    assert b'\nkong_bandwidth_bytes{consumer="alice",direction="egress",route="route-one",service="service-one",workspace="default"} 4000.0' in text
    # histograms: Kong's buckets, cumulative, counts and sums
    assert sample(text, "kong_request_latency_ms_count", **base) == 3
    assert sample(text, "kong_request_latency_ms_sum", **base) == pytest.approx(324.0)
    assert sample(text, "kong_request_latency_ms_bucket", **base, le="25.0") == 2
    assert sample(text, "kong_request_latency_ms_bucket", **base, le="250.0") == 2
    assert sample(text, "kong_request_latency_ms_bucket", **base, le="400.0") == 3
    assert sample(text, "kong_upstream_latency_ms_count", **base) == 1  # only measured ones
    assert sample(text, "kong_kong_latency_ms_bucket", **base, le="1.0") == 1
    assert sample(text, "kong_kong_latency_ms_bucket", **base, le="5.0") == 3
    les = sorted({float(lbl[1]) for (n, lbls) in samples(text) for lbl in lbls
                  if n == "kong_kong_latency_ms_bucket" and lbl[0] == "le" and lbl[1] != "+Inf"})
    assert les == [1, 2, 5, 7, 10, 15, 20, 30, 50, 75, 100, 200, 500, 750, 1000]
    # node metrics always there
    assert sample(text, "kong_datastore_reachable") == 1
    assert sample(text, "kong_node_info", node_id="node-1", version=__import__("fastgw").__version__) == 1
    assert sample(text, "kong_nginx_metric_errors_total") == 0


def test_switches_off_record_nothing_per_request() -> None:
    g = Gateway([{"name": "prometheus", "config": {}}], PluginEnv(services=[SERVICE], routes=[ROUTE]))
    run_request(g)
    text = prom.metrics_text()
    assert not any(n.startswith(("kong_http_requests_total", "kong_bandwidth", "kong_request_latency"))
                   for n, _ in samples(text))


def test_per_consumer_off_leaves_consumer_label_empty() -> None:
    alice = SimpleNamespace(id="c1", username="alice")
    g = Gateway([{"name": "prometheus", "config": {"status_code_metrics": True}}])
    run_request(g, consumer=alice)
    assert sample(prom.metrics_text(), "kong_http_requests_total", service="service-one", route="route-one",
                  code="200", source="service", consumer="") == 1


def test_no_service_no_stats() -> None:
    g = Gateway([{"name": "prometheus", "config": ALL_ON}])
    ctx, _ = g.request(service=None)
    from fastgw.plugins import ListHeaders

    ctx.set_response(404, ListHeaders([]), "exit")
    g.plugin("prometheus").log(ctx)
    assert not any(n.startswith("kong_http_requests_total") for n, _ in samples(prom.metrics_text()))


def test_connection_gauges_and_upstream_health() -> None:
    s = prom.shared_metrics()
    s.connection_opened()
    s.connection_opened()
    s.connection_closed()
    s.request_started()
    Gateway([{"name": "prometheus", "config": {"upstream_health_metrics": True}}])
    prom.set_upstream_health_provider(lambda: [("up1", "10.0.0.1:80", "10.0.0.1:80", "unhealthy")])
    text = prom.metrics_text()
    conn = {st: sample(text, "kong_nginx_connections_total", node_id="node-1", subsystem="http", state=st)
            for st in ("accepted", "handled", "active", "total")}
    assert conn == {"accepted": 2, "handled": 2, "active": 1, "total": 1}
    assert sample(text, "kong_nginx_requests_total", node_id="node-1", subsystem="http") == 1
    for st, v in (("healthy", 0), ("unhealthy", 1), ("dns_error", 0), ("healthchecks_off", 0)):
        assert sample(text, "kong_upstream_target_health", upstream="up1", target="10.0.0.1:80",
                      address="10.0.0.1:80", state=st, subsystem="http") == v
    prom.set_datastore_reachable(False)
    assert sample(prom.metrics_text(), "kong_datastore_reachable") == 0


def test_intern_is_stable_and_bounded() -> None:
    s = m.SharedMetrics(strings=16, counters=64, histograms=64)
    a = s.intern("svc")
    assert s.intern("svc") == a and s.string(a) == "svc" and s.intern("") == 0
    with pytest.raises(ValueError):
        s.intern("x" * (m.MAX_LABEL_BYTES + 1))
    for i in range(15):
        s.intern(f"v{i}")
    with pytest.raises(OverflowError):
        s.intern("one-too-many")


def test_full_counter_table_counts_errors() -> None:
    s = m.SharedMetrics(strings=64, counters=64, histograms=64)
    for code in range(100, 200):
        s.record(1, 2, 0, code, m.FLAG_STATUS, 0, 0, -1, -1, -1)
    assert len(s.counters()) == 64
    assert s.errors == 100 - 64


def _worker(s: m.SharedMetrics, n: int) -> None:
    sid = s.intern("svc")  # interned in the child too: the same id as the parent's
    rid = s.intern("rt")
    for i in range(n):
        s.record(sid, rid, 0, 200 if i % 2 else 500, m.FLAG_STATUS | m.FLAG_LATENCY | m.FLAG_BANDWIDTH,
                 10, 20, 5.0, 5.0, 1.0)
        s.connection_opened()


def test_forked_workers_aggregate_into_one_table() -> None:
    s = m.SharedMetrics(strings=64, counters=256, histograms=64)
    pids = []
    for _ in range(3):
        pid = os.fork()
        if pid == 0:
            try:
                _worker(s, 2000)
            finally:
                os._exit(0)
        pids.append(pid)
    for pid in pids:
        _, st = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(st) == 0
    text = prom.metrics_text(s)
    assert sample(text, "kong_http_requests_total", service="svc", route="rt", code="200", source="service",
                  consumer="") == 3000
    assert sample(text, "kong_http_requests_total", service="svc", route="rt", code="500", source="service",
                  consumer="") == 3000
    assert sample(text, "kong_bandwidth_bytes_total", service="svc", route="rt", direction="egress", consumer="") == 120000
    assert sample(text, "kong_kong_latency_ms_count", service="svc", route="rt") == 6000
    assert s.gauge(m.GAUGES["accepted"]) == 6000


def test_long_label_values_are_cut_not_dropped() -> None:
    long_service = SimpleNamespace(id="s-long", name="s" * 400)
    g = Gateway([{"name": "prometheus", "config": {"status_code_metrics": True}}])
    run_request_with(g, long_service)
    names = [dict(lbls).get("service") for n, lbls in samples(prom.metrics_text())
             if n == "kong_http_requests_total"]
    assert len(names) == 1 and names[0].startswith("sss") and names[0].endswith("...")
    assert re.fullmatch(r"s+\.\.\.", names[0]) and len(names[0].encode()) <= m.MAX_LABEL_BYTES


def run_request_with(g: Gateway, service) -> None:
    from fastgw.plugins import ListHeaders

    ctx, _ = g.request(service=service)
    ctx.set_response(200, ListHeaders([]))
    g.plugin("prometheus").log(ctx)
