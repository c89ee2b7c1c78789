"""In-process targets (asgi:/python:) through a real Gateway on 127.0.0.1, on both loops."""
from __future__ import annotations

import asyncio

import pytest

from fastgw.config.errors import ConfigError
from fastgw.gateway import Gateway
from fastgw.inprocess import Response
from fastgw.testing import MemoryUpstream
from helpers import network_upstream, upstream_config


def test_asgi_scope_and_body(fastgw_run, gateway_client):
    """Fails when: the scope misses fields or mis-decodes the path, the body is lost."""

    async def main():
        cfg = upstream_config(["asgi:echo"], path="/e")
        async with gateway_client(cfg, handlers={"asgi:echo": scope_app_no_wait}) as client:
            r = await client.post("/e/a%20b/c?x=1&y=%20", body=b"z" * 1000,
                                  headers={"X-Test": "yes"})
            assert r.status == 201, r
            assert r.headers["x-app"] == "1"
            assert r.headers["via"] == "1.1 fastgw"
            j = r.json()
            assert j["method"] == "POST"
            assert j["path"] == "/a b/c"
            assert j["raw_path"] == "/a%20b/c"
            assert j["query"] == "x=1&y=%20"
            assert j["http_version"] == "1.1"
            assert j["headers"]["x-test"] == "yes"
            assert j["headers"]["x-forwarded-for"] == "127.0.0.1"
            assert j["client"] == ["127.0.0.1", 0]
            assert j["len"] == 1000

    fastgw_run(main())


async def scope_app_no_wait(scope, receive, send):
    parts = []
    while True:
        m = await receive()
        parts.append(m["body"])
        if not m["more_body"]:
            break
    import json
    out = json.dumps({
        "method": scope["method"], "path": scope["path"], "raw_path": scope["raw_path"].decode(),
        "query": scope["query_string"].decode(), "http_version": scope["http_version"],
        "headers": {k.decode(): v.decode() for k, v in scope["headers"]},
        "client": scope["client"], "messages": len(parts), "len": sum(map(len, parts)),
    }).encode()
    await send({"type": "http.response.start", "status": 201,
                "headers": [(b"content-type", b"application/json"), (b"x-app", b"1")]})
    await send({"type": "http.response.body", "body": out})
    # after the response, receive() reports the end of the exchange
    assert (await asyncio.wait_for(receive(), 5))["type"] == "http.disconnect"


