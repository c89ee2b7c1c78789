"""CPU per request of a hostname target vs an IP target: DNS must cost nothing per request.

Two fastgw processes (1 worker each) balance over one nginx upstream on 127.0.0.1: one with
target "127.0.0.1:<port>", the other with target "upstream.bench:<port>", a name a DNS server
on loopback (dnslib, started here, TTL 2 s so it is re-resolved during the run) answers with
127.0.0.1. wrk drives them in alternating rounds; each round reads the gateway's own CPU time
(utime + stime from /proc/<pid>/stat) and divides by the requests wrk completed. The table
gives the median of the rounds, and the DNS queries the server received (re-resolutions
every TTL, never one per request).

    .venv/bin/python bench/bench_dns_target.py [--duration 3] [--rounds 4] [--connections 20]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))        # shared server helpers
sys.path.insert(0, str(HERE.parent / "tests" / "dns"))  # the loopback DNS server
sys.path.insert(0, str(HERE))

from dns_server import TestDNS  # noqa: E402
from run import run_wrk  # noqa: E402
from servers import FastgwProcess, NginxUpstream, find_binary  # noqa: E402

TTL = 2  # seconds: short, so the name is re-resolved while wrk runs


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def config(target: str) -> dict:
    return {"_format_version": "3.0",
            "upstreams": [{"name": "u", "targets": [{"target": target}]}],
            "services": [{"name": "s", "host": "u", "routes": [{"name": "r", "paths": ["/"]}]}]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, default=3.0)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--connections", type=int, default=20)
    args = p.parse_args(argv)
    if find_binary("wrk") is None or find_binary("nginx") is None:
        print("needs wrk and nginx (make sysdeps)", file=sys.stderr)
        return 2
    dns = TestDNS().start()
    dns.set_a("upstream.bench", ["127.0.0.1"], ttl=TTL)
    up = NginxUpstream(servers=1).start()
    rows = {"ip target": f"127.0.0.1:{up.port}", "hostname target": f"upstream.bench:{up.port}"}
    gws = {name: FastgwProcess(config(t), extra_args=[
        "--dns-resolver", dns.resolver, "--log-level", "warning"]).start()
        for name, t in rows.items()}
    results: dict[str, list[float]] = {n: [] for n in rows}
    rps: dict[str, list[float]] = {n: [] for n in rows}
    queries_before = dns.count("upstream.bench")
    t0 = time.monotonic()
    try:
        for name, gw in gws.items():   # warm-up: connections, caches, CPU frequency
            run_wrk(gw.url("/"), 2, args.connections, 1, [])
        order = list(gws.items())
        for r in range(args.rounds):
            # ABBA: neither row always runs first (the machine is shared: load drifts)
            for name, gw in (order if r % 2 == 0 else order[::-1]):
                assert gw.pid is not None
                c0 = cpu_seconds(gw.pid)
                res = run_wrk(gw.url("/"), args.duration, args.connections, 1, [])
                c1 = cpu_seconds(gw.pid)
                if res["errors"] or not res["requests"]:
                    raise RuntimeError(f"{name}: wrk saw errors: {res}")
                results[name].append((c1 - c0) / res["requests"] * 1e6)
                rps[name].append(res["rps"])
        queries = dns.count("upstream.bench") - queries_before
        elapsed = time.monotonic() - t0
    finally:
        for gw in gws.values():
            gw.stop()
        up.stop()
        dns.stop()
    print(f"{'row':<16} {'CPU us/request (median)':>24} {'requests/s':>12}   rounds")
    for name in rows:
        print(f"{name:<16} {statistics.median(results[name]):>24.2f} "
              f"{statistics.median(rps[name]):>12.0f}   "
              + " ".join(f"{x:.2f}" for x in results[name]))
    ratio = statistics.median(results["hostname target"]) / statistics.median(
        results["ip target"])
    print(f"hostname/ip CPU ratio: {ratio:.3f}; DNS queries for the name in {elapsed:.0f} s: "
          f"{queries} (one per {TTL} s TTL expiry; requests never query)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
