"""jwt: verify HS256/384/512, RS256/384/512, ES256/384/512 (and PS*) JSON Web Tokens (Kong).

Verification uses PyJWT's algorithm objects (backed by cryptography) with keys prepared ONCE
per snapshot (PEM parsing and base64 decoding happen in ``__init__``, not per request).
Tokens that verified are cached per plugin instance until their ``exp`` (bounded FIFO of
``VERIFIED_CACHE_SIZE`` entries), so a repeated token costs one dict lookup plus the
registered-claim checks against ``ctx.now``. Only successes are cached, so a forged token never
skips verification.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

import msgspec
import orjson
from jwt.algorithms import get_default_algorithms

from ._util import unauthorized, use_anonymous
from .base import Plugin, PluginEnv, Response, field_error

# Bound of the verified-token cache per plugin instance: 10k tokens of ~1 KiB keep the worst
# case near 10 MiB per worker (nginx's lua_shared_dict kong_db_cache defaults to 128 MiB).
VERIFIED_CACHE_SIZE = 10_000

_BEARER = re.compile(r"\s*[Bb]earer\s+(.+)")
_ALGORITHMS = get_default_algorithms()
SUPPORTED_ALGORITHMS = tuple(
    a for a in ("HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512",
                "PS256", "PS384", "PS512") if a in _ALGORITHMS
)
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


def _b64url(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


class _Secret:
    __slots__ = ("consumer", "cred", "alg", "key")

    def __init__(self, consumer: Any, cred: Any, alg: str, key: Any) -> None:
        self.consumer = consumer
        self.cred = cred
        self.alg = alg
        self.key = key  # prepared key for PyJWT's algorithm object, or None (invalid)


class _Verified:
    __slots__ = ("secret", "claims")

    def __init__(self, secret: _Secret, claims: dict[str, Any]) -> None:
        self.secret = secret
        self.claims = claims


class Jwt(Plugin):
    name = "jwt"
    PRIORITY = 1450
    Config = JwtConfig

    def __init__(self, config: JwtConfig, env: PluginEnv) -> None:
        super().__init__(config, env)
        self._secrets: dict[str, _Secret] = {}
        for consumer, cred in env.credentials_for("jwt"):
            key = getattr(cred, "key", None)
            if not key or consumer is None:
                continue
            alg = getattr(cred, "algorithm", None) or "HS256"
            self._secrets[str(key)] = _Secret(consumer, cred, alg, self._prepare(cred, alg))
        self._cache: dict[str, _Verified] = {}
        self._headers = [h.lower().encode("latin-1") for h in config.header_names]
        # raw substrings that must appear in the query for a parameter to be there
        self._params = [n.encode("latin-1") + b"=" for n in config.uri_param_names] + [
            _quote(n).encode("latin-1") + b"=" for n in config.uri_param_names if _quote(n) != n
        ]
        # Kong's do_authentication: the bare challenge when no token was sent, with
        # error="invalid_token" (RFC 6750 section 3.1) for every bad token
        if config.realm:
            self._challenge = f'Bearer realm="{config.realm}"'
            self._challenge_err = self._challenge + ', error="invalid_token"'
        else:
            self._challenge = "Bearer"
            self._challenge_err = 'Bearer error="invalid_token"'

    def _prepare(self, cred: Any, alg: str) -> Any:
        algo = _ALGORITHMS.get(alg)
        if algo is None:
            return None
        try:
            if alg.startswith("HS"):
                material: Any = getattr(cred, "secret", None)
                if material is None:
                    return None
                if self.config.secret_is_base64:
                    material = base64.b64decode(material + "=" * (-len(material) % 4))
                return algo.prepare_key(material)
            pem = getattr(cred, "rsa_public_key", None)
            return algo.prepare_key(pem) if pem else None
        except (ValueError, TypeError, binascii.Error, Exception):
            # An unusable key answers "Invalid key/secret" per request (Kong), it does not fail
            # the whole snapshot.
            return None

    # -- token retrieval (Kong's retrieve_tokens: every source, deduplicated) --
    def _tokens(self, ctx: Any) -> list[str]:
        req = ctx.request
        found: dict[str, None] = {}
        raw_query = req.raw_query
        if self._params and raw_query and (b"%" in raw_query or any(p in raw_query for p in self._params)):
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
        for lname in self._headers:
            raw = req.get_header_bytes(lname)
            if raw is not None:
                m = _BEARER.match(raw.decode("latin-1"))
                if m and m.group(1):
                    found[m.group(1).strip()] = None
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

    def _fail(self, message: str) -> Response:
        return unauthorized(message, self._challenge_err)

    def _authenticate(self, ctx: Any) -> Response | None:
        tokens = self._tokens(ctx)
        if not tokens:
            return unauthorized("Unauthorized", self._challenge)
        if len(tokens) > 1:
            return self._fail("Multiple tokens provided")
        token = tokens[0]
        hit = self._cache.get(token)
        if hit is not None:
            exp = hit.claims.get("exp")
            if isinstance(exp, (int, float)) and exp <= ctx.now:
                # cached until expiry: an expired token is verified again (and evicted)
                del self._cache[token]
                hit = None
        if hit is None:
            result = self._verify(token)
            if isinstance(result, Response):
                return result
            hit = result
        errors = self._check_claims(hit.claims, ctx.now)
        if errors:
            self._cache.pop(token, None)
            return Response.json(401, errors, {"WWW-Authenticate": self._challenge_err})
        if token not in self._cache:
            self._remember(token, hit)
        secret = hit.secret
        ctx.vars["authenticated_jwt_token"] = token
        ctx.authenticate(secret.consumer, secret.cred, str(getattr(secret.cred, "key", "")) or None)
        return None

    def _verify(self, token: str) -> _Verified | Response:
        conf = self.config
        parts = token.split(".")
        if len(parts) != 3:
            # Kong's decode_token: a missing part fails the base64/JSON decoding
            return self._fail("Bad token; invalid JSON")
        try:
            header = orjson.loads(_b64url(parts[0]))
            claims = orjson.loads(_b64url(parts[1]))
            signature = _b64url(parts[2])
        except (ValueError, binascii.Error):
            return self._fail("Bad token; invalid JSON")
        if not isinstance(header, dict) or not isinstance(claims, dict):
            return self._fail("Bad token; invalid JSON")
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in _ALGORITHMS or alg == "none":
            return self._fail("Bad token; invalid alg")
        kname = conf.key_claim_name
        key = claims.get(kname)
        if key is None:
            key = header.get(kname)
        if key is None:
            return self._fail(f"No mandatory '{kname}' in claims")
        if key == "" or not isinstance(key, (str, int)):
            return self._fail(f"Invalid '{kname}' in claims")
        secret = self._secrets.get(str(key))
        if secret is None:
            return self._fail(f"No credentials found for given '{kname}'")
        if alg != secret.alg:
            return self._fail("Invalid algorithm")
        if secret.key is None:
            return self._fail("Invalid key/secret")
        signing_input = (parts[0] + "." + parts[1]).encode("ascii", "replace")
        try:
            ok = _ALGORITHMS[alg].verify(signing_input, secret.key, signature)
        except Exception:
            ok = False
        if not ok:
            return self._fail("Invalid signature")
        return _Verified(secret, claims)

    def _check_claims(self, claims: dict[str, Any], now: float) -> dict[str, str] | None:
        conf = self.config
        errors: dict[str, str] | None = None
        for name in conf.claims_to_verify:
            v = claims.get(name)
            # Kong's verify_registered_claims: a listed claim that is absent is not a number
            # either (jwt_parser.lua), so a token without `exp` never passes an exp check
            if v is None or isinstance(v, bool) or not isinstance(v, (int, float)):
                err = "must be a number"
            elif name == "exp":
                err = "token expired" if v <= now else None
            else:
                err = "token not valid yet" if v > now else None
            if err:
                errors = errors or {}
                errors[name] = err
        if errors is None and conf.maximum_expiration > 0:
            exp = claims.get("exp")
            if not isinstance(exp, (int, float)) or exp - now > conf.maximum_expiration:
                errors = {"exp": "exceeds maximum allowed expiration"}
        return errors

    def _remember(self, token: str, v: _Verified) -> None:
        cache = self._cache
        if len(cache) >= VERIFIED_CACHE_SIZE:
            # FIFO eviction (dicts keep insertion order): O(1), no per-hit bookkeeping.
            del cache[next(iter(cache))]
        cache[token] = v


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
