"""Upstream TLS per service, as Kong: tls_verify, tls_verify_depth, ca_certificates,
client_certificate (mTLS).

Rules:
- A service's TLS settings become one hashable `UpstreamTLS` key holding the PEM text it
  needs. Connection pools are keyed by it (ProxyCore.pool's `verify` argument), so two
  services that differ in any setting never share a keep-alive connection, and contexts
  are built once per distinct key for the life of the process.
- Kong's defaults: tls_verify null -> no verification (nginx proxy_ssl_verify off);
  tls_verify_depth null -> nginx's 1; no ca_certificates -> the system store.
"""
from __future__ import annotations

import ssl
from typing import Any, NamedTuple

from fastgw.tls.contexts import client_context


class UpstreamTLS(NamedTuple):
    verify: bool
    depth: int | None
    ca_pems: tuple[str, ...]
    client_cert: tuple[str, str] | None


NO_VERIFY = UpstreamTLS(False, None, (), None)

#: contexts by settings; bounded by the number of distinct settings ever configured
_CONTEXTS: dict[UpstreamTLS, ssl.SSLContext] = {}


def service_tls(service: Any, certificates: dict[str, Any],
                ca_certificates: dict[str, Any], upstream: Any = None) -> UpstreamTLS:
    """The settings of one service (references already checked by the config model). The
    client certificate is the service's, else its upstream's (Kong balancer: service
    client_certificate first, then upstream client_certificate)."""
    cas = tuple(ca_certificates[i].cert for i in (service.ca_certificates or ())
                if i in ca_certificates)
    cc_id = service.client_certificate or getattr(upstream, "client_certificate", None)
    cc = certificates.get(cc_id) if cc_id else None
    return UpstreamTLS(bool(service.tls_verify), service.tls_verify_depth, cas,
                       (cc.cert, cc.key) if cc is not None else None)


def context_for(key: UpstreamTLS) -> ssl.SSLContext:
    ctx = _CONTEXTS.get(key)
    if ctx is None:
        ctx = _CONTEXTS[key] = client_context(verify=key.verify, ca_pems=key.ca_pems,
                                              client_cert=key.client_cert, depth=key.depth)
    return ctx


def service_tls_map(config: Any) -> dict[str, UpstreamTLS]:
    """service id -> settings, for every https service of a config."""
    certs = {c.id: c for c in getattr(config, "certificates", ())}
    cas = {c.id: c for c in getattr(config, "ca_certificates", ())}
    ups = {u.name: u for u in config.upstreams}
    return {s.id: service_tls(s, certs, cas, ups.get(s.host)) for s in config.services
            if s.protocol == "https"}
