"""Overhead of an in-process ASGI target: the same ASGI app served by uvicorn vs reached
through fastgw (target "asgi:hello", no socket hop), requests/s side by side.

Each server is one process on uvloop (uvicorn with httptools); wrk (1 thread, keep-alive)
drives them in alternating rounds and the table gives the median of the rounds. Without wrk
a bounded Python client (asyncio streams, keep-alive) is used instead; its numbers are lower
and only comparable with each other. Bounded in time: rounds x duration x 2 rows (+ warmup).

    .venv/bin/python bench/bench_inprocess.py [--duration 5] [--rounds 3] [--connections 50]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BODY = b"Hello, world!"


# -- the ASGI app under test (uvicorn imports it as bench_inprocess:app) ------------------------
async def app(scope, receive, send):
    if scope["type"] != "http":
        return   # lifespan: nothing to set up
    await receive()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"),
                            (b"content-length", b"%d" % len(BODY))]})
    await send({"type": "http.response.body", "body": BODY})


def serve_fastgw(port: int) -> None:
    import uvloop

    from fastgw import Gateway

    config = {"_format_version": "3.0",
              "upstreams": [{"name": "u", "targets": [{"target": "asgi:hello"}]}],
              "services": [{"name": "s", "host": "u", "routes": [{"paths": ["/"]}]}]}

    async def main() -> None:
        gw = Gateway(config, handlers={"asgi:hello": app}, active_health=False)
        await gw.start(("127.0.0.1", port))
        await asyncio.Event().wait()

    logging_quiet()
    uvloop.run(main())


def logging_quiet() -> None:
    import logging

    logging.basicConfig(level=logging.WARNING)


# -- harness ---------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port: int, proc: subprocess.Popen, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if s.recv(100).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server on {port} not ready after {timeout}s")


def start(row: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    py = sys.executable
    if row == "uvicorn":
        cmd = [py, "-m", "uvicorn", "bench_inprocess:app", "--app-dir", str(HERE),
               "--host", "127.0.0.1", "--port", str(port), "--loop", "uvloop",
               "--http", "httptools", "--no-access-log", "--log-level", "warning",
               "--lifespan", "off"]
    else:
        cmd = [py, str(Path(__file__).resolve()), "--serve-fastgw", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_ready(port, proc)
    return proc, port


def run_wrk(port: int, duration: float, connections: int) -> float:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{max(1, int(duration))}s",
         f"http://127.0.0.1:{port}/"], capture_output=True, text=True, timeout=duration + 30)
    m = re.search(r"Requests/sec:\s+([\d.]+)", out.stdout)
    if not m:
        raise RuntimeError(f"wrk output not understood:\n{out.stdout}{out.stderr}")
    if "Non-2xx" in out.stdout or "Socket errors" in out.stdout:
        print(f"  warning: wrk saw errors:\n{out.stdout}", file=sys.stderr)
    return float(m.group(1))


def run_python_client(port: int, duration: float, connections: int) -> float:
    """A bounded keep-alive client in a subprocess (so it does not share our process)."""
    code = f"""
import asyncio, time
async def one(stop, counts):
    r, w = await asyncio.open_connection('127.0.0.1', {port})
    req = b'GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n'
    n = 0
    while time.monotonic() < stop:
        w.write(req)
        head = await r.readuntil(b'\\r\\n\\r\\n')
        ln = int(head.lower().split(b'content-length: ')[1].split(b'\\r\\n')[0])
        await r.readexactly(ln)
        n += 1
    counts.append(n)
    w.close()
async def main():
    counts = []
    stop = time.monotonic() + {duration}
    await asyncio.gather(*(one(stop, counts) for _ in range({connections})))
    print(sum(counts) / {duration})
asyncio.run(main())
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=duration + 30, check=True)
    return float(out.stdout.strip())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--python-client", action="store_true", help="do not use wrk")
    ap.add_argument("--json", action="store_true", help="print the results as JSON too")
    ap.add_argument("--serve-fastgw", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_fastgw:
        serve_fastgw(args.serve_fastgw)
        return

    use_wrk = shutil.which("wrk") is not None and not args.python_client
    drive = run_wrk if use_wrk else run_python_client
    rows = ["uvicorn", "fastgw asgi:"]
    servers = {}
    results: dict[str, list[float]] = {r: [] for r in rows}
    try:
        for r in rows:
            servers[r] = start(r)
            if args.warmup > 0:
                drive(servers[r][1], args.warmup, args.connections)
        for i in range(args.rounds):
            order = rows if i % 2 == 0 else rows[::-1]   # alternate to spread drift
            for r in order:
                results[r].append(drive(servers[r][1], args.duration, args.connections))
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()

    try:
        load = os.getloadavg()[0]
    except OSError:
        load = float("nan")
    client = "wrk -t1" if use_wrk else "python client"
    print(f"\nin-process ASGI target vs uvicorn ({client}, -c{args.connections}, "
          f"{args.rounds} x {args.duration:g}s, median; load average {load:.2f}, "
          f"{os.cpu_count()} cpus)")
    base = statistics.median(results["uvicorn"])
    print(f"{'row':<16}{'req/s (median)':>16}{'vs uvicorn':>12}   rounds")
    for r in rows:
        med = statistics.median(results[r])
        print(f"{r:<16}{med:>16,.0f}{med / base:>11.2f}x   "
              + ", ".join(f"{v:,.0f}" for v in results[r]))
    if args.json:
        print(json.dumps({"client": client, "results": results}))


if __name__ == "__main__":
    main()
