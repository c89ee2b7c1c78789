"""The Admin API listener over real sockets on 127.0.0.1."""
from __future__ import annotations

import asyncio

import orjson
import pytest
from admin_helpers import Client

from fastgw.admin.server import start_admin_server


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if line:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", "0"))
    body = await asyncio.wait_for(reader.readexactly(n), 5) if n else b""
    return status, headers, body


def run(coro, use_uvloop=False):
    if use_uvloop:
        import uvloop
        return uvloop.run(asyncio.wait_for(coro, 20))
    return asyncio.run(asyncio.wait_for(coro, 20))


async def _with_server(fn, token=None, host="127.0.0.1"):
    c = Client({"_format_version": "3.0"})
    srv = await start_admin_server(c.api, host, 0, token=token)
    try:
        return await fn(srv, c)
    finally:
        srv.close()
        await srv.wait_closed()


@pytest.mark.parametrize("use_uvloop", [False, True], ids=["asyncio", "uvloop"])
def test_keep_alive_chunked_and_pipelining(use_uvloop):
    async def body(srv, c):
        r, w = await asyncio.open_connection("127.0.0.1", srv.port)
        payload = b'{"name":"a","host":"a.example.com"}'
        chunked = b"".join([b"%x\r\n%s\r\n" % (len(payload[:10]), payload[:10]),
                            b"%x\r\n%s\r\n" % (len(payload[10:]), payload[10:]), b"0\r\n\r\n"])
        w.write(b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n"
                b"POST /services HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n" + chunked)
        s1, h1, b1 = await _read_response(r)
        s2, h2, b2 = await _read_response(r)
        assert s1 == 200 and "configuration_hash" in orjson.loads(b1)
        assert h1["content-type"] == "application/json; charset=utf-8"
        assert h1["server"].startswith("fastgw/") and h1["x-kong-admin-latency"].isdigit()
        assert s2 == 201 and orjson.loads(b2)["host"] == "a.example.com"
        # same connection, Content-Length body
        form = b"name=b&host=b.example.com"
        w.write(b"POST /services HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/x-www-form-urlencoded\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(form), form))
        s3, _, b3 = await _read_response(r)
        assert s3 == 201 and orjson.loads(b3)["name"] == "b"
        w.write(b"DELETE /services/a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        s4, h4, _ = await _read_response(r)
        assert s4 == 204 and h4["connection"] == "close"
        assert await asyncio.wait_for(r.read(), 5) == b""  # server closed
        w.close()
        assert [s.name for s in c.store.config.services] == ["b"]

    run(_with_server(body), use_uvloop)


def test_parse_error_answers_400_and_closes():
    async def body(srv, c):
        r, w = await asyncio.open_connection("127.0.0.1", srv.port)
        w.write(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
        s, h, _ = await _read_response(r)
        assert s == 400 and h["connection"] == "close"
        assert await asyncio.wait_for(r.read(), 5) == b""
        w.close()

    run(_with_server(body))


def test_token_required_on_every_request():
    async def body(srv, c):
        r, w = await asyncio.open_connection("127.0.0.1", srv.port)
        w.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        s, _, b = await _read_response(r)
        assert s == 401 and "credentials" in orjson.loads(b)["message"]
        w.write(b"GET / HTTP/1.1\r\nHost: x\r\nKong-Admin-Token: wrong\r\n\r\n")
        assert (await _read_response(r))[0] == 401
        w.write(b"GET / HTTP/1.1\r\nHost: x\r\nKong-Admin-Token: s3cret\r\n\r\n")
        assert (await _read_response(r))[0] == 200
        w.close()

    run(_with_server(body, token="s3cret"))


def test_refuses_non_loopback_without_token():
    async def body():
        c = Client({"_format_version": "3.0"})
        with pytest.raises(ValueError, match="non-loopback"):
            await start_admin_server(c.api, "0.0.0.0", 0)

    run(body())


def test_expect_continue_and_large_body_refused(monkeypatch):
    import fastgw.admin.server as server_mod
    monkeypatch.setattr(server_mod, "MAX_BODY", 1000)

    async def body(srv, c):
        r, w = await asyncio.open_connection("127.0.0.1", srv.port)
        data = b'{"name":"e","host":"e.com"}'
        w.write(b"POST /services HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(data))
        assert await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 5) == \
            b"HTTP/1.1 100 Continue\r\n\r\n"
        w.write(data)
        assert (await _read_response(r))[0] == 201
        w.write(b"POST /services HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n")
        s, h, _ = await _read_response(r)
        assert s == 413 and h["connection"] == "close"
        w.close()

    run(_with_server(body))
