"""Hot reload under load: zero failed requests (issue #5; Kong #5898, #6574, #8318).

wrk drives keep-alive traffic at one route for 10 s while the whole configuration is replaced
through POST /config every 100 ms: other routes come and go, the upstream's targets change,
the route under load stays. Every response must be 2xx and no socket may error.
"""
from __future__ import annotations

import json
import re
import subprocess
import threading
import time
import urllib.request

import pytest

from servers import find_binary

DURATION = 10      # seconds of load (the issue asks for at least 10 s)
RELOAD_EVERY = 0.1  # seconds between two configuration replacements


def _config(ports: list[int], i: int) -> dict:
    # targets rotate over the three nginx servers; one extra route appears and disappears
    targets = [{"target": f"127.0.0.1:{ports[(i + k) % 3]}", "weight": 100 + 10 * k}
               for k in range(1 + i % 2 + 1)]
    routes = [{"name": "load", "paths": ["/load"]}]
    if i % 2:
        routes.append({"name": f"extra-{i}", "paths": [f"/extra{i}"]})
    return {
        "_format_version": "3.0",
        "upstreams": [{"name": "pool", "targets": targets}],
        "services": [{"name": "svc", "host": "pool", "port": 80, "routes": routes}],
    }


def _post_config(admin: str, cfg: dict) -> int:
    req = urllib.request.Request(admin + "/config", data=json.dumps(cfg).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.status


def _wrk(url: str, seconds: int) -> str:
    out = subprocess.run(["wrk", "-t2", "-c32", f"-d{seconds}s", "--latency", url],
                         capture_output=True, text=True, timeout=seconds + 30)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.mark.parametrize("workers", [1, 2])
def test_reload_every_100ms_under_load_fails_nothing(nginx_upstream, fastgw, workers):
    if find_binary("wrk") is None:
        pytest.skip("wrk is not installed (apt-get install wrk)")
    ports = list(nginx_upstream.ports)
    gw = fastgw(_config(ports, 0), workers=workers, wait_admin=True)
    admin = gw.admin_url("").rstrip("/")
    result: dict[str, str] = {}
    t = threading.Thread(target=lambda: result.setdefault("out", _wrk(gw.url("/load"), DURATION)))
    t.start()
    reloads = failures = 0
    i = 1
    deadline = time.monotonic() + DURATION - 0.5
    while time.monotonic() < deadline:
        status = _post_config(admin, _config(ports, i))
        reloads += 1
        failures += status not in (200, 201)
        i += 1
        time.sleep(RELOAD_EVERY)
    t.join(DURATION + 40)
    out = result["out"]
    total = int(re.search(r"(\d+) requests in", out).group(1))
    print(f"workers={workers}: {total} requests, {reloads} reloads\n{out}")
    assert failures == 0
    assert reloads >= DURATION * 5          # ~10/s expected; bounded by the admin round trip
    assert total > 1000
    assert "Non-2xx" not in out, out
    assert "Socket errors" not in out, out
    # every worker runs the last configuration
    with urllib.request.urlopen(admin + "/status", timeout=5) as r:
        st = json.load(r)
    want = st["configuration_hash"]
    deadline = time.monotonic() + 2
    while True:
        hashes = {w["configuration_hash"] for w in st["server"].get("workers", [])} or {
            st["server"]["configuration_hash"]}
        if hashes == {want} or time.monotonic() > deadline:
            break
        time.sleep(0.1)
        with urllib.request.urlopen(admin + "/status", timeout=5) as r:
            st = json.load(r)
    assert hashes == {want}
