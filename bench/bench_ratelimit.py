"""Micro-benchmark of the shared-memory rate-limit table (fastgw._core.ratelimit).

Rows (median of --repeat runs, ns per hit):
  python  same key      SharedCounters.hit() called from a Python loop
  python  sliding       hit_sliding() from Python
  cython  same key      hit_loop(): the same calls from C (what the Cython proxy would pay)
  cython  distinct keys every hit a new key (probe + claim of a fresh slot)
  fork x2 same key      2 processes hammering ONE key concurrently (CAS contention on one
                        cache line), wall time / total hits; exactness checked
  baseline Context()    creating the per-request Context (subtract it from the next row)
  plugin  access()      Context + chain.run_access with the rate-limiting plugin (one minute
                        limit by IP, headers computed)

Usage: .venv/bin/python bench/bench_ratelimit.py [--n 1000000] [--repeat 5]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from types import SimpleNamespace

from fastgw._core.ratelimit import SharedCounters, hit_loop

BIG = 10**12


def per_hit(fn, n: int, repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter_ns()
        fn(n)
        runs.append((time.perf_counter_ns() - t0) / n)
    return statistics.median(runs)


def py_same(n: int) -> None:
    t = SharedCounters(1024)
    hit = t.hit
    for _ in range(n):
        hit(1, 0, 0, 1000, BIG)


def py_sliding(n: int) -> None:
    t = SharedCounters(1024)
    hit = t.hit_sliding
    for _ in range(n):
        hit(1, 500, 1000, BIG)


def cy_same(n: int) -> None:
    hit_loop(SharedCounters(1024), 1, n, 0, 0, 1000, BIG)


def cy_distinct(n: int) -> None:
    t = SharedCounters(max(1024, n * 2))
    hit_loop(t, 1 << 40, n, 0, 0, 1000, BIG, True)


def fork2(n: int) -> None:
    """Both children start together (a pipe as a barrier) and hit the same key."""
    t = SharedCounters(1024)
    limit = n  # 2n tries: exactly n must be allowed
    go_r, go_w = os.pipe()
    res_r, res_w = os.pipe()
    pids = []
    for _ in range(2):
        pid = os.fork()
        if pid == 0:
            try:
                os.read(go_r, 1)
                allowed = hit_loop(t, 7, n, 0, 0, 1000, limit)
                os.write(res_w, f"{allowed}\n".encode())
            finally:
                os._exit(0)
        pids.append(pid)
    os.close(res_w)
    os.write(go_w, b"xx")
    data = b""
    while chunk := os.read(res_r, 64):
        data += chunk
    for pid in pids:
        os.waitpid(pid, 0)
    for fd in (go_r, go_w, res_r):
        os.close(fd)
    total = sum(int(x) for x in data.split())
    assert total == limit, f"exactness broken: {total} allowed for limit {limit}"


def context_only(n: int) -> None:
    """Baseline for the row below: creating the per-request Context alone."""
    from fastgw.plugins import Context, ListHeaders, PluginEnv

    env = PluginEnv()
    route, service = SimpleNamespace(id="r"), SimpleNamespace(id="s")
    headers = ListHeaders([])
    for _ in range(n):
        Context(b"GET", b"/", headers, "10.0.0.1", "http", route, service, 1_700_000_000.0, env)


def plugin_access(n: int) -> None:
    from fastgw.plugins import Context, ListHeaders, PluginEnv, build_chains
    from fastgw.plugins import rate_limiting as rl

    rl.init_shared(1024)
    env = PluginEnv()
    chain = build_chains([{"name": "rate-limiting", "config": {"minute": 4_000_000_000, "limit_by": "ip"}}], env)
    ch = chain.for_route("r", "s")
    route, service = SimpleNamespace(id="r"), SimpleNamespace(id="s")
    headers = ListHeaders([])
    for _ in range(n):
        ctx = Context(b"GET", b"/", headers, "10.0.0.1", "http", route, service, 1_700_000_000.0, env)
        ch.run_access(ctx)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    rows = [
        ("python  same key", py_same, a.n),
        ("python  sliding", py_sliding, a.n),
        ("cython  same key", cy_same, a.n),
        ("cython  distinct keys", cy_distinct, min(a.n, 200_000)),
        ("fork x2 same key (wall/total)", lambda n: fork2(n), a.n),
        ("baseline Context() only", context_only, min(a.n, 100_000)),
        ("plugin  access() incl. Context", plugin_access, min(a.n, 100_000)),
    ]
    print(f"{'case':34s} {'ns/hit':>8s}")
    for name, fn, n in rows:
        ns = per_hit(fn, n, a.repeat)
        if name.startswith("fork"):
            ns /= 2  # n hits in each of 2 processes
        print(f"{name:34s} {ns:8.1f}")


if __name__ == "__main__":
    main()
