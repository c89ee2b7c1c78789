"""Micro-benchmark of the compiled balancers (issue #4): ns per pick.

Rows: ring lookup (consistent hashing), smooth WRR pick, least-connections pick (and latency).
Columns, all measured in the same run:
  cython  - picks from a C loop compiled in the module (balancer._bench_pick; cpdef call, no
            Python frame), the cost the proxy pays when it cimports the balancer
  python  - picks called from a Python loop (includes the loop's own ~15-25 ns)
  ref     - the plain-Python reference implementation (tests/balancer/balancer_reference.py)
            in the same Python loop
Each cell is the median of --runs alternating runs. Targets (issue #4): <= 100 ns per pick from
Cython, <= 250 ns from Python.

Usage: .venv/bin/python bench/bench_balancer.py [--n 200000] [--runs 5]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "balancer"))

import xxhash  # noqa: E402
from balancer_reference import (RefLeastConnections, RefRing, RefRoundRobin,  # noqa: E402
                                RefTarget)

from fastgw._core.balancer import (HashRing, Latency, LeastConnections, RoundRobin,  # noqa: E402
                                   Target, _bench_pick)

CYTHON_TARGET_NS = 100
PYTHON_TARGET_NS = 250


def ns_per(fn: Callable[[], None], n: int) -> float:
    t0 = time.perf_counter_ns()
    fn()
    return (time.perf_counter_ns() - t0) / n


def bench_row(name: str, make: Callable[[], tuple], n: int, runs: int) -> dict:
    b, ref, py_loop, ref_loop, cy_kwargs = make()
    cy, py, rf = [], [], []
    for _ in range(runs):  # alternate the three so drift hits them alike
        cy.append(ns_per(lambda: _bench_pick(b, n, **cy_kwargs), n))
        py.append(ns_per(lambda: py_loop(b, n), n))
        rf.append(ns_per(lambda: ref_loop(ref, n), n))
    return {"name": name, "cython": statistics.median(cy), "python": statistics.median(py),
            "ref": statistics.median(rf)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200_000, help="picks per run")
    ap.add_argument("--runs", type=int, default=5, help="alternating runs (median is shown)")
    args = ap.parse_args()
    n = args.n
    hashes = [xxhash.xxh64_intdigest(i.to_bytes(8, "little")) for i in range(n)]

    def ring(count: int) -> Callable[[], tuple]:
        def make() -> tuple:
            spec = [(f"10.0.0.{i}", 8000 + i) for i in range(count)]
            b = HashRing([Target(h, p) for h, p in spec])
            ref = RefRing([RefTarget(f"{h}:{p}") for h, p in spec])

            def py_loop(b: HashRing, n: int) -> None:
                pick = b.pick
                for h in hashes:
                    pick(h)

            def ref_loop(r: RefRing, n: int) -> None:
                pick = r.pick
                for h in hashes:
                    pick(h)
            return b, ref, py_loop, ref_loop, {"vary_hash": True}
        return make

    def wrr(weights: list[int]) -> Callable[[], tuple]:
        def make() -> tuple:
            b = RoundRobin([Target(f"h{i}", 80, w) for i, w in enumerate(weights)])
            ref = RefRoundRobin([RefTarget(f"h{i}", w) for i, w in enumerate(weights)])

            def py_loop(b: RoundRobin, n: int) -> None:
                pick = b.pick
                for _ in range(n):
                    pick()

            def ref_loop(r: RefRoundRobin, n: int) -> None:
                pick = r.pick
                for _ in range(n):
                    pick()
            return b, ref, py_loop, ref_loop, {"vary_hash": False}
        return make

    def least(count: int, cls: type = LeastConnections) -> Callable[[], tuple]:
        def make() -> tuple:
            ts = [Target(f"h{i}", 80) for i in range(count)]
            b = cls(ts)
            for i, t in enumerate(ts):  # some load so comparisons are not all ties
                for _ in range(i % 3):
                    b.on_start(t)
            rts = [RefTarget(f"h{i}") for i in range(count)]
            for i, t in enumerate(rts):
                t.inflight = i % 3
            ref = RefLeastConnections(rts)

            def py_loop(b: LeastConnections, n: int) -> None:
                pick = b.pick
                for _ in range(n):
                    pick()

            def ref_loop(r: RefLeastConnections, n: int) -> None:
                pick = r.pick
                for _ in range(n):
                    pick()
            return b, ref, py_loop, ref_loop, {"vary_hash": False}
        return make

    rows = [
        bench_row("ring lookup, 3 targets (1200 points)", ring(3), n, args.runs),
        bench_row("ring lookup, 25 targets (10000 points)", ring(25), n, args.runs),
        bench_row("WRR pick, weights 5,1,1", wrr([5, 1, 1]), n, args.runs),
        bench_row("WRR pick, 10 targets", wrr([100] * 5 + [200] * 5), n, args.runs),
        bench_row("least-conn pick, 3 targets", least(3), n, args.runs),
        bench_row("least-conn pick, 10 targets", least(10), n, args.runs),
        bench_row("latency pick, 3 targets (ref: least-conn)", least(3, Latency), n,
                  args.runs),
    ]
    w = max(len(r["name"]) for r in rows)
    print(f"{'ns per pick (median of %d runs, %d picks each)' % (args.runs, n):<{w}}"
          f"  {'cython':>8}  {'python':>8}  {'py ref':>8}  {'ref/python':>10}")
    ok = True
    for r in rows:
        ok &= r["cython"] <= CYTHON_TARGET_NS and r["python"] <= PYTHON_TARGET_NS
        print(f"{r['name']:<{w}}  {r['cython']:8.1f}  {r['python']:8.1f}  {r['ref']:8.1f}"
              f"  {r['ref'] / r['python']:9.1f}x")
    print(f"targets: cython <= {CYTHON_TARGET_NS} ns, python <= {PYTHON_TARGET_NS} ns: "
          f"{'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