def test_request_body_is_streamed_to_the_app(fastgw_run, gateway_client):
    """Fails when: the app only gets the body once it is complete (buffered whole)."""
    seen: list[tuple[int, bool]] = []

    async def app(scope, receive, send):
        total = 0
        while True:
            m = await receive()
            total += len(m["body"])
            seen.append((len(m["body"]), m["more_body"]))
            if not m["more_body"]:
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(total).encode()})

    async def main():
        cfg = upstream_config(["asgi:sink"])
        # Kong's default request_buffering reads the body whole first: streaming is opt-in
        cfg["services"][0]["routes"][0]["request_buffering"] = False
        async with gateway_client(cfg, handlers={"asgi:sink": app}) as client:
            # a chunked upload written slowly: the app must see pieces before the end
            reader, writer = await asyncio.open_connection("127.0.0.1",
                                                           client.gateway.address[1])
            writer.write(b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
            for i in range(3):
                writer.write(b"400\r\n" + b"a" * 1024 + b"\r\n")
                await writer.drain()
                for _ in range(200):   # bounded wait for the app to get this piece
                    if sum(n for n, _ in seen) == 1024 * (i + 1):
                        break
                    await asyncio.sleep(0.01)
                assert sum(n for n, _ in seen) == 1024 * (i + 1), seen
                assert seen[-1][1] is True, "more_body must be set before the body ends"
            writer.write(b"0\r\n\r\n")
            data = await asyncio.wait_for(reader.readuntil(b"3072"), 5)
            assert data.startswith(b"HTTP/1.1 200")
            writer.close()
        assert sum(n for n, _ in seen) == 3072
        assert seen[-1] == (0, False)
        assert len(seen) == 4

    fastgw_run(main())


def test_streamed_response_and_backpressure(fastgw_run, gateway_client):
    """A 4 MiB chunked response from the app arrives intact (flow control holds bytes rather
    than dropping or reordering them)."""
    chunk = bytes(range(256)) * 256   # 64 KiB

    async def app(scope, receive, send):
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i in range(64):
            await send({"type": "http.response.body", "body": bytes([i]) + chunk[1:],
                        "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def main():
        cfg = upstream_config(["asgi:big"])
        async with gateway_client(cfg, handlers={"asgi:big": app}) as client:
            for _ in range(2):  # and the connection is reusable afterwards
                r = await client.get("/big")
                assert r.status == 200
                assert r.headers["transfer-encoding"] == "chunked"
                assert len(r.body) == 64 * len(chunk)
                assert all(r.body[i * len(chunk)] == i for i in range(64))
                assert r.body[1:len(chunk)] == chunk[1:]

    fastgw_run(main())


def test_python_handler_request_and_streamed_response(fastgw_run, gateway_client):
    async def handler(request):
        if request.path == "/stream":
            async def gen():
                for i in range(3):
                    yield f"part{i};".encode()
            return Response(200, {"Content-Type": "text/plain"}, gen())
        body = await request.body()
        return Response(202, [("X-Method", request.method), ("X-Query", request.query)],
                        f"{request.path}|{request.headers.get('x-a')}|{body.decode()}")

    async def main():
        cfg = upstream_config(["python:h"])
        async with gateway_client(cfg, handlers={"python:h": handler}) as client:
            r = await client.put("/p?q=2", body=b"data", headers={"X-A": "b"})
            assert r.status == 202
            assert r.headers["x-method"] == "PUT"
            assert r.headers["x-query"] == "q=2"
            assert r.headers["content-length"] == str(len("/p|b|data"))
            assert r.body == b"/p|b|data"
            r = await client.get("/stream")
            assert (r.status, r.body) == (200, b"part0;part1;part2;")
            assert r.headers["transfer-encoding"] == "chunked"

    fastgw_run(main())


def test_head_and_no_content(fastgw_run, gateway_client):
    async def app(scope, receive, send):
        await receive()
        status = 204 if scope["path"] == "/none" else 200
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-length", b"5")] if status == 200 else []})
        await send({"type": "http.response.body", "body": b"hello" if status == 200 else b""})

    async def main():
        cfg = upstream_config(["asgi:a"])
        async with gateway_client(cfg, handlers={"asgi:a": app}) as client:
            r = await client.head("/x")
            assert (r.status, r.body, r.headers["content-length"]) == (200, b"", "5")
            r = await client.get("/none")
            assert (r.status, r.body) == (204, b"")
            r = await client.get("/x")   # the connection survived both
            assert (r.status, r.body) == (200, b"hello")

    fastgw_run(main())


def test_keepalive_connection_reused(fastgw_run, gateway_client):
    """Fails when: every request opens a new in-process connection (pool not used)."""
    import fastgw.inprocess as ip

    made = []
    orig = ip.InProcessTransport.__init__

    def counting_init(self, *a, **kw):
        made.append(1)
        orig(self, *a, **kw)

    async def main():
        up = MemoryUpstream(body=b"k")
        async with gateway_client(upstream_config(["asgi:m"]), handlers={"asgi:m": up}) as client:
            for _ in range(5):
                assert (await client.get("/k")).body == b"k"
        assert len(up.requests) == 5

    ip.InProcessTransport.__init__ = counting_init
    try:
        fastgw_run(main())
    finally:
        ip.InProcessTransport.__init__ = orig
    assert len(made) == 1


def test_app_errors(fastgw_run, gateway_client):
    """Before the response started: 500. After: the client sees a truncated response."""

    async def app(scope, receive, send):
        await receive()
        if scope["path"] == "/early":
            raise ValueError("boom")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise ValueError("late boom")

    async def main():
        cfg = upstream_config(["asgi:bad"])
        async with gateway_client(cfg, handlers={"asgi:bad": app}) as client:
            r = await client.get("/early")
            assert r.status == 500
            with pytest.raises(ConnectionError):
                await client.get("/late")
            r = await client.get("/early")   # the gateway is fine afterwards
            assert r.status == 500

    fastgw_run(main())


def test_mixed_with_network_targets(fastgw_run, gateway_client):
    """One upstream, an in-process and a network target: round-robin reaches both."""

    async def main():
        mem = MemoryUpstream(body=b"mem")
        async with network_upstream("net") as port:
            cfg = upstream_config(["asgi:mem", f"127.0.0.1:{port}"])
            async with gateway_client(cfg, handlers={"asgi:mem": mem}) as client:
                bodies = [(await client.get("/x")).body for _ in range(6)]
        assert bodies.count(b"mem") == 3, bodies
        assert bodies.count(b"net /x 0") == 3, bodies

    fastgw_run(main())


def test_memory_upstream_fail_hang_reset(fastgw_run, gateway_client):
    async def main():
        up = MemoryUpstream(body=b"fine")
        cfg = upstream_config(["asgi:m"], read_timeout_ms=300)
        async with gateway_client(cfg, handlers={"asgi:m": up}) as client:
            up.fail_next(2)
            assert (await client.get("/a")).status == 500
            assert (await client.get("/a")).status == 500
            assert (await client.get("/a")).body == b"fine"
            up.hang()
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            r = await client.get("/h")
            assert r.status == 504
            assert 0.25 <= loop.time() - t0 < 2.0
            up.reset()
            assert (await client.post("/r", body=b"x")).status == 502
            up.respond(203, "back", {"X-Y": "z"})
            r = await client.get("/ok")
            assert (r.status, r.body, r.headers["x-y"]) == (203, b"back", "z")
        outcomes = [(r.path, r.outcome) for r in up.requests]
        assert outcomes[:4] == [("/a", "failed"), ("/a", "failed"), ("/a", "answered"),
                                ("/h", "hung")]
        assert ("/r", "reset") in outcomes and outcomes[-1] == ("/ok", "answered")
        assert [r.body for r in up.requests if r.path == "/r"][0] == b"x"

    fastgw_run(main())


def test_reset_retried_on_other_target_and_passive_health(fastgw_run, gateway_client):
    """A target failing with 500s is marked unhealthy by passive checks; traffic moves to the
    healthy in-process target (health state applies to in-process targets as to sockets)."""
    hc = {"passive": {"unhealthy": {"http_statuses": [500], "http_failures": 1},
                      "healthy": {"successes": 1}}}

    async def main():
        a, b = MemoryUpstream(body=b"a"), MemoryUpstream(body=b"b")
        a.fail_next(1)
        cfg = upstream_config(["asgi:a", "asgi:b"], healthchecks=hc)
        async with gateway_client(cfg, handlers={"asgi:a": a, "asgi:b": b}) as client:
            seen = [(await client.get("/")).body for _ in range(6)]
            health = client.gateway.upstream_health("up")
        assert seen.count(b"fail_next: upstream error") == 1
        assert seen[1:].count(b"b") == 5, seen
        by_name = {h["target"]: h["health"] for h in health}
        assert by_name["asgi:a"] == "UNHEALTHY", health
        assert by_name["asgi:b"] == "HEALTHY", health

    fastgw_run(main())


def test_unregistered_handler_is_a_config_error(fastgw_run):
    async def main():
        gw = Gateway(upstream_config(["asgi:nobody"]))
        with pytest.raises(ConfigError) as e:
            await gw.start("127.0.0.1:0")
        assert "asgi:nobody" in str(e.value)
        if gw.server is not None:
            await gw.stop()

    fastgw_run(main())


def test_register_handler_then_update(fastgw_run, gateway_client):
    async def main():
        first = MemoryUpstream(body=b"first")
        async with gateway_client(upstream_config(["asgi:one"]),
                                  handlers={"asgi:one": first}) as client:
            assert (await client.get("/")).body == b"first"
            second = MemoryUpstream(body=b"second")
            client.gateway.register_handler("asgi:two", second)
            client.gateway.update(upstream_config(["asgi:two"]))
            assert (await client.get("/")).body == b"second"

    fastgw_run(main())
