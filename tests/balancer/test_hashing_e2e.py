"""Consistent hashing and health carry-over through a real fastgw process (issue #4)."""
from __future__ import annotations

import json
import urllib.request

from servers import http_get


def _config(ports: list[int], hash_on: str, **extra: str) -> dict:
    return {
        "_format_version": "3.0",
        "upstreams": [{"name": "ring", "algorithm": "consistent-hashing", "hash_on": hash_on,
                       **extra, "targets": [{"target": f"127.0.0.1:{p}"} for p in ports]}],
        "services": [{"name": "svc", "host": "ring", "port": 80,
                      "routes": [{"name": "r", "paths": ["/"]}]}],
    }


def _port(gw, headers: dict[str, str] | None = None) -> tuple[int, list]:
    status, hdrs, body = http_get(gw.url("/x"), headers=headers)
    assert status == 200, body
    return json.loads(body)["port"], hdrs


def test_header_hashing_is_sticky_and_spreads(echo_factory, fastgw):
    ups = [echo_factory() for _ in range(3)]
    gw = fastgw(_config([u.port for u in ups], "header", hash_on_header="x-user"))
    seen = {}
    for user in range(30):
        ports = {_port(gw, {"X-User": f"user-{user}"})[0] for _ in range(3)}
        assert len(ports) == 1          # the same key always lands on the same target
        seen[user] = ports.pop()
    assert len(set(seen.values())) == 3  # and keys spread over every target


def test_cookie_hashing_sets_the_cookie_then_sticks(echo_factory, fastgw):
    ups = [echo_factory() for _ in range(3)]
    gw = fastgw(_config([u.port for u in ups], "cookie", hash_on_cookie="sticky",
                        hash_on_cookie_path="/app"))
    port, hdrs = _port(gw)
    cookies = [v for k, v in hdrs if k.lower() == "set-cookie"]
    assert len(cookies) == 1 and cookies[0].startswith("sticky=")
    assert cookies[0].endswith("; Path=/app")
    value = cookies[0].split(";")[0]
    for _ in range(5):
        p, hdrs = _port(gw, {"Cookie": value})
        assert p == port
        assert not [v for k, v in hdrs if k.lower() == "set-cookie"]


def test_health_state_survives_a_reload(echo_factory, fastgw):
    ups = [echo_factory() for _ in range(2)]
    cfg = _config([u.port for u in ups], "none")
    cfg["upstreams"][0]["algorithm"] = "round-robin"
    gw = fastgw(cfg, wait_admin=True)
    down = f"127.0.0.1:{ups[0].port}"
    req = urllib.request.Request(gw.admin_url(f"/upstreams/ring/targets/{down}/unhealthy"),
                                 method="PUT")
    assert urllib.request.urlopen(req, timeout=5).status == 204
    # a reload that changes something else (a new route) keeps the target's health
    cfg["services"][0]["routes"].append({"name": "extra", "paths": ["/extra"]})
    req = urllib.request.Request(gw.admin_url("/config"), data=json.dumps(cfg).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    assert urllib.request.urlopen(req, timeout=5).status in (200, 201)
    _, _, body = http_get(gw.admin_url("/upstreams/ring/health"))
    health = {row["target"]: row["health"] for row in json.loads(body)["data"]}
    assert health[down] == "UNHEALTHY"
    assert {_port(gw)[0] for _ in range(6)} == {ups[1].port}
