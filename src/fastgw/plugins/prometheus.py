"""prometheus: Kong's metrics, counted in C shared memory and rendered by a prometheus_client
collector (Kong 3.x names, labels and latency buckets; kong/plugins/prometheus/exporter.lua).

Rules of this module:
- The counters live in ONE :class:`fastgw._core.metrics.SharedMetrics` per node: call
  :func:`init_shared` in the master BEFORE forking workers; every worker then adds into the same
  memory and any process renders the aggregate (:func:`metrics_text`, the Admin API's
  ``GET /metrics``). Without ``init_shared`` the first use creates a process-local table.
- Label values (service/route/consumer names) are interned to small ids when a plugin instance
  is built (per snapshot) and cached in dicts; the log phase does two dict lookups and one C call.
- What is exported, as Kong 3.x:
    kong_http_requests_total{service,route,code,source,workspace,consumer} (status_code_metrics)
    kong_kong_latency_ms / kong_upstream_latency_ms / kong_request_latency_ms {service,route,workspace}
                                                                   (latency_metrics)
    kong_bandwidth_bytes{service,route,direction,workspace,consumer}        (bandwidth_metrics)
    kong_upstream_target_health{upstream,target,address,state,subsystem}
                                                                   (upstream_health_metrics)
    kong_nginx_connections_total{node_id,subsystem,state}, kong_nginx_requests_total,
    kong_datastore_reachable, kong_node_info, kong_nginx_metric_errors_total, kong_nginx_timers,
    kong_memory_workers_lua_vms_bytes, kong_memory_lua_shared_dict_(total_)bytes   (always)
  ``consumer`` is the consumer's username with ``per_consumer``, else "".
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import msgspec
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from fastgw import __version__
from fastgw._core import metrics as _m
from fastgw._core.metrics import SharedMetrics

from .base import Plugin, PluginEnv, field_error

__all__ = [
    "Prometheus",
    "PrometheusConfig",
    "init_shared",
    "shared_metrics",
    "metrics_text",
    "CONTENT_TYPE",
    "KongCollector",
    "set_upstream_health_provider",
    "set_datastore_reachable",
]

log = logging.getLogger("fastgw.plugins.prometheus")

# prometheus text format 0.0.4, what Kong serves
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# fastgw has one workspace, Kong's "default": the label is there so Kong's Grafana dashboard
# (which filters and groups by workspace) works unchanged.
WORKSPACE = "default"

# Kong's states of a target in kong_upstream_target_health (one series per state, value 1 for
# the current one).
TARGET_STATES = ("healthchecks_off", "healthy", "unhealthy", "dns_error")

_shared: SharedMetrics | None = None
_node_id: str = str(uuid.uuid4())
_health_provider: Callable[[], Iterable[tuple[str, str, str, str]]] | None = None
# Kong exports upstream health once any instance enabled it, until restart (exporter.lua:
# "we will need a Kong reload if someone turned on upstream_health_metrics on and off again").
_export_upstream_health = False


def init_shared(strings: int = 8192, counters: int = 65536, histograms: int = 8192,
                node_id: str | None = None) -> SharedMetrics:
    """Create the node's metric tables. Call in the master before forking workers."""
    global _shared, _node_id
    _shared = SharedMetrics(strings, counters, histograms)
    _shared.gauge_set(_m.GAUGES["datastore_reachable"], 1)  # DB-less: nothing to lose
    if node_id:
        _node_id = node_id
    return _shared


def shared_metrics() -> SharedMetrics:
    """The node's metric tables (created process-locally on first use if init_shared was not
    called)."""
    s = _shared
    if s is None:
        s = init_shared()
    return s


def set_upstream_health_provider(fn: Callable[[], Iterable[tuple[str, str, str, str]]] | None) -> None:
    """Scrape-time source of ``(upstream, target, address, state)`` rows; ``state`` is one of
    TARGET_STATES. Set by the health checker of the process that serves /metrics."""
    global _health_provider
    _health_provider = fn


def set_datastore_reachable(ok: bool) -> None:
    """kong_datastore_reachable (1 by default: fastgw's config store is a file or Redis)."""
    shared_metrics().gauge_set(_m.GAUGES["datastore_reachable"], 1 if ok else 0)


class PrometheusConfig(msgspec.Struct, forbid_unknown_fields=True):
    # Kong 3.x defaults: every optional family off; each costs counter slots per label set.
    per_consumer: bool = False
    status_code_metrics: bool = False
    latency_metrics: bool = False
    bandwidth_metrics: bool = False
    upstream_health_metrics: bool = False
    # Kong 3.8 field: false (the default) loads; true is refused, fastgw has no AI proxy
    # plugins whose requests it would measure.
    ai_metrics: bool = False

    def __post_init__(self) -> None:
        if self.ai_metrics:
            raise field_error("ai_metrics", "not supported by fastgw (no AI proxy plugins)")


def service_label(service: Any) -> str:
    # Kong: message.service.name or message.service.host
    return str(getattr(service, "name", None) or getattr(service, "host", None) or "")


