"""The client address behind trusted proxies: nginx's realip module as Kong configures it
(`trusted_ips`, `real_ip_header`, `real_ip_recursive`).

- A peer outside trusted_ips is the client, whatever its headers say.
- A trusted peer's real_ip_header names the client: without recursion its last address; with
  recursion (X-Forwarded-For) the right-most address that is not itself trusted (all trusted:
  the left-most). A hop that is not an IP address ends the walk at the last believed address.

Used by plugins (Context.client_ip) and by the proxy for X-Real-IP and the access log's
client (`RealIP`, on ProxyCore.realip, consulted only for connections from trusted peers).
"""
from __future__ import annotations

import ipaddress
from typing import Any, Iterable, Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_ip(s: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(s)
    except ValueError:
        return None


def in_networks(addr: str, nets: Sequence[Network]) -> bool:
    ip = parse_ip(addr)
    if ip is None:
        return False
    if ip.version == 6 and ip.ipv4_mapped is not None:  # ::ffff:a.b.c.d from dual-stack sockets
        ip = ip.ipv4_mapped
    for n in nets:
        if ip.version == n.version and ip in n:
            return True
    return False


def real_client_ip(addr: str, nets: Sequence[Network], lines: Iterable[str],
                   recursive: bool) -> str:
    """The client address for a request from `addr` carrying the real-ip header `lines`."""
    if not nets or not in_networks(addr, nets):
        return addr
    hops = [h.strip() for line in lines for h in line.split(",")]
    hops = [h for h in hops if h]
    if not hops:
        return addr
    if not recursive:
        return hops[-1] if parse_ip(hops[-1]) is not None else addr
    for hop in reversed(hops):
        if parse_ip(hop) is None:
            return addr
        addr = hop
        if not in_networks(hop, nets):
            return hop
    return addr


class RealIP:
    """The proxy's view (ProxyCore.realip): `trusted(peer)` once per connection, `resolve()`
    per request from a trusted peer only."""

    def __init__(self, nets: Sequence[Network], header: str, recursive: bool) -> None:
        self.nets = tuple(nets)
        self.header = header.lower().encode("latin-1")
        self.recursive = recursive

    def trusted(self, peer: str) -> bool:
        return in_networks(peer, self.nets)

    def resolve(self, peer: str, headers: Any) -> bytes:
        lines = [v.decode("latin-1") for v in headers.get_all(self.header)]
        return real_client_ip(peer, self.nets, lines, self.recursive).encode("latin-1")
