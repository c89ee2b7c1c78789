"""Active health checks against real loopback servers (refusing, 500s, hanging), bounded in
time: probe intervals of 0.05 s, timeouts of 0.2 s, every wait capped."""
import asyncio
import socket
import time
from collections.abc import Awaitable, Callable

import pytest

from fastgw._core.balancer import RoundRobin, Target
from fastgw.config.healthchecks import parse_healthchecks
from fastgw.health import HealthChecker

pytestmark = pytest.mark.timeout(30)


class ProbeServer:
    """A tiny HTTP server on 127.0.0.1 whose behaviour can change: "ok" (200), "error" (500),
    "hang" (accepts, never answers), "garbage" (not HTTP), "close" (closes at once)."""

    def __init__(self, mode: str = "ok") -> None:
        self.mode = mode
        self.requests: list[bytes] = []
        self.concurrent = 0
        self.max_concurrent = 0
        self.server: asyncio.base_events.Server | None = None
        self.port = 0
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> "ProbeServer":
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for w in list(self._writers):
            w.close()
        await self.server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        self.concurrent += 1
        self.max_concurrent = max(self.max_concurrent, self.concurrent)
        try:
            mode = self.mode
            if mode == "close":
                return
            head = await reader.readuntil(b"\r\n\r\n")
            self.requests.append(head)
            if mode == "hang":
                await asyncio.sleep(3600)
            elif mode == "garbage":
                writer.write(b"SSH-2.0-OpenSSH\r\n")
            else:
                status = b"200 OK" if mode == "ok" else b"500 Internal Server Error"
                writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.concurrent -= 1
            self._writers.discard(writer)
            writer.close()


def refused_port() -> int:
    # a port nothing listens on: bind, learn the number, close
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


async def wait_until(cond: Callable[[], bool], timeout: float = 5.0) -> float:
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)
    return time.monotonic() - t0


def run(coro_fn: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(coro_fn(), 20))


CFG = {"active": {"timeout": 0.2, "concurrency": 10, "http_path": "/status",
                  "healthy": {"interval": 0.05, "successes": 2},
                  "unhealthy": {"interval": 0.05, "http_failures": 2, "tcp_failures": 2,
                                "timeouts": 1}}}


def test_probe_once_classifies_each_failure() -> None:
    async def main() -> None:
        ok, err, hang, garbage = [await ProbeServer(m).start()
                                  for m in ("ok", "error", "hang", "garbage")]
        try:
            ts = [Target("127.0.0.1", s.port) for s in (ok, err, hang, garbage)]
            ts.append(Target("127.0.0.1", refused_port()))
            b = RoundRobin(ts)
            hc = HealthChecker("u", b, parse_healthchecks(CFG))
            t0 = time.monotonic()
            await hc.probe_once()
            assert time.monotonic() - t0 < 1.0  # concurrent, bounded by the 0.2 s timeout
            c = [t.health.counters for t in ts]
            assert c[0] == [0, 0, 0, 0] and ts[0].healthy   # 200 while healthy: nothing
            assert c[1] == [0, 1, 0, 0]                      # 500: http failure
            assert not ts[2].healthy                         # hang: 1 timeout trips
            assert c[3] == [0, 1, 0, 0]                      # not HTTP: invalid status
            assert c[4] == [0, 0, 1, 0]                      # refused: tcp failure
        finally:
            for s in (ok, err, hang, garbage):
                await s.stop()
    run(main)


def test_probe_request_carries_path_host_and_headers() -> None:
    async def main() -> None:
        s = await ProbeServer("ok").start()
        try:
            cfg = {"active": {"http_path": "/healthz?deep=1",
                              "headers": {"X-Probe": ["a", "b"], "User-Agent": ["fastgw"]}}}
            t = Target("127.0.0.1", s.port)
            hc = HealthChecker("u", RoundRobin([t]), parse_healthchecks(cfg),
                               host_header="api.example")
            await hc.probe(t)
            head = s.requests[0].decode()
            lines = head.split("\r\n")
            assert lines[0] == "GET /healthz?deep=1 HTTP/1.1"
            assert "Host: api.example" in lines
            assert "X-Probe: a" in lines and "X-Probe: b" in lines
            assert "User-Agent: fastgw" in lines and "Connection: close" in lines
        finally:
            await s.stop()
    run(main)


def test_tcp_check_type() -> None:
    async def main() -> None:
        s = await ProbeServer("close").start()
        try:
            cfg = {"active": {"type": "tcp", "healthy": {"successes": 1},
                              "unhealthy": {"tcp_failures": 1}}}
            ts = [Target("127.0.0.1", s.port), Target("127.0.0.1", refused_port())]
            b = RoundRobin(ts)
            hc = HealthChecker("u", b, parse_healthchecks(cfg))
            await hc.probe_once()
            assert ts[0].healthy and not ts[1].healthy
            assert s.requests == []  # tcp: connect only, nothing sent
        finally:
            await s.stop()
    run(main)


