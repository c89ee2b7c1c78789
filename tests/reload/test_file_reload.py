"""The -c file changing on disk, and SIGHUP, reload the configuration (issue #5); a bad file
never replaces the running configuration."""
from __future__ import annotations

import signal

import pytest
import yaml

from servers import http_get, wait_until


def _config(port: int, *paths: str) -> dict:
    return {"_format_version": "3.0",
            "services": [{"name": "svc", "url": f"http://127.0.0.1:{port}",
                          "routes": [{"name": f"r{i}", "paths": [p]}
                                     for i, p in enumerate(paths)]}]}


def _status(gw, path: str) -> int:
    return http_get(gw.url(path), timeout=5)[0]


@pytest.mark.parametrize("workers", [1, 2])
def test_file_change_reloads_and_bad_file_keeps_config(echo_upstream, fastgw, workers):
    gw = fastgw(_config(echo_upstream.port, "/one"), workers=workers, wait_admin=True)
    assert _status(gw, "/one") == 200 and _status(gw, "/two") == 404
    gw.config_path.write_text(yaml.safe_dump(_config(echo_upstream.port, "/one", "/two")))
    wait_until(lambda: all(_status(gw, "/two") == 200 for _ in range(4)), timeout=6)
    # a broken file: logged, the running configuration stays
    gw.config_path.write_text("_format_version: '3.0'\nservices:\n- name: x\n  port: nope\n")
    wait_until(lambda: "reload" in gw.log_text() and "services[0]" in gw.log_text(), timeout=6)
    assert _status(gw, "/two") == 200 and _status(gw, "/one") == 200


def test_sighup_reloads(echo_upstream, fastgw):
    gw = fastgw(_config(echo_upstream.port, "/one"), wait_admin=True)
    path = gw.config_path
    # a change the watcher has not seen yet (same size and mtime granularity don't matter:
    # SIGHUP reloads unconditionally)
    path.write_text(yaml.safe_dump(_config(echo_upstream.port, "/one", "/three")))
    gw.send_signal(signal.SIGHUP)
    wait_until(lambda: _status(gw, "/three") == 200, timeout=6)
