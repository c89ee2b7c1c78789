"""Kong's upstream `healthchecks` object as msgspec Structs.

Field names, types, ranges and defaults are Kong 3.x's (kong/db/schema/entities/upstreams.lua,
Admin API "Upstream object"), so a kong.yml written for Kong loads unchanged and the Admin API
renders the same record. All checks are disabled by default, as in Kong: an `interval` of 0
turns active probing off, a counter of 0 turns that counter off.

One fastgw extension, documented here and in the README:
- `passive.unhealthy.cooldown` (seconds, default 10, 0 = Kong's behaviour): with passive checks
  only (no active probing of unhealthy targets), Kong leaves a target that tripped the circuit
  breaker out forever. fastgw lets ONE trial request through after `cooldown` seconds
  (half-open): a healthy response closes the circuit, a failure re-opens it for another
  `cooldown`.
"""
from __future__ import annotations

import re
from typing import Annotated, Literal, Union

import msgspec

# Kong: http_statuses elements are integers between 100 and 999.
HttpStatus = Annotated[int, msgspec.Meta(ge=100, le=999)]
# Kong's `seconds` typedef for timeout/interval: a number between 0 and 65535.
Seconds = Annotated[float, msgspec.Meta(ge=0, le=65535)]
# Kong stores the four counters of a target in one byte each (lua-resty-healthcheck packs them
# into a 32-bit shm value), hence 0-255; 0 disables that counter.
Counter = Annotated[int, msgspec.Meta(ge=0, le=255)]
# Kong's positive_int for active.concurrency.
Concurrency = Annotated[int, msgspec.Meta(ge=1, le=2**31)]
# healthchecks.threshold: a percentage of the upstream's total target weight.
Percent = Annotated[float, msgspec.Meta(ge=0, le=100)]
# Kong accepts grpc/grpcs too: passive checks treat them like http (statuses are classified);
# active gRPC probes (grpc.health.v1) are not implemented by fastgw and rejected with a clear error.
CheckType = Literal["tcp", "http", "https", "grpc", "grpcs"]

_HEADER_NAME_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")  # RFC 9110 token
_BAD_VALUE_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # RFC 9110 field-value: no CTLs but HTAB

ACTIVE_HEALTHY_STATUSES = [200, 302]
ACTIVE_UNHEALTHY_STATUSES = [429, 404, 500, 501, 502, 503, 504, 505]
PASSIVE_HEALTHY_STATUSES = [200, 201, 202, 203, 204, 205, 206, 207, 208, 226,
                            300, 301, 302, 303, 304, 305, 306, 307, 308]
PASSIVE_UNHEALTHY_STATUSES = [429, 500, 503]

_STRUCT = dict(forbid_unknown_fields=True, kw_only=True, frozen=True)


class ActiveHealthy(msgspec.Struct, **_STRUCT):
    """active.healthy: probing of targets currently healthy."""
    # seconds between probes of healthy targets; 0 = healthy targets are not probed
    interval: Seconds = 0
    # probe statuses that count as a success
    http_statuses: list[HttpStatus] = msgspec.field(
        default_factory=lambda: list(ACTIVE_HEALTHY_STATUSES))
    # successful probes that bring an unhealthy target back; 0 = never by probes
    successes: Counter = 0


class ActiveUnhealthy(msgspec.Struct, **_STRUCT):
    """active.unhealthy: probing of targets currently unhealthy."""
    # seconds between probes of unhealthy targets; 0 = unhealthy targets are not probed
    interval: Seconds = 0
    # probe statuses that count as an HTTP failure
    http_statuses: list[HttpStatus] = msgspec.field(
        default_factory=lambda: list(ACTIVE_UNHEALTHY_STATUSES))
    tcp_failures: Counter = 0   # failed connects/sends/reads that make a target unhealthy
    timeouts: Counter = 0       # probe timeouts that make a target unhealthy
    http_failures: Counter = 0  # probes answered with an unhealthy status


