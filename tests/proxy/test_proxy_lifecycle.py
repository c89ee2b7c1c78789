"""Process lifecycle end to end: SIGTERM drains in-flight requests (new connections refused,
exit 0), and `--workers 2` serves from both workers and stops them all."""
from __future__ import annotations

import os
import signal
import socket
import threading
import time
from typing import Any, Callable

import pytest
from _util import RawClient, Resp, admin_status, get, kong, route, service

from servers import HOST, EchoUpstream, FastgwProcess, wait_until


def _config(echo: EchoUpstream) -> dict:
    return kong(service("echo", echo.url("/"), [route("r", paths=["/"], strip_path=False)]))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purposes
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _refused(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return False
    except ConnectionRefusedError:
        return True


def test_sigterm_drains_in_flight_request(fastgw: Callable[..., FastgwProcess],
                                          echo: EchoUpstream) -> None:
    gw = fastgw(_config(echo))
    result: dict[str, Any] = {}

    def slow_request() -> None:
        try:
            with RawClient(gw.port, timeout=10) as c:
                result["resp"] = c.request(get("/slow", extra="X-Echo: delay=1.5\r\n"))
                result["closed"] = c.closed()
        except Exception as e:  # reported by the assertions below
            result["error"] = e

    idle = RawClient(gw.port, timeout=5)          # an idle keep-alive connection
    assert idle.request(get("/idle")).status == 200
    t = threading.Thread(target=slow_request)
    t.start()
    echo.wait_requests(2)                        # the slow one reached the upstream
    gw.send_signal(signal.SIGTERM)
    t_sig = time.monotonic()
    # the listener goes away at once: new connections are refused while the request runs
    wait_until(lambda: _refused(gw.port), 1.0)
    assert time.monotonic() - t_sig < 1.2
    assert gw.returncode is None, "exited before the in-flight request finished"
    # the idle connection is closed by the drain
    assert idle.closed(2.0)
    idle.close()
    t.join(10)
    assert "error" not in result, result.get("error")
    resp: Resp = result["resp"]
    assert resp.status == 200 and resp.json()["path"] == "/slow"
    assert resp.header("connection") == "close"
    assert result["closed"]
    assert gw.proc.wait(10) == 0


def test_sigterm_with_nothing_in_flight_exits_quickly(fastgw: Callable[..., FastgwProcess],
                                                      echo: EchoUpstream) -> None:
    gw = fastgw(_config(echo))
    with RawClient(gw.port) as c:
        assert c.request(get("/x")).status == 200
    t0 = time.monotonic()
    gw.send_signal(signal.SIGTERM)
    assert gw.proc.wait(10) == 0
    assert time.monotonic() - t0 < 3


def test_two_workers_serve_and_stop(fastgw: Callable[..., FastgwProcess],
                                    echo: EchoUpstream) -> None:
    gw = fastgw(_config(echo), workers=2, wait_admin=True)
    for i in range(40):   # fresh connections: SO_REUSEPORT spreads them over the workers
        with RawClient(gw.port) as c:
            assert c.request(get(f"/w/{i}")).status == 200

    def both_served() -> list[dict] | None:
        ws = admin_status(gw).get("workers") or []
        return ws if len(ws) == 2 and all(w["total_requests"] > 0 for w in ws) else None

    workers = wait_until(both_served, 5.0, 0.1)
    pids = {w["pid"] for w in workers}
    assert len(pids) == 2 and gw.pid not in pids
    assert sum(w["total_requests"] for w in workers) == 40
    assert all(_alive(p) for p in pids)
    gw.send_signal(signal.SIGTERM)
    assert gw.proc.wait(15) == 0
    assert wait_until(lambda: not any(_alive(p) for p in pids), 5.0)
    assert _refused(gw.port)


@pytest.mark.parametrize("workers", [2])
def test_workers_drain_in_flight_on_sigterm(fastgw: Callable[..., FastgwProcess],
                                            echo: EchoUpstream, workers: int) -> None:
    gw = fastgw(_config(echo), workers=workers, wait_admin=True)
    results: list[int] = []

    def slow(i: int) -> None:
        with RawClient(gw.port, timeout=10) as c:
            results.append(c.request(get(f"/s/{i}", extra="X-Echo: delay=1.0\r\n")).status)

    threads = [threading.Thread(target=slow, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    echo.wait_requests(6)
    gw.send_signal(signal.SIGTERM)
    for t in threads:
        t.join(10)
    assert results == [200] * 6
    assert gw.proc.wait(15) == 0
