"""Building balancers from upstream config, and the consistent-hashing input of a request.

- make_balancer(): Kong's `algorithm` names -> the compiled balancers of fastgw._core.balancer.
- hash_input(): Kong's hash_on / hash_fallback rules (kong/runloop/balancer: get_value_to_hash):
  the primary source's value, else the fallback's, else None (the proxy then walks the ring in
  round-robin order: pick(xxh64 of a counter)). A missing or empty value counts as absent.
  Cookie hashing: when the cookie is absent, a new UUID is the hash input AND is returned so the
  proxy sets it on the response (`Set-Cookie: <name>=<uuid>; Path=<hash_on_cookie_path>`), as
  Kong does, making the client sticky from its next request on.
- The hash of the input is XXH64 (seed 0): hash_value(data), or `hashing.xxh64` from Cython.
- expand_target(): a configured target and its DNS Resolution -> one balancer entry per
  address, as Kong's balancer (kong/runloop/balancer/balancers.lua addAddress) does:
  * A/AAAA: every address gets the target's full weight (Kong's nodeWeight per address);
  * SRV: the record's weight (0 counts as 1, Kong's SRV_0_WEIGHT) and port (0: the target's);
    only the best priority (fastgw.dns.resolver); a record whose name resolves to n addresses
    shares its weight between them (Kong round-robins them inside one entry), so every
    SRV weight is scaled by the LCM of those n when that stays <= MAX_TARGET_WEIGHT, else
    divided and rounded (at least 1);
  * a target of weight 0 stays disabled whatever its records say;
  * entry names: "ip:port" for an IP target (unchanged), "ip:port@host:port" for a hostname
    target. A name depends only on the address and the target, so an address that stays
    across a re-resolution keeps its ring points and its health state, and two hostnames
    resolving to one address stay two entries (as in Kong).
"""
from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from fastgw._core.balancer import Balancer, HashRing, Latency, LeastConnections, RoundRobin, Target
from fastgw._core.hashing import xxh64

ALGORITHMS = ("round-robin", "consistent-hashing", "least-connections", "latency")
HASH_SOURCES = ("none", "consumer", "ip", "header", "cookie", "path", "query_arg", "uri_capture")
# Kong's default upstream.slots; the ring's density scales with it (see balancer.pxd)
DEFAULT_SLOTS = 10000
# Peak-EWMA time constant of the latency algorithm, seconds (Kong's ewma.lua: DECAY_TIME = 10)
DEFAULT_LATENCY_DECAY = 10.0
# Kong's targets.weight range (0-65535), also the compiled core's MAX_TARGET_WEIGHT
MAX_TARGET_WEIGHT = 65535


@dataclass(frozen=True)
class EntrySpec:
    """One balancer entry to build: connect to ip:port, send `hostname` as Host and SNI."""
    ip: str
    port: int
    weight: int
    hostname: str
    name: str


@dataclass
class TargetGroup:
    """A configured target and the balancer entries its addresses became (Kong's target
    with its `addresses`): what /upstreams/{u}/health lists."""
    target: str                  # Kong's target string, "host:port"
    id: str | None
    host: str
    port: int
    weight: int                  # the configured weight (Kong's nodeWeight)
    dns: str                     # "A", "AAAA", "SRV", or the lookup's failure
    entries: list[Any] = field(default_factory=list)   # fastgw._core.balancer.Target


# Longest entry name: the hash ring builds its point labels in a 290-byte buffer
# (balancer.pyx); "[v6]:port@" is at most 48 bytes, a hostname up to 253 (RFC 1035 2.3.4)
MAX_ENTRY_NAME = 280


def entry_name(ip: str, port: int, target: str | None = None) -> str:
    """"ip:port" ("[v6]:port"), plus "@target" for an address of a hostname target (a
    target too long for that is named by its XXH64 instead: still stable and unique)."""
    addr = f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
    if target is None:
        return addr
    name = f"{addr}@{target}"
    if len(name.encode()) > MAX_ENTRY_NAME:
        name = f"{addr}@{xxh64(target.encode()):016x}"
    return name


def expand_target(host: str, port: int, weight: int, target: str, resolution: Any,
                  use_srv_name: bool = False) -> list[EntrySpec]:
    """Entries for target `host:port` (string `target`) given its fastgw.dns Resolution
    (None or empty: no entries). The rules are in the module docstring."""
    if resolution is None or not resolution.addresses:
        return []
    is_ip = resolution.rtype in ("A", "AAAA") and len(resolution.addresses) == 1 and \
        resolution.addresses[0].ip == host
    addrs = resolution.addresses
    scale = 1
    if resolution.rtype == "SRV":
        lcm = 1
        for a in addrs:
            lcm = lcm * a.split // math.gcd(lcm, a.split)
        if max(max(a.weight or 1, 1) for a in addrs) * lcm <= MAX_TARGET_WEIGHT:
            scale = lcm
    merged: dict[tuple[str, int], list[Any]] = {}
    for a in addrs:
        p = a.port if a.port else port
        if resolution.rtype == "SRV":
            w = max(a.weight or 0, 1)  # Kong: SRV weight 0 -> 1
            w = w * scale // a.split if scale > 1 else max(1, round(w / a.split))
        else:
            w = weight
        if weight == 0:
            w = 0
        hostname = host if is_ip or not (use_srv_name and a.srv_name) else a.srv_name
        key = (a.ip, p)
        if key in merged:  # two SRV records, one address: one entry, their weights added
            merged[key][0] = min(merged[key][0] + w, MAX_TARGET_WEIGHT)
        else:
            merged[key] = [w, hostname]
    return [EntrySpec(ip, p, w, hostname, entry_name(ip, p, None if is_ip else target))
            for (ip, p), (w, hostname) in sorted(merged.items())]


