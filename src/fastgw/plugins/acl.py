"""acl: allow or deny consumers by their ACL groups (Kong).

Groups per consumer are indexed once per snapshot from the ``acl`` credentials; a request costs
one dict lookup and a set intersection.
"""

from __future__ import annotations

from typing import Any

import msgspec

from .base import Plugin, PluginEnv, Response

FORBIDDEN = "You cannot consume this service"


class AclConfig(msgspec.Struct, forbid_unknown_fields=True):
    # Exactly one of allow/deny must be set (Kong's only_one_of + at_least_one_of).
    allow: list[str] | None = None
    deny: list[str] | None = None
    # Do not send X-Consumer-Groups upstream (default False: send it).
    hide_groups_header: bool = False
    # Use the groups set by an authentication plugin (ctx.vars["authenticated_groups"]) even
    # when a consumer is known (Kong's always_use_authenticated_groups, default False).
    always_use_authenticated_groups: bool = False

    def __post_init__(self) -> None:
        if self.allow is not None and self.deny is not None:
            raise ValueError("only one of these fields must be non-empty: 'config.allow', 'config.deny'")
        if not self.allow and not self.deny:
            raise ValueError("at least one of these fields must be non-empty: 'config.allow', 'config.deny'")


class Acl(Plugin):
    name = "acl"
    PRIORITY = 950
    Config = AclConfig

    def __init__(self, config: AclConfig, env: PluginEnv) -> None:
        super().__init__(config, env)
        groups: dict[str, list[str]] = {}
        for consumer, cred in env.credentials_for("acl"):
            group = getattr(cred, "group", None)
            cid = getattr(consumer, "id", None) if consumer is not None else None
            if group and cid:
                lst = groups.setdefault(str(cid), [])
                if group not in lst:
                    lst.append(str(group))
        self._groups = {cid: (tuple(g), frozenset(g)) for cid, g in groups.items()}
        self._allow = frozenset(config.allow or ())
        self._deny = frozenset(config.deny or ())

    def access(self, ctx: Any) -> Response | None:
        conf = self.config
        consumer = ctx.consumer
        names: tuple[str, ...]
        auth_groups = ctx._vars.get("authenticated_groups") if ctx._vars else None
        if consumer is None or (conf.always_use_authenticated_groups and auth_groups):
            if not auth_groups:
                if ctx.credential is not None:
                    return Response.message(403, FORBIDDEN)
                return Response.message(401, "Unauthorized")
            names = tuple(auth_groups)
            group_set = frozenset(names)
        else:
            names, group_set = self._groups.get(str(getattr(consumer, "id", "")), ((), frozenset()))
        if self._deny:
            blocked = not self._deny.isdisjoint(group_set)
        else:
            blocked = self._allow.isdisjoint(group_set)
        if blocked:
            return Response.message(403, FORBIDDEN)
        if conf.hide_groups_header or not names:
            ctx.request.clear_header(b"x-consumer-groups")
        else:
            ctx.request.set_header(b"x-consumer-groups", ", ".join(names))
        return None
