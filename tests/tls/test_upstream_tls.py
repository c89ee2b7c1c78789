"""Upstream TLS as Kong: tls_verify against the service's ca_certificates, tls_verify_depth
(nginx's default 1), and client_certificate presented to an upstream that demands one."""
from __future__ import annotations

import asyncio
import ssl
from typing import Any

import trustme
import uvloop
from tls_helpers import ca_pem, curl, issue


async def _mtls_upstream(server_ca: trustme.CA, client_ca: trustme.CA | None,
                         leaf_ca: trustme.CA | None = None
                         ) -> tuple[asyncio.AbstractServer, int, list[Any]]:
    """An HTTPS upstream on 127.0.0.1 whose certificate is issued by `leaf_ca` (default
    `server_ca`); with `client_ca` it demands a client certificate issued by that CA."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    (leaf_ca or server_ca).issue_cert("127.0.0.1").configure_cert(ctx)
    if client_ca is not None:
        ctx.verify_mode = ssl.CERT_REQUIRED
        client_ca.configure_trust(ctx)
    peers: list[Any] = []

    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            await r.readuntil(b"\r\n\r\n")
            peers.append(w.get_extra_info("peercert"))
            w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            await w.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            w.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx)
    return srv, srv.sockets[0].getsockname()[1], peers


def _doc(port: int, *, cas: list[str], client: tuple[str, str] | None,
         **service: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "_format_version": "3.0",
        "ca_certificates": [{"id": f"00000000-0000-4000-8000-00000000000{i}", "cert": c}
                            for i, c in enumerate(cas)],
        "services": [{"name": "up", "url": f"https://127.0.0.1:{port}", "retries": 0,
                      "ca_certificates": [f"00000000-0000-4000-8000-00000000000{i}"
                                          for i in range(len(cas))] or None,
                      **service, "routes": [{"name": "r", "paths": ["/"]}]}]}
    if client is not None:
        doc["certificates"] = [{"id": "00000000-0000-4000-8000-0000000000c1",
                                "cert": client[0], "key": client[1]}]
        doc["services"][0]["client_certificate"] = "00000000-0000-4000-8000-0000000000c1"
    return doc


async def _status(gw: Any) -> int:
    rc, out, err = await curl("-o", "/dev/null", "-w", "%{http_code}",
                              f"http://127.0.0.1:{gw.address[1]}/x")
    assert rc == 0, err
    return int(out)


def test_verify_with_service_cas_and_client_certificate():
    from fastgw.gateway import Gateway

    server_ca, client_ca, stranger = trustme.CA(), trustme.CA(), trustme.CA()
    client = issue(client_ca, "gateway.test")

    async def main() -> None:
        srv, port, peers = await _mtls_upstream(server_ca, client_ca)
        gw = Gateway(_doc(port, cas=[ca_pem(server_ca)], client=client, tls_verify=True))
        await gw.start("127.0.0.1:0")
        try:
            assert await _status(gw) == 200
            assert peers and peers[-1] is not None   # the gateway presented its certificate
            # the wrong CA: verification fails -> 502
            gw.update(_doc(port, cas=[ca_pem(stranger)], client=client, tls_verify=True))
            assert await _status(gw) == 502
            # no client certificate: the upstream refuses the handshake -> 502
            gw.update(_doc(port, cas=[ca_pem(server_ca)], client=None, tls_verify=True))
            assert await _status(gw) == 502
            # tls_verify off (Kong's default): any certificate, still mTLS
            gw.update(_doc(port, cas=[], client=client))
            assert await _status(gw) == 200
        finally:
            await gw.stop()
            srv.close()

    uvloop.run(asyncio.wait_for(main(), 60))


def test_verify_depth_defaults_to_nginx_one():
    from fastgw.gateway import Gateway

    root = trustme.CA()
    one = root.create_child_ca()
    two = one.create_child_ca()

    async def main() -> None:
        # OpenSSL's depth counts CAs above the leaf, the trust anchor excluded
        # (SSL_CTX_set_verify_depth(3)): leaf <- one <- root is depth 1
        srv, port, _ = await _mtls_upstream(root, None, leaf_ca=one)
        srv2, port2, _ = await _mtls_upstream(root, None, leaf_ca=two)
        gw = Gateway(_doc(port, cas=[ca_pem(root)], client=None, tls_verify=True))
        await gw.start("127.0.0.1:0")
        try:
            assert await _status(gw) == 200
            gw.update(_doc(port, cas=[ca_pem(root)], client=None, tls_verify=True,
                           tls_verify_depth=0))
            assert await _status(gw) == 502
            # leaf <- two <- one <- root needs 2: nginx's default 1 refuses it
            gw.update(_doc(port2, cas=[ca_pem(root)], client=None, tls_verify=True))
            assert await _status(gw) == 502
            gw.update(_doc(port2, cas=[ca_pem(root)], client=None, tls_verify=True,
                           tls_verify_depth=2))
            assert await _status(gw) == 200
        finally:
            await gw.stop()
            srv.close()
            srv2.close()

    uvloop.run(asyncio.wait_for(main(), 60))
