"""Checks of Kong's certificates, snis and ca_certificates entities (the Structs are in
model.py, which registers these in its entity-check table).

Rules: Kong's messages (typedefs.wildcard_host, entities/certificates.lua, ca_certificates.lua);
the PEM work is fastgw.tls.pem's.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

import msgspec

from fastgw.config.errors import ErrorList
from fastgw.config.model import _HOSTNAME_RE, CaCertificate, Certificate, Config, Sni, join


def check_certificate(c: Certificate, path: str, errors: ErrorList) -> Certificate:
    from fastgw.tls.pem import check_certificate_entity

    for p, msg in check_certificate_entity(c.cert, c.key, c.cert_alt, c.key_alt):
        errors.append((join(path, p) if p else path, msg))
    return c


def check_sni(s: Sni, path: str, errors: ErrorList) -> Sni:
    msg = wildcard_host_error(s.name)
    if msg:
        errors.append((join(path, "name"), msg))
    return msgspec.structs.replace(s, name=s.name.lower()) if s.name != s.name.lower() else s


def wildcard_host_error(host: str) -> str | None:
    """Kong typedefs.wildcard_host: one `*`, leftmost or rightmost; a name, not an IP."""
    idx = host.find("*")
    mock = host
    if idx >= 0:
        if idx not in (0, len(host) - 1):
            return "wildcard must be leftmost or rightmost character"
        if host.count("*") > 1:
            return "only one wildcard must be specified"
        mock = host.replace("*", "wildcard")
    try:
        ipaddress.ip_address(mock)
        return "must not be an IP"
    except ValueError:
        pass
    if ":" in mock:
        return "must not have a port"
    if not _HOSTNAME_RE.match(mock):
        return "invalid value: " + mock
    return None


def check_ca_certificate_entity(c: CaCertificate, path: str, errors: ErrorList) -> CaCertificate:
    from fastgw.tls.pem import cert_digest, check_ca_certificate

    found = check_ca_certificate(c.cert)
    for p, msg in found:
        errors.append((join(path, p) if p else path, msg))
    if found:
        return c
    return msgspec.structs.replace(c, cert_digest=cert_digest(c.cert))


def check_ca_refs(config: Config, where: Callable[[str, int], str] | None = None
                  ) -> ErrorList:
    """services.ca_certificates name existing CA certificates. An array of ids, not a foreign
    key in Kong's schema (a missing one fails at proxy time there): refused up front here."""
    known = {c.id for c in config.ca_certificates}
    errors: ErrorList = []
    for i, svc in enumerate(config.services):
        for j, ref in enumerate(svc.ca_certificates or ()):
            if ref not in known:
                at = where("services", i) if where is not None else f"services[{i}]"
                errors.append((join(join(at, "ca_certificates"), j),
                               f"invalid reference 'ca_certificates: {ref}' (no such entry "
                               "in 'ca_certificates')"))
    return errors


CHECKS: dict[str, Callable[..., Any]] = {
    "certificates": check_certificate, "snis": check_sni,
    "ca_certificates": check_ca_certificate_entity}
