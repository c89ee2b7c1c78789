"""hmac-auth: HTTP Signature authentication against hmacauth_credentials (Kong
kong/plugins/hmac-auth, draft-cavage-http-signatures).

``Authorization`` (or ``Proxy-Authorization``, tried first) carries
``hmac username="u", algorithm="hmac-sha256", headers="date @request-target", signature="b64"``.
The signing string joins, one per line, ``name: value`` for each listed header,
``@request-target: <method lowercase> <request-uri>``, or the request line for
``request-line``. A ``Date`` or ``X-Date`` within ``clock_skew`` seconds is required; with
``validate_request_body`` the body's ``Digest: SHA-256=<b64>`` must match (and the body is
buffered for it). Credentials are indexed by username once per snapshot; signatures are
compared in constant time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import re
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar

import msgspec

from ._kong_schema import check_gt, check_one_of
from .base import Plugin, PluginEnv, Response

log = logging.getLogger("fastgw.plugins")

ALGORITHMS = ("hmac-sha1", "hmac-sha256", "hmac-sha384", "hmac-sha512")
_DIGESTS = {"hmac-sha1": hashlib.sha1, "hmac-sha256": hashlib.sha256, "hmac-sha384": hashlib.sha384,
            "hmac-sha512": hashlib.sha512}
# Kong's pattern (greedy groups, as Kong's PCRE)
_FIELDS = re.compile(r'\s*[Hh]mac\s*username="(.+)",\s*algorithm="(.+)",\s*headers="(.+)",\s*signature="(.+)"')

SIGNATURE_NOT_VALID = "HMAC signature cannot be verified"
SIGNATURE_NOT_SAME = "HMAC signature does not match"
DATE_REQUIRED = ("HMAC signature cannot be verified, a valid date or x-date header is required for "
                 "HMAC Authentication")


class HmacAuthConfig(msgspec.Struct, forbid_unknown_fields=True):
    hide_credentials: bool = False
    clock_skew: float = 300
    anonymous: str | None = None
    validate_request_body: bool = False
    enforce_headers: list[str] = msgspec.field(default_factory=list)
    algorithms: list[str] = msgspec.field(default_factory=lambda: list(ALGORITHMS))
    realm: str | None = None

    def __post_init__(self) -> None:
        check_gt("clock_skew", self.clock_skew, 0)
        for i, a in enumerate(self.algorithms):
            check_one_of(f"algorithms[{i}]", a, ALGORITHMS)


class _Params:
    __slots__ = ("username", "algorithm", "headers", "signature")

    def __init__(self, m: re.Match[str] | None) -> None:
        if m is None:
            self.username = self.algorithm = self.signature = None
            self.headers: list[str] = []
        else:
            self.username, self.algorithm, hdrs, self.signature = m.groups()
            self.headers = hdrs.split(" ")


class HmacAuth(Plugin):
    name = "hmac-auth"
    PRIORITY = 1030
    Config = HmacAuthConfig
    no_consumer: ClassVar[bool] = True  # Kong's typedefs.no_consumer

    def __init__(self, config: HmacAuthConfig, env: PluginEnv) -> None:
        super().__init__(config, env)
        self._creds: dict[str, tuple[Any, Any]] = {}
        for consumer, cred in env.credentials_for("hmac-auth"):
            username = getattr(cred, "username", None)
            if username and consumer is not None:
                self._creds[str(username)] = (consumer, cred)
        self._challenge = f'hmac realm="{config.realm}"' if config.realm else "hmac"
        self._algorithms = frozenset(config.algorithms)
        self.needs_request_body = config.validate_request_body

    def access(self, ctx: Any) -> Response | None:
        conf = self.config
        if conf.anonymous:
            if ctx.credential is not None:
                return None  # logical OR: another plugin authenticated the request
            if self._authenticate(ctx) is None:
                return None
            consumer = self.env.find_consumer(conf.anonymous)
            if consumer is None:
                msg = f"anonymous consumer {conf.anonymous} is configured but doesn't exist"
                log.error(msg)
                return Response.message(500, msg)
            ctx.authenticate(consumer, None)
            return None
        return self._authenticate(ctx)

    def _fail(self, message: str) -> Response:
        return Response.message(401, message, {"WWW-Authenticate": self._challenge})

    def _authenticate(self, ctx: Any) -> Response | None:
        conf = self.config
        req = ctx.request
        authorization = req.get_header("authorization")
        proxy_authorization = req.get_header("proxy-authorization")
        if authorization is None and proxy_authorization is None:
            return self._fail("Unauthorized")
        if not (self._clock_ok(ctx, "x-date") or self._clock_ok(ctx, "date")):
            return self._fail(DATE_REQUIRED)
        params = _Params(_FIELDS.match(proxy_authorization) if proxy_authorization else None)
        if params.username is None:
            params = _Params(_FIELDS.match(authorization) if authorization else None)
            if conf.hide_credentials:
                req.clear_header("authorization")
        elif conf.hide_credentials:
            req.clear_header("proxy-authorization")
        if not self._params_ok(params):
            return self._fail(SIGNATURE_NOT_VALID)
        found = self._creds.get(params.username or "")
        if found is None:
            return self._fail(SIGNATURE_NOT_VALID)
        consumer, cred = found
        if not self._signature_ok(ctx, params, str(cred.secret)):
            return self._fail(SIGNATURE_NOT_SAME)
        if conf.validate_request_body and not self._body_ok(ctx):
            return self._fail(SIGNATURE_NOT_SAME)
        ctx.authenticate(consumer, cred, str(cred.username))
        return None

    def _clock_ok(self, ctx: Any, name: str) -> bool:
        value = ctx.request.get_header(name)
        if not value:
            return False
        try:
            t = parsedate_to_datetime(value).timestamp()
        except (TypeError, ValueError, IndexError):
            return False
        return abs(int(ctx.now) - t) <= self.config.clock_skew

    def _params_ok(self, p: _Params) -> bool:
        if not p.username or not p.signature:
            return False
        enforced = self.config.enforce_headers
        if enforced and any(h not in p.headers for h in enforced):
            return False  # "enforced header not used for signature creation"
        return p.algorithm in self._algorithms

    def _signature_ok(self, ctx: Any, p: _Params, secret: str) -> bool:
        req = ctx.request
        uri = req.original_target.decode("latin-1")
        lines = []
        for h in p.headers:
            value = req.get_header(h)
            if value is not None:
                lines.append(f"{h}: {value}")
            elif h == "@request-target":
                lines.append(f"{h}: {req.method.lower()} {uri}")
            elif h == "request-line":
                # the plugin Context does not know the client's version: fastgw speaks HTTP/1.1
                lines.append(f"{req.method} {uri} HTTP/1.1")
            else:
                lines.append(f"{h}:")
        digest = hmac.new(secret.encode("utf-8"), "\n".join(lines).encode("utf-8", "surrogateescape"),
                          _DIGESTS[p.algorithm or ""]).digest()
        try:
            given = base64.b64decode(p.signature or "", validate=False)
        except (binascii.Error, ValueError):
            return False
        return hmac.compare_digest(digest, given)

    def _body_ok(self, ctx: Any) -> bool:
        body = ctx.request.get_body() or b""
        received = ctx.request.get_header("digest")
        if received is None:
            return body == b""
        return received == "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()
