"""Per-worker traffic counters for the dashboard (see traffic.pyx)."""
from typing import Any, Iterable

BUCKET_BOUNDS_MS: tuple[float, ...]

class TrafficStats:
    total: int
    latency_sum_ms: float
    def add(self, status: int, total_ms: float = -1.0) -> None: ...
    def snapshot(self) -> dict[str, Any]: ...

def merge(snapshots: Iterable[dict[str, Any]]) -> dict[str, Any]: ...
