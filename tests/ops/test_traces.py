"""Request traces (X-Fastgw-Trace), GET /debug/route, POST /config?dry_run=1 shadowed routes."""
from __future__ import annotations

import json
import socket
import threading
import urllib.parse
from pathlib import Path

import pytest
from ops_helpers import Node, clean_env, free_port, http_get

TOKEN = "adm-token"
TRACE_KEY = "trace-key-1"

CONFIG = """_format_version: "3.0"
upstreams:
  - name: u
    targets: [{{target: "127.0.0.1:{closed}"}}, {{target: "127.0.0.1:{ok}"}}]
services:
  - name: svc
    host: u
    retries: 3
    routes:
      - name: api
        paths: ["/api"]
        plugins: [{{name: correlation-id}}, {{name: request-transformer,
                   config: {{add: {{headers: ["x-added:1"]}}}}}}]
      - name: api-v1
        paths: ["/api/v1"]
        methods: [GET]
      - name: blocked
        paths: ["/blocked"]
        plugins: [{{name: ip-restriction, config: {{deny: ["127.0.0.1"]}}}}]
"""


@pytest.fixture
def node(tmp_path: Path):
    up = socket.socket()
    up.bind(("127.0.0.1", 0))
    up.listen(16)
    seen: list[bytes] = []

    def serve() -> None:
        while True:
            try:
                c, _ = up.accept()
            except OSError:
                return
            with c:
                head = c.recv(65536)
                seen.append(head)
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")

    threading.Thread(target=serve, daemon=True).start()
    cfg = tmp_path / "kong.yml"
    cfg.write_text(CONFIG.format(closed=free_port(), ok=up.getsockname()[1]))
    port, admin = free_port(), free_port()
    n = Node("-c", str(cfg), "--listen", f"127.0.0.1:{port}", "--admin-listen",
             f"127.0.0.1:{admin}", "--access-log", "off", "--trace-key", TRACE_KEY,
             env=clean_env(FASTGW_ADMIN_TOKEN=TOKEN))
    n.wait_port(admin)
    n.ports = (port, admin)
    n.seen = seen
    yield n
    n.stop()
    up.close()


def _admin(admin: int, path: str) -> tuple[int, dict]:
    status, _, body = http_get(admin, path, {"Kong-Admin-Token": TOKEN})
    return status, json.loads(body) if body else {}


def test_untraced_requests_get_no_trace(node: Node) -> None:
    port, _ = node.ports
    for headers in ({}, {"X-Fastgw-Trace": "wrong"}):
        status, h, _ = http_get(port, "/api/x", headers)
        assert status == 200 and "x-fastgw-trace" not in h


def test_traced_request_through_plugins_retries_and_balancer(node: Node) -> None:
    port, admin = node.ports
    traces = []
    for _ in range(4):       # round-robin: at least one of these picks the closed target first
        status, h, _ = http_get(port, "/api/x", {"X-Fastgw-Trace": TRACE_KEY})
        assert status == 200
        traces.append(json.loads(h["x-fastgw-trace"]))
        assert traces[-1]["request_id"] == h["x-kong-request-id"]
    t = traces[0]
    assert t["route"]["matched"]["route"] == "api"
    assert t["route"]["considered"] == 3
    phases = {(p["plugin"], p["phase"], p["decision"]) for p in t["plugins"]}
    assert ("correlation-id", "access", "continue") in phases
    assert ("request-transformer", "access", "continue") in phases
    assert all(p["ms"] >= 0 for p in t["plugins"])
    kinds = [e["event"] for e in t["events"]]
    assert kinds[0] == "balancer" and "sent" in kinds and kinds[-1] == "response_head"
    bal = next(e for e in t["events"] if e["event"] == "balancer")
    assert bal["algorithm"] and bal["target"].startswith("127.0.0.1:")
    retried = [tr for tr in traces if any(e["event"] == "retry" for e in tr["events"])]
    assert retried, traces
    retry = next(e for e in retried[0]["events"] if e["event"] == "retry")
    assert "connect to 127.0.0.1:" in retry["cause"] and retry["attempt"] == 1
    picks = [e for e in retried[0]["events"] if e["event"] == "balancer"]
    assert len(picks) == 2 and picks[0]["target"] != picks[1]["target"]
    # the complete trace, by request id, from the Admin API
    status, full = _admin(admin, f"/debug/traces/{t['request_id']}")
    assert status == 200 and full["complete"] and full["events"][-1]["event"] == "done"
    assert any(p["phase"] == "header_filter" for p in full["plugins"])
    assert _admin(admin, "/debug/traces/nope")[0] == 404
    assert http_get(admin, f"/debug/traces/{t['request_id']}")[0] == 401   # the token
    # the trace key never reaches the upstream
    assert node.seen and not any(b"x-fastgw-trace" in h.lower() for h in node.seen)
    assert not any(TRACE_KEY.encode() in h for h in node.seen)


