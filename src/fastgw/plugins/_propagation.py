"""Kong's tracing header propagation (kong/observability/tracing/propagation): extract a
tracing context from the first matching format, clear headers, inject into every configured
format. Formats: b3 (multi-header and single ``b3``), w3c (``traceparent``), jaeger
(``uber-trace-id`` + ``uberctx-*`` baggage), ot (``ot-tracer-*`` + ``ot-baggage-*``), datadog
(``x-datadog-*``, decimal ids), aws (``x-amzn-trace-id``), gcp (``x-cloud-trace-context``),
instana (``x-instana-t/s/l``).

Ids are bytes as in Kong: extracted trace ids are left-padded to 16 bytes, span ids to 8,
and an injector writes a trace id in the size it arrived in when the format allows it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote, unquote

FORMATS = ("w3c", "b3", "b3-single", "jaeger", "ot", "datadog", "aws", "gcp", "instana")
EXTRACTORS = tuple(f for f in FORMATS if f != "b3-single")

_HEX = re.compile(r"^[0-9a-fA-F]+$")
_B3_SINGLE = re.compile(r"^([0-9a-fA-F]+)-([0-9a-fA-F]{16})-?([01d]?)-?([0-9a-fA-F]*)$")
_W3C = re.compile(r"^([0-9a-fA-F]+)-([0-9a-fA-F]+)-([0-9a-fA-F]+)-([0-9a-fA-F]+)$")
_JAEGER = re.compile(r"^([0-9a-fA-F]+):([0-9a-fA-F]+):([0-9a-fA-F]+):([0-9a-fA-F]+)$")
_DEC = re.compile(r"^\s*(\d+)\s*$")
_AWS_ROOT = re.compile(r"^([0-9a-fA-F]+)-([0-9a-fA-F]+)-([0-9a-fA-F]+)$")
_GCP = re.compile(r"^([0-9a-f]{32})/([0-9]{1,20})(;o=([0-9]))?$")
_HEX_PREFIX = re.compile(r"^([0-9a-fA-F]+)")


def from_dec(s: str) -> bytes:
    """bn.from_dec(s):to_binary(): the number's minimal big-endian bytes."""
    n = int(s)
    return n.to_bytes(max(1, (n.bit_length() + 7) // 8), "big")


def to_dec(b: bytes) -> str:
    return str(int.from_bytes(b, "big"))


def from_hex(s: str | None) -> bytes | None:
    if s is None:
        return None
    if len(s) % 2:
        s = "0" + s
    return bytes.fromhex(s)


def to_size(b: bytes | None, n: int) -> bytes | None:
    if b is None:
        return None
    if len(b) > n:
        return b[-n:]
    return b"\0" * (n - len(b)) + b


class TraceContext:
    """An extracted (then injected) context; fields as Kong's extracted_ctx table."""

    __slots__ = ("trace_id", "span_id", "parent_id", "should_sample", "baggage", "flags",
                 "single_header", "reuse_span_id", "original_size")

    def __init__(self) -> None:
        self.trace_id: bytes | None = None
        self.span_id: bytes | None = None
        self.parent_id: bytes | None = None
        self.should_sample: bool | None = None
        self.baggage: dict[str, str] | None = None
        self.flags: str | None = None
        self.single_header = False
        self.reuse_span_id = False
        self.original_size: int | None = None

    def empty(self) -> bool:
        return (self.trace_id is None and self.span_id is None and self.parent_id is None
                and self.should_sample is None and self.baggage is None and self.flags is None)


def _valid_hex(v: str | None, sizes: Sequence[int]) -> bool:
    return v is not None and len(v) in sizes and _HEX.match(v) is not None


def _bool(v: str | None) -> bool | None:
    if v in ("1", "true"):
        return True
    if v in ("0", "false"):
        return False
    return None


def _baggage(headers: Mapping[str, Any], prefix: str) -> dict[str, str] | None:
    out = {k[len(prefix):]: unquote(v if isinstance(v, str) else v[0]) for k, v in headers.items() if k.startswith(prefix)}
    return out or None


def _first(headers: Mapping[str, Any], name: str) -> str | None:
    v = headers.get(name)
    if isinstance(v, list):
        return v[0] if v else None
    return v


def _extract_b3(h: Mapping[str, Any]) -> TraceContext | None:
    names = ("b3", "tracestate", "x-b3-traceid", "x-b3-spanid", "x-b3-parentspanid", "x-b3-sampled", "x-b3-flags")
    if not any(n in h for n in names):
        return None
    c = TraceContext()
    c.reuse_span_id = True
    tid = sid = pid = None
    single = _first(h, "b3")
    if single is None:
        ts = h.get("tracestate")
        for v in ts if isinstance(ts, list) else ([ts] if ts else []):
            m = re.match(r"^b3=(.+)$", v)
            if m:
                single = m.group(1)
                break
    if single is not None:
        c.single_header = True
        if single in ("1", "d"):
            c.should_sample = True
            c.flags = "1" if single == "d" else None
        elif single == "0":
            c.should_sample = False
        else:
            m = _B3_SINGLE.match(single)
            if m and len(m.group(1)) in (16, 32) and (m.group(4) == "" or len(m.group(4)) == 16):
                tid, sid, sampled, pid = m.group(1), m.group(2), m.group(3), m.group(4) or None
                if sampled in ("1", "d"):
                    c.should_sample = True
                    c.flags = "1" if sampled == "d" else None
                elif sampled == "0":
                    c.should_sample = False
    sampled_m = _bool(_first(h, "x-b3-sampled"))
    flags = _first(h, "x-b3-flags")
    if flags == "1":
        sampled_m = True
    if c.should_sample is None:
        c.should_sample = sampled_m
    c.flags = c.flags or flags
    mt, ms, mp = _first(h, "x-b3-traceid"), _first(h, "x-b3-spanid"), _first(h, "x-b3-parentspanid")
    invalid = ((mt is not None and not _valid_hex(mt, (16, 32))) or (ms is not None and not _valid_hex(ms, (16,)))
               or (mp is not None and not _valid_hex(mp, (16,))))
    if not invalid:
        tid, sid, pid = tid or mt, sid or ms, pid or mp
    if tid is None:
        sid = pid = None
    c.trace_id, c.span_id, c.parent_id = from_hex(tid), from_hex(sid), from_hex(pid)
    return c


def _extract_w3c(h: Mapping[str, Any]) -> TraceContext | None:
    tp = _first(h, "traceparent")
    if not tp:
        return None
    m = _W3C.match(tp)
    if not m:
        return None
    version, tid, pid, flags = m.groups()
    if version != "00" or len(tid) != 32 or int(tid, 16) == 0 or len(pid) != 16 or int(pid, 16) == 0 or len(flags) != 2:
        return None
    c = TraceContext()
    c.trace_id, c.span_id = from_hex(tid), from_hex(pid)
    c.should_sample = int(flags, 16) % 2 == 1
    return c


def _extract_jaeger(h: Mapping[str, Any]) -> TraceContext | None:
    v = _first(h, "uber-trace-id")
    if not v:
        return None
    m = _JAEGER.match(v)
    if not m:
        return None
    tid, sid, pid, flags = m.groups()
    if len(tid) > 32 or int(tid, 16) == 0 or len(sid) > 16 or int(sid, 16) == 0 or len(flags) not in (1, 2):
        return None
    c = TraceContext()
    c.reuse_span_id = True
    c.trace_id, c.span_id, c.parent_id = from_hex(tid), from_hex(sid), from_hex(pid)
    c.should_sample = int(flags, 16) % 2 == 1
    c.baggage = _baggage(h, "uberctx-")
    return c


def _extract_ot(h: Mapping[str, Any]) -> TraceContext | None:
    if not any(n in h for n in ("ot-tracer-sampled", "ot-tracer-traceid", "ot-tracer-spanid")):
        return None
    c = TraceContext()
    c.should_sample = _bool(_first(h, "ot-tracer-sampled"))
    tid, sid = _first(h, "ot-tracer-traceid"), _first(h, "ot-tracer-spanid")
    invalid = (tid is not None and not _valid_hex(tid, (16, 32))) or (sid is not None and not _valid_hex(sid, (16,)))
    if tid is None or invalid:
        tid = sid = None
    c.trace_id, c.span_id = from_hex(tid), from_hex(sid)
    c.baggage = _baggage(h, "ot-baggage-")
    return c


def _extract_datadog(h: Mapping[str, Any]) -> TraceContext | None:
    if not any(n in h for n in ("x-datadog-trace-id", "x-datadog-parent-id", "x-datadog-sampling-priority")):
        return None
    c = TraceContext()
    prio = _first(h, "x-datadog-sampling-priority")
    if prio in ("1", "2"):
        c.should_sample = True
    elif prio in ("0", "-1"):
        c.should_sample = False
    elif prio is not None:
        return None  # "x-datadog-sampling-priority header invalid"
    t, p = _first(h, "x-datadog-trace-id"), _first(h, "x-datadog-parent-id")
    tm = _DEC.match(t) if t is not None else None
    pm = _DEC.match(p) if p is not None else None
    if tm is not None:
        c.trace_id = from_dec(tm.group(1))
        c.span_id = from_dec(pm.group(1)) if pm is not None else None
    return c


def _extract_aws(h: Mapping[str, Any]) -> TraceContext | None:
    v = _first(h, "x-amzn-trace-id")
    if not isinstance(v, str):
        return None
    c = TraceContext()
    for pair in v.split(";"):
        key, _, value = pair.partition("=")
        key, value = key.strip(), value.strip()
        if key == "Root":
            m = _AWS_ROOT.match(value)
            if not m or len(value) != 35 or m.group(1) != "1" or len(m.group(2)) != 8 or len(m.group(3)) != 24:
                return None
            c.trace_id = from_hex(m.group(2) + m.group(3))
        elif key == "Parent":
            if len(value) != 16 or not _HEX.match(value):
                return None
            c.span_id = from_hex(value)
        elif key == "Sampled":
            if value not in ("0", "1"):
                return None
            c.should_sample = value == "1"
    return c


def _extract_gcp(h: Mapping[str, Any]) -> TraceContext | None:
    v = _first(h, "x-cloud-trace-context")
    if not isinstance(v, str):
        return None
    m = _GCP.match(v)
    if not m:
        return None
    c = TraceContext()
    c.trace_id, c.span_id = from_hex(m.group(1)), from_dec(m.group(2))
    c.should_sample = m.group(4) == "1"
    return c


def _extract_instana(h: Mapping[str, Any]) -> TraceContext | None:
    t, sp = _first(h, "x-instana-t"), _first(h, "x-instana-s")
    if not isinstance(t, str) or not isinstance(sp, str):
        return None
    c = TraceContext()
    tm, sm = _HEX_PREFIX.match(t), _HEX_PREFIX.match(sp)
    # Kong only warns about a trace id of another length than 16 or 32, and uses it
    c.trace_id = from_hex(tm.group(1)) if tm else None
    c.span_id = from_hex(sm.group(1)) if sm else None
    level = _first(h, "x-instana-l")
    c.should_sample = level is not None and level[:1] == "1"
    return c


_EXTRACT = {"b3": _extract_b3, "w3c": _extract_w3c, "jaeger": _extract_jaeger, "ot": _extract_ot,
            "datadog": _extract_datadog, "aws": _extract_aws, "gcp": _extract_gcp, "instana": _extract_instana}


def extract(headers: Mapping[str, Any], formats: Sequence[str]) -> tuple[TraceContext, str | None]:
    """The context of the first format found (and its name), or an empty one."""
    for f in formats:
        fn = _EXTRACT.get(f)
        c = fn(headers) if fn is not None else None
        if c is not None and not c.empty():
            if c.trace_id is not None:
                c.original_size = len(c.trace_id)
            c.trace_id = to_size(c.trace_id, 16)
            c.span_id = to_size(c.span_id, 8)
            c.parent_id = to_size(c.parent_id, 8)
            return c, f
    return TraceContext(), None


def _hex(b: bytes | None) -> str:
    return b.hex() if b is not None else ""


# injectors' trace_id_allowed_sizes (the first is used when the incoming size is not allowed)
_TRACE_SIZES = {"b3": (16, 8), "b3-single": (16, 8), "w3c": (16,), "jaeger": (16, 8), "ot": (8, 16),
                "datadog": (8,), "aws": (16,), "gcp": (16,), "instana": (16, 8)}


def formatted_trace_id(c: TraceContext, fmt: str) -> str:
    """The trace id as the injector of ``fmt`` writes it (Kong's get_formatted_trace_id)."""
    sizes = _TRACE_SIZES[fmt]
    tid = to_size(c.trace_id, c.original_size if c.original_size in sizes else sizes[0])
    if fmt == "datadog":
        return to_dec(tid) if tid is not None else ""
    return _hex(tid)


def inject(c: TraceContext, fmt: str) -> dict[str, str] | None:
    """The headers of format ``fmt`` for context ``c`` (None: the context cannot be written)."""
    sizes = _TRACE_SIZES[fmt]
    tsize = c.original_size if c.original_size in sizes else sizes[0]
    tid, sid, pid = to_size(c.trace_id, tsize), to_size(c.span_id, 8), to_size(c.parent_id, 8)
    if fmt == "b3":
        out: dict[str, str] = {}
        if tid is not None and sid is not None:
            out["x-b3-traceid"], out["x-b3-spanid"] = tid.hex(), sid.hex()
            if pid is not None:
                out["x-b3-parentspanid"] = pid.hex()
        if c.flags:
            out["x-b3-flags"] = c.flags
        else:
            out["x-b3-sampled"] = "1" if c.should_sample else "0"
        return out
    if fmt == "datadog":
        out = {}
        if tid is not None:
            out["x-datadog-trace-id"] = to_dec(tid)
        if sid is not None:
            out["x-datadog-parent-id"] = to_dec(sid)
        if c.should_sample is not None:
            out["x-datadog-sampling-priority"] = "1" if c.should_sample else "0"
        return out
    if fmt == "instana":
        out = {}
        if tid is not None:
            out["x-instana-t"] = tid.hex()
        if sid is not None:
            out["x-instana-s"] = sid.hex()
        if c.should_sample is not None:
            out["x-instana-l"] = "1" if c.should_sample else "0"
        return out
    if fmt == "b3-single":
        sampled = "d" if c.flags == "1" else ("1" if c.should_sample else ("0" if c.should_sample is False else None))
        if tid is None or sid is None:
            return {"b3": sampled or "0"}
        return {"b3": tid.hex() + "-" + sid.hex() + (f"-{sampled}" if sampled else "") + (f"-{pid.hex()}" if pid else "")}
    if tid is None or sid is None:
        return None  # "injector context is invalid: field trace_id not found in context"
    if fmt == "w3c":
        return {"traceparent": f"00-{tid.hex()}-{sid.hex()}-{'01' if c.should_sample else '00'}"}
    if fmt == "jaeger":
        out = {"uber-trace-id": f"{tid.hex()}:{sid.hex()}:{pid.hex() if pid else '0'}:{'01' if c.should_sample else '00'}"}
        for k, v in (c.baggage or {}).items():
            out["uberctx-" + k] = quote(v, safe="")
        return out
    if fmt == "aws":
        h = tid.hex()
        return {"x-amzn-trace-id": f"Root=1-{h[:8]}-{h[8:]};Parent={sid.hex()};Sampled={'1' if c.should_sample else '0'}"}
    if fmt == "gcp":
        return {"x-cloud-trace-context": f"{tid.hex()}/{to_dec(sid)};o={'1' if c.should_sample else '0'}"}
    if fmt == "ot":
        out = {"ot-tracer-traceid": tid.hex(), "ot-tracer-spanid": sid.hex()}
        if c.should_sample is not None:
            out["ot-tracer-sampled"] = "1" if c.should_sample else "0"
        for k, v in (c.baggage or {}).items():
            out["ot-baggage-" + k] = quote(v, safe="")
        return out
    return None


def plugin_params(propagation: Any, header_type: str | None, default_header_type: str | None
                  ) -> tuple[list[str], list[str], list[str], str]:
    """Kong's get_plugin_params: (extract, inject, clear, default_format), the legacy
    header_type mapped when no propagation option is set."""
    extract_f, inject_f, clear = propagation.extract, propagation.inject, propagation.clear
    default = propagation.default_format
    if extract_f is not None or inject_f is not None or clear is not None:
        return list(extract_f or ()), list(inject_f or ()), list(clear or ()), default
    if default_header_type is not None:
        default = default_header_type
    all_formats = ["b3", "w3c", "jaeger", "ot", "datadog", "aws", "gcp", "instana"]
    if header_type == "preserve":
        return all_formats, ["preserve"], [], default
    if header_type == "ignore":
        return [], [default], [], default
    if header_type is not None:
        return all_formats, ["preserve", header_type], [], default
    return [], [], [], default
