"""oauth2: OAuth 2.0 (RFC 6749) as Kong's plugin: the ``/oauth2/authorize`` and
``/oauth2/token`` endpoints on the routes it covers (_oauth2_endpoints.py) and Bearer token
authentication of every other request.

Flows: authorization code (with PKCE, RFC 7636), implicit, client credentials, password, and
refresh. Credentials are the ``oauth2_credentials`` of the config (nested under consumers),
indexed by client_id and id once per snapshot; tokens and codes are in process memory
(_oauth2_store.py). The request body is buffered (the endpoints and the ``access_token``
parameter read it), so only routes with this plugin pay for it.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import msgspec

from ._kong_schema import check_between, check_one_of
from ._oauth2_endpoints import Endpoints
from ._oauth2_store import STORE, random_string
from ._util import FORM, body_kind, decode_body, encode_body
from .base import Plugin, PluginEnv, Response, field_error
from fastgw.realip import in_networks as _in_networks

log = logging.getLogger("fastgw.plugins")

_INVALID = "The access token is invalid or has expired"
# typedefs.ttl: 0 .. 100000000 s
_MAX_TTL = 100_000_000


class Oauth2Config(msgspec.Struct, forbid_unknown_fields=True):
    scopes: list[str] | None = None
    mandatory_scope: bool = False
    provision_key: str = msgspec.field(default_factory=random_string)
    token_expiration: float = 7200
    enable_authorization_code: bool = False
    enable_implicit_grant: bool = False
    enable_client_credentials: bool = False
    enable_password_grant: bool = False
    hide_credentials: bool = False
    accept_http_if_already_terminated: bool = False
    anonymous: str | None = None
    global_credentials: bool = False
    auth_header_name: str = "authorization"
    refresh_token_ttl: float = 1209600
    reuse_refresh_token: bool = False
    pkce: str | None = "lax"
    realm: str | None = None

    def __post_init__(self) -> None:
        check_between("refresh_token_ttl", self.refresh_token_ttl, 0, _MAX_TTL)
        check_one_of("pkce", self.pkce, ("none", "lax", "strict"))
        if not (self.enable_authorization_code or self.enable_implicit_grant or self.enable_client_credentials
                or self.enable_password_grant):
            raise ValueError("at least one of these fields must be true: enable_authorization_code, "
                             "enable_implicit_grant, enable_client_credentials, enable_password_grant")
        if self.mandatory_scope and self.scopes is None:
            raise field_error("scopes", "required field missing")


def _bearer(realm: str | None, error: str | None = None, description: str | None = None) -> str:
    """make_www_authenticate_header"""
    params = []
    if realm:
        params.append(f'realm="{realm}"')
    if error:
        params.append(f'error="{error}"')
    if description:
        params.append(f'error_description="{description}"')
    return "Bearer " + ", ".join(params) if params else "Bearer"


class Oauth2(Plugin):
    name = "oauth2"
    PRIORITY = 1400
    Config = Oauth2Config
    no_consumer: ClassVar[bool] = True
    needs_request_body = True

    def __init__(self, config: Oauth2Config, env: PluginEnv) -> None:
        super().__init__(config, env)
        self._by_client: dict[str, tuple[Any, Any]] = {}
        self._by_id: dict[str, tuple[Any, Any]] = {}
        for consumer, cred in env.credentials_for("oauth2"):
            if consumer is None:
                continue
            self._by_client[str(cred.client_id)] = (consumer, cred)
            self._by_id[str(cred.id)] = (consumer, cred)
        self._endpoints = Endpoints(self)
        self._header = config.auth_header_name.lower()

    @property
    def identity(self) -> Any:
        """Stands for Kong's plugin id (codes of one plugin are redeemed by that plugin)."""
        return ("oauth2", getattr(self, "scope", None))

    def client(self, client_id: Any) -> Any | None:
        if not isinstance(client_id, str) or not client_id:
            return None
        found = self._by_client.get(client_id)
        return found[1] if found is not None else None

    def is_https(self, ctx: Any) -> tuple[bool, str | None]:
        """kong.tools.http.check_https"""
        if ctx.scheme == "https":
            return True, None
        if not self.config.accept_http_if_already_terminated:
            return False, None
        env = ctx.env
        if env is not None and _in_networks(ctx.client_addr, env.trusted_networks):
            proto = ctx.request.get_header("x-forwarded-proto")
            if proto is None:
                return False, None
            if "," in proto:
                return False, "Only one X-Forwarded-Proto header allowed"
            return proto.lower() == "https", None
        return False, None

    def _params(self, ctx: Any) -> dict[str, Any]:
        req = ctx.request
        params = dict(req.query)
        if req.method in ("POST", "PUT", "PATCH"):
            body = decode_body(body_kind(req.get_header("content-type")), req.get_body())
            if body:
                params.update(body)
        return params

    # ------------------------------------------------------------------ access
    def access(self, ctx: Any) -> Response | None:
        path = ctx.request.path.rstrip("/") if ctx.request.path.endswith("/") else ctx.request.path
        if path.endswith("/oauth2/token"):
            if ctx.request.method != "POST":
                return self._bad_method(ctx, "token")
            return self._endpoints.token(ctx, self._params(ctx))
        if path.endswith("/oauth2/authorize"):
            if ctx.request.method != "POST":
                return self._bad_method(ctx, "authorization")
            return self._endpoints.authorize(ctx, self._params(ctx))
        conf = self.config
        if conf.anonymous:
            if ctx.credential is not None:
                ctx.request.clear_header("X-Authenticated-Scope")
                ctx.request.clear_header("X-Authenticated-UserId")
                return None
            if self._authenticate(ctx) is None:
                return None
            consumer = self.env.find_consumer(conf.anonymous)
            if consumer is None:
                msg = f"anonymous consumer {conf.anonymous} is configured but doesn't exist"
                log.error(msg)
                return Response.message(500, msg)
            self._set_consumer(ctx, consumer, None, None)
            return None
        return self._authenticate(ctx)

    def _bad_method(self, ctx: Any, endpoint: str) -> Response:
        desc = f"The HTTP method {ctx.request.method} is invalid for the {endpoint} endpoint"
        return Response.json(405, {"error": "invalid_method", "error_description": desc},
                             {"WWW-Authenticate": _bearer(self.config.realm, "invalid_method", desc)})

    def _invalid(self) -> Response:
        return Response.json(401, {"error": "invalid_token", "error_description": _INVALID},
                             {"WWW-Authenticate": _bearer(self.config.realm, "invalid_token", _INVALID)})

    def _access_token(self, ctx: Any) -> str | None:
        conf = self.config
        req = ctx.request
        header = req.get_header(self._header)
        in_header = False
        if header is not None:
            token: Any = header
            parts = header.split()
            if len(parts) == 2 and parts[0].lower() in ("token", "bearer"):
                token, in_header = parts[1], True
        else:
            token = self._params(ctx).get("access_token")
            if not isinstance(token, str):
                return None
        if conf.hide_credentials:
            if in_header:
                req.clear_header(self._header)
            else:
                q = dict(req.query)
                q.pop("access_token", None)
                req.set_query(q)
                ctype = req.get_header("content-type") or ""
                if req.method != "GET" and "application/x-www-form-urlencoded" in ctype:
                    body = decode_body(FORM, req.get_body()) or {}
                    body.pop("access_token", None)
                    req.set_body(encode_body(FORM, body))
        return token

    def _authenticate(self, ctx: Any) -> Response | None:
        conf = self.config
        token_value = self._access_token(ctx)
        if not token_value:
            return Response.json(401, {"error": "invalid_request", "error_description": "The access token is missing"},
                                 {"WWW-Authenticate": _bearer(conf.realm)})
        token = STORE.token(token_value, ctx.now)
        if token is None:
            return self._invalid()
        service_id = getattr(ctx.service, "id", None) if ctx.service is not None else None
        if not conf.global_credentials and token.service_id is None:
            return Response.json(401, {"error": "invalid_token", "error_description":
                                       "The access token is global, but the current plugin is configured without "
                                       "'global_credentials'"},
                                 {"WWW-Authenticate": _bearer(conf.realm, "invalid_token", _INVALID)})
        if token.service_id is not None and token.service_id != service_id:
            return self._invalid()
        if token.expires_in > 0 and ctx.now - token.created_at > token.expires_in:
            return self._invalid()
        found = self._by_id.get(token.credential_id)
        if found is None:
            return self._invalid()  # the credential was deleted
        consumer, cred = found
        self._set_consumer(ctx, consumer, cred, token)
        return None

    @staticmethod
    def _set_consumer(ctx: Any, consumer: Any, cred: Any, token: Any) -> None:
        ctx.authenticate(consumer, cred, str(cred.client_id) if cred is not None else None)
        req = ctx.request
        if token is not None and token.scope:
            req.set_header("X-Authenticated-Scope", token.scope)
        else:
            req.clear_header("X-Authenticated-Scope")
        if token is not None and token.authenticated_userid:
            req.set_header("X-Authenticated-UserId", token.authenticated_userid)
        else:
            req.clear_header("X-Authenticated-UserId")
