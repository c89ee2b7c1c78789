"""The dashboard in headless Chromium (Debian's `chromium`, driven by Playwright with that
binary): it renders the entities, its charts move under load, a target marked unhealthy turns
red, and its data needs the admin token."""
from __future__ import annotations

import http.client
import io
import json
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
from ops_helpers import Node, clean_env, free_port, http_get

playwright = pytest.importorskip("playwright.sync_api")
from PIL import Image  # noqa: E402  (test extra, with playwright)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed "
                                "(scripts/sysdeps.sh installs it)")
TOKEN = "dash-secret"
#: the red of an unhealthy target (dashboard.css --bad)
RED = (220, 38, 38)

CONFIG = """_format_version: "3.0"
upstreams:
  - name: u
    targets: [{{target: "127.0.0.1:{a}"}}, {{target: "127.0.0.1:{b}"}}]
services:
  - name: svc
    host: u
    routes: [{{name: ok, paths: ["/ok"]}},
             {{name: missing, paths: ["/missing"], strip_path: false}}]
consumers: [{{username: alice}}]
plugins: [{{name: correlation-id}}]
"""


def _upstream() -> socket.socket:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(64)

    def serve() -> None:
        while True:
            try:
                c, _ = s.accept()
            except OSError:
                return
            threading.Thread(target=_answer, args=(c,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return s


def _answer(c: socket.socket) -> None:
    with c:
        buf = b""
        while True:
            try:
                data = c.recv(65536)
            except OSError:
                return
            if not data:
                return
            buf += data
            while b"\r\n\r\n" in buf:
                head, buf = buf.split(b"\r\n\r\n", 1)
                status = b"404 Not Found" if b" /missing" in head.split(b"\r\n")[0] \
                    else b"200 OK"
                c.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Length: 2\r\n\r\nok")


def _load(port: int, seconds: float) -> int:
    n = 0
    deadline = time.monotonic() + seconds
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    while time.monotonic() < deadline:
        c.request("GET", "/ok" if n % 4 else "/missing")
        c.getresponse().read()
        n += 1
    c.close()
    return n


def _colours(png: bytes) -> set[tuple[int, int, int]]:
    img = Image.open(io.BytesIO(png)).convert("RGB")
    return {c for _, c in img.getcolors(maxcolors=img.width * img.height)}


@pytest.fixture
def node(tmp_path: Path):
    a, b = _upstream(), _upstream()
    cfg = tmp_path / "kong.yml"
    cfg.write_text(CONFIG.format(a=a.getsockname()[1], b=b.getsockname()[1]))
    port, admin, dash = free_port(), free_port(), free_port()
    n = Node("-c", str(cfg), "--listen", f"127.0.0.1:{port}", "--admin-listen",
             f"127.0.0.1:{admin}", "--dashboard-listen", f"127.0.0.1:{dash}",
             "--access-log", "off", env=clean_env(FASTGW_ADMIN_TOKEN=TOKEN))
    n.wait_port(dash)
    n.ports = (port, admin, dash, a.getsockname()[1])
    yield n
    n.stop()
    a.close()
    b.close()


def test_dashboard_data_needs_the_token(node: Node) -> None:
    _, _, dash, _ = node.ports
    status, headers, body = http_get(dash, "/")
    assert status == 200 and b"/dashboard.js" in body and "script-src 'self'" in \
        headers["content-security-policy"]
    assert http_get(dash, "/dashboard.js")[0] == 200
    assert http_get(dash, "/api/overview")[0] == 401
    status, _, body = http_get(dash, "/api/overview", {"Kong-Admin-Token": TOKEN})
    assert status == 200 and [s["name"] for s in json.loads(body)["services"]] == ["svc"]
    assert http_get(dash, "/api/nothing", {"Kong-Admin-Token": TOKEN})[0] == 404


def test_dashboard_in_chromium(node: Node, tmp_path: Path) -> None:
    port, admin, dash, target_port = node.ports
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox"])
        try:
            # bypass_csp: the page's CSP forbids eval, which Playwright's waits use
            page = browser.new_context(bypass_csp=True,
                                       viewport={"width": 1280, "height": 900}).new_page()
            page.goto(f"http://127.0.0.1:{dash}/?interval=250#token={TOKEN}")
            page.wait_for_function("window.fastgwDashboard.polls >= 2", timeout=20000)
            # renders: every entity kind is listed
            for table, text in (("services", "svc"), ("routes", "/ok"), ("upstreams", "u"),
                                ("consumers", "alice"), ("plugins", "correlation-id")):
                assert text in page.inner_text(f"#{table} tbody"), table
            idle = page.locator("#chart-rps").screenshot(path=str(shots / "idle.png"))
            # charts move under load
            sent = _load(port, 3.0)
            assert sent > 20
            page.wait_for_function("Math.max(...window.fastgwDashboard.series.rps) > 5",
                                   timeout=20000)
            busy = page.locator("#chart-rps").screenshot(path=str(shots / "busy.png"))
            page.screenshot(path=str(shots / "page-under-load.png"), full_page=True)
            series = page.evaluate("window.fastgwDashboard.series")
            assert max(series["p50"]) > 0 and max(series["s2"]) > 0 and max(series["s4"]) > 0
            assert idle != busy and len(_colours(busy)) > len(_colours(idle))
            # a target marked unhealthy turns red
            target = f"127.0.0.1:{target_port}"
            ok = page.locator(f'[data-target="{target}"]')
            assert RED not in _colours(ok.screenshot())
            c = http.client.HTTPConnection("127.0.0.1", admin, timeout=10)
            c.request("POST", f"/upstreams/u/targets/{target}/unhealthy",
                      headers={"Kong-Admin-Token": TOKEN})
            assert c.getresponse().status == 204
            c.close()
            page.wait_for_selector(f'[data-target="{target}"][data-health="UNHEALTHY"]',
                                   timeout=20000)
            red = page.locator(f'[data-target="{target}"]').screenshot(
                path=str(shots / "unhealthy-target.png"))
            page.screenshot(path=str(shots / "page-unhealthy.png"), full_page=True)
            assert RED in _colours(red)
            other = page.locator('[data-target]:not([data-health="UNHEALTHY"])')
            assert other.count() == 1 and RED not in _colours(other.screenshot())
        finally:
            browser.close()
