"""SSLContexts: one per served certificate (client side), one per upstream TLS setting.

Rules:
- Server defaults are Kong's `ssl_cipher_suite = intermediate` (kong/conf_loader/
  constants.lua): TLSv1.2 and TLSv1.3 only, its TLS 1.2 cipher list, prefer_server_ciphers
  off; TLS 1.3 suites are OpenSSL's defaults (Kong sets none). Compression and
  renegotiation off (CRIME, CVE-2009-3555).
- Session resumption: stateless tickets (RFC 5077 / RFC 8446 4.6.1) with OpenSSL's per-
  context keys. The listener's base context issues and decrypts tickets even after the
  sni_callback switched the connection to a certificate's context (OpenSSL keeps
  `session_ctx`), so resumption works across certificates and survives config reloads.
- PEM text is loaded through an anonymous memory file (memfd): keys never touch a disk.
"""
from __future__ import annotations

import ctypes
import functools
import os
import ssl
import tempfile
from collections.abc import Iterable

#: Kong's "intermediate" TLS 1.2 ciphers, verbatim (Mozilla intermediate v5)
KONG_INTERMEDIATE_CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305")

#: TLS 1.3 session tickets sent after a full handshake (OpenSSL's default; nginx: same)
TLS13_TICKETS = 2

#: nginx's proxy_ssl_verify_depth default (Kong: tls_verify_depth null = nginx's default)
DEFAULT_VERIFY_DEPTH = 1


def _load_pem_chain(ctx: ssl.SSLContext, cert_pem: str, key_pem: str) -> None:
    """ctx.load_cert_chain from PEM text (the ssl module takes only paths)."""
    if hasattr(os, "memfd_create"):
        fds = []
        try:
            for data in (cert_pem, key_pem):
                fd = os.memfd_create("fastgw-pem", os.MFD_CLOEXEC)
                fds.append(fd)
                os.write(fd, data.encode())
            ctx.load_cert_chain(f"/proc/self/fd/{fds[0]}", f"/proc/self/fd/{fds[1]}")
        finally:
            for fd in fds:
                os.close(fd)
        return
    with tempfile.TemporaryDirectory(prefix="fastgw-pem-") as d:  # 0700, removed at once
        cp, kp = os.path.join(d, "c.pem"), os.path.join(d, "k.pem")
        for path, data in ((cp, cert_pem), (kp, key_pem)):
            with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
                f.write(data)
        ctx.load_cert_chain(cp, kp)


@functools.lru_cache(maxsize=1)
def _verify_depth_fns() -> tuple[object, object]:
    # the ssl module has no verify-depth setter: call libssl's, resolved through _ssl's own
    # dependencies so it is the very OpenSSL the context was made with
    lib = ctypes.CDLL(ssl._ssl.__file__)  # type: ignore[attr-defined]
    get = lib.SSL_CTX_get_verify_depth
    get.argtypes, get.restype = [ctypes.c_void_p], ctypes.c_int
    put = lib.SSL_CTX_set_verify_depth
    put.argtypes, put.restype = [ctypes.c_void_p, ctypes.c_int], None
    return get, put


def set_verify_depth(ctx: ssl.SSLContext, depth: int) -> None:
    """SSL_CTX_set_verify_depth (nginx proxy_ssl_verify_depth). CPython's PySSLContext starts
    with `SSL_CTX *ctx` right after the object header (Modules/_ssl.c, stable since 2.7); the
    value read back proves the pointer right."""
    get, put = _verify_depth_fns()
    ptr = ctypes.c_void_p.from_address(id(ctx) + object.__basicsize__).value
    put(ptr, depth)  # type: ignore[operator]
    if get(ptr) != depth:  # type: ignore[operator]
        raise RuntimeError("cannot set the TLS verify depth on this Python build")


def _load_pem_cas(ctx: ssl.SSLContext, pems: Iterable[str]) -> None:
    data = "\n".join(pems)
    if data.strip():
        ctx.load_verify_locations(cadata=data)


def server_context(pairs: Iterable[tuple[str, str]],
                   alpn: tuple[str, ...] = ("http/1.1",)) -> ssl.SSLContext:
    """A server context serving each (cert, key) pair (an RSA and an ECDSA pair may share
    one context: OpenSSL picks by the client's signature algorithms, as Kong's cert_alt)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(KONG_INTERMEDIATE_CIPHERS)
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    ctx.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE   # Kong: prefer_server_ciphers off
    ctx.options &= ~ssl.OP_NO_TICKET
    ctx.num_tickets = TLS13_TICKETS
    ctx.set_alpn_protocols(list(alpn))
    for cert, key in pairs:
        _load_pem_chain(ctx, cert, key)
    return ctx


def client_context(*, verify: bool, ca_pems: tuple[str, ...] = (),
                   client_cert: tuple[str, str] | None = None,
                   depth: int | None = None) -> ssl.SSLContext:
    """Upstream TLS for a service (Kong: tls_verify, ca_certificates, client_certificate).

    - verify false (Kong's default, nginx proxy_ssl_verify off): no verification at all.
    - verify true: the peer chain is checked against the service's ca_certificates when it
      has some, else the system store (Kong: lua_ssl_trusted_certificate = system), and the
      certificate must name the host (nginx proxy_ssl_name = the upstream host), and the
      chain may be at most `depth` certificates above the leaf (tls_verify_depth; null:
      nginx's default 1).
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if verify:
        ctx.check_hostname = True
        ctx.verify_mode = ssl.CERT_REQUIRED
        if ca_pems:
            _load_pem_cas(ctx, ca_pems)
        else:
            ctx.load_default_certs()
        set_verify_depth(ctx, DEFAULT_VERIFY_DEPTH if depth is None else depth)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if client_cert is not None:
        _load_pem_chain(ctx, *client_cert)
    return ctx
