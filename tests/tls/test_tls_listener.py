"""TLS listeners with real clients: certificate choice by SNI (exact, `*.x`, `x.*`, `*`,
default), the generated default certificate, protocol versions, ALPN, session resumption,
certificates swapped by a config change without touching open connections, and what the
upstream is told (X-Forwarded-Proto / -Port)."""
from __future__ import annotations

import asyncio
import ssl
from typing import Any

import pytest
import uvloop
from tls_helpers import (blocking_handshake, ca_pem, client_context, curl, https_request, issue,
                      read_reply)

from fastgw.gateway import Gateway


def _doc(echo_port: int, certificates: list[dict[str, Any]] | None = None,
         routes: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"_format_version": "3.0",
            "services": [{"name": "echo", "url": f"http://127.0.0.1:{echo_port}",
                          "routes": routes or [{"name": "all", "paths": ["/"]}]}],
            "certificates": certificates or []}


async def _echo() -> tuple[asyncio.AbstractServer, int, list[bytes]]:
    """An upstream that answers each request with its head."""
    seen: list[bytes] = []

    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await r.readuntil(b"\r\n\r\n")
                seen.append(head)
                w.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(head), head))
                await w.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            w.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    return srv, srv.sockets[0].getsockname()[1], seen


def _run(main: Any) -> None:
    uvloop.run(asyncio.wait_for(main(), 60))


def test_certificate_is_chosen_by_sni_as_kong(ca):
    exact = issue(ca, "api.example.com")
    wild = issue(ca, "*.example.com")
    suffix = issue(ca, "shop.example.net")    # served for shop.* names
    catch_all = issue(ca, "fallback.test")

    async def main() -> None:
        srv, port, _ = await _echo()
        gw = Gateway(_doc(port, [
            {"cert": exact[0], "key": exact[1], "snis": [{"name": "api.example.com"}]},
            {"cert": wild[0], "key": wild[1], "snis": [{"name": "*.example.com"}]},
            {"cert": suffix[0], "key": suffix[1], "snis": [{"name": "shop.*"}]},
        ]))
        await gw.start("127.0.0.1:0 ssl")
        tls = gw.listeners[0].port
        try:
            trust = client_context(ca)
            trust.check_hostname = False   # the point is which certificate, not its name
            r = await https_request(tls, sni="api.example.com", ctx=trust)
            assert r.status == 200 and r.names == ["api.example.com"]
            r = await https_request(tls, sni="www.example.com", ctx=client_context(ca))
            assert r.names == ["*.example.com"]
            # Kong replaces the LAST label only: shop.test -> shop.*
            r = await https_request(tls, sni="shop.test", ctx=trust)
            assert r.names == ["shop.example.net"]
            # no match, no "*" SNI: the generated default (self-signed "localhost")
            r = await https_request(tls, sni="other.test", ctx=client_context(None))
            assert r.names == ["localhost"]
            # a "*" SNI becomes the catch-all for unknown names, not for clients without SNI
            gw.update(_doc(port, [
                {"cert": exact[0], "key": exact[1], "snis": [{"name": "api.example.com"}]},
                {"cert": catch_all[0], "key": catch_all[1], "snis": [{"name": "*"}]}]))
            r = await https_request(tls, sni="other.test", ctx=trust)
            assert r.names == ["fallback.test"]
            r = await https_request(tls, sni=None, ctx=client_context(None))
            assert r.names == ["localhost"]
        finally:
            await gw.stop()
            srv.close()

    _run(main)


def test_curl_over_https_with_resolve_and_connect_to(ca, tmp_path):
    cert = issue(ca, "curl.example.com")
    cafile = tmp_path / "ca.pem"
    cafile.write_text(ca_pem(ca))

    async def main() -> None:
        srv, port, seen = await _echo()
        gw = Gateway(_doc(port, [{"cert": cert[0], "key": cert[1],
                                  "snis": [{"name": "curl.example.com"}]}]))
        await gw.start("127.0.0.1:0, 127.0.0.1:0 ssl http2")
        tls = gw.listeners[1].port
        try:
            rc, out, err = await curl("--cacert", str(cafile), "-i", "--resolve",
                                      f"curl.example.com:{tls}:127.0.0.1",
                                      f"https://curl.example.com:{tls}/hello")
            assert rc == 0, err
            assert out.startswith("HTTP/1.1 200"), out   # http2 flag: ALPN offers http/1.1
            assert "X-Forwarded-Proto: https" in out
            assert f"X-Forwarded-Port: {tls}" in out
            rc, out, err = await curl("--cacert", str(cafile), "-o", "/dev/null",
                                      "-w", "%{http_code} %{http_version}", "--connect-to",
                                      f"curl.example.com:443:127.0.0.1:{tls}",
                                      "https://curl.example.com/x")
            assert rc == 0 and out == "200 1.1", (out, err)
            # the plain listener still says http and its own port
            plain = gw.listeners[0].port
            rc, out, err = await curl("-i", f"http://127.0.0.1:{plain}/p")
            assert "X-Forwarded-Proto: http\r\n" in out and f"X-Forwarded-Port: {plain}" in out
        finally:
            await gw.stop()
            srv.close()

    _run(main)


