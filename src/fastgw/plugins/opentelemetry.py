"""opentelemetry: W3C Trace Context propagation, and OTLP span export when the SDK is there.

Propagation (always): the incoming ``traceparent`` (``00-<trace id>-<parent id>-<flags>``)
keeps its trace id and sampled flag; a missing or invalid one starts a new trace (sampled with
``sampling_rate``). Every hop gets a NEW span id: the upstream sees
``traceparent: 00-<trace id>-<our span id>-<flags>``; ``tracestate`` is forwarded unchanged.

Export (only with the optional ``otel`` extra installed and ``traces_endpoint`` set): a SERVER
span per request is started in access with the incoming parent and ended in log; the SDK's
BatchSpanProcessor + OTLP/HTTP exporter send it from their own thread (never the event loop).
Without the SDK the plugin propagates only and says so once in the log.
"""

from __future__ import annotations

import logging
import random
import re
from typing import Any, Literal

import msgspec

from .base import Plugin, PluginEnv, field_error

log = logging.getLogger("fastgw.plugins")

_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:-.*)?$")
_STATE = "opentelemetry"
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16

try:  # optional extra `otel`
    from opentelemetry import trace as _otel_trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
    from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

    HAVE_SDK = True
except ImportError:  # propagation only
    HAVE_SDK = False


class OpenTelemetryConfig(msgspec.Struct, forbid_unknown_fields=True):
    # OTLP/HTTP traces endpoint, e.g. http://collector:4318/v1/traces (None: propagate only).
    traces_endpoint: str | None = None
    headers: dict[str, str] | None = None
    resource_attributes: dict[str, str] | None = None
    batch_span_count: int = 200
    batch_flush_delay: float = 3.0
    send_timeout: int = 5000
    # Response header carrying the trace id to the client (None: none).
    http_response_header_for_traceid: str | None = None
    # "preserve"/"w3c": read and write traceparent; "ignore": always start a new trace.
    header_type: Literal["preserve", "w3c", "ignore"] = "preserve"
    # Share of NEW traces sampled (0..1; None = 1, Kong's tracing_sampling_rate default applies
    # to requests without an incoming parent).
    sampling_rate: float | None = None

    def __post_init__(self) -> None:
        if self.sampling_rate is not None and not 0 <= self.sampling_rate <= 1:
            raise field_error("sampling_rate", "value should be between 0 and 1")
        if self.batch_span_count < 1:
            raise field_error("batch_span_count", "value must be greater than 0")


def parse_traceparent(value: str | None) -> tuple[str, str, int] | None:
    """(trace id, parent span id, flags) of a valid W3C traceparent, else None."""
    if not value:
        return None
    m = _TRACEPARENT.match(value.strip())
    if not m:
        return None
    version, trace_id, parent, flags = m.groups()
    if version == "ff" or trace_id == _ZERO_TRACE or parent == _ZERO_SPAN:
        return None
    if version == "00" and len(value.strip()) != 55:
        return None
    return trace_id, parent, int(flags, 16)


_providers: dict[bytes, Any] = {}


def _provider(conf: OpenTelemetryConfig) -> Any:
    key = msgspec.json.encode(conf)
    p = _providers.get(key)
    if p is None:
        rate = 1.0 if conf.sampling_rate is None else conf.sampling_rate
        attrs = {"service.name": "kong", **(conf.resource_attributes or {})}
        p = TracerProvider(resource=Resource.create(attrs), sampler=ParentBased(TraceIdRatioBased(rate)))
        exporter = OTLPSpanExporter(
            endpoint=conf.traces_endpoint, headers=conf.headers or {}, timeout=conf.send_timeout / 1000
        )
        p.add_span_processor(
            BatchSpanProcessor(
                exporter,
                max_export_batch_size=conf.batch_span_count,
                schedule_delay_millis=conf.batch_flush_delay * 1000,
            )
        )
        _providers[key] = p
    return p


class OpenTelemetry(Plugin):
    name = "opentelemetry"
    PRIORITY = 14
    Config = OpenTelemetryConfig

    def __init__(self, config: OpenTelemetryConfig, env: PluginEnv) -> None:
        super().__init__(config, env)
        self._rate = 1.0 if config.sampling_rate is None else config.sampling_rate
        self._rand = random.Random()
        self._tracer = None
        if config.traces_endpoint:
            if HAVE_SDK:
                self._tracer = _provider(config).get_tracer("fastgw")
            else:
                log.warning("opentelemetry: SDK not installed (pip install 'fastgw[otel]'): propagating only")

    @property
    def provider(self) -> Any:
        return _provider(self.config) if self._tracer is not None else None

    def _new_trace_id(self) -> str:
        return f"{self._rand.getrandbits(128) or 1:032x}"

    def _new_span_id(self) -> str:
        return f"{self._rand.getrandbits(64) or 1:016x}"

    def access(self, ctx: Any) -> None:
        req = ctx.request
        parsed = None
        if self.config.header_type != "ignore":
            parsed = parse_traceparent(req.get_header("traceparent"))
        if self._tracer is not None:
            trace_id, span_id, flags, span = self._start_span(ctx, parsed)
        else:
            span = None
            if parsed is not None:
                trace_id, _, flags = parsed
            else:
                trace_id = self._new_trace_id()
                flags = 1 if self._rand.random() < self._rate else 0
            span_id = self._new_span_id()
        req.set_header(b"traceparent", f"00-{trace_id}-{span_id}-{flags:02x}")
        ctx.vars[_STATE] = (trace_id, span_id, span)
        return None

    def _start_span(self, ctx: Any, parsed: tuple[str, str, int] | None) -> tuple[str, str, int, Any]:
        parent_ctx = None
        if parsed is not None:
            tid, pid, flags = parsed
            sc = SpanContext(int(tid, 16), int(pid, 16), is_remote=True, trace_flags=TraceFlags(flags & 1))
            parent_ctx = _otel_trace.set_span_in_context(NonRecordingSpan(sc))
        req = ctx.request
        span = self._tracer.start_span(  # type: ignore[union-attr]
            f"kong.{req.method}",
            context=parent_ctx,
            kind=SpanKind.SERVER,
            start_time=int(ctx.now * 1e9),
            attributes={"http.method": req.method, "http.target": req.original_target.decode("latin-1"),
                        "http.scheme": req.scheme, "net.peer.ip": ctx.client_ip},
        )
        sc = span.get_span_context()
        return f"{sc.trace_id:032x}", f"{sc.span_id:016x}", int(sc.trace_flags), span

    def header_filter(self, ctx: Any) -> None:
        name = self.config.http_response_header_for_traceid
        state = ctx._vars.get(_STATE) if ctx._vars else None
        if name and state is not None:
            ctx.response.set_header(name, state[0])
        return None

    def log(self, ctx: Any) -> None:
        state = ctx._vars.get(_STATE) if ctx._vars else None
        if state is None or state[2] is None:
            return None
        span = state[2]
        if ctx.response is not None:
            span.set_attribute("http.status_code", ctx.response.status)
        if ctx.route is not None and getattr(ctx.route, "name", None):
            span.set_attribute("http.route", str(ctx.route.name))
        latency = ctx.request_latency or 0.0
        span.end(end_time=int((ctx.started_at * 1000 + latency) * 1e6))
        return None
