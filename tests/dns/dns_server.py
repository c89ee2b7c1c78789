"""A DNS server on 127.0.0.1 that tests control (dnslib, UDP, port 0), and small upstreams
bound to other loopback addresses (127.0.0.2, ...) that say who they are.

    srv = TestDNS().start()            # srv.port, srv.resolver ("127.0.0.1:<port>")
    srv.set_a("api.test", ["127.0.0.2", "127.0.0.3"], ttl=1)
    srv.set_srv("_http._tcp.api.test", [(prio, weight, port, "a.test")], ttl=1)
    srv.set_rcode("gone.test", "NXDOMAIN" | "SERVFAIL" | "REFUSED" | "DROP")
    srv.mode = "drop"                  # answer nothing (clients time out); "serve" again
    srv.queries                        # [(name, type)] received
    srv.stop()

    up = NamedUpstream("127.0.0.2").start()   # GET anything -> 200 "127.0.0.2:<port>"
    same_port_pair(make, ["127.0.0.2", "127.0.0.3"])   # upstreams on one port, several IPs
"""
from __future__ import annotations

import asyncio
import threading
from typing import Any

from dnslib import AAAA, CNAME, QTYPE, RCODE, RR, SRV, A
from dnslib.server import BaseResolver, DNSServer

# "DROP": no answer at all for that name (its lookups time out)
_RCODES = {"NXDOMAIN": RCODE.NXDOMAIN, "SERVFAIL": RCODE.SERVFAIL, "REFUSED": RCODE.REFUSED,
           "DROP": -1}


class _Drop(Exception):
    pass