def test_failing_target_leaves_and_recovered_target_returns() -> None:
    async def main() -> None:
        servers = [await ProbeServer("ok").start() for _ in range(3)]
        try:
            ts = [Target("127.0.0.1", s.port) for s in servers]
            b = RoundRobin(ts)
            hc = HealthChecker("u", b, parse_healthchecks(CFG))
            hc.start()
            try:
                servers[1].mode = "error"
                await wait_until(lambda: not ts[1].healthy, 3.0)
                assert {b.pick().port for _ in range(30)} == {servers[0].port, servers[2].port}
                servers[2].mode = "hang"
                await wait_until(lambda: not ts[2].healthy, 3.0)
                assert {b.pick().port for _ in range(10)} == {servers[0].port}
                servers[1].mode = "ok"
                servers[2].mode = "ok"
                await wait_until(lambda: ts[1].healthy and ts[2].healthy, 3.0)
                assert {b.pick().port for _ in range(30)} == {s.port for s in servers}
            finally:
                hc.stop()
                await hc.wait_closed()
        finally:
            for s in servers:
                await s.stop()
    run(main)


def test_refusing_target_detected_and_all_down() -> None:
    async def main() -> None:
        cfg = dict(CFG)
        ts = [Target("127.0.0.1", refused_port()), Target("127.0.0.1", refused_port())]
        b = RoundRobin(ts)
        hc = HealthChecker("u", b, parse_healthchecks(cfg))
        hc.start()
        try:
            await wait_until(lambda: not b.is_up(), 3.0)
            assert b.pick() is None
        finally:
            hc.stop()
            await hc.wait_closed()
    run(main)


def test_concurrency_limits_probes_in_flight() -> None:
    async def main() -> None:
        servers = [await ProbeServer("hang").start() for _ in range(5)]
        try:
            cfg = {"active": {"timeout": 0.15, "concurrency": 2,
                              "unhealthy": {"timeouts": 1}}}
            ts = [Target("127.0.0.1", srv.port) for srv in servers]
            hc = HealthChecker("u", RoundRobin(ts), parse_healthchecks(cfg))
            in_flight, peak = [0], [0]
            real_io = hc._probe_io

            async def counted_io(target):  # count probes in flight on the checker's side
                in_flight[0] += 1
                peak[0] = max(peak[0], in_flight[0])
                try:
                    return await real_io(target)
                finally:
                    in_flight[0] -= 1
            hc._probe_io = counted_io
            t0 = time.monotonic()
            await hc.probe_once()
            took = time.monotonic() - t0
            assert peak[0] == 2  # never more than `concurrency` probes at once
            assert 0.4 <= took < 2.0  # 5 probes, 2 at a time, 0.15 s each: 3 rounds
            assert not any(t.healthy for t in ts)
            assert sum(len(srv.requests) for srv in servers) == 5
        finally:
            for srv in servers:
                await srv.stop()
    run(main)


def test_stop_ends_probing() -> None:
    async def main() -> None:
        s = await ProbeServer("ok").start()
        try:
            t = Target("127.0.0.1", s.port)
            hc = HealthChecker("u", RoundRobin([t]), parse_healthchecks(CFG))
            hc.start()
            await wait_until(lambda: len(s.requests) >= 2, 3.0)
            hc.stop()
            await hc.wait_closed()
            n = len(s.requests)
            await asyncio.sleep(0.2)
            assert len(s.requests) == n
        finally:
            await s.stop()
    run(main)


def test_half_open_loop_runs_on_the_event_loop() -> None:
    async def main() -> None:
        cfg = {"passive": {"unhealthy": {"tcp_failures": 1, "cooldown": 0.1}}}
        t = Target("127.0.0.1", 9)
        b = RoundRobin([t])
        hc = HealthChecker("u", b, parse_healthchecks(cfg))
        hc.start()
        try:
            await asyncio.sleep(0.02)
            hc.report_tcp_failure(t, time.monotonic())
            assert not t.healthy and not t.trial
            took = await wait_until(lambda: t.trial, 2.0)
            assert 0.05 <= took <= 1.0
            assert b.pick() is t
            hc.report_http_status(t, 200, time.monotonic())
            assert t.healthy
        finally:
            hc.stop()
            await hc.wait_closed()
    run(main)


def _self_signed(tmp_path):
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "probe.test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("probe.test")]), False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "c.pem", tmp_path / "k.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_https_probe_verifies_certificates_unless_told_not_to(tmp_path) -> None:
    import ssl

    cert_path, key_path = _self_signed(tmp_path)

    async def main() -> None:
        sctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        sctx.load_cert_chain(cert_path, key_path)
        s = ProbeServer("ok")
        s.server = await asyncio.start_server(s._handle, "127.0.0.1", 0, ssl=sctx)
        s.port = s.server.sockets[0].getsockname()[1]
        try:
            base = {"type": "https", "timeout": 2, "https_sni": "probe.test",
                    "unhealthy": {"tcp_failures": 1}}
            t1 = Target("127.0.0.1", s.port)
            hc1 = HealthChecker("u", RoundRobin([t1]), parse_healthchecks({"active": base}))
            await hc1.probe(t1)
            assert not t1.healthy  # self-signed: verification fails -> tcp failure
            t2 = Target("127.0.0.1", s.port)
            cfg = {"active": dict(base, https_verify_certificate=False)}
            hc2 = HealthChecker("u", RoundRobin([t2]), parse_healthchecks(cfg))
            await hc2.probe(t2)
            assert t2.healthy and s.requests and s.requests[-1].startswith(b"GET / HTTP/1.1")
            # trusting the certificate works with verification on
            t3 = Target("127.0.0.1", s.port)
            cctx = ssl.create_default_context(cafile=str(cert_path))
            hc3 = HealthChecker("u", RoundRobin([t3]), parse_healthchecks({"active": base}),
                                ssl_context=cctx)
            n = len(s.requests)
            await hc3.probe(t3)
            assert t3.healthy and len(s.requests) == n + 1
        finally:
            await s.stop()
    run(main)
