"""The session plugin's cookie: an encrypted, authenticated session in the cookie itself.

Format: ``base64url(version(1) || nonce(12) || AES-256-GCM(json))`` where the key is
HKDF-SHA256 of the plugin's ``secret`` with the ``audience`` as info (a session of one audience
does not open under another) and the cookie name is the associated data. The JSON holds the
session id, the data (consumer id, credential id, groups), the subject, and three times:
creation (absolute timeout), last renewal (rolling timeout) and last use (idling timeout).
"""

from __future__ import annotations

import base64
import binascii
import os
from typing import Any

import orjson
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VERSION = b"\x01"
# RFC 6265 6.1: user agents keep at least 4096 bytes per cookie; a larger session cannot be
# stored in the cookie and is not set.
MAX_COOKIE_BYTES = 4096


def derive_key(secret: str, audience: str) -> AESGCM:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"fastgw-session-v1",
               info=audience.encode("utf-8")).derive(secret.encode("utf-8"))
    return AESGCM(key)


class Session:
    __slots__ = ("id", "data", "subject", "created", "renewed", "seen", "cookie_name")

    def __init__(self, data: list[Any], subject: str | None, now: float, cookie_name: str) -> None:
        self.id = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
        self.data = data
        self.subject = subject
        self.created = self.renewed = self.seen = now
        self.cookie_name = cookie_name

    def seal(self, aead: AESGCM) -> str:
        doc = {"i": self.id, "d": self.data, "s": self.subject, "c": self.created, "r": self.renewed, "u": self.seen}
        nonce = os.urandom(12)
        ct = aead.encrypt(nonce, orjson.dumps(doc), self.cookie_name.encode("latin-1"))
        return base64.urlsafe_b64encode(VERSION + nonce + ct).rstrip(b"=").decode()

    @classmethod
    def open(cls, aead: AESGCM, value: str, cookie_name: str) -> Session | None:
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        except (binascii.Error, ValueError):
            return None
        if len(raw) < 1 + 12 + 16 or raw[:1] != VERSION:
            return None
        try:
            doc = orjson.loads(aead.decrypt(raw[1:13], raw[13:], cookie_name.encode("latin-1")))
        except Exception:  # InvalidTag (tampered, other secret or audience), bad JSON
            return None
        s = cls.__new__(cls)
        try:
            s.id, s.data, s.subject = str(doc["i"]), list(doc["d"]), doc.get("s")
            s.created, s.renewed, s.seen = float(doc["c"]), float(doc["r"]), float(doc["u"])
        except (KeyError, TypeError, ValueError):
            return None
        s.cookie_name = cookie_name
        return s
