"""Router match cost and build time against the number of routes (100 -> 100,000).

    .venv/bin/python bench/bench_router_scale.py [--sizes 100,1000,10000,100000]

Exact-host routes (a dict lookup on the host) and plain-prefix routes (binary search per
distinct prefix length over runs of one priority class) should cost the same at every size;
the table shows ns per Router.match() call from Python (best of --repeat runs of --number
calls) for a route early, in the middle and late in the table, and a miss, plus the time to
build the Router.
"""
from __future__ import annotations

import argparse
import time
import timeit

from fastgw._core.router import RouteSpec, Router


def cases(n: int):
    mid, last = n // 2, n - 1
    yield "prefix", [RouteSpec(f"p{i}", paths=[f"/service{i}/api"]) for i in range(n)], [
        ("first", b"example.com", b"/service0/api/x"),
        ("middle", b"example.com", f"/service{mid}/api/x".encode()),
        ("last", b"example.com", f"/service{last}/api/x".encode()),
        ("miss", b"example.com", b"/nothing/here"),
    ]
    yield "exact host", [RouteSpec(f"h{i}", hosts=[f"svc{i}.example.com"], paths=["/"])
                         for i in range(n)], [
        ("first", b"svc0.example.com", b"/x"),
        ("middle", f"svc{mid}.example.com".encode(), b"/x"),
        ("last", f"svc{last}.example.com:8000".encode(), b"/x"),
        ("miss", b"nope.example.com", b"/x"),
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100,1000,10000,100000")
    ap.add_argument("--number", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rows: dict[tuple[str, str], list[str]] = {}
    build: dict[str, list[str]] = {}
    for n in sizes:
        for kind, specs, reqs in cases(n):
            t = time.perf_counter()
            router = Router(specs)
            build.setdefault(kind, []).append(f"{(time.perf_counter() - t) * 1000:.1f} ms")
            for name, host, path in reqs:
                m = router.match(b"GET", host, path, None)
                assert (m is None) == (name == "miss"), (kind, name, n)
                best = min(timeit.repeat(lambda: router.match(b"GET", host, path, None),
                                         number=args.number, repeat=args.repeat))
                rows.setdefault((kind, name), []).append(f"{best / args.number * 1e9:.0f}")
    print("| routes | " + " | ".join(f"{n:,}" for n in sizes) + " |")
    print("|---" * (len(sizes) + 1) + "|")
    for (kind, name), cells in rows.items():
        print(f"| {kind}, {name} (ns/match) | " + " | ".join(cells) + " |")
    for kind, cells in build.items():
        print(f"| {kind}: Router() build | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
