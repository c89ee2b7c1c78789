"""Helpers of the TLS tests: certificates made at test time with trustme, clients that
speak real TLS (Python's ssl over asyncio streams, a blocking socket for resumption, curl).

    issue(ca, *names) -> (cert_pem, key_pem) for those names (RSA, or ECDSA with ec=True)
    https_request(port, path, *, sni, ca, ...) -> Reply with the served certificate's names
"""
from __future__ import annotations

import asyncio
import shutil
import ssl
from dataclasses import dataclass, field
from typing import Any

import pytest
import trustme
from cryptography import x509

#: every client operation of these tests gives up after this long (seconds)
CLIENT_TIMEOUT = 10.0


def issue(ca: trustme.CA, *names: str, ec: bool = False) -> tuple[str, str]:
    kt = trustme.KeyType.ECDSA if ec else trustme.KeyType.RSA
    leaf = ca.issue_cert(*names, key_type=kt)
    chain = "".join(b.bytes().decode() for b in leaf.cert_chain_pems)
    return chain, leaf.private_key_pem.bytes().decode()


def ca_pem(ca: trustme.CA) -> str:
    return ca.cert_pem.bytes().decode()


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    names: list[str] = field(default_factory=list)  # SANs of the certificate served
    version: str = ""
    alpn: str | None = None


def client_context(ca: trustme.CA | None, *, versions: tuple[Any, Any] | None = None,
                   alpn: list[str] | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    if ca is not None:
        ca.configure_trust(ctx)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if versions is not None:
        ctx.minimum_version, ctx.maximum_version = versions
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def sans(der: bytes | None) -> list[str]:
    if not der:
        return []
    c = x509.load_der_x509_certificate(der)
    try:
        ext = c.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return ext.get_values_for_type(x509.DNSName)


async def https_request(port: int, path: str = "/", *, sni: str | None, ca: Any = None,
                        ctx: ssl.SSLContext | None = None, host: str | None = None,
                        method: str = "GET") -> Reply:
    """One request on a new TLS connection to 127.0.0.1:port, SNI `sni` (None: none sent)."""
    ctx = ctx or client_context(ca)
    if sni is None:
        ctx.check_hostname = False
    r, w = await asyncio.wait_for(asyncio.open_connection(
        "127.0.0.1", port, ssl=ctx, server_hostname=sni,
        ssl_handshake_timeout=CLIENT_TIMEOUT), CLIENT_TIMEOUT)
    try:
        sslobj = w.get_extra_info("ssl_object")
        reply = await _exchange(r, w, path, host or sni or "127.0.0.1", method)
        reply.names = sans(sslobj.getpeercert(binary_form=True))
        reply.version = sslobj.version() or ""
        reply.alpn = sslobj.selected_alpn_protocol()
        return reply
    finally:
        w.close()


def blocking_handshake(port: int, ctx: ssl.SSLContext, sni: str,
                       session: Any = None) -> tuple[Any, bool]:
    """A TLS handshake + one request on a blocking socket (run it in a thread): asyncio's
    streams cannot offer a session to resume. Returns (session, session_reused)."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=CLIENT_TIMEOUT) as raw:
        with ctx.wrap_socket(raw, server_hostname=sni, session=session) as s:
            s.sendall(f"GET / HTTP/1.1\r\nHost: {sni}\r\n\r\n".encode())
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            # TLS 1.3 tickets arrive after the handshake: read before taking the session
            return s.session, s.session_reused


async def _exchange(r: asyncio.StreamReader, w: asyncio.StreamWriter, path: str, host: str,
                    method: str) -> Reply:
    w.write(f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    await w.drain()
    return await read_reply(r)


async def read_reply(r: asyncio.StreamReader) -> Reply:
    head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), CLIENT_TIMEOUT)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for ln in lines[1:]:
        if ln:
            k, _, v = ln.partition(":")
            headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", "0"))
    body = await asyncio.wait_for(r.readexactly(n), CLIENT_TIMEOUT) if n else b""
    return Reply(status, headers, body)


def need_curl() -> str:
    path = shutil.which("curl")
    if path is None:
        pytest.skip("curl is not installed (apt-get install curl; scripts/sysdeps.sh)")
    return path


async def curl(*args: str) -> tuple[int, str, str]:
    p = await asyncio.create_subprocess_exec(
        need_curl(), "-sS", "--max-time", str(int(CLIENT_TIMEOUT)), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await p.communicate()
    return p.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")
