"""Services with protocol https: TLS from the gateway to the upstream (a real TLS server on
127.0.0.1 with a certificate made in the test). Kong verifies the upstream's certificate only
when the service says tls_verify: true."""
from __future__ import annotations

import asyncio
import datetime
import ssl
from pathlib import Path

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from fastgw.gateway import Gateway


def _self_signed(tmp: Path) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    (tmp / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(tmp / "cert.pem", tmp / "key.pem")
    return ctx


async def _tls_server(ctx: ssl.SSLContext) -> tuple[asyncio.AbstractServer, int, list]:
    seen: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                seen.append(head)
                body = b"over tls: " + head.split(b" ")[1]
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s"
                             % (len(body), body))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx)
    return srv, srv.sockets[0].getsockname()[1], seen


def _config(port: int, **service: object) -> dict:
    return {"_format_version": "3.0",
            "services": [{"name": "tls", "url": f"https://127.0.0.1:{port}/base", **service,
                          "routes": [{"name": "r", "paths": ["/api"]}]}]}


def test_https_service_is_reached_over_tls_and_reuses_connections(tmp_path):
    async def main() -> None:
        srv, port, seen = await _tls_server(_self_signed(tmp_path))
        gw = Gateway(_config(port))
        await gw.start(("127.0.0.1", 0))
        try:
            async with aiohttp.ClientSession() as s:
                for i in range(5):
                    async with s.get(f"http://127.0.0.1:{gw.address[1]}/api/x{i}") as r:
                        assert r.status == 200
                        assert await r.text() == f"over tls: /base/x{i}"
            assert len(seen) == 5
            # Host of an https target on a non-default port carries the port
            assert f"Host: 127.0.0.1:{port}".encode() in seen[0]
            pools = [p for k, p in gw.core.pools.items() if k[0] == "127.0.0.1" and k[1] == port]
            assert len(pools) == 1 and pools[0].ssl is not None and pools[0].idle_count == 1
        finally:
            await gw.stop(timeout=2)
            srv.close()

    asyncio.run(main())


def test_tls_verify_rejects_an_untrusted_certificate(tmp_path):
    async def main() -> None:
        srv, port, seen = await _tls_server(_self_signed(tmp_path))
        gw = Gateway(_config(port, tls_verify=True, retries=0))
        await gw.start(("127.0.0.1", 0))
        try:
            async with aiohttp.ClientSession() as s:
                async with s.get(f"http://127.0.0.1:{gw.address[1]}/api/x") as r:
                    assert r.status == 502
            assert seen == []
        finally:
            await gw.stop(timeout=2)
            srv.close()

    asyncio.run(main())
