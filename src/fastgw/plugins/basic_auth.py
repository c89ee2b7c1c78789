"""basic-auth: HTTP Basic authentication against basic-auth credentials (Kong).

Credentials are indexed once per snapshot by username. Passwords are compared in constant time
(``hmac.compare_digest``). A ``password`` of 40 lowercase hex chars is Kong's stored form
(SHA-1 of ``password .. consumer_id``; what the config model stores) and is compared as such;
anything else is a plain password (embedding API).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from typing import Any

import msgspec

from ._util import unauthorized, use_anonymous
from .base import Plugin, PluginEnv, Response

_BASIC = re.compile(r"\s*[Bb]asic\s*(.+)")
_SHA1_HEX = re.compile(r"^[0-9a-f]{40}$")


class BasicAuthConfig(msgspec.Struct, forbid_unknown_fields=True):
    # Consumer id or username used when authentication fails.
    anonymous: str | None = None
    # Remove the Authorization/Proxy-Authorization header before proxying (default False).
    hide_credentials: bool = False
    # Realm of the `WWW-Authenticate: Basic realm="..."` challenge (Kong default "service").
    realm: str = "service"


class BasicAuth(Plugin):
    name = "basic-auth"
    PRIORITY = 1100
    Config = BasicAuthConfig

    def __init__(self, config: BasicAuthConfig, env: PluginEnv) -> None:
        super().__init__(config, env)
        self._users: dict[str, tuple[Any, Any]] = {}
        for consumer, cred in env.credentials_for("basic-auth"):
            username = getattr(cred, "username", None)
            if username and consumer is not None:
                self._users[str(username)] = (consumer, cred)
        self._challenge = f'Basic realm="{config.realm}"'

    def access(self, ctx: Any) -> Response | None:
        conf = self.config
        if conf.anonymous and ctx.credential is not None:
            return None
        failure = self._authenticate(ctx)
        if failure is None:
            return None
        return use_anonymous(ctx, self.env, conf.anonymous, failure)

    def _retrieve(self, ctx: Any, lname: bytes) -> tuple[str | None, str | None]:
        req = ctx.request
        value = req.get_header_bytes(lname)
        username = password = None
        if value is not None:
            m = _BASIC.match(value.decode("latin-1"))
            if m:
                try:
                    decoded = base64.b64decode(m.group(1).strip(), validate=True).decode("utf-8")
                except (binascii.Error, UnicodeDecodeError):
                    decoded = ""
                user, sep, pw = decoded.partition(":")
                if sep and user:
                    username, password = user, pw
        if self.config.hide_credentials and value is not None:
            req.clear_header(lname)
        return username, password

    def _authenticate(self, ctx: Any) -> Response | None:
        req = ctx.request
        if req.get_header_bytes(b"authorization") is None and req.get_header_bytes(b"proxy-authorization") is None:
            return unauthorized("Unauthorized", self._challenge)
        found = None
        username, password = self._retrieve(ctx, b"proxy-authorization")
        if username is not None:
            found = self._users.get(username)
        if found is None:
            username, password = self._retrieve(ctx, b"authorization")
            if username is not None:
                found = self._users.get(username)
        if found is None or password is None or not _password_ok(found[0], found[1], password):
            return unauthorized("Unauthorized", self._challenge)
        consumer, cred = found
        ctx.authenticate(consumer, cred, str(cred.username))
        return None


def _password_ok(consumer: Any, cred: Any, given: str) -> bool:
    stored = str(getattr(cred, "password", "") or "")
    if _SHA1_HEX.match(stored):
        # Kong's stored form, sha1(password .. consumer_id) (basic-auth/crypto.lua). Only the
        # hash is compared: accepting the digest itself as a password would let a leaked
        # config log in.
        digest = hashlib.sha1((given + str(getattr(consumer, "id", ""))).encode("utf-8")).hexdigest()
        return hmac.compare_digest(stored, digest)
    return hmac.compare_digest(stored.encode("utf-8"), given.encode("utf-8"))
