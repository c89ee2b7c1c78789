"""oauth2's tokens and authorization codes (Kong's oauth2_tokens and
oauth2_authorization_codes, which Kong keeps in its database with a TTL).

fastgw is DB-less: they live in this process's memory, survive config reloads (they refer to
their credential by id; a token of a deleted credential no longer authenticates) and expire
like Kong's rows (codes after 300 s, tokens after ``refresh_token_ttl`` when they expire at all).
"""

from __future__ import annotations

import secrets
import string
from collections import OrderedDict
from typing import Any

# Kong's authorization codes live 300 s (access.lua: ttl = 300).
CODE_TTL = 300
# Tokens and codes held at most; past it the oldest go first (a bound like a table of Kong's
# database would not need; chosen as 1M rows of ~300 bytes, about 300 MB).
MAX_ENTRIES = 1_000_000
_ALPHABET = string.ascii_letters + string.digits


def random_string() -> str:
    """kong.tools.rand.random_string: 32 alphanumeric characters."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(32))


class Token:
    __slots__ = ("id", "access_token", "refresh_token", "credential_id", "service_id", "authenticated_userid",
                 "scope", "expires_in", "created_at", "ttl_until")

    def __init__(self, credential_id: str, service_id: str | None, authenticated_userid: str | None,
                 scope: str | None, expires_in: float, refresh_token: str | None, now: float,
                 ttl: float | None) -> None:
        self.id = random_string()
        self.access_token = random_string()
        self.refresh_token = refresh_token
        self.credential_id = credential_id
        self.service_id = service_id
        self.authenticated_userid = authenticated_userid
        self.scope = scope
        self.expires_in = expires_in
        self.created_at = now
        self.ttl_until = now + ttl if ttl else None


class Code:
    __slots__ = ("code", "credential_id", "service_id", "authenticated_userid", "scope", "challenge",
                 "challenge_method", "plugin", "ttl_until")

    def __init__(self, credential_id: str, service_id: str | None, authenticated_userid: str | None,
                 scope: str | None, challenge: str | None, challenge_method: str | None, plugin: Any,
                 now: float) -> None:
        self.code = random_string()
        self.credential_id = credential_id
        self.service_id = service_id
        self.authenticated_userid = authenticated_userid
        self.scope = scope
        self.challenge = challenge
        self.challenge_method = challenge_method
        self.plugin = plugin
        self.ttl_until = now + CODE_TTL


class Store:
    def __init__(self) -> None:
        self.by_access: OrderedDict[str, Token] = OrderedDict()
        self.by_refresh: dict[str, Token] = {}
        self.codes: OrderedDict[str, Code] = OrderedDict()

    def add_token(self, t: Token) -> None:
        self.by_access[t.access_token] = t
        if t.refresh_token:
            self.by_refresh[t.refresh_token] = t
        while len(self.by_access) > MAX_ENTRIES:
            _, old = self.by_access.popitem(last=False)
            if old.refresh_token:
                self.by_refresh.pop(old.refresh_token, None)

    def token(self, access_token: str, now: float) -> Token | None:
        t = self.by_access.get(access_token)
        if t is not None and t.ttl_until is not None and now >= t.ttl_until:
            self.delete_token(t)
            return None
        return t

    def refresh(self, refresh_token: str, now: float) -> Token | None:
        t = self.by_refresh.get(refresh_token)
        if t is not None and t.ttl_until is not None and now >= t.ttl_until:
            self.delete_token(t)
            return None
        return t

    def renew_access(self, t: Token, now: float, expires_in: float, ttl: float | None) -> None:
        """reuse_refresh_token: the same row gets a new access token (Kong's update)."""
        self.by_access.pop(t.access_token, None)
        t.access_token = random_string()
        t.expires_in = expires_in
        t.created_at = now
        t.ttl_until = now + ttl if ttl else None
        self.by_access[t.access_token] = t

    def delete_token(self, t: Token) -> None:
        self.by_access.pop(t.access_token, None)
        if t.refresh_token:
            self.by_refresh.pop(t.refresh_token, None)

    def add_code(self, c: Code) -> None:
        self.codes[c.code] = c
        while len(self.codes) > MAX_ENTRIES:
            self.codes.popitem(last=False)

    def code(self, code: str, now: float) -> Code | None:
        c = self.codes.get(code)
        if c is not None and now >= c.ttl_until:
            del self.codes[code]
            return None
        return c

    def delete_code(self, c: Code) -> None:
        self.codes.pop(c.code, None)


STORE = Store()
