"""Kong's status listener (--status-listen): /status and /metrics only, read-only."""
from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from servers import free_port, http_get, wait_port


@pytest.mark.parametrize("workers", [1, 2])
def test_status_listener_serves_status_and_metrics_only(echo_upstream, fastgw, workers):
    port = free_port()
    cfg = {"_format_version": "3.0",
           "services": [{"name": "svc", "url": f"http://127.0.0.1:{echo_upstream.port}",
                         "routes": [{"name": "r", "paths": ["/"]}],
                         "plugins": [{"name": "prometheus",
                                      "config": {"status_code_metrics": True}}]}]}
    gw = fastgw(cfg, workers=workers, wait_admin=True,
                extra_args=("--status-listen", f"127.0.0.1:{port}"))
    wait_port(port)
    assert http_get(gw.url("/x"))[0] == 200
    status, _, body = http_get(f"http://127.0.0.1:{port}/status")
    assert status == 200 and "configuration_hash" in json.loads(body)
    status, _, body = http_get(f"http://127.0.0.1:{port}/metrics")
    assert status == 200 and b"kong_nginx_requests_total" in body
    assert any(ln.startswith(b"kong_http_requests_total{") and b'service="svc"' in ln
               and b'code="200"' in ln for ln in body.splitlines())
    assert http_get(f"http://127.0.0.1:{port}/services")[0] == 404
    req = urllib.request.Request(f"http://127.0.0.1:{port}/status", data=b"", method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=5)
    assert e.value.code == 405
