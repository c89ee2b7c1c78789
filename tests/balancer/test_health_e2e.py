"""Health checks end to end (issue #4): real upstream servers behind a real fastgw process.

Three echo targets behind one upstream with active and passive checks. A target that starts
refusing, one that answers 500s and one that hangs are taken out of the pool; with retries the
client sees no failure once a refusing target is detected; recovery brings traffic back; all
targets down gives Kong's 503.
"""
from __future__ import annotations

import time

from servers import Behaviour, http_get, wait_until

HC = {
    "active": {
        "type": "http", "http_path": "/health", "timeout": 0.5,
        "healthy": {"interval": 0.2, "successes": 1},
        "unhealthy": {"interval": 0.2, "tcp_failures": 1, "http_failures": 1, "timeouts": 1,
                      "http_statuses": [500, 502, 503]},
    },
    "passive": {
        "healthy": {"successes": 1},
        "unhealthy": {"tcp_failures": 1, "http_failures": 1, "timeouts": 1,
                      "http_statuses": [500, 502, 503]},
    },
}


def _config(ports: list[int]) -> dict:
    return {
        "_format_version": "3.0",
        "upstreams": [{"name": "pool", "healthchecks": HC,
                       "targets": [{"target": f"127.0.0.1:{p}"} for p in ports]}],
        "services": [{"name": "svc", "host": "pool", "port": 80, "retries": 3,
                      "read_timeout": 1000, "connect_timeout": 1000,
                      "routes": [{"name": "r", "paths": ["/"]}]}],
    }


def _served_by(gw, n: int) -> list[int]:
    """Send n requests; the upstream port that answered each (the echo body says)."""
    import json

    ports = []
    for _ in range(n):
        status, _, body = http_get(gw.url("/work"), timeout=5)
        assert status == 200, (status, body)
        ports.append(json.loads(body)["port"])
    return ports


def _health(gw) -> dict[str, str]:
    import json

    _, _, body = http_get(gw.admin_url("/upstreams/pool/health"))
    return {row["target"]: row["health"] for row in json.loads(body)["data"]}


def test_targets_leave_and_rejoin_the_pool(echo_factory, fastgw):
    ups = [echo_factory() for _ in range(3)]
    ports = [u.port for u in ups]
    gw = fastgw(_config(ports), wait_admin=True)
    assert set(_served_by(gw, 9)) == set(ports)

    # 1. a target starts refusing: with retries no client request fails
    ups[0].stop()
    assert set(_served_by(gw, 12)) <= {ports[1], ports[2]}
    wait_until(lambda: _health(gw)[f"127.0.0.1:{ports[0]}"] == "UNHEALTHY", timeout=5)

    # 2. another answers 500s: it is taken out (passively on the first 500, actively too)
    ups[1].set_default(Behaviour(status=500))
    wait_until(lambda: _health(gw)[f"127.0.0.1:{ports[1]}"] == "UNHEALTHY", timeout=5)
    assert set(_served_by(gw, 8)) == {ports[2]}

    # 3. recovery: both come back through the active checks and get traffic again
    ups[0].start()
    ups[1].set_default(Behaviour())
    wait_until(lambda: set(_health(gw).values()) == {"HEALTHY"}, timeout=5)
    assert set(_served_by(gw, 12)) == set(ports)


def test_hanging_target_is_timed_out_and_skipped(echo_factory, fastgw):
    ups = [echo_factory() for _ in range(2)]
    ports = [u.port for u in ups]
    ups[0].set_default(Behaviour(delay=30))
    gw = fastgw(_config(ports), wait_admin=True)
    wait_until(lambda: _health(gw)[f"127.0.0.1:{ports[0]}"] == "UNHEALTHY", timeout=6)
    t0 = time.monotonic()
    assert set(_served_by(gw, 6)) == {ports[1]}
    assert time.monotonic() - t0 < 3


def test_all_targets_down_is_kong_503(echo_factory, fastgw):
    import json

    ups = [echo_factory() for _ in range(2)]
    gw = fastgw(_config([u.port for u in ups]), wait_admin=True)
    for u in ups:
        u.stop()
    wait_until(lambda: set(_health(gw).values()) == {"UNHEALTHY"}, timeout=5)
    status, _, body = http_get(gw.url("/work"), timeout=5)
    assert status == 503
    assert json.loads(body)["message"] == "failure to get a peer from the ring-balancer"
