"""session: keep a consumer authenticated with a session cookie (Kong kong/plugins/session,
``storage: cookie``).

access (PRIORITY 1900, before the auth plugins): a valid cookie authenticates the request as
its consumer and credential (a later auth plugin with ``anonymous`` then sees a credential and
does nothing); a logout request (method in ``logout_methods`` with the ``logout_query_arg``
query argument, or the ``logout_post_arg`` form/JSON field when ``read_body_for_logout``)
clears the cookie and answers 200. header_filter: when a credential authenticated the request
and no session holds that consumer and credential yet, a new session cookie is set.

Timeouts as lua-resty-session 4: ``absolute_timeout`` from creation, ``rolling_timeout`` from
the last renewal, ``idling_timeout`` from the last use (0 disables each). A session is
re-issued (renewed) once half of its rolling or idling time has passed, so an active user
never hits the idle limit. ``remember`` adds a persistent cookie (``remember_cookie_name``,
remember timeouts) that reopens the session after the browser dropped the session cookie.
"""

from __future__ import annotations

import base64
import logging
import secrets
from email.utils import formatdate
from types import SimpleNamespace
from typing import Any, ClassVar, Literal

import msgspec

from ._kong_schema import check_one_of
from ._session_cookie import MAX_COOKIE_BYTES, Session, derive_key
from ._util import body_kind, decode_body
from .base import Plugin, PluginEnv, Response, field_error

log = logging.getLogger("fastgw.plugins")

HEADER_NAMES = ("id", "audience", "subject", "timeout", "idling-timeout", "rolling-timeout", "absolute-timeout")
_READ_BODY_METHODS = frozenset(("DELETE", "PATCH", "POST", "PUT"))


def _random_secret() -> str:
    """Kong's default: 32 random bytes, base64 with '/', '+', '=' replaced (44 characters)."""
    s = base64.b64encode(secrets.token_bytes(32)).decode()
    return s.replace("/", str(secrets.randbelow(10))).replace("+", chr(65 + secrets.randbelow(26))).replace(
        "=", chr(97 + secrets.randbelow(26)))


class SessionConfig(msgspec.Struct, forbid_unknown_fields=True):
    secret: str = msgspec.field(default_factory=_random_secret)
    storage: str = "cookie"
    audience: str = "default"
    idling_timeout: float = 900
    rolling_timeout: float = 3600
    absolute_timeout: float = 86400
    stale_ttl: float = 10
    cookie_name: str = "session"
    cookie_path: str = "/"
    cookie_domain: str | None = None
    cookie_same_site: Literal["Strict", "Lax", "None", "Default"] = "Strict"
    cookie_http_only: bool = True
    cookie_secure: bool = True
    remember: bool = False
    remember_cookie_name: str = "remember"
    remember_rolling_timeout: float = 604800
    remember_absolute_timeout: float = 2592000
    response_headers: list[str] | None = None
    request_headers: list[str] | None = None
    read_body_for_logout: bool = False
    logout_methods: list[str] = msgspec.field(default_factory=lambda: ["POST", "DELETE"])
    logout_query_arg: str = "session_logout"
    logout_post_arg: str = "session_logout"
    hash_subject: bool = False
    store_metadata: bool = False
    # Kong's deprecated shorthands (lua-resty-session 3 names)
    cookie_lifetime: float | None = None
    cookie_idletime: float | None = None
    cookie_renew: float | None = None
    cookie_discard: float | None = None
    cookie_samesite: str | None = None
    cookie_httponly: bool | None = None
    cookie_persistent: bool | None = None

    def __post_init__(self) -> None:
        check_one_of("storage", self.storage, ("cookie", "kong"))
        if self.storage == "kong":
            raise field_error("storage", "storage 'kong' needs Kong's database, which fastgw (DB-less) does not "
                                         "have: use 'cookie'")
        if self.store_metadata:
            raise field_error("store_metadata", "session metadata is stored in Kong's database, which fastgw "
                                                "(DB-less) does not have")
        for field in ("response_headers", "request_headers"):
            for i, h in enumerate(getattr(self, field) or ()):
                check_one_of(f"{field}[{i}]", h, HEADER_NAMES)
        for i, m in enumerate(self.logout_methods):
            check_one_of(f"logout_methods[{i}]", m, ("GET", "POST", "DELETE"))
        if self.cookie_lifetime is not None:
            self.rolling_timeout = self.cookie_lifetime
        if self.cookie_idletime is not None:
            self.idling_timeout = self.cookie_idletime
        if self.cookie_discard is not None:
            self.stale_ttl = self.cookie_discard
        if self.cookie_samesite is not None:
            v = "Lax" if self.cookie_samesite == "off" else self.cookie_samesite
            check_one_of("cookie_samesite", v, ("Strict", "Lax", "None", "Default"))
            self.cookie_same_site = v  # type: ignore[assignment]
        if self.cookie_httponly is not None:
            self.cookie_http_only = self.cookie_httponly
        if self.cookie_persistent is not None:
            self.remember = self.cookie_persistent


