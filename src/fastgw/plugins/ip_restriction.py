"""ip-restriction: allow or deny client IPs and CIDR ranges, IPv4 and IPv6 (Kong).

The client IP is ``ctx.client_ip`` (X-Forwarded-For honoured only from trusted proxies).
Deny is checked first, then allow (Kong's order). Ranges are parsed once per snapshot; the
verdict per client address is memoised in a bounded dict so a returning client costs one lookup.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import msgspec

from .base import Plugin, PluginEnv, Response, field_error

# Verdicts remembered per plugin instance (addresses; ~100 bytes each -> ~1 MiB worst case).
VERDICT_CACHE_SIZE = 10_000

_Net = ipaddress.IPv4Network | ipaddress.IPv6Network


def _parse_list(values: list[str] | None, field: str) -> tuple[_Net, ...]:
    out = []
    for i, v in enumerate(values or ()):
        try:
            out.append(ipaddress.ip_network(v.strip(), strict=False))
        except ValueError:
            raise field_error(f"{field}[{i}]", f"invalid ip or cidr range: '{v}'") from None
    return tuple(out)


class IpRestrictionConfig(msgspec.Struct, forbid_unknown_fields=True):
    allow: list[str] | None = None
    deny: list[str] | None = None
    # Status and message of the rejection (Kong 3.x: 403 "IP address not allowed: <ip>").
    status: int | None = None
    message: str | None = None

    def __post_init__(self) -> None:
        if not self.allow and not self.deny:
            raise ValueError("at least one of these fields must be non-empty: 'config.allow', 'config.deny'")
        _parse_list(self.allow, "allow")
        _parse_list(self.deny, "deny")
        if self.status is not None and not 100 <= self.status <= 599:
            raise field_error("status", "value should be between 100 and 599")


def _match(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, nets: tuple[_Net, ...]) -> bool:
    for n in nets:
        if n.version == ip.version and ip in n:
            return True
    return False


class IpRestriction(Plugin):
    name = "ip-restriction"
    PRIORITY = 990
    Config = IpRestrictionConfig

    def __init__(self, config: IpRestrictionConfig, env: PluginEnv) -> None:
        super().__init__(config, env)
        self._allow = _parse_list(config.allow, "allow")
        self._deny = _parse_list(config.deny, "deny")
        self._status = config.status or 403
        self._message = config.message
        self._verdicts: dict[str, bool] = {}

    def _blocked(self, addr: str) -> bool:
        try:
            ip = ipaddress.ip_address(addr)
        except ValueError:
            return True  # not an IP (unix socket peer): Kong refuses to identify it
        if ip.version == 6 and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if self._deny and _match(ip, self._deny):
            return True
        if self._allow and not _match(ip, self._allow):
            return True
        return False

    def access(self, ctx: Any) -> Response | None:
        addr = ctx.client_ip
        blocked = self._verdicts.get(addr)
        if blocked is None:
            blocked = self._blocked(addr)
            if len(self._verdicts) >= VERDICT_CACHE_SIZE:
                del self._verdicts[next(iter(self._verdicts))]
            self._verdicts[addr] = blocked
        if blocked:
            # Kong's do_exit: the default message names the client address
            return Response.message(self._status, self._message or f"IP address not allowed: {addr}")
        return None
