"""The shared server helpers start, serve what they promise, and stop without leftovers."""
from __future__ import annotations

import http.client
import importlib.util
import json
import os
import socket
import time

import pytest

from servers import (
    HOST,
    Behaviour,
    EchoUpstream,
    FastgwProcess,
    NginxUpstream,
    RedisServer,
    _iter_pattern,
    find_binary,
    free_port,
    http_get,
    pattern_bytes,
    wait_port,
)


def _port_closed(port: int) -> bool:
    try:
        socket.create_connection((HOST, port), timeout=0.5).close()
        return False
    except OSError:
        return True


def _group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return False
    except ProcessLookupError:
        return True


def _raw(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Send `data`, read until the server closes; returns everything received."""
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
        return out


# ------------------------------------------------------------------------------------ helpers

def test_free_port_is_bindable_and_wait_port_times_out_on_it():
    port = free_port()
    with socket.socket() as s:
        s.bind((HOST, port))
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        wait_port(port, timeout=0.2)
    assert time.monotonic() - t0 < 2


def test_pattern_is_continuous_across_pieces_and_offsets():
    whole = pattern_bytes(300_000)
    assert b"".join(_iter_pattern(300_000)) == whole
    assert pattern_bytes(1000, offset=65_530) == whole[65_530:66_530]
    assert whole[251] == 0 and whole[250] == 250


# -------------------------------------------------------------------------------------- nginx

needs_nginx = pytest.mark.skipif(find_binary("nginx") is None, reason="nginx is not installed")


@needs_nginx
def test_nginx_upstream_serves_every_location(nginx_upstream):
    status, headers, body = http_get(nginx_upstream.url("/"))
    assert (status, body) == (200, b"hello\n")
    assert dict(headers)["X-Server-Port"] == str(nginx_upstream.port)
    assert http_get(nginx_upstream.url("/any/other/path"))[2] == b"hello\n"

    status, _, body = http_get(nginx_upstream.url("/info?x=1"), headers={"Host": "example.test"})
    assert (status, body) == (200, b"GET /info?x=1 example.test\n")

    status, headers, body = http_get(nginx_upstream.url("/big"))
    assert status == 200 and len(body) == nginx_upstream.big_size
    assert body == pattern_bytes(nginx_upstream.big_size)

    assert http_get(nginx_upstream.url("/status/503"))[:3:2] == (503, b"status 503\n")
    status, headers, body = http_get(nginx_upstream.url("/status/204"))
    assert (status, body) == (204, b"")
    status, headers, _ = http_get(nginx_upstream.url("/status/302"))
    assert status == 302 and dict(headers)["Location"].endswith("/")


@needs_nginx
def test_nginx_upstream_server_blocks_have_their_own_ports(nginx_upstream):
    assert len(set(nginx_upstream.ports)) == 3
    for i, port in enumerate(nginx_upstream.ports):
        _, headers, _ = http_get(nginx_upstream.url("/", i))
        assert dict(headers)["X-Server-Port"] == str(port)


@needs_nginx
def test_nginx_upstream_keeps_connections_alive(nginx_upstream):
    conn = http.client.HTTPConnection(HOST, nginx_upstream.port, timeout=5)
    try:
        for _ in range(3):
            conn.request("GET", "/")
            resp = conn.getresponse()
            assert resp.read() == b"hello\n"
            assert resp.getheader("Connection") == "keep-alive"
        sock_id = id(conn.sock)
        conn.request("GET", "/info")
        conn.getresponse().read()
        assert id(conn.sock) == sock_id  # the same socket carried every request
    finally:
        conn.close()


@needs_nginx
@pytest.mark.parametrize("master", [True, False])
def test_nginx_stops_with_all_its_processes(master):
    up = NginxUpstream(big_size=10, master_process=master, workers=2).start()
    try:
        assert http_get(up.url("/"))[0] == 200
        pgid = up.pid
        assert str(up.tmpdir) in (up.tmpdir / "nginx.conf").read_text()
    finally:
        up.cleanup()
    assert _port_closed(up.port)
    assert _group_gone(pgid)
    assert not up.tmpdir.exists()


# -------------------------------------------------------------------------------------- redis

@pytest.mark.skipif(find_binary("redis-server") is None, reason="redis-server is not installed")
def test_redis_server_serves_and_stops(redis_server):
    with redis_server.client() as c:
        assert c.dbsize() == 0  # the fixture flushed it
        c.set("k", "v")
        assert c.get("k") == b"v"
    assert redis_server.url == f"redis://{HOST}:{redis_server.port}/0"


@pytest.mark.skipif(find_binary("redis-server") is None, reason="redis-server is not installed")
def test_redis_server_stop_closes_port():
    r = RedisServer().start()
    port, pgid = r.port, r.pid
    r.cleanup()
    assert _port_closed(port) and _group_gone(pgid)


# ------------------------------------------------------------------------------ echo upstream

def test_echo_records_and_echoes_a_request(echo_upstream):
    conn = http.client.HTTPConnection(HOST, echo_upstream.port, timeout=5)
    conn.request("POST", "/a/b?x=1", body=b"payload", headers={"X-Test": "1", "X-Dup": "a"})
    resp = conn.getresponse()
    doc = json.loads(resp.read())
    conn.request("GET", "/second")
    resp2 = conn.getresponse()
    resp2.read()
    conn.close()

    assert resp.status == 200 and resp.getheader("Content-Type") == "application/json"
    assert doc["method"] == "POST" and doc["path"] == "/a/b" and doc["query"] == "x=1"
    assert ["X-Test", "1"] in doc["headers"] and doc["body"] == "payload" and doc["body_len"] == 7
    first, second = echo_upstream.wait_requests(2)
    assert first.body == b"payload" and first.complete and first.header("x-test") == "1"
    assert first.raw_head.startswith(b"POST /a/b?x=1 HTTP/1.1\r\n")
    # both on one upstream connection: keep-alive works, and the client can see it
    assert first.conn_id == second.conn_id and second.index_on_conn == 1
    assert resp.getheader("X-Echo-Conn") == resp2.getheader("X-Echo-Conn")
    assert echo_upstream.connections_total == 1
    assert echo_upstream.errors == []


def test_echo_chunked_request_body_and_pipelining(echo_upstream):
    raw = (b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nTrailer: t\r\n\r\n"
           b"GET /d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    out = _raw(echo_upstream.port, raw)
    assert out.count(b"HTTP/1.1 200 OK") == 2
    a, b = echo_upstream.requests
    assert a.body == b"abcde" and a.complete
    assert b.path == "/d" and b.conn_id == a.conn_id


def test_echo_status_head_204_304_and_early_hints(echo_upstream):
    out = _raw(echo_upstream.port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
               b"X-Echo: status=418; early=103; headers=X-A:1,X-B:2\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 103 Early Hints\r\n\r\nHTTP/1.1 418 I'm a Teapot\r\n")
    assert b"\r\nX-A: 1\r\nX-B: 2\r\n" in out

    head = _raw(echo_upstream.port, b"HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert b"Content-Length: " in head and head.endswith(b"\r\n\r\n")  # head only, no body
    for code in (204, 304):
        out = _raw(echo_upstream.port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                   b"X-Echo: status=%d\r\n\r\n" % code)
        assert out.startswith(b"HTTP/1.1 %d " % code) and out.endswith(b"\r\n\r\n")
        assert b"Content-Length" not in out and b"Transfer-Encoding" not in out


def test_echo_streams_large_bodies_both_framings(echo_upstream):
    size = 5 * (1 << 20) + 7
    status, headers, body = http_get(echo_upstream.url("/"), {"X-Echo": f"size={size}"})
    assert dict(headers)["Content-Length"] == str(size) and body == pattern_bytes(size)
    status, headers, body = http_get(echo_upstream.url("/"), {"X-Echo": "size=100000; chunked=1"})
    assert dict(headers)["Transfer-Encoding"] == "chunked" and body == pattern_bytes(100000)


def test_echo_reset_before_headers(echo_upstream):
    with socket.create_connection((HOST, echo_upstream.port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Echo: reset=before_headers\r\n\r\n")
        with pytest.raises(ConnectionResetError):  # an RST, not a clean FIN
            s.recv(100)
    assert echo_upstream.requests[0].complete


def test_echo_reset_mid_body_truncates(echo_upstream):
    with socket.create_connection((HOST, echo_upstream.port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Echo: size=200000; reset=mid_body\r\n\r\n")
        got = b""
        with pytest.raises(ConnectionResetError):
            while chunk := s.recv(65536):
                got += chunk
    head, _, body = got.partition(b"\r\n\r\n")
    assert b"Content-Length: 200000" in head
    assert body == pattern_bytes(100000)  # exactly the first half arrived, then the reset


def test_echo_garbage_response(echo_upstream):
    with pytest.raises(http.client.BadStatusLine):
        http_get(echo_upstream.url("/"), {"X-Echo": "garbage=1"})


def test_echo_delay_hangs(echo_upstream):
    with pytest.raises(TimeoutError):
        http_get(echo_upstream.url("/"), {"X-Echo": "delay=30"}, timeout=0.3)


def test_echo_per_path_and_queued_behaviours(echo_upstream):
    echo_upstream.on("/down", Behaviour(status=503))
    echo_upstream.on("/down/deeper", Behaviour(status=500))
    echo_upstream.queue(Behaviour(status=502))
    assert http_get(echo_upstream.url("/down"))[0] == 502  # the queue comes first
    assert http_get(echo_upstream.url("/down/x"))[0] == 503
    assert http_get(echo_upstream.url("/down/deeper/x"))[0] == 500
    assert http_get(echo_upstream.url("/up"))[0] == 200
    echo_upstream.set_default(Behaviour(status=404))
    assert http_get(echo_upstream.url("/up"))[0] == 404
    assert http_get(echo_upstream.url("/"), {"X-Echo": "bogus=1"})[0] == 400


def test_echo_100_continue_modes(echo_upstream):
    req = (b"PUT /u HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n"
           b"Connection: close\r\n")
    with socket.create_connection((HOST, echo_upstream.port), timeout=5) as s:
        s.sendall(req + b"\r\n")
        assert s.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"  # before any body byte
        s.sendall(b"hello")
        rest = b""
        while chunk := s.recv(65536):
            rest += chunk
    assert rest.startswith(b"HTTP/1.1 200 ") and echo_upstream.requests[-1].body == b"hello"

    with socket.create_connection((HOST, echo_upstream.port), timeout=5) as s:
        s.sendall(req + b"X-Echo: status=417; expect=final\r\n\r\n")
        out = s.recv(65536)
        assert out.startswith(b"HTTP/1.1 417 ") and b"Connection: close" in out
    assert not echo_upstream.requests[-1].complete


def test_echo_client_abort_mid_upload_is_recorded_incomplete(echo_upstream):
    with socket.create_connection((HOST, echo_upstream.port), timeout=5) as s:
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10)
        echo_upstream.wait_requests(1)
    r = echo_upstream.requests[0]
    from servers import wait_until
    wait_until(lambda: echo_upstream.connections_open == 0)
    assert not r.complete and r.body_len == 10


def test_echo_idle_timeout_closes_idle_connections(echo_factory):
    up = echo_factory(idle_timeout=0.2)
    with socket.create_connection((HOST, up.port), timeout=5) as s:
        t0 = time.monotonic()
        assert s.recv(10) == b""  # closed by the server without a request
        assert 0.1 < time.monotonic() - t0 < 3


def test_echo_stop_and_restart_on_the_same_port():
    up = EchoUpstream().start()
    port = up.port
    try:
        with socket.create_connection((HOST, port), timeout=5) as idle:
            http_get(up.url("/"))
            up.stop()
            assert _port_closed(port)
            assert idle.recv(10) == b""  # open connections are cut too
        up.start()
        assert up.port == port and http_get(up.url("/"))[0] == 200
        assert len(up.requests) == 2 and up.connections_total == 3
    finally:
        up.stop()


# ------------------------------------------------------------------------------------- fastgw

def test_fastgw_process_reports_a_failed_start():
    # An invalid config must fail at start (issue 3); before the CLI exists it fails as well.
    gw = FastgwProcess({"_format_version": "3.0", "services": [{"name": 1, "url": 5}]},
                       start_timeout=15)
    try:
        with pytest.raises(RuntimeError, match="fastgw did not start"):
            gw.start()
        assert gw.returncode not in (None, 0)
        assert "services" in gw.config_path.read_text()
    finally:
        gw.cleanup()


@pytest.mark.skipif(importlib.util.find_spec("fastgw.cli") is None,
                    reason="fastgw.cli is not written yet (issue 3)")
def test_fastgw_process_proxies_to_an_echo_upstream(fastgw, echo_upstream):
    gw = fastgw({"_format_version": "3.0", "services": [{
        "name": "echo", "url": echo_upstream.url("/"),
        "routes": [{"name": "echo", "paths": ["/"]}]}]})
    status, _, body = http_get(gw.url("/hello?x=1"))
    assert status == 200 and json.loads(body)["target"] == "/hello?x=1"
    pgid = gw.pid
    gw.stop()
    assert _port_closed(gw.port) and _group_gone(pgid)
