"""Building balancers from upstream config, and the consistent-hashing input of a request.

- make_balancer(): Kong's `algorithm` names -> the compiled balancers of fastgw._core.balancer.
- hash_input(): Kong's hash_on / hash_fallback rules (kong/runloop/balancer: get_value_to_hash):
  the primary source's value, else the fallback's, else None (the proxy then walks the ring in
  round-robin order: pick(xxh64 of a counter)). A missing or empty value counts as absent.
  Cookie hashing: when the cookie is absent, a new UUID is the hash input AND is returned so the
  proxy sets it on the response (`Set-Cookie: <name>=<uuid>; Path=<hash_on_cookie_path>`), as
  Kong does, making the client sticky from its next request on.
- The hash of the input is XXH64 (seed 0): hash_value(data), or `hashing.xxh64` from Cython.
"""
from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Protocol

from fastgw._core.balancer import Balancer, HashRing, Latency, LeastConnections, RoundRobin, Target
from fastgw._core.hashing import xxh64

ALGORITHMS = ("round-robin", "consistent-hashing", "least-connections", "latency")
HASH_SOURCES = ("none", "consumer", "ip", "header", "cookie", "path", "query_arg", "uri_capture")
# Kong's default upstream.slots; the ring's density scales with it (see balancer.pxd)
DEFAULT_SLOTS = 10000
# Peak-EWMA time constant of the latency algorithm, seconds (Kong's ewma.lua: DECAY_TIME = 10)
DEFAULT_LATENCY_DECAY = 10.0


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
