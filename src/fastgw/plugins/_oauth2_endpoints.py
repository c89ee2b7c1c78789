"""oauth2's endpoints, ``POST .../oauth2/authorize`` and ``POST .../oauth2/token``, with
Kong's parameters, checks, error codes and descriptions (kong/plugins/oauth2/access.lua
``authorize`` and ``issue_token``). Responses carry ``Cache-Control: no-store`` and
``Pragma: no-cache`` (RFC 6749 5.1)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from fastgw.config.oauth2_secret import verify_secret

from . import _oauth2_store as store
from .base import Response

_BASIC = re.compile(r"\s*[Bb]asic\s*(.+)")
NO_STORE = [(b"Cache-Control", b"no-store"), (b"Pragma", b"no-cache")]


def _err(code: str, description: str) -> dict[str, str]:
    return {"error": code, "error_description": description}


INVALID_CLIENT = ("invalid_client", "Invalid client authentication")
BAD_REDIRECT = ("invalid_request", "Invalid redirect_uri that does not match with any redirect_uri created with "
                "the application")


def _b64url_decode(v: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(v + "=" * (-len(v) % 4))
    except (binascii.Error, ValueError):
        return None


def _b64url(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


class Endpoints:
    """Bound to one oauth2 plugin instance (its config, credentials and identity)."""

    def __init__(self, plugin: Any) -> None:
        self.p = plugin
        self.conf = plugin.config

    # ------------------------------------------------------------------ shared
    def _scope(self, params: dict[str, Any]) -> tuple[str | None, dict[str, str] | None]:
        conf = self.conf
        scope = params.get("scope")
        if conf.scopes and scope is not None:
            if not isinstance(scope, str):
                return None, _err("invalid_scope", "scope must be a string")
            scopes = []
            for v in scope.split():
                if v not in conf.scopes:
                    return None, _err("invalid_scope", f'"{v}" is an invalid scope')
                scopes.append(v)
            return (" ".join(scopes) or None), None
        if scope is None and conf.mandatory_scope:
            return None, _err("invalid_scope", "You must specify a scope")
        return None, None

    def _requires_pkce(self, client: Any, used_pkce: Any = None) -> bool:
        if client is None:
            return False
        pkce = self.conf.pkce
        return bool(used_pkce) or (client.client_type == "public" and pkce != "none") or (
            client.client_type == "confidential" and pkce == "strict")

    def _service_id(self, ctx: Any) -> str | None:
        if self.conf.global_credentials:
            return None
        return getattr(ctx.service, "id", None) if ctx.service is not None else None

    def _token(self, ctx: Any, client: Any, userid: str | None, scope: str | None, state: Any,
               disable_refresh: bool = False, existing: store.Token | None = None) -> dict[str, Any]:
        conf = self.conf
        exp = conf.token_expiration
        ttl = conf.refresh_token_ttl if conf.refresh_token_ttl and conf.refresh_token_ttl > 0 else None
        now = ctx.now
        if existing is not None and conf.reuse_refresh_token:
            store.STORE.renew_access(existing, now, exp, ttl if exp > 0 else None)
            token, refresh = existing, existing.refresh_token
        else:
            refresh = store.random_string() if not disable_refresh and exp > 0 else None
            token = store.Token(client.id, self._service_id(ctx), userid, scope, exp, refresh, now,
                                ttl if exp > 0 else None)
            store.STORE.add_token(token)
        out: dict[str, Any] = {"access_token": token.access_token, "token_type": "bearer"}
        if exp > 0:
            out["expires_in"] = _num(token.expires_in)
        if refresh:
            out["refresh_token"] = refresh
        if state is not None:
            out["state"] = state
        return out

    # --------------------------------------------------------------- authorize
    def authorize(self, ctx: Any, params: dict[str, Any]) -> Response:
        conf = self.conf
        resp: dict[str, Any] = {}
        state = params.get("state")
        redirect_uri: str | None = None
        implicit = False
        https, https_err = self.p.is_https(ctx)
        if not https:
            resp = _err("access_denied", https_err or "You must use HTTPS")
        elif conf.provision_key != params.get("provision_key"):
            resp = _err("invalid_provision_key", "Invalid provision_key")
        elif not isinstance(params.get("authenticated_userid"), str) or not params["authenticated_userid"].strip():
            resp = _err("invalid_authenticated_userid", "Missing authenticated_userid parameter")
        else:
            rtype = params.get("response_type")
            if not ((rtype == "code" and conf.enable_authorization_code) or
                    (rtype == "token" and conf.enable_implicit_grant)):
                resp = _err("unsupported_response_type", "Invalid response_type")
            scopes, serr = self._scope(params)
            if serr:
                resp = serr
            client = self.p.client(params.get("client_id"))
            allowed = client.redirect_uris if client is not None else None
            if not allowed:
                resp = _err(*INVALID_CLIENT)
            else:
                redirect_uri = params.get("redirect_uri") or allowed[0]
                if redirect_uri not in allowed:
                    resp = _err(*BAD_REDIRECT)
                    redirect_uri = allowed[0]
            challenge, cerr, method = self._challenge(params)
            if cerr:
                resp = _err("invalid_request", cerr)
            elif client is not None and not challenge and self._requires_pkce(client):
                resp = _err("invalid_request", f"code_challenge is required for {client.client_type} clients")
            elif not challenge:
                method = None
            if "error" not in resp:
                if rtype == "code":
                    code = store.Code(client.id, self._service_id(ctx), params["authenticated_userid"], scopes,
                                      challenge, method, self.p.identity, ctx.now)
                    store.STORE.add_code(code)
                    resp = {"code": code.code}
                else:
                    resp = self._token(ctx, client, params["authenticated_userid"], scopes, state, True)
                    implicit = True
        if state is not None:
            resp["state"] = state
        status = 400 if "error" in resp else 200
        if redirect_uri is not None:
            u = urlsplit(redirect_uri)
            existing = u.fragment if implicit else u.query
            merged = dict(parse_qsl(existing, keep_blank_values=True))
            merged.update({k: str(v) for k, v in resp.items()})
            enc = urlencode(sorted(merged.items()))
            u = u._replace(fragment=enc) if implicit else u._replace(query=enc)
            return Response.json(status, {"redirect_uri": urlunsplit(u)}, NO_STORE)
        return Response.json(status, resp, NO_STORE)

    def _challenge(self, params: dict[str, Any]) -> tuple[str | None, str | None, str]:
        challenge = params.get("code_challenge")
        method = params.get("code_challenge_method")
        if method and not challenge:
            return None, "code_challenge is required when code_method is present", "S256"
        if challenge:
            decoded = _b64url_decode(str(challenge))
            if decoded is not None:
                challenge = _b64url(decoded)
            if method and method != "S256":
                if method != "s256":
                    return None, "code_challenge_method is not supported, must be S256", "S256"
                method = "S256"
        return challenge, None, method or "S256"

    # ------------------------------------------------------------------- token
    def _client_credentials(self, ctx: Any, params: dict[str, Any]) -> tuple[Any, Any, bool]:
        if params.get("client_id") and params.get("client_secret"):
            return params["client_id"], params["client_secret"], False
        header = ctx.request.get_header(self.conf.auth_header_name)
        if header is not None:
            m = _BASIC.match(header)
            if m:
                try:
                    cid, _, secret = base64.b64decode(m.group(1)).decode("utf-8").partition(":")
                    return cid, secret, True
                except (binascii.Error, UnicodeDecodeError, ValueError):
                    pass
            return None, None, True
        return params.get("client_id"), None, False

    def token(self, ctx: Any, params: dict[str, Any]) -> Response:
        conf = self.conf
        resp: dict[str, Any] = {}
        status401 = False
        state = params.get("state")
        https, https_err = self.p.is_https(ctx)
        if not https:
            resp = _err("access_denied", https_err or "You must use HTTPS")
        else:
            grant = params.get("grant_type")
            if not (grant in ("authorization_code", "refresh_token") or
                    (conf.enable_client_credentials and grant == "client_credentials") or
                    (conf.enable_password_grant and grant == "password")):
                resp = _err("unsupported_grant_type", "Invalid grant_type")
            client_id, secret, from_header = self._client_credentials(ctx, params)
            client = self.p.client(client_id)
            if grant != "client_credentials":
                allowed = client.redirect_uris if client is not None else None
                if allowed:
                    if (params.get("redirect_uri") or allowed[0]) not in allowed:
                        resp = _err(*BAD_REDIRECT)
                else:
                    resp = _err(*INVALID_CLIENT)
                    status401 = from_header
            if client is not None:
                if client.client_type == "confidential":
                    if client.hash_secret:
                        ok = verify_secret(secret, client.client_secret)
                    else:
                        ok = secret is not None and secret == client.client_secret
                    if not ok:
                        resp = _err(*INVALID_CLIENT)
                        status401 = from_header
                elif client.client_type == "public" and (secret or "").strip():
                    resp = _err("invalid_request", "client_secret is disallowed for public clients")
            if "error" not in resp:
                resp = self._grant(ctx, grant, params, client, state)
        if state is not None:
            resp["state"] = state
        headers = list(NO_STORE)
        status = 200
        if "error" in resp:
            status = 401 if status401 else 400
            if status401:
                headers.append((b"WWW-Authenticate", b'Basic realm="OAuth2.0"'))
        return Response.json(status, resp, headers)

    def _grant(self, ctx: Any, grant: str, params: dict[str, Any], client: Any, state: Any) -> dict[str, Any]:
        conf = self.conf
        now = ctx.now
        if grant == "authorization_code":
            code = params.get("code")
            sid = self._service_id(ctx)
            ac = store.STORE.code(code, now) if isinstance(code, str) else None
            if ac is None or (sid and sid != ac.service_id) or ac.credential_id != client.id:
                return _err("invalid_request", "Invalid code")
            if self._requires_pkce(client, ac.challenge_method):
                err = self._verify_pkce(params, ac)
                if err:
                    return err
            if conf.global_credentials and ac.plugin is not None and ac.plugin != self.p.identity:
                return _err("invalid_request", "Invalid code")
            out = self._token(ctx, client, ac.authenticated_userid, ac.scope, state)
            store.STORE.delete_code(ac)
            return out
        if grant == "client_credentials":
            if params.get("authenticated_userid") and conf.provision_key != params.get("provision_key"):
                return _err("invalid_provision_key", "Invalid provision_key")
            if client is None:
                return _err(*INVALID_CLIENT)
            scope, err = self._scope(params)
            return err or self._token(ctx, client, params.get("authenticated_userid"), scope, state, True)
        if grant == "password":
            if conf.provision_key != params.get("provision_key"):
                return _err("invalid_provision_key", "Invalid provision_key")
            uid = params.get("authenticated_userid")
            if not isinstance(uid, str) or not uid.strip():
                return _err("invalid_authenticated_userid", "Missing authenticated_userid parameter")
            scope, err = self._scope(params)
            return err or self._token(ctx, client, uid, scope, state)
        # refresh_token
        rt = params.get("refresh_token")
        sid = self._service_id(ctx)
        tok = store.STORE.refresh(rt, now) if isinstance(rt, str) else None
        if tok is None or (sid and sid != tok.service_id):
            return _err("invalid_request", "Invalid refresh_token")
        if tok.credential_id != client.id:
            return _err(*INVALID_CLIENT)
        if tok.scope:
            for s in tok.scope.split():
                if s not in (conf.scopes or ()):
                    return _err("invalid_scope", "Scope mismatch")
        out = self._token(ctx, client, tok.authenticated_userid, tok.scope, state, False, tok)
        if not conf.reuse_refresh_token:
            store.STORE.delete_token(tok)
        return out

    @staticmethod
    def _verify_pkce(params: dict[str, Any], ac: store.Code) -> dict[str, str] | None:
        verifier = params.get("code_verifier")
        if verifier is None:
            return _err("invalid_request", "code_verifier is required for PKCE authorization requests")
        if not isinstance(verifier, str):
            return _err("invalid_request", "code_verifier is not a string")
        if not 43 <= len(verifier) <= 128:
            return _err("invalid_request", "code_verifier must be between 43 and 128 characters")
        challenge = _b64url(hashlib.sha256(verifier.encode()).digest())
        if not ac.challenge or challenge != ac.challenge:
            return _err("invalid_grant", "Invalid code")
        return None


def _num(v: float) -> int | float:
    return int(v) if float(v).is_integer() else v
