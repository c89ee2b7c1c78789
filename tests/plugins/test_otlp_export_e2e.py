"""opentelemetry: spans exported over OTLP/HTTP to a collector on 127.0.0.1, with the trace id
the upstream saw in traceparent (runs when the optional SDK extra is installed, as in
`.[test]`)."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from servers import http_get

pytest.importorskip("opentelemetry.sdk")
pytest.importorskip("opentelemetry.exporter.otlp.proto.http")
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (  # noqa: E402
    ExportTraceServiceRequest,
)


class _Collector(ThreadingHTTPServer):
    def __init__(self) -> None:
        self.spans: list = []
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server API
        body = self.rfile.read(int(self.headers["Content-Length"]))
        req = ExportTraceServiceRequest()
        req.ParseFromString(body)
        for rs in req.resource_spans:
            for ss in rs.scope_spans:
                self.server.spans.extend(ss.spans)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_spans_reach_the_collector_with_the_propagated_trace(echo_upstream, fastgw):
    col = _Collector()
    threading.Thread(target=col.serve_forever, daemon=True).start()
    try:
        cfg = {"_format_version": "3.0",
               "services": [{"name": "svc", "url": f"http://127.0.0.1:{echo_upstream.port}",
                             "routes": [{"name": "r", "paths": ["/"]}],
                             "plugins": [{"name": "opentelemetry", "config": {
                                 "traces_endpoint":
                                     f"http://127.0.0.1:{col.server_address[1]}/v1/traces",
                                 "batch_flush_delay": 0.2}}]}]}
        gw = fastgw(cfg)
        parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        status, _, body = http_get(gw.url("/x"), headers={"traceparent": parent})
        assert status == 200
        sent = dict((k.lower(), v) for k, v in json.loads(body)["headers"])["traceparent"]
        assert sent.startswith("00-0af7651916cd43dd8448eb211c80319c-")
        assert sent.split("-")[2] != "b7ad6b7169203331"      # a new span id for this hop
        deadline = time.monotonic() + 10
        while not col.spans and time.monotonic() < deadline:
            time.sleep(0.1)
        assert col.spans, "no span exported"
        span = col.spans[0]
        assert span.trace_id.hex() == "0af7651916cd43dd8448eb211c80319c"
        assert span.parent_span_id.hex() == "b7ad6b7169203331"
        assert span.span_id.hex() == sent.split("-")[2]
    finally:
        col.shutdown()
