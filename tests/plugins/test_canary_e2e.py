"""canary through a real fastgw process: a share of a route's traffic, or requests that opt in
with a header, go to the canary upstream; the rest stay on the service's upstream."""
from __future__ import annotations

import json

from servers import http_get


def _config(stable: int, canary: int, percentage: float) -> dict:
    return {
        "_format_version": "3.0",
        "upstreams": [
            {"name": "stable", "targets": [{"target": f"127.0.0.1:{stable}"}]},
            {"name": "canary", "targets": [{"target": f"127.0.0.1:{canary}"}]},
        ],
        "services": [{"name": "app", "host": "stable", "port": 80,
                      "routes": [{"name": "r", "paths": ["/"]}],
                      "plugins": [{"name": "canary", "config": {
                          "upstream": "canary", "percentage": percentage,
                          "header": "X-Canary", "header_value": "always"}}]}],
    }


def _ports(gw, n: int, headers: dict[str, str] | None = None) -> list[int]:
    out = []
    for _ in range(n):
        status, _, body = http_get(gw.url("/x"), headers=headers)
        assert status == 200, body
        out.append(json.loads(body)["port"])
    return out


def test_canary_share_and_header_opt_in(echo_factory, fastgw):
    stable, canary = echo_factory(), echo_factory()
    gw = fastgw(_config(stable.port, canary.port, 25))
    ports = _ports(gw, 200)
    share = ports.count(canary.port) / len(ports)
    assert 0.12 < share < 0.40, share            # 25% +- noise (binomial, n=200)
    assert set(ports) == {stable.port, canary.port}
    # the header forces the canary
    assert set(_ports(gw, 10, {"X-Canary": "always"})) == {canary.port}


def test_zero_percent_keeps_everything_on_stable(echo_factory, fastgw):
    stable, canary = echo_factory(), echo_factory()
    gw = fastgw(_config(stable.port, canary.port, 0))
    assert set(_ports(gw, 30)) == {stable.port}
    assert set(_ports(gw, 5, {"X-Canary": "always"})) == {canary.port}