class TestDNS(BaseResolver):
    __test__ = False  # not a pytest class

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.records: dict[tuple[str, str], tuple[list[Any], int]] = {}
        self.rcodes: dict[str, int] = {}
        self.mode = "serve"
        self.queries: list[tuple[str, str]] = []
        self.server: DNSServer | None = None

    # -- records ----------------------------------------------------------------------------
    def set_a(self, name: str, ips: list[str], ttl: int = 1) -> None:
        with self.lock:
            self.rcodes.pop(name, None)
            v4 = [ip for ip in ips if ":" not in ip]
            v6 = [ip for ip in ips if ":" in ip]
            self.records[(name, "A")] = (v4, ttl)
            if v6:
                self.records[(name, "AAAA")] = (v6, ttl)

    def set_srv(self, name: str, recs: list[tuple[int, int, int, str]], ttl: int = 1) -> None:
        with self.lock:
            self.rcodes.pop(name, None)
            self.records[(name, "SRV")] = (recs, ttl)

    def set_cname(self, name: str, target: str, ttl: int = 1) -> None:
        with self.lock:
            self.records[(name, "CNAME")] = ([target], ttl)

    def set_rcode(self, name: str, rcode: str) -> None:
        with self.lock:
            self.rcodes[name] = _RCODES[rcode]

    def clear(self, name: str) -> None:
        with self.lock:
            for k in [k for k in self.records if k[0] == name]:
                del self.records[k]
            self.rcodes.pop(name, None)

    def count(self, name: str, qtype: str | None = None) -> int:
        with self.lock:
            return sum(1 for n, t in self.queries if n == name and (qtype is None or t == qtype))

    # -- dnslib -------------------------------------------------------------------------------
    def resolve(self, request: Any, handler: Any) -> Any:
        q = request.q
        name = str(q.qname).rstrip(".").lower()
        qtype = QTYPE[q.qtype]
        with self.lock:
            self.queries.append((name, qtype))
            if self.mode == "drop":
                raise _Drop()
            reply = request.reply()
            if name in self.rcodes:
                if self.rcodes[name] < 0:
                    raise _Drop()
                reply.header.rcode = self.rcodes[name]
                return reply
            known = any(k[0] == name for k in self.records)
            if not known:
                reply.header.rcode = RCODE.NXDOMAIN
                return reply
            if qtype != "CNAME" and (name, "CNAME") in self.records:
                (target,), ttl = self.records[(name, "CNAME")]
                reply.add_answer(RR(q.qname, QTYPE.CNAME, rdata=CNAME(target), ttl=ttl))
                return reply
            recs, ttl = self.records.get((name, qtype), ([], 0))
            for r in recs:
                if qtype == "A":
                    reply.add_answer(RR(q.qname, QTYPE.A, rdata=A(r), ttl=ttl))
                elif qtype == "AAAA":
                    reply.add_answer(RR(q.qname, QTYPE.AAAA, rdata=AAAA(r), ttl=ttl))
                elif qtype == "SRV":
                    prio, weight, port, target = r
                    reply.add_answer(RR(q.qname, QTYPE.SRV,
                                        rdata=SRV(prio, weight, port, target), ttl=ttl))
                elif qtype == "CNAME":
                    reply.add_answer(RR(q.qname, QTYPE.CNAME, rdata=CNAME(r), ttl=ttl))
            return reply

    def start(self) -> "TestDNS":
        class _Logger:
            def log_prefix(self, *a: Any) -> str: return ""
            def __getattr__(self, name: str) -> Any:
                return lambda *a, **k: None

        srv = DNSServer(self, port=0, address="127.0.0.1", logger=_Logger())
        _patch_drop(srv)
        srv.start_thread()
        self.server = srv
        return self

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.server.server_address[1]

    @property
    def resolver(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.server is not None:
            self.server.server.shutdown()
            self.server.server.server_close()
            self.server = None


def _patch_drop(srv: DNSServer) -> None:
    # dnslib answers SERVFAIL when the resolver raises; "drop" must send nothing at all
    handler_cls = srv.server.RequestHandlerClass
    orig = handler_cls.handle

    def handle(self: Any) -> None:
        try:
            orig(self)
        except _Drop:
            pass

    handler_cls.handle = handle


class NamedUpstream:
    """HTTP/1.1 server on (ip, port 0) answering 200 with body "ip:port" and Host echoed in
    X-Host; `hits` counts requests. Own loop in a daemon thread."""

    def __init__(self, ip: str, port: int = 0) -> None:
        self.ip = ip
        self.port = port
        self.hits = 0
        self.hosts: list[str] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        self.status = 200
        self.health_status = 200    # answer to GET /health (active probes)
        self.delay = 0.0            # seconds before answering paths starting /slow
        self.slow_started = 0       # /slow requests received (answered or not yet)

    @property
    def addr(self) -> str:
        return f"{self.ip}:{self.port}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                path = head.split(b" ", 2)[1] if head.count(b" ") >= 2 else b"/"
                if path.startswith(b"/health"):
                    writer.write(b"HTTP/1.1 %d X\r\nContent-Length: 0\r\n\r\n"
                                 % self.health_status)
                    await writer.drain()
                    continue
                if path.startswith(b"/slow"):
                    self.slow_started += 1
                    await asyncio.sleep(self.delay)
                host = ""
                for line in head.split(b"\r\n")[1:]:
                    if line.lower().startswith(b"host:"):
                        host = line[5:].strip().decode()
                self.hits += 1
                self.hosts.append(host)
                body = self.addr.encode()
                writer.write(b"HTTP/1.1 %d X\r\nContent-Length: %d\r\nX-Host: %s\r\n\r\n%s"
                             % (self.status, len(body), host.encode(), body))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    def start(self) -> "NamedUpstream":
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            try:
                self._server = loop.run_until_complete(
                    asyncio.start_server(self._handle, self.ip, self.port))
            except OSError as e:
                errors.append(e)
                loop.close()
                ready.set()
                return
            self.port = self._server.sockets[0].getsockname()[1]
            self._loop = loop
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        assert ready.wait(5)
        if errors:
            raise errors[0]
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is None:
            return

        async def close() -> None:
            assert self._server is not None
            self._server.close()
            loop.stop()

        asyncio.run_coroutine_threadsafe(close(), loop)
        assert self._thread is not None
        self._thread.join(5)
        self._loop = None


def same_port_pair(make: Any, ips: list[str]) -> list[NamedUpstream]:
    """Upstreams on every ip of `ips`, all on one port (A records carry no port)."""
    for _ in range(20):
        first = make(ips[0])
        try:
            return [first] + [make(ip, first.port) for ip in ips[1:]]
        except (OSError, AssertionError):
            continue
    raise RuntimeError("no common free port")