class Active(msgspec.Struct, **_STRUCT):
    """healthchecks.active: probes sent by the gateway (asyncio tasks, off the request path)."""
    type: CheckType = "http"
    timeout: Seconds = 1          # seconds for a whole probe (connect + request + status line)
    concurrency: Concurrency = 10  # probes running at once per upstream
    http_path: str = "/"
    https_sni: Union[str, None] = None
    https_verify_certificate: bool = True
    # extra probe request headers: {"name": ["value", ...]} (Kong's typedefs.headers)
    headers: Union[dict[str, list[str]], None] = None
    healthy: ActiveHealthy = msgspec.field(default_factory=ActiveHealthy)
    unhealthy: ActiveUnhealthy = msgspec.field(default_factory=ActiveUnhealthy)

    def __post_init__(self) -> None:
        if self.type in ("grpc", "grpcs"):
            raise ValueError(f"active.type: {self.type!r} probes are not supported by fastgw; "
                             "use 'http', 'https' or 'tcp'")
        if not self.http_path.startswith("/"):
            raise ValueError(f"active.http_path: should start with: / (got {self.http_path!r})")
        if any(c in self.http_path for c in " \r\n\t\x00"):
            raise ValueError("active.http_path: must not contain whitespace or control characters")
        for name, values in (self.headers or {}).items():
            if not _HEADER_NAME_RE.match(name):
                raise ValueError(f"active.headers: invalid header name {name!r}")
            if name.lower() in ("host", "content-length", "transfer-encoding", "connection"):
                raise ValueError(f"active.headers: {name!r} is set by the health checker")
            for v in values:
                if _BAD_VALUE_RE.search(v):
                    raise ValueError(f"active.headers.{name}: invalid characters in value")


class PassiveHealthy(msgspec.Struct, **_STRUCT):
    """passive.healthy: what counts as success in proxied traffic."""
    http_statuses: list[HttpStatus] = msgspec.field(
        default_factory=lambda: list(PASSIVE_HEALTHY_STATUSES))
    successes: Counter = 0  # successes in traffic that bring a target back; 0 = never


class PassiveUnhealthy(msgspec.Struct, **_STRUCT):
    """passive.unhealthy: the circuit breaker on proxied traffic."""
    http_statuses: list[HttpStatus] = msgspec.field(
        default_factory=lambda: list(PASSIVE_UNHEALTHY_STATUSES))
    tcp_failures: Counter = 0   # 0 = circuit breaker off for connection failures
    timeouts: Counter = 0       # 0 = circuit breaker off for timeouts
    http_failures: Counter = 0  # 0 = circuit breaker off for unhealthy statuses
    # fastgw extension (Kong has none): seconds before a passively tripped target gets one
    # trial request (half-open) when no active probe would bring it back; 0 = never (Kong).
    cooldown: Seconds = 10


class Passive(msgspec.Struct, **_STRUCT):
    """healthchecks.passive: counters fed by real traffic (the proxy's reports)."""
    # "tcp": only connection failures and timeouts count; HTTP statuses are not classified
    type: CheckType = "http"
    healthy: PassiveHealthy = msgspec.field(default_factory=PassiveHealthy)
    unhealthy: PassiveUnhealthy = msgspec.field(default_factory=PassiveUnhealthy)


class Healthchecks(msgspec.Struct, **_STRUCT):
    """upstream.healthchecks (Kong): active probes, passive circuit breaker, threshold."""
    active: Active = msgspec.field(default_factory=Active)
    passive: Passive = msgspec.field(default_factory=Passive)
    # at or below this percentage of healthy target weight the upstream is down (503)
    threshold: Percent = 0

    @property
    def active_enabled(self) -> bool:
        """Kong: active checks run when either interval is non-zero."""
        return self.active.healthy.interval > 0 or self.active.unhealthy.interval > 0

    @property
    def passive_enabled(self) -> bool:
        """Kong: the circuit breaker is on when any passive failure counter is non-zero."""
        u = self.passive.unhealthy
        return u.tcp_failures > 0 or u.timeouts > 0 or u.http_failures > 0

    @property
    def enabled(self) -> bool:
        """Kong's is_upstream_using_healthcheck: otherwise targets report HEALTHCHECKS_OFF."""
        return self.active_enabled or self.passive_enabled


def parse_healthchecks(data: object) -> Healthchecks:
    """Build a Healthchecks from plain data (dict from YAML/JSON); raises msgspec.ValidationError
    whose message names the path, e.g.
    "Expected `int` <= 255 - at `$.passive.unhealthy.timeouts`"."""
    return msgspec.convert(data if data is not None else {}, Healthchecks)