async def _client_can_speak(client: ssl.SSLContext) -> bool:
    """Whether `client` completes a handshake with a server that allows every version (so a
    refusal by fastgw is fastgw's, not the client library's)."""
    from fastgw.tls.selfsigned import default_pairs
    from fastgw.tls.contexts import _load_pem_chain

    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    server.set_ciphers("ALL:@SECLEVEL=0")
    _load_pem_chain(server, *default_pairs()[0])
    srv = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0, ssl=server)
    try:
        _, w = await asyncio.open_connection("127.0.0.1", srv.sockets[0].getsockname()[1],
                                             ssl=client, server_hostname="localhost")
        w.close()
        return True
    except (ssl.SSLError, ConnectionError):
        return False
    finally:
        srv.close()


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion:DeprecationWarning")
def test_only_tls_1_2_and_1_3_and_no_h2_in_alpn():
    async def main() -> None:
        srv, port, _ = await _echo()
        gw = Gateway(_doc(port))
        await gw.start("127.0.0.1:0 ssl http2")
        tls = gw.listeners[0].port
        try:
            for v, name in ((ssl.TLSVersion.TLSv1_2, "TLSv1.2"),
                            (ssl.TLSVersion.TLSv1_3, "TLSv1.3")):
                r = await https_request(tls, sni="localhost",
                                        ctx=client_context(None, versions=(v, v),
                                                           alpn=["h2", "http/1.1"]))
                assert r.status == 200 and r.version == name and r.alpn == "http/1.1"
            old = client_context(None, versions=(ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1))
            old.set_ciphers("ALL:@SECLEVEL=0")
            if not await _client_can_speak(old):
                pytest.skip("this OpenSSL build cannot speak TLS 1.0/1.1 even as a client")
            with pytest.raises((ssl.SSLError, ConnectionError)):
                await https_request(tls, sni="localhost", ctx=old)
            # after a refused handshake the listener keeps serving
            r = await https_request(tls, sni="localhost", ctx=client_context(None))
            assert r.status == 200
        finally:
            await gw.stop()
            srv.close()

    _run(main)


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_sessions_resume_also_across_certificates_and_reloads(ca, version):
    a = issue(ca, "a.example.com")
    b = issue(ca, "b.example.com")

    async def main() -> None:
        srv, port, _ = await _echo()
        certs = [{"cert": a[0], "key": a[1], "snis": [{"name": "a.example.com"}]}]
        gw = Gateway(_doc(port, certs))
        await gw.start("127.0.0.1:0 ssl")
        tls = gw.listeners[0].port
        ctx = client_context(ca, versions=(version, version))
        try:
            sess, reused = await asyncio.to_thread(blocking_handshake, tls, ctx,
                                                   "a.example.com")
            assert not reused
            _, reused = await asyncio.to_thread(blocking_handshake, tls, ctx,
                                                "a.example.com", sess)
            assert reused
            # another certificate added by a reload: the ticket still decrypts
            gw.update(_doc(port, certs + [{"cert": b[0], "key": b[1],
                                           "snis": [{"name": "b.example.com"}]}]))
            _, reused = await asyncio.to_thread(blocking_handshake, tls, ctx,
                                                "a.example.com", sess)
            assert reused
        finally:
            await gw.stop()
            srv.close()

    _run(main)


