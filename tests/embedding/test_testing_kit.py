"""fastgw.testing itself: the fake clock drives plugins and health, the transport's flow
control without sockets, the in-process stream connection used by health probes."""
from __future__ import annotations

import asyncio

import pytest

from fastgw.inprocess import open_connection, open_inprocess
from fastgw.testing import FakeClock, MemoryUpstream, run
from helpers import upstream_config


def test_fake_clock_basics():
    c = FakeClock(100.0)
    assert c() == 100.0
    assert c.advance(2.5) == 102.5 and c() == 102.5
    with pytest.raises(ValueError):
        c.advance(-1)
    c.set(5.0)
    assert c() == 5.0


def test_rate_limit_window_moves_with_fake_clock(fastgw_run, gateway_client):
    """Fails when: the plugin reads the real clock (the 4th request would stay limited after
    advance(), or a real window boundary could let it through before)."""
    clock = FakeClock(1_700_000_000.0)   # a wall-clock instant: windows are epoch-aligned
    cfg = upstream_config(["asgi:m"], plugins=[
        {"name": "rate-limiting", "config": {"minute": 3, "policy": "local",
                                             "limit_by": "ip"}}])

    async def main():
        up = MemoryUpstream()
        async with gateway_client(cfg, handlers={"asgi:m": up}, clock=clock) as client:
            statuses = [(await client.get("/")).status for _ in range(4)]
            assert statuses == [200, 200, 200, 429]
            clock.advance(30)            # same minute window: still limited
            assert (await client.get("/")).status == 429
            clock.advance(60)
            r = await client.get("/")
            assert r.status == 200
            assert r.headers["x-ratelimit-remaining-minute"] == "2"
        assert len(up.requests) == 4

    fastgw_run(main())


def test_half_open_cooldown_with_fake_clock(fastgw_run, gateway_client):
    """Passive-only health: a target tripped by 500s gets one trial request after the cooldown,
    which FakeClock.advance() reaches without sleeping."""
    clock = FakeClock()
    hc = {"passive": {"unhealthy": {"http_statuses": [500], "http_failures": 1},
                      "healthy": {"successes": 1}}}

    async def main():
        a, b = MemoryUpstream(body=b"a"), MemoryUpstream(body=b"b")
        a.fail_next(1)
        cfg = upstream_config(["asgi:a", "asgi:b"], healthchecks=hc)
        async with gateway_client(cfg, handlers={"asgi:a": a, "asgi:b": b},
                                  clock=clock) as client:
            gw = client.gateway
            assert (await client.get("/")).status == 500        # a fails, trips
            assert [(await client.get("/")).body for _ in range(3)] == [b"b"] * 3
            checker = gw.snapshot.health["up"]
            clock.advance(checker.half_open_cooldown + 1)
            checker.tick()                                       # what its timer task does
            bodies = [(await client.get("/")).body for _ in range(4)]
            assert b"a" in bodies, bodies                        # the trial reached a
            states = {h["target"]: h["health"] for h in gw.upstream_health("up")}
            assert states["asgi:a"] == "HEALTHY", states

    fastgw_run(main())


class _Proto(asyncio.BufferedProtocol):
    """A BufferedProtocol with a tiny buffer, recording what it gets."""

    def __init__(self) -> None:
        self.buf = bytearray(1000)
        self.got = bytearray()
        self.lost: list = []
        self.paused_writing = 0

    def connection_made(self, transport):
        self.transport = transport

    def get_buffer(self, sizehint):
        return memoryview(self.buf)

    def buffer_updated(self, n):
        self.got += self.buf[:n]

    def connection_lost(self, exc):
        self.lost.append(exc)

    def pause_writing(self):
        self.paused_writing += 1

    def resume_writing(self):
        self.paused_writing -= 1


@pytest.mark.parametrize("kind", ["asyncio", "uvloop"])
def test_transport_pause_reading_holds_response(kind):
    """Without sockets: bytes the protocol paused for are held, then delivered in order."""
    async def app(scope, receive, send):
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i in range(10):
            await send({"type": "http.response.body", "body": bytes([65 + i]) * 3000,
                        "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def main():
        loop = asyncio.get_running_loop()
        p = _Proto()
        tr = open_inprocess(app, p, loop)
        tr.pause_reading()
        tr.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        for _ in range(20):
            await asyncio.sleep(0)
        assert p.got == b""                       # held while paused
        tr.resume_reading()
        for _ in range(50):
            await asyncio.sleep(0)
        head, _, body = bytes(p.got).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK")
        assert b"Transfer-Encoding: chunked" in head
        expected = b"".join(b"bb8\r\n" + bytes([65 + i]) * 3000 + b"\r\n" for i in range(10))
        assert body == expected + b"0\r\n\r\n"
        tr.close()
        await asyncio.sleep(0)
        assert p.lost == [None]

    run(main(), kind)


def test_transport_request_backpressure():
    """Request body the app does not read pauses the writer (pause_writing) and a read
    resumes it: the proxy stops reading its client instead of queueing without bound."""
    gate = None

    async def app(scope, receive, send):
        await gate.wait()
        total = 0
        while True:
            m = await receive()
            total += len(m["body"])
            if not m["more_body"]:
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(total).encode()})

    async def main():
        nonlocal gate
        gate = asyncio.Event()
        loop = asyncio.get_running_loop()
        p = _Proto()
        tr = open_inprocess(app, p, loop)
        tr.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\n\r\n")
        tr.write(b"x" * 100000)
        await asyncio.sleep(0)
        assert p.paused_writing == 1
        assert tr.get_write_buffer_size() == 100000
        gate.set()
        for _ in range(10):
            await asyncio.sleep(0)
        assert p.paused_writing == 0
        tr.write(b"x" * 100000)
        for _ in range(20):
            await asyncio.sleep(0)
        assert bytes(p.got).endswith(b"\r\n\r\n200000")
        tr.close()

    run(main())


def test_open_connection_streams(fastgw_run):
    """The stream connection health probes use reaches the app (HTTP/1.1 over streams)."""
    async def main():
        up = MemoryUpstream(status=204, body=b"")
        reader, writer = await open_connection(up)
        writer.write(b"GET /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        line = await asyncio.wait_for(reader.readuntil(b"\n"), 5)
        assert line == b"HTTP/1.1 204 No Content\r\n"
        assert await asyncio.wait_for(reader.read(), 5) == b"\r\n"   # then EOF (close)
        writer.close()
        assert up.paths == ["/status"]

    fastgw_run(main())