def route_label(route: Any) -> str:
    # Kong: message.route.name or message.route.id
    if route is None:
        return ""
    return str(getattr(route, "name", None) or getattr(route, "id", None) or "")


def _fit(value: str) -> str:
    """Label values longer than the C table's entries keep a prefix (never on the hot path)."""
    b = value.encode("utf-8")
    if len(b) <= _m.MAX_LABEL_BYTES:
        return value
    return b[: _m.MAX_LABEL_BYTES - 3].decode("utf-8", "ignore") + "..."


class Prometheus(Plugin):
    name = "prometheus"
    PRIORITY = 13  # Kong's
    Config = PrometheusConfig

    def __init__(self, config: PrometheusConfig, env: PluginEnv) -> None:
        global _export_upstream_health
        super().__init__(config, env)
        self.metrics = shared_metrics()
        flags = 0
        if config.status_code_metrics:
            flags |= _m.FLAG_STATUS
        if config.latency_metrics:
            flags |= _m.FLAG_LATENCY
        if config.bandwidth_metrics:
            flags |= _m.FLAG_BANDWIDTH
        self.flags = flags
        if config.upstream_health_metrics:
            _export_upstream_health = True
        # label ids, interned once per snapshot: object id -> string id
        self._ids: dict[Any, int] = {}
        for s in env.services:
            self.label_id(s, service_label)
        for r in env.routes or ():
            self.label_id(r, route_label)
        if config.per_consumer:
            for c in env.consumers:
                self.label_id(c, consumer_label)

    def label_id(self, ent: Any, label: Callable[[Any], str]) -> int:
        key = (label, getattr(ent, "id", None) or id(ent))
        sid = self._ids.get(key)
        if sid is None:
            try:
                sid = self.metrics.intern(_fit(label(ent)))
            except OverflowError:
                log.error("prometheus: label table full; series of %r are dropped", label(ent))
                sid = 0
            self._ids[key] = sid
        return sid

    def log(self, ctx: Any) -> None:
        flags = self.flags
        if not flags:
            return
        service = ctx.service
        if service is None:  # Kong: "do not record any stats if the service is not present"
            return
        resp = ctx.response
        code = resp.status if resp is not None else 0
        if resp is not None and resp.source != "service":
            flags |= _m.FLAG_SOURCE_KONG
        consumer = 0
        if self.config.per_consumer and ctx.consumer is not None:
            consumer = self.label_id(ctx.consumer, consumer_label)
        self.metrics.record(
            self.label_id(service, service_label),
            self.label_id(ctx.route, route_label) if ctx.route is not None else 0,
            consumer,
            code if 0 <= code < 1024 else 0,
            flags,
            ctx.bytes_in or 0,
            ctx.bytes_out or 0,
            _ms(ctx.request_latency),
            _ms(ctx.upstream_latency),
            _ms(ctx.proxy_latency),
        )


def consumer_label(consumer: Any) -> str:
    return str(getattr(consumer, "username", None) or "")


def _ms(v: float | None) -> float:
    return -1.0 if v is None else float(v)


