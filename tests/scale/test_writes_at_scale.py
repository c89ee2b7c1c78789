"""Through real sockets, at a few thousand entities: after many Admin API writes, deletes and a
full POST /config, each request reaches the right route's service and carries the right
consumer, in single-process and in master + workers mode. A 100k-entity POST /config with one
bad field answers 400 naming that field's path and keeps the running configuration.
"""
from __future__ import annotations

import http.client
import json
import time
from typing import Any

import pytest
from servers import HOST, wait_until

N = 2000         # services / routes / consumers in the file
WRITES = 30      # write rounds (a service, its route, a consumer, its key)
BAD_N = 50_000   # services + 50,000 routes: 100,000 entities


def _doc(n: int, port: int) -> dict[str, Any]:
    return {
        "_format_version": "3.0",
        "services": [{"name": f"s{i}", "url": f"http://{HOST}:{port}/svc{i}",
                      "routes": [{"name": f"r{i}", "paths": [f"/s{i}"]}]} for i in range(n)],
        "consumers": [{"username": f"c{i}", "keyauth_credentials": [{"key": f"k{i}"}]}
                      for i in range(n)],
        "plugins": [{"name": "key-auth"},
                    {"name": "rate-limiting", "config": {"minute": 1000000, "policy": "local"}}],
    }


class _Admin:
    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection(HOST, port, timeout=120)

    def call(self, method: str, path: str, body: Any = None,
             ctype: str = "application/json") -> tuple[int, Any]:
        data = body if isinstance(body, bytes) else \
            (json.dumps(body).encode() if body is not None else None)
        self.conn.request(method, path, body=data,
                          headers={"Content-Type": ctype} if data is not None else {})
        resp = self.conn.getresponse()
        raw = resp.read()
        return resp.status, (json.loads(raw) if raw else None)


def _get(port: int, path: str, key: str) -> tuple[int, str | None, str | None]:
    """(status, upstream path the echo saw, consumer username the echo saw)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        conn.request("GET", path, headers={"apikey": key})
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    if resp.status != 200:
        return resp.status, None, None
    seen = json.loads(body)
    headers = {k.lower(): v for k, v in seen["headers"]}
    return resp.status, seen["target"], headers.get("x-consumer-username")


def _live(port: int, path: str, key: str, want: tuple) -> None:
    # a write is live for the next request in single-process mode; workers get it over a pipe
    wait_until(lambda: _get(port, path, key) == want, timeout=10)


@pytest.mark.parametrize("workers", [1, 2])
def test_routes_and_consumers_after_many_writes(fastgw, echo_upstream, workers: int) -> None:
    gw = fastgw(_doc(N, echo_upstream.port), workers=workers, wait_admin=True)
    admin = _Admin(gw.admin_port)
    _live(gw.port, "/s7/a", "k1234", (200, "/svc7/a", "c1234"))
    for i in range(WRITES):
        s, _ = admin.call("POST", "/services", {"name": f"w{i}",
                                                "url": f"http://{HOST}:{echo_upstream.port}/w{i}"})
        assert s == 201
        s, _ = admin.call("POST", f"/services/w{i}/routes", {"name": f"w{i}", "paths": [f"/w{i}"]})
        assert s == 201
        s, _ = admin.call("POST", "/consumers", {"username": f"u{i}"})
        assert s == 201
        s, _ = admin.call("POST", f"/consumers/u{i}/key-auth", {"key": f"key-u{i}"})
        assert s == 201
    # replace, update, delete
    assert admin.call("PATCH", "/routes/r5", {"paths": ["/moved5"]})[0] == 200
    assert admin.call("PATCH", "/consumers/c9", {"username": "renamed9"})[0] == 200
    assert admin.call("DELETE", "/routes/r6")[0] == 204
    assert admin.call("DELETE", "/consumers/c10")[0] == 204
    last = WRITES - 1
    _live(gw.port, f"/w{last}/x", f"key-u{last}", (200, f"/w{last}/x", f"u{last}"))
    for i in (0, last // 2, last):
        assert _get(gw.port, f"/w{i}/x", f"key-u{i}") == (200, f"/w{i}/x", f"u{i}")
    assert _get(gw.port, "/moved5/y", "k9") == (200, "/svc5/y", "renamed9")
    assert _get(gw.port, "/s5/y", "k1")[0] == 404
    assert _get(gw.port, "/s6", "k1")[0] == 404
    assert _get(gw.port, "/s11", "k10")[0] == 401
    assert _get(gw.port, "/s1999", "k1999") == (200, "/svc1999", "c1999")

    # a full replace keeps what is in the file and drops what is not
    doc = _doc(N, echo_upstream.port)
    doc["services"][3]["routes"][0]["paths"] = ["/three"]
    s, _ = admin.call("POST", "/config", doc)
    assert s == 201
    _live(gw.port, "/three/z", "k10", (200, "/svc3/z", "c10"))
    assert _get(gw.port, "/w0/x", "key-u0")[0] == 404
    assert _get(gw.port, "/s6", "k6") == (200, "/svc6", "c6")
    assert _get(gw.port, "/s5/y", "k9") == (200, "/svc5/y", "c9")
    assert _get(gw.port, "/s3", "k1")[0] == 404
    if workers > 1:
        # every worker runs the master's configuration, by hash
        def hashes() -> set:
            st = admin.call("GET", "/status")[1]
            return {st["configuration_hash"]} | \
                {w["configuration_hash"] for w in st["server"]["workers"]}
        wait_until(lambda: len(hashes()) == 1, timeout=10)


def test_bad_field_in_100k_entities_names_its_path(fastgw, echo_upstream) -> None:
    gw = fastgw(_doc(10, echo_upstream.port), wait_admin=True)
    admin = _Admin(gw.admin_port)
    _, before = admin.call("GET", "/status")
    doc = {"_format_version": "3.0",
           "services": [{"name": f"s{i}", "url": f"http://{HOST}:{echo_upstream.port}"}
                        for i in range(BAD_N)],
           "routes": [{"name": f"r{i}", "paths": [f"/r{i}"], "service": f"s{i}"}
                      for i in range(BAD_N)]}
    doc["routes"][BAD_N - 7]["paths"] = ["/ok", 17]
    t0 = time.monotonic()
    s, body = admin.call("POST", "/config", doc)
    assert s == 400, body
    paths = [e["path"] for e in body["errors"]]
    assert any(p.startswith(f"routes[{BAD_N - 7}].paths") or
               p.startswith(f"services") and "paths[1]" in p for p in paths), paths
    assert f"{BAD_N - 7}" in body["message"]
    _, after = admin.call("GET", "/status")
    assert after["configuration_hash"] == before["configuration_hash"]
    assert _get(gw.port, "/s3/x", "k3") == (200, "/svc3/x", "c3")
    assert time.monotonic() - t0 < 120
