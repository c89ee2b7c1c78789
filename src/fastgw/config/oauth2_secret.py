"""oauth2 client secrets hashed as Kong's kong/plugins/oauth2/secret.lua (PBKDF2 enabled):
``$pbkdf2-sha512$i=10000,l=32$<salt>$<hash>`` (PHC string, base64 without padding)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os

# Kong's PBKDF2 defaults (secret.lua)
PBKDF2_ITERATIONS = 10_000
PBKDF2_HASH_LEN = 32
PBKDF2_SALT_LEN = 16


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode().rstrip("=")


def _unb64(s: str) -> bytes:
    return base64.b64decode(s + "=" * (-len(s) % 4))


def hash_secret(secret: str) -> str:
    salt = os.urandom(PBKDF2_SALT_LEN)
    h = hashlib.pbkdf2_hmac("sha512", secret.encode("utf-8"), salt, PBKDF2_ITERATIONS, PBKDF2_HASH_LEN)
    return f"$pbkdf2-sha512$i={PBKDF2_ITERATIONS},l={PBKDF2_HASH_LEN}${_b64(salt)}${_b64(h)}"


def is_hashed(value: str) -> bool:
    return value.startswith("$pbkdf2-")


def verify_secret(given: str | None, stored: str) -> bool:
    if given is None:
        return False
    parts = stored.split("$")
    if len(parts) != 5 or not parts[1].startswith("pbkdf2-"):
        return False
    digest = parts[1][len("pbkdf2-"):]
    params = dict(p.split("=", 1) for p in parts[2].split(",") if "=" in p)
    try:
        salt, want = _unb64(parts[3]), _unb64(parts[4])
        iterations, length = int(params.get("i", PBKDF2_ITERATIONS)), int(params.get("l", len(want)))
        got = hashlib.pbkdf2_hmac(digest, given.encode("utf-8"), salt, iterations, length)
    except (ValueError, binascii.Error):
        return False
    return hmac.compare_digest(got, want)
