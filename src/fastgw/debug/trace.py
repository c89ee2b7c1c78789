"""Request traces: what the gateway decided for one request, on request.

A request carrying `X-Fastgw-Trace: <key>` (the admin token or the configured trace_key) is
traced: the proxy creates a `Trace` and reports to it at each decision (route match, balancer
pick, each retry, each plugin call per phase through a traced twin of the route's plugin chain,
upstream timings). The response carries the trace as one JSON header `X-Fastgw-Trace` (what is
known when the response head goes out) and `GET /debug/traces/{request_id}` on the Admin API
returns the complete one (with header_filter and log phases) from a bounded per-process store.

Rules:
- Zero cost for requests that do not ask: the proxy checks one header in C only when a Tracer
  is installed (a trace key exists), and nothing else; every Python call here is for traced
  requests only.
- A wrong key is ignored (no trace, no hint), compared in constant time.
- Traced requests use a copy of the plugin chain whose phase lists are wrapped; the chain the
  other requests use is never modified.
"""
from __future__ import annotations

import copy
import hmac
import inspect
import time
from collections import OrderedDict
from typing import Any, Callable

import orjson

#: traces kept for GET /debug/traces/{id} per process (oldest dropped first); Envoy's admin
#: /tap and Kong's request debugging keep none, 256 is a few minutes of manual debugging
MAX_TRACES = 256
#: the response header holding the trace is cut beyond this many bytes (nginx's default
#: large_client_header_buffers on the reading side is 8 KiB per line)
MAX_HEADER_BYTES = 7168

_PHASES = ("_rewrite", "_access", "_header_filter", "_body_filter", "_log")


class Trace:
    __slots__ = ("request_id", "t0", "events", "route", "plugins", "done", "_clock")

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self.t0 = clock()
        self.request_id: str | None = None
        self.events: list[dict[str, Any]] = []
        self.route: dict[str, Any] | None = None
        self.plugins: list[dict[str, Any]] = []
        self.done = False

    def ms(self) -> float:
        return round((self._clock() - self.t0) * 1000.0, 3)

    def event(self, kind: str, **data: Any) -> None:
        self.events.append({"at_ms": self.ms(), "event": kind, **data})

    def as_dict(self) -> dict[str, Any]:
        return {"request_id": self.request_id, "route": self.route, "events": self.events,
                "plugins": self.plugins, "complete": self.done}

    def header_value(self) -> bytes:
        data = orjson.dumps(self.as_dict())
        if len(data) > MAX_HEADER_BYTES:
            data = orjson.dumps({"request_id": self.request_id, "truncated": True,
                                 "lookup": f"/debug/traces/{self.request_id}"})
        return data


def _wrap(fn: Callable[..., Any], plugin: Any, phase: str, trace_of: Callable[[Any], Any]
          ) -> Callable[..., Any]:
    name = getattr(plugin, "name", type(plugin).__name__)

    def traced(ctx: Any, *args: Any) -> Any:
        tr = trace_of(ctx)
        t0 = time.perf_counter()
        try:
            r = fn(ctx, *args)
        except Exception as e:
            if tr is not None:
                tr.plugins.append({"plugin": name, "phase": phase, "decision": "error",
                                   "error": repr(e), "ms": _since(t0)})
            raise
        if tr is not None:
            if r is None or phase == "body_filter":
                decision = "continue"
            elif inspect.isawaitable(r):
                decision = "async"
            else:
                decision = f"respond {getattr(r, 'status', '?')}"
            tr.plugins.append({"plugin": name, "phase": phase, "decision": decision,
                               "ms": _since(t0)})
        return r

    return traced


def _since(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000.0, 3)


def _trace_of(ctx: Any) -> Any:
    return getattr(ctx, "vars", {}).get("fastgw.trace")


def traced_chain(chain: Any) -> Any:
    """A copy of a plugin Chain (fastgw.plugins.chain) whose phase methods record into the
    request's trace; its consumer and scheme variants are traced copies too."""
    memo: dict[int, Any] = {}

    def twin(c: Any) -> Any:
        if c is None:
            return None
        if id(c) in memo:
            return memo[id(c)]
        t = memo[id(c)] = copy.copy(c)
        for attr in _PHASES:
            fns, plugins = getattr(c, attr), getattr(c, attr + "_p")
            setattr(t, attr, tuple(_wrap(f, p, attr[1:], _trace_of)
                                   for f, p in zip(fns, plugins)))
        t._base = twin(c._base) if c._base is not c else t
        if c._by_consumer is not None:
            t._by_consumer = {k: twin(v) for k, v in c._by_consumer.items()}
        if c._by_scheme is not None:
            t._by_scheme = {k: twin(v) for k, v in c._by_scheme.items()}
        return t

    return twin(chain)


class Tracer:
    """Installed on a ProxyCore (core.tracer) when a trace key exists."""

    def __init__(self, keys: list[str],
                 explain: Callable[..., dict[str, Any]] | None = None) -> None:
        self.keys = [k.encode() for k in keys if k]
        self.explain = explain        # (method, host, path, headers) -> explanation
        self.traces: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._twins: dict[int, tuple[Any, Any]] = {}
        # under the CLI's master, finished traces also go to the master (its Admin API answers
        # GET /debug/traces/{id}); None: nobody collects them
        self.outbox: list[dict[str, Any]] | None = None

    def start(self, key: bytes, method: bytes, host: bytes, path: bytes,
              headers: Any) -> Trace | None:
        """Called by the proxy for a request with the trace header (already found in C)."""
        if not any(hmac.compare_digest(key, k) for k in self.keys):
            return None
        tr = Trace()
        try:
            assert self.explain is not None
            hdrs = {k.decode("latin-1"): v.decode("latin-1") for k, v in headers.items()
                    if k.lower() != b"x-fastgw-trace"}
            ex = self.explain(method.decode("latin-1"), host.decode("latin-1") or None,
                              path.decode("latin-1"), hdrs)
            tr.route = {"matched": ex["matched"], "beaten": ex["beaten"],
                        "candidates": [c for c in ex["candidates"] if c["matches"]][:10],
                        "considered": len(ex["candidates"])}
        except Exception as e:  # noqa: BLE001 - a trace never breaks the request
            tr.route = {"error": repr(e)}
        return tr

    def chain_for(self, chain: Any) -> Any:
        hit = self._twins.get(id(chain))
        if hit is None or hit[0] is not chain:
            if len(self._twins) > 4096:   # chains of old snapshots
                self._twins.clear()
            hit = self._twins[id(chain)] = (chain, traced_chain(chain))
        return hit[1]

    def finish(self, tr: Trace) -> None:
        tr.done = True
        if tr.request_id is None:
            return
        self.store(tr.as_dict())
        if self.outbox is not None and len(self.outbox) < MAX_TRACES:
            self.outbox.append(self.traces[tr.request_id])

    def store(self, trace: dict[str, Any]) -> None:
        self.traces[trace["request_id"]] = trace
        while len(self.traces) > MAX_TRACES:
            self.traces.popitem(last=False)

    def take_outbox(self) -> list[dict[str, Any]]:
        out, self.outbox = self.outbox or [], []
        return out

    def get(self, request_id: str) -> dict[str, Any] | None:
        return self.traces.get(request_id)
