"""TLS for fastgw: listener contexts, certificate selection by SNI, the default certificate,
and upstream (client) contexts.

- pem.py: parsing and Kong's checks on certificates and keys
- contexts.py: SSLContext construction (Kong's intermediate settings, upstream verification)
- selfsigned.py: the generated default certificate
- certset.py: SNI -> certificate selection and its hot swap (TLSManager)
- upstream.py: services' tls_verify / tls_verify_depth / ca_certificates / client_certificate
"""
from __future__ import annotations

from fastgw.tls.pem import PemError, load_certs, load_key, key_matches


#: the self-signed default, made once per process (and inherited by forked workers)
_generated: list[tuple[str, str]] | None = None


def load_default_pairs(cert_paths: str | None, key_paths: str | None) -> list[tuple[str, str]]:
    """Kong's ssl_cert / ssl_cert_key (comma-separated lists of files, pairwise), or a
    generated self-signed RSA + ECDSA pair when neither is given. Raises ValueError with
    one clear line."""
    if not cert_paths and not key_paths:
        global _generated
        if _generated is None:
            from fastgw.tls.selfsigned import default_pairs

            _generated = default_pairs()
        return list(_generated)
    if not cert_paths or not key_paths:
        raise ValueError("--ssl-cert and --ssl-cert-key must be given together")
    certs = [p.strip() for p in cert_paths.split(",") if p.strip()]
    keys = [p.strip() for p in key_paths.split(",") if p.strip()]
    if len(certs) != len(keys):
        raise ValueError(f"--ssl-cert names {len(certs)} files but --ssl-cert-key {len(keys)}")
    pairs = []
    for cp, kp in zip(certs, keys):
        texts = []
        for p in (cp, kp):
            try:
                with open(p, encoding="ascii") as f:
                    texts.append(f.read())
            except (OSError, UnicodeDecodeError) as exc:
                raise ValueError(f"cannot read {p}: {getattr(exc, 'strerror', None) or exc}"
                                 ) from None
        try:
            cert = load_certs(texts[0])[0]
            key = load_key(texts[1])
        except PemError as exc:
            raise ValueError(f"{cp} / {kp}: {exc}") from None
        if not key_matches(cert, key):
            raise ValueError(f"{cp} / {kp}: certificate does not match key")
        pairs.append((texts[0], texts[1]))
    return pairs


__all__ = ["load_default_pairs"]
