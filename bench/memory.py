#!/usr/bin/env python3
"""Memory per idle keep-alive connection: fastgw beside nginx, in one run.

Method: each proxy in turn (fastgw 1 worker, nginx 1 worker, same upstream nginx) gets N client
connections from this process; each connection sends one proxied GET and reads its response, then
stays open and idle (keep-alive). The proxy's resident memory (VmRSS of its process tree from
/proc) is read before the clients connect, with all N idle, and again after every client closed
(and a settle pause). Printed: KiB per idle connection ((idle - before) / N) and the RSS left
after the clients went, per proxy.

Connections are opened with non-blocking sockets and one selector, in batches, so N = 10,000
needs no threads; the soft RLIMIT_NOFILE is raised to the hard limit for this process (and the
proxies inherit it). Loopback only; every server is stopped on exit.

    .venv/bin/python bench/memory.py --connections 10000
"""
from __future__ import annotations

import argparse
import contextlib
import json
import resource
import selectors
import socket
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "tests"))
sys.path.insert(0, str(BENCH))

from run import render  # noqa: E402  (the same configs as run.py)
from servers import FastgwProcess, NginxProcess, NginxUpstream, free_port  # noqa: E402

BATCH = 500           # connections opened (and requests sent) per selector round
SETTLE_S = 2.0        # pause before each RSS reading (allocator, deferred frees)
REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"


def tree_rss_kib(root: int) -> int:
    """VmRSS of `root` and its live descendants (nginx's worker, fastgw's workers)."""
    kids: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            status = (d / "status").read_text()
        except OSError:
            continue
        pid = int(d.name)
        for line in status.splitlines():
            if line.startswith("PPid:"):
                kids.setdefault(int(line.split()[1]), []).append(pid)
            elif line.startswith("VmRSS:"):
                rss[pid] = int(line.split()[1])
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo.extend(kids.get(pid, ()))
    return total


def open_idle(port: int, n: int, timeout: float = 60.0) -> list[socket.socket]:
    """n keep-alive connections that each got one complete response and now sit idle."""
    sel = selectors.DefaultSelector()
    socks: list[socket.socket] = []
    deadline = time.monotonic() + timeout
    for start in range(0, n, BATCH):
        batch = []
        for _ in range(min(BATCH, n - start)):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            batch.append(s)
            sel.register(s, selectors.EVENT_WRITE, b"")
        pending = len(batch)
        while pending:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{pending} connections of batch {start} did not complete")
            for key, ev in sel.select(1.0):
                s = key.fileobj
                if ev & selectors.EVENT_WRITE:
                    s.send(REQUEST)
                    sel.modify(s, selectors.EVENT_READ, b"")
                    continue
                data = key.data + s.recv(65536)
                if not data:
                    raise RuntimeError("a proxy closed a keep-alive connection")
                head, sep, body = data.partition(b"\r\n\r\n")
                if sep and body.endswith(b"hello\n"):
                    sel.unregister(s)
                    pending -= 1
                else:
                    sel.modify(s, selectors.EVENT_READ, data)
        socks += batch
    sel.close()
    return socks


def measure(name: str, pid: int, port: int, n: int) -> dict:
    time.sleep(SETTLE_S)
    before = tree_rss_kib(pid)
    socks = open_idle(port, n)
    time.sleep(SETTLE_S)
    idle = tree_rss_kib(pid)
    for s in socks:
        s.close()
    time.sleep(SETTLE_S * 2)
    after = tree_rss_kib(pid)
    res = {"proxy": name, "connections": n, "rss_before_kib": before, "rss_idle_kib": idle,
           "rss_after_kib": after, "kib_per_idle_connection": round((idle - before) / n, 2)}
    print(f"{name:<8} {n} idle: {res['kib_per_idle_connection']:6.2f} KiB/conn   RSS before "
          f"{before / 1024:6.1f} MiB, idle {idle / 1024:6.1f} MiB, after {after / 1024:6.1f} MiB",
          flush=True)
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--connections", type=int, default=10_000)
    p.add_argument("--out", type=Path, default=BENCH / "results")
    a = p.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = a.connections + 1024   # per process: this one's sockets, and the proxy's (it inherits)
    if hard < need:
        print(f"memory: RLIMIT_NOFILE hard limit {hard} < {need}: use fewer --connections",
              file=sys.stderr)
        return 2
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    results = []
    with contextlib.ExitStack() as stack:
        up = stack.enter_context(NginxUpstream(servers=1, body="hello\n", big_size=1))
        gw = stack.enter_context(FastgwProcess(render("fastgw.yml", UPSTREAM_PORT=up.ports[0])))
        results.append(measure("fastgw", gw.pid, gw.port, a.connections))
        port = free_port()
        conf = render("nginx-proxy.conf", PORT=port, UPSTREAM_PORT=up.ports[0])
        ngx = stack.enter_context(NginxProcess(conf, [port], workers=1,
                                               worker_connections=a.connections + 64))
        results.append(measure("nginx", ngx.pid, port, a.connections))
    a.out.mkdir(parents=True, exist_ok=True)
    path = a.out / f"memory-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"saved {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
