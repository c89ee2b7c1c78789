"""Fixtures of the DNS tests: a DNS server the test controls, upstreams on loopback addresses,
and a Gateway on its own uvloop loop pointed at that DNS server.

    dns_srv        function scope  TestDNS on 127.0.0.1:<port 0> (tests/dns/dns_server.py)
    upstreams      function scope  make(ip, port=0) -> a started NamedUpstream, all stopped after
    gateway        function scope  start(config, **dns_settings) -> GatewayThread
"""
from __future__ import annotations

import asyncio
import json
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dns_server import NamedUpstream, TestDNS  # noqa: E402
from servers import HOST, free_port, http_get  # noqa: E402


class GatewayThread:
    """fastgw.gateway.Gateway on a uvloop loop in a daemon thread."""

    def __init__(self, config: Any, settings: Any, **kw: Any) -> None:
        import uvloop

        from fastgw.gateway import Gateway

        self.loop = uvloop.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.gw = Gateway(config, dns=settings, **kw)
        self.port = free_port()
        self.admin_port = free_port()
        self.run(self.gw.start(f"{HOST}:{self.port}", f"{HOST}:{self.admin_port}"), 30)

    def run(self, coro: Any, timeout: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[[], Any]) -> Any:
        async def wrapper() -> Any:
            return fn()
        return self.run(wrapper())

    def get(self, path: str = "/", headers: dict[str, str] | None = None
            ) -> tuple[int, dict[str, str], bytes]:
        status, hdrs, body = http_get(f"http://{HOST}:{self.port}{path}", headers, timeout=5)
        return status, {k.lower(): v for k, v in hdrs}, body

    def admin(self, method: str, path: str) -> tuple[int, Any]:
        import http.client

        conn = http.client.HTTPConnection(HOST, self.admin_port, timeout=5)
        try:
            conn.request(method, path)
            r = conn.getresponse()
            data = r.read()
            return r.status, json.loads(data) if data else None
        finally:
            conn.close()

    def stop(self) -> None:
        try:
            self.run(self.gw.stop(timeout=2.0))
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
            self.loop.close()


@pytest.fixture
def dns_srv() -> Iterator[TestDNS]:
    srv = TestDNS().start()
    yield srv
    srv.stop()


@pytest.fixture
def upstreams() -> Iterator[Callable[..., NamedUpstream]]:
    made: list[NamedUpstream] = []

    def make(ip: str, port: int = 0) -> NamedUpstream:
        u = NamedUpstream(ip, port).start()
        made.append(u)
        return u

    yield make
    for u in made:
        u.stop()


@pytest.fixture
def gateway(dns_srv: TestDNS) -> Iterator[Callable[..., GatewayThread]]:
    from fastgw.dns import DnsSettings

    made: list[GatewayThread] = []

    def start(config: Any, active_health: bool = False, **settings: Any) -> GatewayThread:
        settings.setdefault("resolvers", (("127.0.0.1", dns_srv.port),))
        settings.setdefault("timeout", 0.3)
        settings.setdefault("attempts", 1)
        settings.setdefault("hostsfile", "/nonexistent")
        g = GatewayThread(config, DnsSettings(**settings), active_health=active_health)
        made.append(g)
        return g

    yield start
    for g in made:
        g.stop()