def test_certificate_change_applies_to_new_handshakes_and_keeps_open_connections(ca):
    old = issue(ca, "swap.example.com")
    new = issue(ca, "swap.example.com", ec=True)

    async def main() -> None:
        srv, port, _ = await _echo()
        gw = Gateway(_doc(port, [{"cert": old[0], "key": old[1],
                                  "snis": [{"name": "swap.example.com"}]}]))
        await gw.start("127.0.0.1:0 ssl")
        tls = gw.listeners[0].port
        try:
            r, w = await asyncio.open_connection("127.0.0.1", tls, ssl=client_context(ca),
                                                 server_hostname="swap.example.com")
            first = w.get_extra_info("ssl_object").getpeercert(binary_form=True)
            w.write(b"GET /1 HTTP/1.1\r\nHost: swap.example.com\r\n\r\n")
            assert (await read_reply(r)).status == 200
            gw.update(_doc(port, [{"cert": new[0], "key": new[1],
                                   "snis": [{"name": "swap.example.com"}]}]))
            # the open connection keeps working (keep-alive, same TLS session)
            w.write(b"GET /2 HTTP/1.1\r\nHost: swap.example.com\r\n\r\n")
            assert (await read_reply(r)).status == 200
            w.close()
            ctx = client_context(ca)
            r2 = await https_request(tls, sni="swap.example.com", ctx=ctx)
            assert r2.status == 200
            r3, w3 = await asyncio.open_connection("127.0.0.1", tls, ssl=client_context(ca),
                                                   server_hostname="swap.example.com")
            second = w3.get_extra_info("ssl_object").getpeercert(binary_form=True)
            w3.close()
            assert first != second
        finally:
            await gw.stop()
            srv.close()

    _run(main)


def test_route_protocols_and_snis_per_listener(ca):
    cert = issue(ca, "secure.example.com", "other.example.com")

    async def main() -> None:
        srv, port, _ = await _echo()
        gw = Gateway(_doc(port, [{"cert": cert[0], "key": cert[1],
                                  "snis": [{"name": "secure.example.com"},
                                           {"name": "other.example.com"}]}], routes=[
            {"name": "tls-only", "paths": ["/secure"], "protocols": ["https"]},
            {"name": "redirect", "paths": ["/moved"], "protocols": ["https"],
             "https_redirect_status_code": 308},
            {"name": "plain-only", "paths": ["/plain"], "protocols": ["http"]},
            {"name": "by-sni", "paths": ["/sni"], "protocols": ["https"],
             "snis": ["secure.example.com"]},
            {"name": "by-wildcard-sni", "paths": ["/wild"], "protocols": ["https"],
             "snis": ["*.example.com"]},
        ]))
        await gw.start("127.0.0.1:0, 127.0.0.1:0 ssl")
        plain, tls = gw.listeners[0].port, gw.listeners[1].port
        ctx = client_context(ca)
        try:
            assert (await https_request(tls, "/secure", sni="secure.example.com",
                                        ctx=ctx)).status == 200
            rc, out, _ = await curl("-i", f"http://127.0.0.1:{plain}/secure")
            assert out.startswith("HTTP/1.1 426") and "Please use HTTPS protocol" in out
            rc, out, _ = await curl("-i", f"http://127.0.0.1:{plain}/moved")
            assert out.startswith("HTTP/1.1 308")
            # an http-only route does not match on TLS (Kong: no route)
            r = await https_request(tls, "/plain", sni="secure.example.com",
                                    ctx=client_context(ca))
            assert r.status == 404 and b"no Route matched" in r.body
            rc, out, _ = await curl("-i", f"http://127.0.0.1:{plain}/plain")
            assert out.startswith("HTTP/1.1 200")
            # route snis: only the named SNI
            assert (await https_request(tls, "/sni", sni="secure.example.com",
                                        ctx=client_context(ca))).status == 200
            r = await https_request(tls, "/sni", sni="other.example.com",
                                    ctx=client_context(ca))
            assert r.status == 404
            # a wildcard in route snis, as for certificates
            assert (await https_request(tls, "/wild", sni="other.example.com",
                                        ctx=client_context(ca))).status == 200
            rc, out, _ = await curl("-i", f"http://127.0.0.1:{plain}/sni")
            assert out.startswith("HTTP/1.1 426")   # https-only: snis do not matter on plain
        finally:
            await gw.stop()
            srv.close()

    _run(main)


