"""Plain-Python reference balancers: the differential tests and bench/bench_balancer.py run the
same inputs through these and through fastgw._core.balancer.

They are written from the algorithms' descriptions (nginx's smooth WRR, a Ketama ring with
xxhash's own xxh64, weighted least-connections), not from the Cython code, and keep their state
in Python containers.
"""
from __future__ import annotations

import bisect
import math
from functools import reduce

import xxhash

RING_REFERENCE_WEIGHT = 2500  # a target of weight w gets round(w * slots / 2500) points


class RefTarget:
    def __init__(self, name: str, weight: int = 100) -> None:
        self.name = name
        self.weight = weight
        self.healthy = True
        self.inflight = 0


class RefRoundRobin:
    def __init__(self, targets: list[RefTarget]) -> None:
        self.targets = targets
        g = reduce(math.gcd, [t.weight for t in targets if t.weight > 0], 0) or 1
        self.weights = [t.weight // g for t in targets]
        self.current = [0] * len(targets)

    def pick(self, avoid: RefTarget | None = None) -> RefTarget | None:
        best = None
        total = 0
        for i, t in enumerate(self.targets):
            if not t.healthy or t.weight == 0 or t is avoid:
                continue
            self.current[i] += self.weights[i]
            total += self.weights[i]
            if best is None or self.current[i] > self.current[best]:
                best = i
        if best is None:
            if avoid is not None and avoid.healthy and avoid.weight > 0:
                return avoid
            return None
        self.current[best] -= total
        return self.targets[best]


def ring_points(name: str, weight: int, slots: int) -> int:
    if weight <= 0:
        return 0
    return max(1, (weight * slots + RING_REFERENCE_WEIGHT // 2) // RING_REFERENCE_WEIGHT)


class RefRing:
    def __init__(self, targets: list[RefTarget], slots: int = 10000) -> None:
        self.targets = targets
        pts = []
        for t in sorted(targets, key=lambda t: t.name):
            for i in range(ring_points(t.name, t.weight, slots)):
                pts.append((xxhash.xxh64_intdigest(f"{t.name}#{i}".encode()), t.name, t))
        pts.sort(key=lambda p: (p[0], p[1]))
        self.hashes = [p[0] for p in pts]
        self.owners = [p[2] for p in pts]

    def owner_of(self, h: int) -> RefTarget:
        i = bisect.bisect_left(self.hashes, h)
        return self.owners[i if i < len(self.hashes) else 0]

    def pick(self, h: int, avoid: RefTarget | None = None) -> RefTarget | None:
        n = len(self.hashes)
        i = bisect.bisect_left(self.hashes, h)
        for k in range(n):
            t = self.owners[(i + k) % n]
            if t.healthy and t.weight > 0 and t is not avoid:
                return t
        if avoid is not None and avoid.healthy and avoid.weight > 0:
            return avoid
        return None

    def arc_shares(self) -> dict[str, float]:
        """Fraction of the 2**64 key space each target owns (exact expected distribution)."""
        shares = {t.name: 0.0 for t in self.targets}
        n = len(self.hashes)
        prev = self.hashes[-1] - 2**64
        for i in range(n):
            shares[self.owners[i].name] += (self.hashes[i] - prev) / 2**64
            prev = self.hashes[i]
        return shares


class RefLeastConnections:
    def __init__(self, targets: list[RefTarget]) -> None:
        self.targets = targets
        self.cursor = 0

    def pick(self, avoid: RefTarget | None = None) -> RefTarget | None:
        n = len(self.targets)
        best = None
        for k in range(n):
            i = (self.cursor + k) % n
            t = self.targets[i]
            if not t.healthy or t.weight == 0 or t is avoid:
                continue
            if best is None or (t.inflight + 1) * self.targets[best].weight < \
                    (self.targets[best].inflight + 1) * t.weight:
                best = i
        if best is None:
            if avoid is not None and avoid.healthy and avoid.weight > 0:
                return avoid
            return None
        self.cursor = (best + 1) % n
        return self.targets[best]
