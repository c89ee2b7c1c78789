"""zipkin: trace propagation (B3, W3C, Jaeger, OT, Datadog, AWS, GCP, Instana) and Zipkin v2
span export (Kong
kong/plugins/zipkin).

Per request: a SERVER span (the request, started at the request's start) and a CLIENT child
span "(proxy)" whose ids go upstream in the configured formats (_propagation.py); with an
upstream target a "(balancer try n)" span; all three are reported in the log phase when the
trace is sampled (the incoming decision, else ``sample_ratio``) and ``http_endpoint`` is set
(_zipkin_reporter.py). Timestamps are the request's start (``ctx.started_at``) plus the
monotonic time elapsed since zipkin's first phase (PRIORITY 100000: it runs first), so spans
are exact relative to each other and follow the gateway's clock.
"""

from __future__ import annotations

import os
import random
import re
import time
from typing import Any, Literal

import msgspec

from . import _propagation as prop
from ._kong_schema import check_between, check_header_name, check_one_of, check_url
from ._zipkin_reporter import Reporter, Span, reporter_for
from .base import Plugin, PluginEnv, field_error
from .http_log import QueueConfig

PROTECTED_TAGS = ("error", "http.method", "http.path", "http.status_code", "kong.balancer.state",
                  "kong.balancer.try", "kong.consumer", "kong.credential", "kong.node.id", "kong.route",
                  "kong.service", "lc", "peer.hostname")
HEADER_TYPES = ("preserve", "ignore", "b3", "b3-single", "w3c", "jaeger", "ot", "aws", "datadog", "gcp", "instana")
# typedefs.timeout: 0 .. 2^31 - 2 ms
_MAX_TIMEOUT = 2**31 - 2


_TAG = re.compile(r"^\s*(\S+)\s*=\s*(.*\S)\s*$")