def test_trace_with_the_admin_token_and_a_plugin_answer(node: Node) -> None:
    port, _ = node.ports
    status, h, _ = http_get(port, "/blocked", {"X-Fastgw-Trace": TOKEN})
    assert status == 403
    t = json.loads(h["x-fastgw-trace"])
    assert ("ip-restriction", "access", "respond 403") in {
        (p["plugin"], p["phase"], p["decision"]) for p in t["plugins"]}
    status, h, _ = http_get(port, "/nothing", {"X-Fastgw-Trace": TOKEN})
    t = json.loads(h["x-fastgw-trace"])
    assert status == 404 and t["route"]["matched"] is None


def test_debug_route_explains_without_traffic(node: Node) -> None:
    _, admin = node.ports
    q = urllib.parse.urlencode({"method": "GET", "path": "/api/v1/users"})
    status, ex = _admin(admin, f"/debug/route?{q}")
    assert status == 200
    assert ex["matched"]["route"] == "api-v1" and ex["matched"]["upstream_path"] == "/users"
    assert ex["beaten"] == ["api"]
    first = ex["candidates"][0]
    assert first["route"] == "api-v1" and first["fields"] == {"methods": True, "paths": True}
    q = urllib.parse.urlencode({"method": "POST", "path": "/api/v1/users"})
    ex = _admin(admin, f"/debug/route?{q}")[1]
    assert ex["matched"]["route"] == "api"
    v1 = next(c for c in ex["candidates"] if c["route"] == "api-v1")
    assert v1["fields"]["methods"] is False and not v1["matches"]
    assert _admin(admin, "/debug/route?path=nope")[0] == 400
    assert _admin(admin, "/debug/route?path=/&headers=novalue")[0] == 400


def test_dry_run_lists_shadowed_routes(node: Node) -> None:
    import http.client

    _, admin = node.ports
    doc = {"_format_version": "3.0", "services": [{"name": "s", "url": "http://127.0.0.1:9",
           # equal priority: the router tries the higher route id first (Kong's order)
           "routes": [{"name": "all", "paths": ["/"], "id": "ffffffff-0000-4000-8000-000000000001"},
                      {"name": "under", "paths": ["/x"], "hosts": ["a.example"]},
                      {"name": "dup", "paths": ["/"], "id": "00000000-0000-4000-8000-000000000001"},
                      {"name": "get-only", "paths": ["/"], "methods": ["GET"]}]}]}
    c = http.client.HTTPConnection("127.0.0.1", admin, timeout=10)
    c.request("POST", "/config?dry_run=1", json.dumps(doc),
              {"Content-Type": "application/json", "Kong-Admin-Token": TOKEN})
    r = c.getresponse()
    body = json.loads(r.read())
    assert r.status == 200 and body["dry_run"] is True
    assert {s["route"]: s["shadowed_by"] for s in body["shadowed_routes"]} == {"dup": ["all"]}
