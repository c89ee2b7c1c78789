"""What operating features cost per request: gateway CPU time per request (user + sys of the
fastgw process, from /proc) while wrk drives it, for

  bare        --headers off --access-log off                    (the floor)
  headers     Kong's default headers (latency tokens, request id, Server/Via)
  combined    + the access log, combined format, to a file
  json        + the access log, JSON format, to a file
  tracer      json + a trace key installed (requests carry no X-Fastgw-Trace)

CPU per request is less sensitive to a busy machine than requests/s, but still noisy: rounds
alternate the modes and the median of each is printed with its ratio to `bare`.

    .venv/bin/python bench/ops_overhead.py [--duration 3] [--rounds 3]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))

from run import run_wrk  # noqa: E402
from servers import FastgwProcess, NginxUpstream  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK   # utime + stime


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=16)
    args = ap.parse_args()
    logdir = Path(tempfile.mkdtemp(prefix="fastgw-ops-bench-"))
    modes = {
        "bare": ["--headers", "off", "--access-log", "off"],
        "headers": ["--access-log", "off"],
        "combined": ["--access-log", str(logdir / "combined.log")],
        "json": ["--access-log", str(logdir / "json.log"), "--access-log-format", "json"],
        "tracer": ["--access-log", str(logdir / "tracer.log"), "--access-log-format", "json",
                   "--trace-key", "k"],
    }
    results: dict[str, list[float]] = {m: [] for m in modes}
    with NginxUpstream() as up:
        config = {"_format_version": "3.0", "services": [
            {"name": "s", "url": f"http://127.0.0.1:{up.ports[0]}",
             "routes": [{"name": "r", "paths": ["/"]}]}]}
        for rnd in range(args.rounds):
            for mode, extra in modes.items():
                with FastgwProcess(config, extra_args=extra) as gw:
                    url = f"http://127.0.0.1:{gw.port}/"
                    run_wrk(url, 1, args.connections, 1, [])          # warm-up
                    c0 = cpu_seconds(gw.pid)
                    res = run_wrk(url, args.duration, args.connections, 1, [])
                    c1 = cpu_seconds(gw.pid)
                    n = res["requests"]
                    results[mode].append((c1 - c0) / max(1, n) * 1e6)
                    print(f"round {rnd + 1} {mode:9s} {n:8d} requests "
                          f"{results[mode][-1]:7.2f} us CPU/request", flush=True)
                time.sleep(0.2)
    base = statistics.median(results["bare"])
    print("\nmode       median us CPU/request   vs bare")
    for mode, vals in results.items():
        med = statistics.median(vals)
        print(f"{mode:10s} {med:10.2f}              {med / base:6.3f}")


if __name__ == "__main__":
    main()
