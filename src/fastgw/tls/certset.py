"""Which certificate a TLS connection gets, and swapping that choice with the config.

Selection (Kong runloop/certificate.lua find_certificate): no SNI -> the default
certificate; else the SNI exactly, then `*.rest` (the first label replaced), then `head.*`
(the last label replaced), then an SNI entity named `*`, then the default certificate.

Rules:
- A CertificateSet is immutable and built off the handshake path (one SSLContext per
  certificate entity and ALPN list, reused across builds while the PEM text is unchanged).
  The TLSManager swaps the whole set with one assignment; a handshake in progress keeps the
  context it was given and established connections are never touched.
- The sni_callback runs inside OpenSSL: it never raises (a failure is logged and the
  handshake continues with the listener's default certificate).
"""
from __future__ import annotations

import hashlib
import logging
import ssl
from collections.abc import Iterable
from typing import Any

from fastgw._core.proxy import SNI_ATTR
from fastgw.tls.contexts import server_context

log = logging.getLogger("fastgw.tls")

#: Kong's catch-all SNI name (certificate.lua DEFAULT_SNI)
DEFAULT_SNI = "*"

Pairs = tuple[tuple[str, str], ...]


def cert_pairs(cert: Any) -> Pairs:
    """A certificates entity's (cert, key) pairs: the main one and the alternative."""
    pairs = [(cert.cert, cert.key)]
    if cert.cert_alt and cert.key_alt:
        pairs.append((cert.cert_alt, cert.key_alt))
    return tuple(pairs)


def _fingerprint(pairs: Pairs, alpn: tuple[str, ...]) -> str:
    h = hashlib.sha256()
    for c, k in pairs:
        h.update(c.encode() + b"\0" + k.encode() + b"\0")
    h.update(",".join(alpn).encode())
    return h.hexdigest()


class CertificateSet:
    """SNI name -> SSLContext for each ALPN list in use; immutable once built."""

    def __init__(self, by_name: dict[tuple[str, tuple[str, ...]], ssl.SSLContext],
                 defaults: dict[tuple[str, ...], ssl.SSLContext]) -> None:
        self._by_name = by_name
        self._defaults = defaults

    def select(self, server_name: str | None, alpn: tuple[str, ...]) -> ssl.SSLContext:
        default = self._defaults[alpn]
        if not server_name:
            return default
        for key in (*sni_keys_for(server_name), DEFAULT_SNI):
            ctx = self._by_name.get((key, alpn))
            if ctx is not None:
                return ctx
        return default


def sni_keys_for(server_name: str) -> tuple[str, ...]:
    """The names a certificate's `snis` may use for this SNI: the name, then `*.rest` and
    `head.*` (Kong runloop/certificate.lua produce_wild_snis)."""
    name = server_name.lower()
    out = [name]
    first = name.find(".")
    if 0 < first and name.find(".", first + 1) > first + 1:
        out.append("*" + name[first:])
    last = name.rfind(".")
    if 0 < last < len(name) - 1:
        out.append(name[:last + 1] + "*")
    return tuple(out)


class TLSManager:
    """Owns the default certificate, the listeners' base contexts and the current set."""

    def __init__(self, default_pairs: Iterable[tuple[str, str]]) -> None:
        self.default_pairs: Pairs = tuple(default_pairs)
        self._alpns: set[tuple[str, ...]] = set()
        self._cache: dict[str, ssl.SSLContext] = {}
        self._entities: tuple[Any, ...] = ((), ())
        self.current = CertificateSet({}, {})

    def _context(self, pairs: Pairs, alpn: tuple[str, ...],
                 cache: dict[str, ssl.SSLContext]) -> ssl.SSLContext:
        fp = _fingerprint(pairs, alpn)
        ctx = self._cache.get(fp) or cache.get(fp)
        if ctx is None:
            ctx = server_context(pairs, alpn)
        cache[fp] = ctx
        return ctx

    def build(self, certificates: Iterable[Any], snis: Iterable[Any],
              alpns: Iterable[tuple[str, ...]] | None = None
              ) -> tuple[CertificateSet, dict[str, ssl.SSLContext]]:
        """A new set for these entities (raises ssl.SSLError / ValueError on a PEM OpenSSL
        refuses). Does not activate it."""
        alpns = set(alpns) if alpns is not None else set(self._alpns)
        cache: dict[str, ssl.SSLContext] = {}
        certs = {c.id: c for c in certificates}
        by_name: dict[tuple[str, tuple[str, ...]], ssl.SSLContext] = {}
        defaults = {a: self._context(self.default_pairs, a, cache) for a in alpns}
        for s in snis:
            cert = certs.get(s.certificate)
            if cert is None:
                continue
            for a in alpns:
                by_name[(s.name.lower(), a)] = self._context(cert_pairs(cert), a, cache)
        return CertificateSet(by_name, defaults), cache

    def activate(self, built: tuple[CertificateSet, dict[str, ssl.SSLContext]],
                 entities: tuple[Iterable[Any], Iterable[Any]] | None = None) -> None:
        """Swap in a built set (one assignment); `entities` are what it was built from,
        kept to rebuild when a listener with another ALPN list is added."""
        certset, cache = built
        self.current = certset
        self._cache = cache   # contexts of removed certificates are released
        if entities is not None:
            self._entities = (tuple(entities[0]), tuple(entities[1]))

    def update(self, certificates: Iterable[Any], snis: Iterable[Any]) -> None:
        """Build and swap in one step."""
        certificates, snis = tuple(certificates), tuple(snis)
        self.activate(self.build(certificates, snis), (certificates, snis))

    def listener_context(self, alpn: tuple[str, ...]) -> ssl.SSLContext:
        """The base context of a listener: the default certificate, and an sni_callback that
        moves each connection to the context of its certificate."""
        if alpn not in self._alpns:
            self._alpns.add(alpn)
            self.activate(self.build(*self._entities))
        base = server_context(self.default_pairs, alpn)

        def on_sni(sslobj: Any, server_name: str | None, ctx: ssl.SSLContext) -> None:
            try:
                if server_name:
                    server_name = server_name.lower()
                    setattr(sslobj, SNI_ATTR, server_name)
                chosen = self.current.select(server_name, alpn)
                if chosen is not ctx:
                    sslobj.context = chosen
            except Exception:  # noqa: BLE001 - never raise inside OpenSSL's callback
                log.exception("TLS certificate selection failed for SNI %r", server_name)
            return None

        base.sni_callback = on_sni
        return base