def test_ssl_cert_option_replaces_the_generated_default(ca, tmp_path):
    cert = issue(ca, "default.example.com")
    (tmp_path / "c.pem").write_text(cert[0])
    (tmp_path / "k.pem").write_text(cert[1])

    async def main() -> None:
        srv, port, _ = await _echo()
        gw = Gateway(_doc(port), ssl_cert=str(tmp_path / "c.pem"),
                     ssl_cert_key=str(tmp_path / "k.pem"))
        await gw.start("127.0.0.1:0 ssl")
        try:
            r = await https_request(gw.listeners[0].port, sni="default.example.com", ca=ca)
            assert r.status == 200 and r.names == ["default.example.com"]
        finally:
            await gw.stop()
            srv.close()

    _run(main)


def test_stock_asyncio_loop_serves_tls_too():
    async def main() -> None:
        srv, port, _ = await _echo()
        gw = Gateway(_doc(port))
        await gw.start("127.0.0.1:0 ssl")
        try:
            r = await https_request(gw.listeners[0].port, sni="localhost",
                                    ctx=client_context(None))
            assert r.status == 200 and b"X-Forwarded-Proto: https" in r.body
        finally:
            await gw.stop()
            srv.close()

    asyncio.run(asyncio.wait_for(main(), 60))


def test_admin_and_status_listeners_take_ssl(ca):
    async def main() -> None:
        gw = Gateway({"_format_version": "3.0"})
        await gw.start("127.0.0.1:0", "127.0.0.1:0 ssl")
        await gw.start_status("127.0.0.1:0 ssl")
        try:
            for srv in (gw.admin, gw.status_server):
                rc, out, err = await curl("-k", "-o", "/dev/null", "-w", "%{http_code}",
                                          f"https://127.0.0.1:{srv.port}/status")
                assert (rc, out) == (0, "200"), err
                # plain http to the TLS port gets no HTTP answer
                rc, out, _ = await curl("-o", "/dev/null", "-w", "%{http_code}",
                                        f"http://127.0.0.1:{srv.port}/status")
                assert rc != 0 and out == "000"
        finally:
            await gw.stop()

    _run(main)


def test_large_bodies_both_ways_over_tls(tmp_path):
    """Backpressure through uvloop's SSL transport: 8 MiB up and down, bytes intact."""
    import hashlib
    import os

    body = os.urandom(8 << 20)
    (tmp_path / "up.bin").write_bytes(body)

    async def main() -> None:
        async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            head = await r.readuntil(b"\r\n\r\n")
            n = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            got = await r.readexactly(n)
            digest = hashlib.sha256(got).hexdigest().encode()
            w.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nX-Up: %s\r\n\r\n"
                    % (len(body), digest))
            w.write(body)
            await w.drain()
            w.close()

        srv = await asyncio.start_server(handle, "127.0.0.1", 0)
        gw = Gateway(_doc(srv.sockets[0].getsockname()[1]))
        await gw.start("127.0.0.1:0 ssl")
        try:
            rc, out, err = await curl("-k", "-D", "-", "-o", str(tmp_path / "down.bin"),
                                      "--data-binary", f"@{tmp_path / 'up.bin'}",
                                      f"https://127.0.0.1:{gw.listeners[0].port}/big")
            assert rc == 0, err
            assert f"x-up: {hashlib.sha256(body).hexdigest()}" in out.lower()
            assert (tmp_path / "down.bin").read_bytes() == body
        finally:
            await gw.stop()
            srv.close()

    _run(main)


def test_plugin_protocols_see_https_on_tls_listeners():
    """A plugin limited to protocols [https] runs on the TLS listener only (its Context's
    scheme is the listener's)."""
    async def main() -> None:
        srv, port, _ = await _echo()
        doc = _doc(port)
        doc["plugins"] = [{"name": "response-transformer", "protocols": ["https"],
                           "config": {"add": {"headers": ["x-over:tls"]}}}]
        gw = Gateway(doc)
        await gw.start("127.0.0.1:0, 127.0.0.1:0 ssl")
        try:
            r = await https_request(gw.listeners[1].port, sni="localhost",
                                    ctx=client_context(None))
            assert r.status == 200 and r.headers.get("x-over") == "tls"
            rc, out, _ = await curl("-i", f"http://127.0.0.1:{gw.listeners[0].port}/")
            assert out.startswith("HTTP/1.1 200") and "x-over" not in out.lower()
        finally:
            await gw.stop()
            srv.close()

    _run(main)
