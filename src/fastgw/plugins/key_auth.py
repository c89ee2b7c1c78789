"""key-auth: authenticate by an API key in a header, the query string or the body (Kong).

Keys are indexed once per snapshot in a dict (key -> consumer, credential); a request costs one
header lookup per configured key name plus one dict lookup.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import msgspec

from ._util import body_kind, decode_body, encode_body, unauthorized, use_anonymous
from .base import Plugin, PluginEnv, Response, field_error

# Kong 3.x key-auth/handler.lua: a wrong key answers the same word as a missing one would in
# basic-auth, so a caller cannot tell a revoked key from a mistyped one.
ERR_INVALID_AUTH_CRED = "Unauthorized"
# Kong's typedefs.header_name (kong/tools/http.lua validate_header_name): letters, digits,
# '-' and '_' only (stricter than an RFC 9110 token, as Kong)
_HEADER_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


class KeyAuthConfig(msgspec.Struct, forbid_unknown_fields=True):
    # Names looked up in headers, query and body, in order (Kong default ["apikey"]).
    key_names: list[str] = msgspec.field(default_factory=lambda: ["apikey"])
    # Remove the key from the request before proxying (default False, as Kong).
    hide_credentials: bool = False
    # Consumer id or username used when authentication fails (logical OR between auth plugins).
    anonymous: str | None = None
    key_in_header: bool = True
    key_in_query: bool = True
    # Needs the body buffered by the proxy, so off by default (as Kong).
    key_in_body: bool = False
    # Authenticate CORS preflight OPTIONS requests too (Kong default True).
    run_on_preflight: bool = True
    # Realm in `WWW-Authenticate: Key realm="..."`; None (Kong's default) -> `Key`.
    realm: str | None = None

    def __post_init__(self) -> None:
        if not self.key_names:
            raise field_error("key_names", "length must be at least 1")
        for i, n in enumerate(self.key_names):
            if not _HEADER_NAME.match(n):
                raise field_error(f"key_names[{i}]", f"bad header name '{n}', allowed characters are A-Z, a-z, 0-9, '_', and '-'")


class KeyAuth(Plugin):
    name = "key-auth"
    PRIORITY = 1250
    Config = KeyAuthConfig

    def __init__(self, config: KeyAuthConfig, env: PluginEnv) -> None:
        super().__init__(config, env)
        self.keys: dict[str, tuple[Any, Any]] = {}
        # key -> expiry (epoch seconds) of credentials created with a `ttl` (Kong's DAO ttl:
        # the credential is gone once it passes); only these keys pay for a clock check
        self.expiry: dict[str, float] = {}
        for consumer, cred in env.credentials_for("key-auth"):
            key = getattr(cred, "key", None)
            if key and consumer is not None:
                self.keys[str(key)] = (consumer, cred)
                ttl = getattr(cred, "ttl", None)
                if ttl:
                    self.expiry[str(key)] = float(getattr(cred, "created_at", None) or 0) + ttl
        self.names = [
            (
                n,
                n.lower().encode("latin-1"),
                n.encode("latin-1"),
                quote(n, safe="").encode("latin-1") if quote(n, safe="") != n else None,
            )
            for n in config.key_names
        ]
        self.challenge = f'Key realm="{config.realm}"' if config.realm else "Key"
        self.needs_request_body = config.key_in_body

    def access(self, ctx: Any) -> Response | None:
        conf = self.config
        req = ctx.request
        if not conf.run_on_preflight and req.method == "OPTIONS":
            return None
        if conf.anonymous and ctx.credential is not None:
            return None  # already authenticated by another plugin: logical OR, done
        failure = self._authenticate(ctx)
        if failure is None:
            return None
        return use_anonymous(ctx, self.env, conf.anonymous, failure)

    def _authenticate(self, ctx: Any) -> Response | None:
        conf = self.config
        req = ctx.request
        key: str | None = None
        body: Any = None
        kind: str | None = None
        for name, lname, qname, qname_enc in self.names:
            v: Any = None
            if conf.key_in_header:
                vals = req.get_header_all_bytes(lname)
                if len(vals) > 1:
                    return unauthorized("Duplicate API key found", self.challenge)
                if vals:
                    v = vals[0].decode("latin-1")
            if v is None and conf.key_in_query:
                raw_query = req.raw_query
                # parse the query only when the name can be in it (percent-encoded or not)
                # (any percent-escape may spell the name: `api%6B%65%79`, so then parse)
                if raw_query and (qname in raw_query or (qname_enc is not None and qname_enc in raw_query)
                                  or b"%" in raw_query):
                    v = req.query.get(name)
            if v is None and conf.key_in_body:
                if body is None:
                    ctype = req.get_header("content-type")
                    kind = body_kind(ctype)
                    body = decode_body(kind, req.get_body(), ctype) or {}
                v = body.get(name)
            if isinstance(v, list):
                return unauthorized("Duplicate API key found", self.challenge)
            if isinstance(v, str):
                key = v
                if conf.hide_credentials:
                    self._hide(req, name, lname, body, kind)
                break
        if not key:
            return unauthorized("No API key found in request", self.challenge)
        found = self.keys.get(key)
        if found is not None and self.expiry:
            exp = self.expiry.get(key)
            if exp is not None and exp <= ctx.now:
                found = None
        if found is None:
            return unauthorized(ERR_INVALID_AUTH_CRED, self.challenge)
        consumer, cred = found
        cred_id = getattr(cred, "id", None)
        ctx.authenticate(consumer, cred, str(cred_id) if cred_id else None)
        return None

    def _hide(self, req: Any, name: str, lname: bytes, body: Any, kind: str | None) -> None:
        if name in req.query:
            q = dict(req.query)
            del q[name]
            req.set_query(q)
        if req.get_header_bytes(lname) is not None:
            req.clear_header(lname)
        if self.config.key_in_body:
            ctype = req.get_header("content-type")
            if body is None:
                kind = body_kind(ctype)
                body = decode_body(kind, req.get_body(), ctype)
            if body and kind and name in body:
                body = dict(body)
                del body[name]
                req.set_body(encode_body(kind, body, ctype))