class KongCollector:
    """prometheus_client collector reading the C tables at scrape time."""

    def __init__(self, metrics: SharedMetrics | None = None, node_id: str | None = None) -> None:
        self._metrics = metrics
        self._node_id = node_id

    def collect(self) -> Iterator[Metric]:
        m = self._metrics or shared_metrics()
        node = self._node_id or _node_id
        g = _m.GAUGES
        conns = GaugeMetricFamily("kong_nginx_connections_total", "Number of connections by subsystem",
                                  labels=["node_id", "subsystem", "state"])
        for state in ("accepted", "handled", "total", "active", "reading", "writing", "waiting"):
            conns.add_metric([node, "http", state], m.gauge(g[state]))
        yield conns
        reqs = GaugeMetricFamily("kong_nginx_requests_total", "Number of requests total",
                                 labels=["node_id", "subsystem"])
        reqs.add_metric([node, "http"], m.gauge(g["total"]))
        yield reqs
        yield GaugeMetricFamily("kong_datastore_reachable",
                                "Datastore reachable from Kong, 0 is unreachable",
                                value=m.gauge(g["datastore_reachable"]))
        info = GaugeMetricFamily("kong_node_info", "Kong Node metadata information",
                                 labels=["node_id", "version"])
        info.add_metric([node, __version__], 1)
        yield info
        # Kong's nginx_timers{state}: fastgw's timers are the event loop's; one sweep timer per
        # worker runs all timeouts (the proxy core), so "running" counts asyncio tasks of the
        # scraping process and "pending" its scheduled callbacks when the loop exposes them.
        timers = GaugeMetricFamily("kong_nginx_timers", "Number of nginx timers", labels=["state"])
        running, pending = _loop_timers()
        timers.add_metric(["running"], running)
        timers.add_metric(["pending"], pending)
        yield timers
        # Kong's memory gauges: the metric tables are fastgw's one shared dict; the worker
        # "Lua VM" is the resident set of the scraping process (Linux /proc/self/statm)
        vms = GaugeMetricFamily("kong_memory_workers_lua_vms_bytes", "Allocated bytes in worker Lua VM",
                                labels=["node_id", "pid", "kong_subsystem"])
        vms.add_metric([node, str(os.getpid()), "http"], _rss_bytes())
        yield vms
        shm = GaugeMetricFamily("kong_memory_lua_shared_dict_bytes",
                                "Allocated slabs in bytes in a shared_dict",
                                labels=["node_id", "shared_dict", "kong_subsystem"])
        shm_total = GaugeMetricFamily("kong_memory_lua_shared_dict_total_bytes",
                                      "Total capacity in bytes of a shared_dict",
                                      labels=["node_id", "shared_dict", "kong_subsystem"])
        shm.add_metric([node, "prometheus_metrics", "http"], m.nbytes)
        shm_total.add_metric([node, "prometheus_metrics", "http"], m.nbytes)
        yield shm
        yield shm_total
        if _export_upstream_health and _health_provider is not None:
            health = GaugeMetricFamily(
                "kong_upstream_target_health",
                "Health status of targets of upstream. States = healthchecks_off|healthy|"
                "unhealthy|dns_error, value is 1 when state is populated.",
                labels=["upstream", "target", "address", "state", "subsystem"])
            for upstream, target, address, state in _health_provider():
                for s in TARGET_STATES:
                    health.add_metric([upstream, target, address, s, "http"], 1 if s == state else 0)
            yield health

        name = m.string
        status = CounterMetricFamily("kong_http_requests_total",
                                     "HTTP status codes per consumer/service/route in Kong",
                                     labels=["service", "route", "code", "source", "workspace",
                                             "consumer"])
        bandwidth = Metric("kong_bandwidth_bytes", "Total bandwidth (ingress/egress) throughput in bytes",
                           "counter")
        for key, value in m.counters():
            metric, sid, rid, cid, code, flag = _m.split_key(key)
            if metric == _m.METRIC_HTTP_REQUESTS:
                status.add_metric([name(sid), name(rid), str(code), "kong" if flag else "service",
                                   WORKSPACE, name(cid)], value)
            elif metric == _m.METRIC_BANDWIDTH:
                bandwidth.add_sample("kong_bandwidth_bytes",
                                     {"service": name(sid), "route": name(rid),
                                      "direction": "egress" if flag else "ingress",
                                      "workspace": WORKSPACE, "consumer": name(cid)},
                                     value)
        yield status
        yield bandwidth

        hists = {
            _m.METRIC_KONG_LATENCY: HistogramMetricFamily(
                "kong_kong_latency_ms",
                "Latency added by Kong and enabled plugins for each service/route in Kong",
                labels=["service", "route", "workspace"]),
            _m.METRIC_UPSTREAM_LATENCY: HistogramMetricFamily(
                "kong_upstream_latency_ms",
                "Latency added by upstream response for each service/route in Kong",
                labels=["service", "route", "workspace"]),
            _m.METRIC_REQUEST_LATENCY: HistogramMetricFamily(
                "kong_request_latency_ms",
                "Total latency incurred during requests for each service/route in Kong",
                labels=["service", "route", "workspace"]),
        }
        for key, count, sum_ms, buckets in m.histograms():
            metric, sid, rid, _cid, _code, _flag = _m.split_key(key)
            fam = hists.get(metric)
            if fam is None:
                continue
            bounds = _m.KONG_LATENCY_BUCKETS if metric == _m.METRIC_KONG_LATENCY else _m.UPSTREAM_LATENCY_BUCKETS
            cum = 0
            rows = []
            for le, n in zip(bounds, buckets):
                cum += n
                rows.append((_le(le), cum))
            rows.append(("+Inf", count))
            fam.add_metric([name(sid), name(rid), WORKSPACE], rows, sum_ms)
        yield from hists.values()

        errors = CounterMetricFamily("kong_nginx_metric_errors_total",
                                     "Number of nginx-lua-prometheus errors")
        errors.add_metric([], m.errors)
        yield errors


def _loop_timers() -> tuple[int, int]:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return 0, 0
    scheduled = getattr(loop, "_scheduled", None)  # asyncio's heap; uvloop keeps its own
    return len(asyncio.all_tasks(loop)), len(scheduled) if scheduled is not None else 0


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _le(v: float) -> str:
    return f"{v:.1f}"


def metrics_text(metrics: SharedMetrics | None = None) -> bytes:
    """The Prometheus text exposition of the node's metrics (Admin API ``GET /metrics``)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(KongCollector(metrics))
    text = generate_latest(registry)
    # prometheus_client names every counter family "<name>_total" in HELP/TYPE; Kong's
    # bandwidth counter is called kong_bandwidth_bytes, so its header lines are renamed back.
    return text.replace(b" kong_bandwidth_bytes_total ", b" kong_bandwidth_bytes ")
