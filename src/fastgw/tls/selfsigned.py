"""The default certificate when none is configured: self-signed, made at start, in memory.

Kong generates `kong_default` RSA 2048 and ECDSA P-256 certificates into its prefix on first
start (kong/cmd/utils/prefix_handler.lua gen_default_ssl_cert), CN "localhost". fastgw makes
the same pair per process (nothing is written to disk): clients that pin nothing see a
self-signed "localhost" certificate, exactly like an unconfigured Kong.
"""
from __future__ import annotations

import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

#: Kong: RSA 2048 + ECDSA P-256 (prefix_handler.lua), valid for 20 years
RSA_BITS = 2048
VALID_DAYS = 365 * 20
COMMON_NAME = "localhost"


def _make(key: object) -> tuple[str, str]:
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fastgw"),
                      x509.NameAttribute(NameOID.COMMON_NAME, COMMON_NAME)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(key.public_key())  # type: ignore[attr-defined]
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(COMMON_NAME)]),
                           critical=False)
            .sign(key, hashes.SHA256()))  # type: ignore[arg-type]
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = key.private_bytes(serialization.Encoding.PEM,  # type: ignore[attr-defined]
                                serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return cert_pem, key_pem


def default_pairs() -> list[tuple[str, str]]:
    """[(cert_pem, key_pem)] for RSA then ECDSA."""
    return [_make(rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)),
            _make(ec.generate_private_key(ec.SECP256R1()))]
