#!/usr/bin/env python3
"""Configuration at scale: N services, N routes, N key-auth consumers behind `fastgw run -c`.

    .venv/bin/python bench/scale.py [--n 1000 --n 10000] [--writes 40] [--workers 1]

Method:
- The file has N services (all to one loopback nginx upstream), one prefix route each
  (`/s<i>`), N consumers with one key-auth credential each, and global key-auth +
  rate-limiting (policy local, a limit the bench cannot reach). YAML by default (kong.yml).
- startup: from spawning `fastgw run -c FILE` until the proxy port accepts a connection;
  first request: from then until the first proxied 200.
- A probe thread sends one keep-alive request after another (1 ms apart) to a route that
  exists throughout; its latencies during `POST /config` (the same file plus one service) and
  during a stream of Admin API writes give the proxy p99 and the longest stall.
- Writes: POST /services, POST /services/x/routes, POST /consumers, POST /consumers/x/key-auth,
  repeated; each is timed (p50/p99). write-to-live: after a route write is answered, how long
  until the proxy routes its path (polled every 2 ms).
- RSS: VmRSS of the gateway (plus its workers) after loading and at the end.
- bytes/entity: tracemalloc in this process around loading + compiling N entities of one
  kind (a Config and its Snapshot held), minus the same without them, divided by N.
Every address is 127.0.0.1; every process started here is stopped on exit.
"""
from __future__ import annotations

import argparse
import gc
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO / "tests"))

from servers import NginxUpstream  # noqa: E402

HOST = "127.0.0.1"
PROBE_INTERVAL = 0.001   # seconds between probe requests
LIVE_POLL = 0.002        # seconds between write-to-live polls
LIVE_TIMEOUT = 10.0      # a route not live after this is reported as "never"
START_TIMEOUT = 600.0    # seconds fastgw may take to listen (100k entities on a busy machine)
GOALS = {
    "startup_s": "<= 2 s", "first_ms": "<= 50 ms", "post_config_s": "<= 2 s",
    "stall_config_ms": "<= 50 ms", "stall_writes_ms": "<= 50 ms",
    "write_p50_ms": "<= 20 ms", "live_ms": "<= 200 ms", "rss_mb": "<= 200 MB",
}


# ------------------------------------------------------------------------------ the file
def build_doc(n: int, upstream_port: int, extra: int = 0) -> dict[str, Any]:
    url = f"http://{HOST}:{upstream_port}"
    services = [{"name": f"s{i}", "url": url,
                 "routes": [{"name": f"r{i}", "paths": [f"/s{i}"]}]} for i in range(n + extra)]
    consumers = [{"username": f"c{i}", "keyauth_credentials": [{"key": f"k{i}"}]}
                 for i in range(n)]
    plugins = [{"name": "key-auth"},
               {"name": "rate-limiting", "config": {"minute": 1_000_000_000, "policy": "local"}}]
    return {"_format_version": "3.0", "services": services, "consumers": consumers,
            "plugins": plugins}


def dump_doc(doc: dict[str, Any], fmt: str) -> bytes:
    if fmt == "json":
        return json.dumps(doc).encode()
    import yaml

    return yaml.dump(doc, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper),
                     sort_keys=False).encode()


# ------------------------------------------------------------------------------ helpers
def wait_listening(port: int, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"fastgw exited with {proc.returncode}")
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.002)
    raise RuntimeError(f"fastgw did not listen on {port} within {timeout}s")