class HashRequest(Protocol):
    """What hash_input() reads from a request (the proxy adapts its own request object)."""
    client_ip: str
    path: str
    consumer_id: str | None

    def get_header(self, name: str) -> str | None: ...
    def get_cookie(self, name: str) -> str | None: ...
    def get_query_arg(self, name: str) -> str | None: ...
    def get_uri_capture(self, name: str) -> str | None: ...


def make_balancer(algorithm: str, targets: Sequence[Target], slots: int = DEFAULT_SLOTS, *,
                  threshold: float = 0.0, latency_decay: float = DEFAULT_LATENCY_DECAY
                  ) -> Balancer:
    """A new balancer over `targets` (fresh Target objects: a Target belongs to one balancer).

    threshold: healthchecks.threshold (percent); slots: upstream.slots (consistent hashing).
    """
    if algorithm == "round-robin":
        return RoundRobin(targets, threshold=threshold)
    if algorithm == "consistent-hashing":
        return HashRing(targets, slots, threshold=threshold)
    if algorithm == "least-connections":
        return LeastConnections(targets, threshold=threshold)
    if algorithm == "latency":
        return Latency(targets, latency_decay, threshold=threshold)
    raise ValueError(f"unknown algorithm {algorithm!r}; expected one of: {', '.join(ALGORITHMS)}")


def _value(source: str, name: str | None, req: Any) -> str | None:
    if source == "ip":
        v = req.client_ip
    elif source == "consumer":
        v = req.consumer_id
    elif source == "header":
        v = req.get_header(name) if name else None
    elif source == "cookie":
        v = req.get_cookie(name) if name else None
    elif source == "path":
        v = req.path
    elif source == "query_arg":
        v = req.get_query_arg(name) if name else None
    elif source == "uri_capture":
        v = req.get_uri_capture(name) if name else None
    else:  # "none"
        return None
    return v if v else None  # "" is as good as absent: hashing it would pin every such client


def hash_input(spec: Any, req: Any) -> tuple[bytes | None, str | None]:
    """(bytes to hash or None, new cookie value to set or None) for a consistent-hashing
    upstream `spec` (any object with Kong's hash_* fields) and request `req` (HashRequest)."""
    on = getattr(spec, "hash_on", "none") or "none"
    if on == "none":
        return None, None
    fields = {
        "header": getattr(spec, "hash_on_header", None),
        "cookie": getattr(spec, "hash_on_cookie", None),
        "query_arg": getattr(spec, "hash_on_query_arg", None),
        "uri_capture": getattr(spec, "hash_on_uri_capture", None),
    }
    v = _value(on, fields.get(on), req)
    if v is not None:
        return v.encode("utf-8", "surrogateescape"), None
    if on == "cookie":
        return _new_cookie()
    fb = getattr(spec, "hash_fallback", "none") or "none"
    if fb == "none":
        return None, None
    fb_fields = {
        "header": getattr(spec, "hash_fallback_header", None),
        "cookie": getattr(spec, "hash_on_cookie", None),  # Kong: one cookie name for both
        "query_arg": getattr(spec, "hash_fallback_query_arg", None),
        "uri_capture": getattr(spec, "hash_fallback_uri_capture", None),
    }
    v = _value(fb, fb_fields.get(fb), req)
    if v is not None:
        return v.encode("utf-8", "surrogateescape"), None
    if fb == "cookie":
        return _new_cookie()
    return None, None


def _new_cookie() -> tuple[bytes, str]:
    value = str(uuid.uuid4())
    return value.encode("ascii"), value


def cookie_header(spec: Any, value: str) -> str:
    """The Set-Cookie value for a generated hash cookie: "<name>=<value>; Path=<path>"."""
    path = getattr(spec, "hash_on_cookie_path", None) or "/"
    return f"{spec.hash_on_cookie}={value}; Path={path}"


def request_hash(spec: Any, req: Any) -> tuple[bytes | None, str | None]:
    """The proxy core's per-request call (ServiceRT.hash_input): the bytes to hash and the
    Set-Cookie value to add to the response (a generated hash cookie), each or both None."""
    data, cookie = hash_input(spec, req)
    return data, (cookie_header(spec, cookie) if cookie is not None else None)


def hash_value(data: bytes) -> int:
    """The ring key of a hash input (XXH64, seed 0)."""
    return xxh64(data)
