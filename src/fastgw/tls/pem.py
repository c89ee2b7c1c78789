"""PEM certificates and keys: parsing and Kong's checks on them (cryptography, no OpenSSL
calls of our own).

Rules:
- Messages are Kong's (kong/db/schema/typedefs.lua validate_certificate / validate_key,
  entities/certificates.lua and ca_certificates.lua entity checks), so Admin API clients see
  the same errors.
- Nothing here touches an SSLContext: contexts.py loads what this module validated.
"""
from __future__ import annotations

import hashlib
import time
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

CERT_TAG = "-----BEGIN CERTIFICATE-----"


class PemError(ValueError):
    """A bad certificate or key; the message is Kong's."""


def load_certs(pem: str) -> list[x509.Certificate]:
    """Every certificate of a PEM chain (leaf first). Kong: 'invalid certificate: ...'."""
    try:
        certs = x509.load_pem_x509_certificates(pem.encode())
    except (ValueError, TypeError) as exc:
        raise PemError(f"invalid certificate: {_reason(exc)}") from None
    if not certs:
        raise PemError("invalid certificate: no certificate found")
    return certs


def load_key(pem: str) -> Any:
    """A private key (Kong: 'invalid key: ...'); encrypted keys are refused like Kong's."""
    try:
        return serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise PemError(f"invalid key: {_reason(exc)}") from None


def _reason(exc: Exception) -> str:
    msg = str(exc).split("\n")[0].strip()
    return msg or "PEM_read_bio_X509_AUX() failed"


def _public_der(key: Any) -> bytes:
    return key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def key_matches(cert: x509.Certificate, key: Any) -> bool:
    """Kong: the certificate's public key equals the private key's public half."""
    return _public_der(cert.public_key()) == _public_der(key.public_key())


def key_type(cert: x509.Certificate) -> str:
    k = cert.public_key()
    for cls, name in ((rsa.RSAPublicKey, "rsa"), (ec.EllipticCurvePublicKey, "ec"),
                      (dsa.DSAPublicKey, "dsa"), (ed25519.Ed25519PublicKey, "ed25519"),
                      (ed448.Ed448PublicKey, "ed448")):
        if isinstance(k, cls):
            return name
    return type(k).__name__


def check_certificate_entity(cert: str, key: str, cert_alt: str | None,
                             key_alt: str | None) -> list[tuple[str, str]]:
    """Kong's certificates entity: field validators, then entity checks. (path, message)."""
    errors: list[tuple[str, str]] = []
    parsed: dict[str, Any] = {}
    for name, value, loader in (("cert", cert, load_certs), ("key", key, load_key),
                                ("cert_alt", cert_alt, load_certs),
                                ("key_alt", key_alt, load_key)):
        if value is None:
            continue
        try:
            parsed[name] = loader(value)
        except PemError as exc:
            errors.append((name, str(exc)))
    if (cert_alt is None) != (key_alt is None):
        errors.append(("", "all or none of these fields must be set: 'cert_alt', 'key_alt'"))
    if errors:
        return errors
    if not key_matches(parsed["cert"][0], parsed["key"]):
        errors.append(("", "certificate does not match key"))
    if "cert_alt" in parsed:
        if not key_matches(parsed["cert_alt"][0], parsed["key_alt"]):
            errors.append(("", "alternative certificate does not match key"))
        elif key_type(parsed["cert"][0]) == key_type(parsed["cert_alt"][0]):
            errors.append(("", "certificate and alternative certificate need to have "
                               "different type (e.g. RSA and ECDSA), the provided "
                               "certificates were both of the same type"))
    return errors


def check_ca_certificate(cert: str, now: float | None = None) -> list[tuple[str, str]]:
    """Kong's ca_certificates entity checks: one certificate, not expired, a CA."""
    try:
        certs = load_certs(cert)
    except PemError as exc:
        return [("cert", str(exc))]
    seen = cert.find(CERT_TAG)
    if len(certs) > 1 or (seen >= 0 and cert.find(CERT_TAG, seen + len(CERT_TAG) + 1) >= 0):
        return [("", "please submit only one certificate at a time")]
    c = certs[0]
    now = time.time() if now is None else now
    if c.not_valid_after_utc.timestamp() < now:
        return [("", 'certificate expired, "Not After" time is in the past')]
    try:
        bc = c.extensions.get_extension_for_class(x509.BasicConstraints).value
        is_ca = bc.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        return [("", 'certificate does not appear to be a CA because it is missing the '
                     '"CA" basic constraint')]
    return []


def cert_digest(cert: str) -> str:
    """Kong's ca_certificates.cert_digest: sha256 hex of the DER certificate."""
    c = load_certs(cert)[0]
    return hashlib.sha256(c.public_bytes(serialization.Encoding.DER)).hexdigest()


def dns_names(cert: str) -> list[str]:
    """The leaf's subjectAltName DNS names (for logs and the self-signed default)."""
    c = load_certs(cert)[0]
    try:
        san = c.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return san.get_values_for_type(x509.DNSName)
