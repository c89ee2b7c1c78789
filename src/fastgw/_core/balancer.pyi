"""Type stubs for fastgw._core.balancer (see balancer.pxd for the rules)."""
from collections.abc import Iterable
from typing import Any, ClassVar

TS_DOWN: int
TS_UP: int
TS_TRIAL: int

class Target:
    host: str  # readonly
    port: int  # readonly
    weight: int  # readonly
    name: str  # readonly, "host:port" ("[v6]:port")
    id: str | None  # readonly
    pool: Any  # the proxy's connection pool
    health: Any  # fastgw.health.TargetHealth
    healthy: bool  # readonly
    trial: bool  # readonly: half-open, one trial request available
    inflight: int  # readonly
    index: int  # readonly: position in its balancer, -1 before one owns it
    owner: Balancer | None  # readonly: the balancer it belongs to
    def __init__(self, host: str, port: int, weight: int = 100, id: str | None = None,
                 name: str | None = None) -> None: ...

class Balancer:
    algorithm: ClassVar[str | None]
    targets: list[Target]  # readonly
    threshold: float  # readonly, percent
    total_weight: int  # readonly
    available_weight: int  # readonly
    def __init__(self, targets: Iterable[Target], *, threshold: float = 0.0) -> None: ...
    def __len__(self) -> int: ...
    def get(self, name: str) -> Target | None: ...
    def pick(self, hash_value: int = 0, avoid: Target | None = None) -> Target | None: ...
    def on_start(self, t: Target) -> None: ...
    def on_finish(self, t: Target, latency_ms: float, now: float) -> None: ...
    def set_healthy(self, t: Target, healthy: bool) -> None: ...
    def allow_trial(self, t: Target) -> None: ...
    def is_up(self) -> bool: ...

class RoundRobin(Balancer):
    reduced_weights: list[int]  # readonly

class HashRing(Balancer):
    slots: int  # readonly
    npoints: int  # readonly
    def __init__(self, targets: Iterable[Target], slots: int = 10000, *, threshold: float = 0.0) -> None: ...
    def owner_of(self, hash_value: int) -> Target | None: ...
    def point_counts(self) -> dict[str, int]: ...

class LeastConnections(Balancer): ...

class Latency(Balancer):
    decay: float  # readonly, seconds
    def __init__(self, targets: Iterable[Target], decay: float = 10.0, *, threshold: float = 0.0) -> None: ...
    def ewma(self, t: Target) -> float: ...

def _bench_pick(b: Balancer, n: int, vary_hash: bool = True, start_finish: bool = False) -> int: ...