class _State:
    __slots__ = ("session", "remembered", "renew")

    def __init__(self, session: Session | None, remembered: bool, renew: bool) -> None:
        self.session = session
        self.remembered = remembered
        self.renew = renew


class SessionPlugin(Plugin):
    name = "session"
    PRIORITY = 1900
    Config = SessionConfig
    no_consumer: ClassVar[bool] = True

    def __init__(self, config: SessionConfig, env: PluginEnv) -> None:
        super().__init__(config, env)
        self._aead = derive_key(config.secret, config.audience)
        self._vkey = ("session", id(self))
        self._cookie_attrs = self._attrs()
        self.needs_request_body = config.read_body_for_logout

    def _attrs(self) -> str:
        c = self.config
        parts = [f"Path={c.cookie_path}"]
        if c.cookie_domain:
            parts.append(f"Domain={c.cookie_domain}")
        if c.cookie_same_site != "Default":
            parts.append(f"SameSite={c.cookie_same_site}")
        if c.cookie_secure:
            parts.append("Secure")
        if c.cookie_http_only:
            parts.append("HttpOnly")
        return "; ".join(parts)

    # ----------------------------------------------------------------- cookies
    def _cookies(self, ctx: Any) -> dict[str, str]:
        out: dict[str, str] = {}
        for line in ctx.request.get_header_all("cookie"):
            for part in line.split(";"):
                name, sep, value = part.strip().partition("=")
                if sep and name not in out:
                    out[name] = value.strip().strip('"')
        return out

    def _valid(self, s: Session, now: float, remembered: bool) -> bool:
        c = self.config
        absolute = c.remember_absolute_timeout if remembered else c.absolute_timeout
        rolling = c.remember_rolling_timeout if remembered else c.rolling_timeout
        if absolute > 0 and now - s.created >= absolute:
            return False
        if rolling > 0 and now - s.renewed >= rolling:
            return False
        if not remembered and c.idling_timeout > 0 and now - s.seen >= c.idling_timeout:
            return False
        return True

    def _open(self, ctx: Any) -> tuple[Session | None, bool]:
        c = self.config
        jar = self._cookies(ctx)
        now = ctx.now
        v = jar.get(c.cookie_name)
        if v is not None:
            s = Session.open(self._aead, v, c.cookie_name)
            if s is not None and self._valid(s, now, False):
                return s, False
        if c.remember:
            v = jar.get(c.remember_cookie_name)
            if v is not None:
                s = Session.open(self._aead, v, c.remember_cookie_name)
                if s is not None and self._valid(s, now, True):
                    s.cookie_name = c.cookie_name
                    return s, True
        return None, False

    def _set_cookies(self, res: Any, s: Session, now: float) -> None:
        c = self.config
        s.cookie_name = c.cookie_name
        value = s.seal(self._aead)
        if len(value) + len(c.cookie_name) + 1 > MAX_COOKIE_BYTES:
            log.error("[session] session cookie would be %d bytes, over %d: not set", len(value), MAX_COOKIE_BYTES)
            return
        res.add_header("Set-Cookie", f"{c.cookie_name}={value}; {self._cookie_attrs}")
        if c.remember:
            s.cookie_name = c.remember_cookie_name
            rv = s.seal(self._aead)
            s.cookie_name = c.cookie_name
            ttl = int(c.remember_rolling_timeout)
            # resty-session's order: the attributes, then Expires and Max-Age
            res.add_header("Set-Cookie", f"{c.remember_cookie_name}={rv}; {self._cookie_attrs}; "
                                         f"Expires={formatdate(now + ttl, usegmt=True)}; Max-Age={ttl}")

    def _clear_cookies(self) -> list[tuple[str, str]]:
        c = self.config
        expired = "Expires=Thu, 01 Jan 1970 00:00:01 GMT; Max-Age=0"
        out = [("Set-Cookie", f"{c.cookie_name}=; {expired}; {self._cookie_attrs}")]
        if c.remember:
            out.append(("Set-Cookie", f"{c.remember_cookie_name}=; {expired}; {self._cookie_attrs}"))
        return out

    def _headers(self, s: Session, now: float, names: list[str] | None) -> list[tuple[str, str]]:
        c = self.config
        out = []
        for n in names or ():
            if n == "id":
                out.append(("Session-Id", s.id))
            elif n == "audience":
                out.append(("Session-Audience", c.audience))
            elif n == "subject" and s.subject:
                out.append(("Session-Subject", s.subject))
            elif n == "timeout":
                left = [t for t in (c.idling_timeout - (now - s.seen) if c.idling_timeout else None,
                                    c.rolling_timeout - (now - s.renewed) if c.rolling_timeout else None,
                                    c.absolute_timeout - (now - s.created) if c.absolute_timeout else None)
                        if t is not None]
                if left:
                    out.append(("Session-Timeout", str(int(max(0, min(left))))))
            elif n == "idling-timeout" and c.idling_timeout:
                out.append(("Session-Idling-Timeout", str(int(max(0, c.idling_timeout - (now - s.seen))))))
            elif n == "rolling-timeout" and c.rolling_timeout:
                out.append(("Session-Rolling-Timeout", str(int(max(0, c.rolling_timeout - (now - s.renewed))))))
            elif n == "absolute-timeout" and c.absolute_timeout:
                out.append(("Session-Absolute-Timeout", str(int(max(0, c.absolute_timeout - (now - s.created))))))
        return out

    # ------------------------------------------------------------------ phases
    def access(self, ctx: Any) -> Response | None:
        s, remembered = self._open(ctx)
        if s is None:
            return None
        if self._logout(ctx):
            return Response(200, b"", self._clear_cookies())
        consumer = self.env.find_consumer(str(s.data[0])) if s.data else None
        if consumer is None or str(getattr(consumer, "id", "")) != str(s.data[0]):
            # the consumer is gone: the session is destroyed (Kong logs it out)
            ctx.vars[self._vkey] = _State(None, False, False)
            return None
        c = self.config
        now = ctx.now
        renew = remembered or (c.rolling_timeout > 0 and now - s.renewed >= c.rolling_timeout / 2) or (
            c.idling_timeout > 0 and now - s.seen >= c.idling_timeout / 2)
        if renew:
            s.renewed = s.seen = now
        ctx.vars[self._vkey] = _State(s, remembered, renew)
        for n, v in self._headers(s, now, c.request_headers):
            ctx.request.set_header(n, v)
        credential_id = s.data[1] if len(s.data) > 1 else None
        groups = s.data[2] if len(s.data) > 2 else None
        if groups:
            ctx.request.set_header("X-Authenticated-Groups", ", ".join(map(str, groups)))
            ctx.vars["authenticated_groups"] = list(groups)
        cred = SimpleNamespace(id=credential_id, consumer_id=consumer.id) if credential_id else None
        ctx.authenticate(consumer, cred, str(credential_id) if credential_id else None)
        return None

    def _logout(self, ctx: Any) -> bool:
        c = self.config
        req = ctx.request
        method = req.method
        if method not in c.logout_methods:
            return False
        if c.logout_query_arg and c.logout_query_arg in req.query:
            return True
        if c.read_body_for_logout and c.logout_post_arg and method in _READ_BODY_METHODS:
            body = decode_body(body_kind(req.get_header("content-type")), req.get_body())
            if body and body.get(c.logout_post_arg):
                return True
        return False

    def header_filter(self, ctx: Any) -> None:
        v = ctx._vars
        st: _State | None = v.get(self._vkey) if v is not None else None
        res = ctx.response
        if st is not None and st.session is not None:
            for n, val in self._headers(st.session, ctx.now, self.config.response_headers):
                res.set_header(n, val)
        cred, consumer = ctx.credential, ctx.consumer
        if cred is None or consumer is None:
            return None
        cid = getattr(consumer, "id", None)
        cred_id = getattr(cred, "id", None)
        if st is not None and st.session is not None:
            data = st.session.data
            if len(data) > 1 and data[0] == cid and data[1] == cred_id:
                if st.renew:
                    self._set_cookies(res, st.session, ctx.now)
                return None
        if not cid:
            return None
        groups = (ctx._vars or {}).get("authenticated_groups")
        subject = getattr(consumer, "username", None) or getattr(consumer, "custom_id", None) or cid
        s = Session([cid, cred_id or cid, groups], subject, ctx.now, self.config.cookie_name)
        self._set_cookies(res, s, ctx.now)
        for n, val in self._headers(s, ctx.now, self.config.response_headers):
            res.set_header(n, val)
        return None