def rss_mb(pid: int) -> float:
    """VmRSS of pid and its children (workers), in MB."""
    pids = [pid]
    try:
        pids += [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        pass
    total = 0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def request(conn: http.client.HTTPConnection, method: str, path: str,
            body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    return resp.status, resp.read()


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


class Probe(threading.Thread):
    """Sequential keep-alive requests; latency of each, tagged with the current phase."""

    def __init__(self, port: int, path: str, key: str) -> None:
        super().__init__(daemon=True)
        self.port, self.path, self.key = port, path, key
        self.phase: str | None = None
        self.samples: dict[str, list[float]] = {}
        self.errors: dict[str, int] = {}
        self._done = threading.Event()

    def run(self) -> None:
        conn = http.client.HTTPConnection(HOST, self.port, timeout=30)
        while not self._done.is_set():
            phase = self.phase
            t0 = time.perf_counter()
            try:
                status, _ = request(conn, "GET", self.path, headers={"apikey": self.key})
                ok = status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection(HOST, self.port, timeout=30)
            dt = time.perf_counter() - t0
            if phase is not None:
                self.samples.setdefault(phase, []).append(dt * 1000)
                if not ok:
                    self.errors[phase] = self.errors.get(phase, 0) + 1
            time.sleep(PROBE_INTERVAL)
        conn.close()

    def stop(self) -> None:
        self._done.set()
        self.join(5)


# ------------------------------------------------------------------------------ one run
def run_one(n: int, args: argparse.Namespace, upstream_port: int) -> dict[str, Any]:
    out: dict[str, Any] = {"n": n}
    port, admin = args.port, args.port + 1
    with tempfile.TemporaryDirectory(prefix="fastgw-scale-") as tmp:
        path = Path(tmp) / f"kong.{args.format}"
        path.write_bytes(dump_doc(build_doc(n, upstream_port), args.format))
        posted = dump_doc(build_doc(n, upstream_port, extra=1), args.format)
        cmd = [sys.executable, "-m", "fastgw", "run", "-c", str(path),
               "--listen", f"{HOST}:{port}", "--admin-listen", f"{HOST}:{admin}",
               "--workers", str(args.workers), "--log-level", "error"]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(Path(tmp) / "log", "w"),
                                start_new_session=True)
        try:
            wait_listening(port, proc, START_TIMEOUT)
            t1 = time.perf_counter()
            out["startup_s"] = t1 - t0
            conn = http.client.HTTPConnection(HOST, port, timeout=60)
            status, body = request(conn, "GET", "/s0/x", headers={"apikey": "k0"})
            out["first_ms"] = (time.perf_counter() - t1) * 1000
            if status != 200:
                raise RuntimeError(f"first request: {status} {body[:200]!r}")
            wait_listening(admin, proc, START_TIMEOUT)
            out["rss_mb"] = rss_mb(proc.pid)

            probe = Probe(port, f"/s{n // 2}/probe", f"k{n // 3}")
            probe.start()
            time.sleep(0.3)
            adm = http.client.HTTPConnection(HOST, admin, timeout=600)
            probe.phase = "config"
            t = time.perf_counter()
            status, body = request(adm, "POST", "/config", posted,
                                   {"Content-Type": "application/json" if args.format == "json"
                                    else "text/yaml"})
            out["post_config_s"] = time.perf_counter() - t
            time.sleep(0.05)
            probe.phase = None
            if status != 201:
                raise RuntimeError(f"POST /config: {status} {body[:300]!r}")
            out.update(_stalls(probe, "config"))

            writes: list[float] = []
            live: list[float] = []
            live_conn = http.client.HTTPConnection(HOST, port, timeout=30)
            probe.phase = "writes"
            deadline = time.monotonic() + args.write_seconds
            i = 0
            while i < args.writes and time.monotonic() < deadline:
                name = f"w{i}"
                steps = [
                    ("/services", {"name": name, "url": f"http://{HOST}:{upstream_port}"}),
                    (f"/services/{name}/routes", {"name": name, "paths": [f"/{name}"]}),
                    ("/consumers", {"username": name}),
                    (f"/consumers/{name}/key-auth", {"key": f"key-{name}"}),
                ]
                for url, data in steps:
                    t = time.perf_counter()
                    status, body = request(adm, "POST", url, json.dumps(data).encode(),
                                           {"Content-Type": "application/json"})
                    done = time.perf_counter()
                    writes.append((done - t) * 1000)
                    if status != 201:
                        raise RuntimeError(f"POST {url}: {status} {body[:300]!r}")
                    if url.endswith("/routes"):
                        live.append(_wait_live(live_conn, f"/{name}/x", done))
                i += 1
            time.sleep(0.05)
            probe.phase = None
            probe.stop()
            out.update(_stalls(probe, "writes"))
            out["writes"] = len(writes)
            out["write_p50_ms"] = pct(writes, 0.5)
            out["write_p99_ms"] = pct(writes, 0.99)
            out["live_ms"] = max(live) if live else float("nan")
            out["rss_end_mb"] = rss_mb(proc.pid)
        except Exception:
            sys.stderr.write((Path(tmp) / "log").read_text()[-3000:])
            raise
        finally:
            try:
                os.killpg(proc.pid, 15)
                proc.wait(10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(proc.pid, 9)
    return out


def _stalls(probe: Probe, phase: str) -> dict[str, Any]:
    s = probe.samples.get(phase, [])
    return {f"p99_{phase}_ms": pct(s, 0.99), f"stall_{phase}_ms": max(s) if s else float("nan"),
            f"probes_{phase}": len(s), f"errors_{phase}": probe.errors.get(phase, 0)}


def _wait_live(conn: http.client.HTTPConnection, path: str, since: float) -> float:
    while True:
        status, _ = request(conn, "GET", path, headers={"apikey": "k0"})
        now = time.perf_counter()
        if status == 200:
            return (now - since) * 1000
        if now - since > LIVE_TIMEOUT:
            return float("inf")
        time.sleep(LIVE_POLL)


# ------------------------------------------------------------------------------ bytes/entity
def entity_bytes(n: int) -> dict[str, float]:
    """Bytes held per entity by a loaded Config plus its compiled Snapshot."""
    import asyncio
    import logging

    from fastgw._core.proxy import ProxyCore
    from fastgw.config.declarative import load_dict
    from fastgw.config.snapshot import Compiler

    logging.disable(logging.WARNING)
    loop = asyncio.new_event_loop()

    def held(doc: dict[str, Any]) -> int:
        gc.collect()
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        core = ProxyCore(loop, listen_port=0)
        cfg = load_dict(doc)
        snap = Compiler(core, active_health=False).compile(cfg)
        gc.collect()
        size = tracemalloc.get_traced_memory()[0] - base
        tracemalloc.stop()
        del snap, cfg, core
        return size

    url = f"http://{HOST}:9"
    auth = [{"name": "key-auth"},
            {"name": "rate-limiting", "config": {"minute": 1000, "policy": "local"}}]
    one = {"name": "s", "url": url, "routes": [{"name": "r", "paths": ["/r"]}]}

    def doc(services: list, consumers: list) -> dict[str, Any]:
        return {"_format_version": "3.0", "services": services, "consumers": consumers,
                "plugins": auth}

    held(doc([one], [{"username": "c"}]))  # warm-up: first-use imports and caches
    base = held(doc([one], [{"username": "c"}]))
    svc = held(doc([one] + [{"name": f"s{i}", "url": url} for i in range(n)],
                   [{"username": "c"}]))
    routes = held(doc([{**one, "routes": [{"name": f"r{i}", "paths": [f"/r{i}"]}
                                          for i in range(n)]}], [{"username": "c"}]))
    cons = held(doc([one], [{"username": f"c{i}"} for i in range(n)]))
    creds = held(doc([one], [{"username": f"c{i}", "keyauth_credentials": [{"key": f"k{i}"}]}
                             for i in range(n)]))
    loop.close()
    return {"service": (svc - base) / n, "route": (routes - base) / n,
            "consumer": (cons - base) / n, "credential": (creds - cons) / n}


# ------------------------------------------------------------------------------ report
ROWS = [
    ("`fastgw run -c` until listening", "startup_s", "{:.2f} s"),
    ("first proxied request after listening", "first_ms", "{:.0f} ms"),
    ("`POST /config` of that file (+1 service)", "post_config_s", "{:.2f} s"),
    ("proxy p99 during POST /config", "p99_config_ms", "{:.1f} ms"),
    ("longest proxy stall during POST /config", "stall_config_ms", "{:.1f} ms"),
    ("proxy p99 during Admin API writes", "p99_writes_ms", "{:.1f} ms"),
    ("longest proxy stall during Admin API writes", "stall_writes_ms", "{:.1f} ms"),
    ("one Admin API write p50", "write_p50_ms", "{:.1f} ms"),
    ("one Admin API write p99", "write_p99_ms", "{:.1f} ms"),
    ("new route live after its write (max)", "live_ms", "{:.1f} ms"),
    ("resident memory after load", "rss_mb", "{:.0f} MB"),
    ("resident memory at the end", "rss_end_mb", "{:.0f} MB"),
]


def report(results: list[dict[str, Any]], sizes: dict[str, float] | None) -> str:
    head = "| what | " + " | ".join(f"N={r['n']:,}" for r in results) + " | goal |"
    lines = [head, "|---" * (len(results) + 2) + "|"]
    for label, key, fmt in ROWS:
        cells = [fmt.format(r[key]) if key in r else "-" for r in results]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {GOALS.get(key, '')} |")
    lines.append("")
    lines.append("probe samples (config / writes), probe errors, writes: " + "; ".join(
        f"N={r['n']}: {r.get('probes_config')}/{r.get('probes_writes')}, "
        f"{r.get('errors_config')}/{r.get('errors_writes')}, {r.get('writes')}"
        for r in results))
    if sizes:
        lines.append("bytes per entity (Config + Snapshot, tracemalloc): " + ", ".join(
            f"{k} {v:,.0f}" for k, v in sizes.items()))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, action="append", help="entities per kind (repeatable)")
    ap.add_argument("--writes", type=int, default=40, help="write rounds (4 writes each)")
    ap.add_argument("--write-seconds", type=float, default=30.0, help="cap on the write stream")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--format", choices=("yaml", "json"), default="yaml")
    ap.add_argument("--port", type=int, default=28100, help="proxy port; admin is port+1")
    ap.add_argument("--sizes", type=int, default=10_000,
                    help="N for the bytes-per-entity measurement (0: skip)")
    args = ap.parse_args()
    ns = args.n or [1000, 10_000]
    results = []
    with NginxUpstream() as up:
        for n in ns:
            r = run_one(n, args, up.port)
            results.append(r)
            print(json.dumps(r), file=sys.stderr, flush=True)
    sizes = entity_bytes(args.sizes) if args.sizes else None
    print(f"fastgw bench/scale.py, --workers {args.workers}, {args.format} file, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    print(report(results, sizes))


if __name__ == "__main__":
    main()
