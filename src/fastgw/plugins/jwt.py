"""jwt: verify HS256/384/512, RS256/384/512, ES256/384/512 (and PS*) JSON Web Tokens (Kong).

Token retrieval (header, query, cookie) and the consumer are this module's; decoding, signature
and claim checks and the verified-token cache are the compiled kernel's
(:class:`fastgw._core.jwt.JwtVerifier`), which the compiled plugin chain calls too. Keys are
prepared once per snapshot.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

import msgspec

from fastgw._core.jwt import ALGORITHMS, VERIFIED_CACHE_SIZE, JwtKey, JwtVerifier

from ._util import unauthorized, use_anonymous
from .base import Plugin, PluginEnv, Response, field_error

_BEARER = re.compile(r"\s*[Bb]earer\s+(.+)")
SUPPORTED_ALGORITHMS = ALGORITHMS
# Kong: maximum_expiration is between 0 and 31536000 (one year).
MAX_EXPIRATION_LIMIT = 31_536_000


class JwtConfig(msgspec.Struct, forbid_unknown_fields=True):
    # Query parameters searched for a token (Kong default ["jwt"]).
    uri_param_names: list[str] = msgspec.field(default_factory=lambda: ["jwt"])
    cookie_names: list[str] = []
    # Headers searched for `Bearer <token>` (Kong default ["authorization"]).
    header_names: list[str] = msgspec.field(default_factory=lambda: ["authorization"])
    # Claim (or header field) naming the jwt_secret's `key` (Kong default "iss").
    key_claim_name: str = "iss"
    # HS secrets are stored base64-encoded (default False).
    secret_is_base64: bool = False
    # Registered claims to verify: "exp" and/or "nbf" (default none, as Kong).
    claims_to_verify: list[str] = []
    anonymous: str | None = None
    run_on_preflight: bool = True
    # Seconds; 0 = no limit. Requires "exp" in claims_to_verify (Kong's entity check).
    maximum_expiration: int = 0
    # Realm of the `WWW-Authenticate: Bearer realm="..."` challenge every 401 carries
    # (None, Kong's default: `Bearer`).
    realm: str | None = None

    def __post_init__(self) -> None:
        for i, c in enumerate(self.claims_to_verify):
            if c not in ("exp", "nbf"):
                raise field_error(f"claims_to_verify[{i}]", 'expected one of: exp, nbf')
        if not 0 <= self.maximum_expiration <= MAX_EXPIRATION_LIMIT:
            raise field_error("maximum_expiration", f"value should be between 0 and {MAX_EXPIRATION_LIMIT}")
        if self.maximum_expiration > 0 and "exp" not in self.claims_to_verify:
            raise field_error("claims_to_verify", "expected to contain: exp")
        if not self.key_claim_name:
            raise field_error("key_claim_name", "length must be at least 1")


class Jwt(Plugin):
    name = "jwt"
    PRIORITY = 1450
    Config = JwtConfig

    def __init__(self, config: JwtConfig, env: PluginEnv) -> None:
        super().__init__(config, env)
        keys = []
        for consumer, cred in env.credentials_for("jwt"):
            key = getattr(cred, "key", None)
            if not key or consumer is None:
                continue
            alg = getattr(cred, "algorithm", None) or "HS256"
            secret = getattr(cred, "secret", None)
            if secret is not None and config.secret_is_base64:
                secret = _b64decode(secret)
            keys.append(JwtKey(str(key), alg, secret=secret,
                               rsa_public_key=getattr(cred, "rsa_public_key", None),
                               consumer=consumer, credential=cred))
        # the verification kernel: decoding, signatures, claims and the verified-token cache
        self.verifier = JwtVerifier(keys, key_claim_name=config.key_claim_name,
                                    claims_to_verify=config.claims_to_verify,
                                    maximum_expiration=config.maximum_expiration,
                                    cache_size=VERIFIED_CACHE_SIZE)
        self.header_names = [h.lower().encode("latin-1") for h in config.header_names]
        # raw substrings that must appear in the query for a parameter to be there
        self.query_markers = [n.encode("latin-1") + b"=" for n in config.uri_param_names] + [
            _quote(n).encode("latin-1") + b"=" for n in config.uri_param_names if _quote(n) != n
        ]
        # Kong's handler: the bare challenge when no token was sent, error="invalid_token" else
        base = f'Bearer realm="{config.realm}"' if config.realm else "Bearer"
        self.challenge = base
        self.challenge_invalid = (base + ', error="invalid_token"' if config.realm
                                  else 'Bearer error="invalid_token"')

    # -- token retrieval (Kong's retrieve_tokens: every source, deduplicated) --
    def _tokens(self, ctx: Any) -> list[str]:
        req = ctx.request
        found: dict[str, None] = {}
        raw_query = req.raw_query
        if self.query_markers and raw_query and (b"%" in raw_query or
                                                 any(p in raw_query for p in self.query_markers)):
            # parse the query only when one of our parameter names appears in it
            q = req.query
            for name in self.config.uri_param_names:
                v = q.get(name)
                if isinstance(v, list):
                    found.update((t, None) for t in v if t)
                elif v:
                    found[v] = None
        if self.config.cookie_names:
            cookies = _cookies(req.get_header_all_bytes(b"cookie"))
            for name in self.config.cookie_names:
                v = cookies.get(name)
                if v:
                    found[v] = None
        for lname in self.header_names:
            raw = req.get_header_bytes(lname)
            if raw is not None:
                token = bearer_token(raw)
                if token:
                    found[token] = None
        return list(found)

    def access(self, ctx: Any) -> Response | None:
        conf = self.config
        if not conf.run_on_preflight and ctx.request.method == "OPTIONS":
            return None
        if conf.anonymous and ctx.credential is not None:
            return None
        failure = self._authenticate(ctx)
        if failure is None:
            return None
        return use_anonymous(ctx, self.env, conf.anonymous, failure)

    def _authenticate(self, ctx: Any) -> Response | None:
        tokens = self._tokens(ctx)
        if not tokens:
            return unauthorized("Unauthorized", self.challenge)
        if len(tokens) > 1:
            return unauthorized("Multiple tokens provided", self.challenge_invalid)
        token = tokens[0]
        verdict = self.verifier.check(token, ctx.now)
        if verdict.errors is not None:
            return Response.json(401, verdict.errors, {"WWW-Authenticate": self.challenge_invalid})
        key = verdict.key
        if key is None:
            return unauthorized(verdict.message, self.challenge_invalid)
        ctx.vars["authenticated_jwt_token"] = token
        ctx.authenticate(key.consumer, key.credential, key.key or None)
        return None


def bearer_token(raw: bytes) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` value (Kong's pattern
    ``"\\s*[Bb]earer\\s+(.+)"``), else None."""
    m = _BEARER.match(raw.decode("latin-1"))
    return m.group(1).strip() if m and m.group(1).strip() else None


def _b64decode(secret: str) -> bytes | None:
    try:
        return base64.b64decode(secret + "=" * (-len(secret) % 4))
    except (binascii.Error, ValueError):
        return None  # an undecodable secret answers "Invalid key/secret" per request (Kong)


def _quote(name: str) -> str:
    from urllib.parse import quote

    return quote(name, safe="")


def _cookies(lines: list[bytes]) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in lines:
        for part in line.decode("latin-1").split(";"):
            name, sep, value = part.strip().partition("=")
            if sep and name and name not in out:
                out[name] = value.strip().strip('"')
    return out