class StaticTag(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    value: str


class PropagationConfig(msgspec.Struct, forbid_unknown_fields=True):
    extract: list[str] | None = None
    inject: list[str] | None = None
    clear: list[str] | None = None
    default_format: str = "b3"


class ZipkinConfig(msgspec.Struct, forbid_unknown_fields=True):
    local_service_name: str = "kong"
    http_endpoint: str | None = None
    sample_ratio: float = 0.001
    default_service_name: str | None = None
    include_credential: bool = True
    traceid_byte_count: int = 16
    header_type: str = "preserve"  # deprecated in Kong 3.x (use propagation)
    default_header_type: str = "b3"  # deprecated in Kong 3.x (use propagation.default_format)
    tags_header: str = "Zipkin-Tags"
    static_tags: list[StaticTag] | None = None
    http_span_name: Literal["method", "method_path"] = "method"
    connect_timeout: int = 2000
    send_timeout: int = 5000
    read_timeout: int = 5000
    http_response_header_for_traceid: str | None = None
    phase_duration_flavor: Literal["annotations", "tags"] = "annotations"
    queue: QueueConfig = msgspec.field(default_factory=QueueConfig)
    propagation: PropagationConfig = msgspec.field(default_factory=PropagationConfig)

    def __post_init__(self) -> None:
        check_url("http_endpoint", self.http_endpoint)
        check_between("sample_ratio", self.sample_ratio, 0, 1)
        if self.traceid_byte_count not in (8, 16):
            raise field_error("traceid_byte_count", "expected one of: 8, 16")
        check_one_of("header_type", self.header_type, HEADER_TYPES)
        check_one_of("default_header_type", self.default_header_type, HEADER_TYPES[2:])
        for t in ("connect_timeout", "send_timeout", "read_timeout"):
            check_between(t, getattr(self, t), 0, _MAX_TIMEOUT)
        seen: set[str] = set()
        for i, tag in enumerate(self.static_tags or ()):
            if tag.name in PROTECTED_TAGS:
                raise field_error(f"static_tags[{i}].name", "must not be one of: " + ", ".join(PROTECTED_TAGS))
            if tag.name in seen:
                raise field_error("static_tags", f"repeated tags are not allowed: {tag.name}")
            seen.add(tag.name)
        p = self.propagation
        for i, f in enumerate(p.extract or ()):
            check_one_of(f"propagation.extract[{i}]", f, prop.EXTRACTORS)
        for i, f in enumerate(p.inject or ()):
            check_one_of(f"propagation.inject[{i}]", f, ("preserve", *prop.FORMATS))
        for i, h in enumerate(p.clear or ()):
            check_header_name(f"propagation.clear[{i}]", h)
        check_one_of("propagation.default_format", p.default_format, prop.FORMATS)


class _State:
    __slots__ = ("request_span", "proxy_span", "perf0", "extracted", "extracted_from", "hf_finished")

    def __init__(self, request_span: Span, perf0: float, extracted: prop.TraceContext, extracted_from: str | None):
        self.request_span = request_span
        self.proxy_span: Span | None = None
        self.perf0 = perf0
        self.extracted = extracted
        self.extracted_from = extracted_from
        self.hf_finished = False


def _parse_tags(values: list[str]) -> dict[str, str]:
    """request_tags.lua: ``name=value;name2=value2`` (several header lines allowed)."""
    out = {}
    for v in values:
        for item in v.split(";"):
            m = _TAG.match(item)
            if m:
                out[m.group(1)] = m.group(2)
    return out


class Zipkin(Plugin):
    name = "zipkin"
    PRIORITY = 100000
    Config = ZipkinConfig

    def __init__(self, config: ZipkinConfig, env: PluginEnv) -> None:
        super().__init__(config, env)
        ex, inj, clear, default = prop.plugin_params(config.propagation, config.header_type, config.default_header_type)
        self._extract = ex
        self._inject = inj
        self._clear = [c.lower() for c in clear]
        self._default = default
        self._vkey = ("zipkin", id(self))
        self._tags_header = config.tags_header.lower()
        self._key = msgspec.json.encode([config.http_endpoint, config.queue, config.connect_timeout,
                                         config.send_timeout, config.read_timeout])

    # ---------------------------------------------------------------- context
    def _now_mu(self, ctx: Any, st: _State) -> float:
        return (ctx.started_at + (time.perf_counter() - st.perf0)) * 1e6

    def _state(self, ctx: Any) -> _State:
        st: _State | None = ctx.vars.get(self._vkey)
        if st is not None:
            return st
        conf = self.config
        req = ctx.request
        headers = req.get_headers()
        extracted, source = prop.extract(headers, self._extract)
        if extracted.reuse_span_id:
            span_id, parent_id = extracted.span_id, extracted.parent_id
        else:
            span_id, parent_id = None, extracted.span_id
        sample = extracted.should_sample
        if sample is None:
            sample = random.random() < conf.sample_ratio
        trace_id = extracted.trace_id if extracted.trace_id is not None else os.urandom(conf.traceid_byte_count)
        method = req.method
        name = f"{method} {req.path}" if conf.http_span_name == "method_path" else method
        span = Span("SERVER", name, ctx.started_at * 1e6, sample, trace_id, span_id, parent_id, extracted.baggage)
        span.ip = ctx.client_ip
        span.set_tag("lc", "kong")
        span.set_tag("http.method", method)
        span.set_tag("http.host", req.host.split(":", 1)[0] if req.host else None)
        span.set_tag("http.path", req.path)
        span.set_tag("http.protocol", "HTTP/1.1")
        for tag in conf.static_tags or ():
            span.set_tag(tag.name, tag.value)
        tv = headers.get(self._tags_header)
        if tv is not None:
            for k, v in _parse_tags(tv if isinstance(tv, list) else [tv]).items():
                span.set_tag(k, v)
        st = ctx.vars[self._vkey] = _State(span, time.perf_counter(), extracted, source)
        return st

    def _proxy_span(self, st: _State, ts_mu: float) -> Span:
        if st.proxy_span is None:
            st.proxy_span = st.request_span.child("CLIENT", st.request_span.name + " (proxy)", ts_mu)
        return st.proxy_span

    # ----------------------------------------------------------------- phases
    def access(self, ctx: Any) -> None:
        st = self._state(ctx)
        proxy = self._proxy_span(st, self._now_mu(ctx, st))
        inj = st.extracted
        inj.trace_id, inj.span_id, inj.parent_id = proxy.trace_id, proxy.span_id, proxy.parent_id
        inj.should_sample, inj.baggage = proxy.should_sample, proxy.baggage
        req = ctx.request
        for h in self._clear:
            req.clear_header(h)
        ids: dict[str, str] = {}
        for fmt in self._inject:
            if fmt == "preserve":
                fmt = st.extracted_from or self._default or "w3c"
                if fmt == "b3" and inj.single_header:
                    fmt = "b3-single"
            headers = prop.inject(inj, fmt)
            if headers is None:
                continue
            for n, v in headers.items():
                req.set_header(n, v)
            ids["b3" if fmt == "b3-single" else fmt] = prop.formatted_trace_id(inj, fmt)
        if ids:
            ctx.set_serialize_value("trace_id", ids)
        return None

    def header_filter(self, ctx: Any) -> None:
        st = self._state(ctx)
        now = self._now_mu(ctx, st)
        proxy = self._proxy_span(st, now)
        if self.config.phase_duration_flavor == "annotations":
            proxy.annotate("khs", now)
        name = self.config.http_response_header_for_traceid
        if name:
            ctx.response.add_header(name, proxy.trace_id.hex())
        return None

    def log(self, ctx: Any) -> None:
        conf = self.config
        st = self._state(ctx)
        now = self._now_mu(ctx, st)
        req_span = st.request_span
        proxy = self._proxy_span(st, now)
        if conf.phase_duration_flavor == "annotations":
            req_span.annotate("krs", req_span.timestamp)
            proxy.annotate("kas", proxy.timestamp)
            proxy.annotate("kaf", now)
            if not st.hf_finished:
                proxy.annotate("khf", now)
                st.hf_finished = True
            proxy.annotate("kbf", now)
        spans: list[Span] = []
        target = ctx.upstream_target
        service, route = ctx.service, ctx.route
        if target:
            host, _, port = target.rpartition(":")
            tries = max(ctx.tries, 1)
            b = req_span.child("CLIENT", f"{req_span.name} (balancer try {tries})", proxy.timestamp)
            b.ip, b.port = host.strip("[]"), int(port) if port.isdigit() else None
            b.set_tag("kong.balancer.try", tries)
            self._tag_service_route(b, service, route)
            b.finish(now)
            spans.append(b)
            proxy.set_tag("peer.hostname", getattr(service, "host", None) if service is not None else None)
            proxy.ip, proxy.port = b.ip, b.port
        res = ctx.response
        if res is not None:
            req_span.set_tag("http.status_code", res.status)
        if ctx.consumer is not None:
            req_span.set_tag("kong.consumer", getattr(ctx.consumer, "id", None))
        if conf.include_credential and ctx.credential is not None:
            req_span.set_tag("kong.credential", getattr(ctx.credential, "id", None))
        req_span.set_tag("kong.node.id", self.env.settings.get("node_id"))
        self._tag_service_route(proxy, service, route)
        proxy.finish(now)
        req_span.finish(now)
        spans += [proxy, req_span]
        if not req_span.should_sample or not conf.http_endpoint:
            return None
        r = reporter_for(self._key, self._make)
        if r is not None:
            for s in spans:
                r.put(s.to_zipkin(conf.local_service_name, conf.default_service_name))
        return None

    @staticmethod
    def _tag_service_route(span: Span, service: Any, route: Any) -> None:
        if service is not None and getattr(service, "id", None):
            span.set_tag("kong.service", service.id)
            name = getattr(service, "name", None)
            if isinstance(name, str):
                span.service_name = name
                span.set_tag("kong.service_name", name)
        if route is not None:
            if getattr(route, "id", None):
                span.set_tag("kong.route", route.id)
            if isinstance(getattr(route, "name", None), str):
                span.set_tag("kong.route_name", route.name)

    def _make(self, loop: Any) -> Reporter:
        c = self.config
        return Reporter(c.http_endpoint or "", c.queue, (c.connect_timeout, c.send_timeout, c.read_timeout), loop)

