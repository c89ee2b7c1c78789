"""Router match cost, in ns per Router.match() call from Python.

    .venv/bin/python bench/bench_router.py [--number N] [--repeat R]

Scenarios: 1 route (paths ["/"]), 100 prefix routes, 100 host routes, 20 regex routes, and a
mixed 300-route config. For each, requests matching the first- and the last-ranked candidate
are both timed (the last one is the worst case for a scan). The number printed is the
best of R runs (min is the least noisy statistic on a shared machine); each run is N calls.
"""
from __future__ import annotations

import argparse
import timeit

from fastgw._core.router import RouteSpec, Router


def scenarios():
    yield "1 route paths=['/']", [RouteSpec("root", paths=["/"])], [
        ("any path", b"GET", b"example.com", b"/api/v1/users"),
    ]

    prefix = [RouteSpec(f"p{i}", paths=[f"/service{i}/api"]) for i in range(100)]
    yield "100 prefix routes", prefix, [
        ("first-ranked", b"GET", b"example.com", b"/service10/api/x"),
        ("last-ranked", b"GET", b"example.com", b"/service9/api/x"),
        ("no match", b"GET", b"example.com", b"/nothing/here"),
    ]

    hosts = [RouteSpec(f"h{i}", hosts=[f"svc{i}.example.com"], paths=["/"]) for i in range(100)]
    yield "100 host routes", hosts, [
        ("exact host", b"GET", b"svc57.example.com", b"/x"),
        ("host:port", b"GET", b"svc57.example.com:8000", b"/x"),
        ("mixed case", b"GET", b"SVC57.Example.com", b"/x"),
        ("unknown host", b"GET", b"nope.example.com", b"/x"),
    ]

    regex = [RouteSpec(f"r{i}", paths=[rf"~/api/v{i}/users/(?<id>\d+)$"]) for i in range(20)]
    yield "20 regex routes", regex, [
        ("first regex", b"GET", b"example.com", b"/api/v0/users/42"),
        ("last regex", b"GET", b"example.com", b"/api/v19/users/42"),
        ("no match", b"GET", b"example.com", b"/api/v5/users/abc"),
    ]
    no_lead = [RouteSpec(f"r{i}", paths=[rf"~(/x)?/api/v{i}/users/(\d+)$"]) for i in range(20)]
    yield "20 regex routes without literal lead", no_lead, [
        ("last regex", b"GET", b"example.com", b"/api/v19/users/42"),
    ]

    mixed = (
        [RouteSpec(f"h{i}", hosts=[f"svc{i}.example.com"], methods=["GET", "POST"],
                   paths=[f"/v{i}"]) for i in range(100)]
        + [RouteSpec(f"w{i}", hosts=[f"*.tenant{i}.example.org"]) for i in range(50)]
        + [RouteSpec(f"p{i}", paths=[f"/service{i}/api"], strip_path=True, service_path="/up")
           for i in range(130)]
        + [RouteSpec(f"r{i}", paths=[rf"~/items/(?<n>\d+)/v{i}$"]) for i in range(20)]
    )
    yield "mixed 300 routes", mixed, [
        ("host+method+path", b"GET", b"svc42.example.com", b"/v42/x"),
        ("wildcard host", b"GET", b"a.tenant7.example.org", b"/x"),
        ("prefix + service path", b"GET", b"example.com", b"/service7/api/x"),
        ("regex + captures", b"GET", b"example.com", b"/items/5/v19"),
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--number", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    for title, routes, reqs in scenarios():
        router = Router(routes)
        print(title)
        for name, method, host, path in reqs:
            m = router.match(method, host, path, None)
            best = min(timeit.repeat(lambda: router.match(method, host, path, None),
                                     number=args.number, repeat=args.repeat))
            print(f"  {name:24s} {best / args.number * 1e9:8.0f} ns   -> "
                  f"{None if m is None else m.key}")


if __name__ == "__main__":
    main()
