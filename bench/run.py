#!/usr/bin/env python3
"""Macro benchmark: wrk through fastgw, nginx and HAProxy to the same nginx upstream, one run.

Method (see bench/README.md):
- One upstream nginx (1 worker, keep-alive) serving "hello\\n" on three ports (server blocks).
- Every row's server is started once, probed (200 "hello\\n" through it, else the row fails
  and is reported, not measured), warmed up, then measured in alternating rounds: round r
  runs every row once, starting with a different row each round, so drift (heat, other load)
  spreads over all rows. Quoted numbers are medians over the rounds.
- wrk runs with --latency; requests/s, p50 and p99 come from its output. Non-2xx responses
  and socket errors are reported and flag the row.
- CPU per request: the proxy's own utime+stime (the process and every live descendant, read
  from /proc/<pid>/stat before and after the round) divided by the requests wrk completed.
  wrk shares the cores with the proxy, so req/s ties at the client's limit; the CPU a proxy
  spends per request does not, and is the number to compare with nginx in the same run.
- Everything binds and loads 127.0.0.1 only. Every process started here is stopped on exit,
  Ctrl-C, SIGTERM or error (tests/servers.py stops each process group).

Rows: direct (wrk straight to the upstream), fastgw, nginx, haproxy by default;
fastgw-3targets (--upstreams), fastgw-plugins (--plugins), fastgw-jwt (--jwt), or --rows.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import json
import os
import platform
import re
import shlex
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
CONF = BENCH / "conf"
sys.path.insert(0, str(REPO / "tests"))  # the shared server helpers
sys.path.insert(0, str(BENCH))

import pngchart  # noqa: E402
from servers import (  # noqa: E402
    FastgwProcess,
    HAProxyProcess,
    NginxProcess,
    NginxUpstream,
    find_binary,
    free_port,
    http_get,
)

UPSTREAM_BODY = "hello\n"
API_KEY = "bench-key"
JWT_KEY, JWT_SECRET = "bench-issuer", "bench-secret-0123456789abcdef0123"
WRK_TIMEOUT = "5s"  # a request slower than this is a wrk "timeout" socket error
WRK_GRACE = 20.0  # seconds a wrk run may exceed its -d before it is killed
DEFAULT_ROWS = ("direct", "fastgw", "nginx", "haproxy")
ALL_ROWS = DEFAULT_ROWS + ("fastgw-3targets", "fastgw-plugins", "fastgw-jwt")
REFERENCE = "nginx"  # ratios are to this row
BUSY_LOAD = 0.5  # warn when the 1-min load average before the run exceeds this per CPU


# ---------------------------------------------------------------------------------------- wrk

_UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
_METRIC = {"k": 1e3, "M": 1e6, "G": 1e9, "": 1.0}


def _duration_ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text.strip())
    if not m:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(m.group(1)) * _UNITS_MS[m.group(2)]


def parse_wrk(output: str) -> dict[str, Any]:
    """requests/s, latency percentiles (ms) and error counts from `wrk --latency` output."""
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    if not rps:
        raise ValueError("no 'Requests/sec' in wrk output:\n" + output)
    res: dict[str, Any] = {"rps": float(rps.group(1))}
    for pct, val in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", output, re.M):
        res[f"p{pct}_ms"] = _duration_ms(val)
    if "p99_ms" not in res:
        raise ValueError("no latency distribution in wrk output (run it with --latency)")
    total = re.search(r"^\s+(\d+) requests in ([\d.]+)(\w+)", output, re.M)
    res["requests"] = int(total.group(1)) if total else 0
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    res["socket_errors"] = dict(zip(("connect", "read", "write", "timeout"),
                                    (int(g) for g in sock.groups()))) if sock else {}
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    res["non_2xx"] = int(non2xx.group(1)) if non2xx else 0
    res["errors"] = res["non_2xx"] + sum(res["socket_errors"].values())
    return res


def run_wrk(url: str, duration: float, connections: int, threads: int,
            headers: list[str]) -> dict[str, Any]:
    cmd = [find_binary("wrk") or "wrk", "-t", str(threads), "-c", str(connections),
           "-d", f"{max(1, round(duration))}s", "--latency", "--timeout", WRK_TIMEOUT]
    for h in headers:
        cmd += ["-H", h]
    cmd.append(url)
    # subprocess.run kills wrk if this raises (timeout, Ctrl-C): no wrk outlives the bench.
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + WRK_GRACE)
    if out.returncode != 0:
        raise RuntimeError(f"wrk exited {out.returncode}: {out.stderr or out.stdout}")
    res = parse_wrk(out.stdout)
    res["cmd"] = shlex.join(cmd)
    return res


# ---------------------------------------------------------------------------------------- cpu

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> tuple[int, float] | None:
    """(ppid, utime+stime seconds) of a live process, None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # after "pid (comm) "
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICK


def tree_cpu_s(root: int) -> float:
    """CPU seconds used so far by `root` and its live descendants (nginx/fastgw workers)."""
    stats: dict[int, tuple[int, float]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            st = _stat(int(d.name))
            if st is not None:
                stats[int(d.name)] = st
    total, todo, seen = 0.0, [root], set()
    while todo:
        pid = todo.pop()
        if pid in seen or pid not in stats:
            continue
        seen.add(pid)
        total += stats[pid][1]
        todo.extend(c for c, (ppid, _) in stats.items() if ppid == pid)
    return total


# --------------------------------------------------------------------------------------- rows

def render(template: str, **values: Any) -> str:
    """bench/conf/<template> with {{NAME}} placeholders filled; unknown ones are an error."""
    text = (CONF / template).read_text()

    def sub(m: re.Match) -> str:
        if m.group(1) not in values:
            raise KeyError(f"{template}: no value for {{{{{m.group(1)}}}}}")
        return str(values[m.group(1)])

    return re.sub(r"\{\{(\w+)\}\}", sub, text)


def jwt_token() -> str:
    import jwt  # PyJWT, a runtime dependency of fastgw

    return jwt.encode({"iss": JWT_KEY, "sub": "bench"}, JWT_SECRET, algorithm="HS256")


@dataclasses.dataclass
class Row:
    name: str
    description: str
    headers: list[str] = dataclasses.field(default_factory=list)
    url: str = ""
    pid: int | None = None  # the process whose CPU is measured (the proxy, or direct's upstream)
    failed: str = ""  # why it was not (fully) measured
    rounds: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def median(self, key: str) -> float | None:
        vals = [r[key] for r in self.rounds if key in r]
        return statistics.median(vals) if vals else None

    @property
    def errors(self) -> int:
        return sum(r.get("errors", 0) for r in self.rounds)


def describe(name: str, args: argparse.Namespace) -> Row:
    """The row's description and the headers wrk must send."""
    w = f"fastgw {args.fastgw_workers} worker(s)"
    if name == "direct":
        return Row(name, "wrk straight to the upstream nginx (no proxy)")
    if name == "nginx":
        return Row(name, "nginx 1 worker, proxy_pass, upstream keepalive 64")
    if name == "haproxy":
        return Row(name, "HAProxy 1 thread, http mode, http-reuse always")
    if name == "fastgw":
        return Row(name, f"{w}, no plugins")
    if name == "fastgw-3targets":
        return Row(name, f"{w}, upstream of 3 targets, weights 100/50/50")
    if name == "fastgw-plugins":
        return Row(name, f"{w}, key-auth + rate-limiting(local) + prometheus",
                   headers=[f"apikey: {API_KEY}"])
    if name == "fastgw-jwt":
        return Row(name, f"{w}, jwt (HS256)", headers=[f"Authorization: Bearer {jwt_token()}"])
    raise ValueError(f"unknown row {name!r}")


def start_row(row: Row, up: NginxUpstream, args: argparse.Namespace,
              enter: Callable[[Any], Any]) -> None:
    """Start the server(s) for `row` (handed to `enter` for cleanup) and set row.url."""
    upstream = {"UPSTREAM_PORT": up.ports[0]}
    if row.name == "direct":
        row.url = up.url("/")
        row.pid = up.pid
    elif row.name == "nginx":
        port = free_port()
        conf = render("nginx-proxy.conf", PORT=port, **upstream)
        server = enter(NginxProcess(conf, [port], workers=1))
        row.url, row.pid = server.url("/"), server.pid
    elif row.name == "haproxy":
        port = free_port()
        server = enter(HAProxyProcess(render("haproxy.cfg", PORT=port, **upstream), [port]))
        row.url, row.pid = server.url("/"), server.pid
    else:
        cfg = {
            "fastgw": lambda: render("fastgw.yml", **upstream),
            "fastgw-3targets": lambda: render(
                "fastgw-3targets.yml", **{f"UPSTREAM_PORT_{i}": p for i, p in enumerate(up.ports)}),
            "fastgw-plugins": lambda: render("fastgw-plugins.yml", API_KEY=API_KEY, **upstream),
            "fastgw-jwt": lambda: render("fastgw-jwt.yml", JWT_KEY=JWT_KEY, JWT_SECRET=JWT_SECRET,
                                         **upstream),
        }[row.name]()
        server = enter(FastgwProcess(cfg, workers=args.fastgw_workers,
                                     command=shlex.split(args.fastgw_cmd)))
        row.url, row.pid = server.url("/"), server.pid


def probe(row: Row) -> None:
    """One request through the row must return the upstream's body, or the row is broken."""
    headers = dict(h.split(": ", 1) for h in row.headers)
    status, _, body = http_get(row.url, headers)
    if status != 200 or body != UPSTREAM_BODY.encode():
        raise RuntimeError(f"probe GET {row.url} -> {status} {body[:200]!r}, "
                           f"expected 200 {UPSTREAM_BODY!r}")


# ------------------------------------------------------------------------------------- report

def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def summarize(rows: list[Row]) -> list[dict[str, Any]]:
    ref = next((r for r in rows if r.name == REFERENCE and r.rounds), None)
    out = []
    for r in rows:
        med = {k: r.median(k) for k in ("rps", "p50_ms", "p90_ms", "p99_ms", "cpu_us")}
        rps = [x["rps"] for x in r.rounds if "rps" in x]
        out.append({
            "name": r.name, "description": r.description, "url": r.url, "headers": r.headers,
            "failed": r.failed or None, "errors": r.errors,
            "flagged": bool(r.failed or r.errors),
            "median": med,
            "spread_pct": (100 * (max(rps) - min(rps)) / med["rps"]) if len(rps) > 1 and med["rps"]
            else None,
            "ratio_rps_vs_nginx": ratio(med["rps"], ref.median("rps") if ref else None),
            "ratio_p99_vs_nginx": ratio(med["p99_ms"], ref.median("p99_ms") if ref else None),
            "ratio_cpu_vs_nginx": ratio(med["cpu_us"], ref.median("cpu_us") if ref else None),
            "rounds": r.rounds,
        })
    return out


def targets(summary: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issues' goals, checked against this run (only for rows that were measured)."""
    by = {s["name"]: s for s in summary if s["median"]["rps"]}
    res = []
    if "fastgw" in by and REFERENCE in by:
        f = by["fastgw"]
        ok = (f["ratio_rps_vs_nginx"] >= 0.75 and f["ratio_p99_vs_nginx"] <= 1.5)
        res.append({"goal": "fastgw >= 0.75x nginx req/s and p99 <= 1.5x nginx (issue 3)",
                    "value": f"{f['ratio_rps_vs_nginx']:.2f}x req/s, "
                             f"{f['ratio_p99_vs_nginx']:.2f}x p99", "met": ok})
    for name, limit, issue in (("fastgw-3targets", 5.0, 4), ("fastgw-plugins", 10.0, 6),
                               ("fastgw-jwt", None, 6)):
        if name in by and "fastgw" in by:
            change = 100 * (by[name]["median"]["rps"] / by["fastgw"]["median"]["rps"] - 1)
            goal = (f"{name} loses at most {limit:g}% of fastgw's req/s (issue {issue})"
                    if limit is not None else f"{name} req/s vs fastgw (issue {issue}, reported)")
            res.append({"goal": goal, "value": f"{change:+.1f}% req/s vs fastgw",
                        "met": None if limit is None else -change <= limit})
    for name in ("fastgw-plugins", "fastgw-jwt"):
        cpu, base = (by.get(name, {}).get("median", {}).get("cpu_us"),
                     by.get("fastgw", {}).get("median", {}).get("cpu_us"))
        if cpu and base:
            change = 100 * (cpu / base - 1)
            res.append({"goal": f"{name} costs at most 10% more CPU per request than fastgw",
                        "value": f"{change:+.1f}% CPU/request", "met": change <= 10.0})
    return res


def _fmt(v: float | None, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def table(summary: list[dict[str, Any]], rounds: int) -> str:
    hdr = ("row", "req/s", "p50 ms", "p99 ms", "CPU µs/req", "req/s÷nginx", "p99÷nginx",
           "CPU÷nginx", "spread", "notes")
    lines = []
    for s in summary:
        m = s["median"]
        note = ("FAILED: " + s["failed"].splitlines()[0][:70]) if s["failed"] else (
            f"{s['errors']} errors!" if s["errors"] else "")
        lines.append((s["name"] + ("  !" if s["flagged"] else ""), _fmt(m["rps"], ",.0f"),
                      _fmt(m["p50_ms"], ".2f"), _fmt(m["p99_ms"], ".2f"), _fmt(m["cpu_us"], ".1f"),
                      _fmt(s["ratio_rps_vs_nginx"], ".2f"), _fmt(s["ratio_p99_vs_nginx"], ".2f"),
                      _fmt(s["ratio_cpu_vs_nginx"], ".2f"),
                      _fmt(s["spread_pct"], ".1f") + ("%" if s["spread_pct"] is not None else ""),
                      note))
    widths = [max(len(str(x[i])) for x in [hdr, *lines]) for i in range(len(hdr))]

    def fmt(cols: tuple) -> str:
        return "  ".join(str(c).ljust(w) if i in (0, len(hdr) - 1) else str(c).rjust(w)
                         for i, (c, w) in enumerate(zip(cols, widths))).rstrip()

    out = [f"medians of {rounds} alternating round(s); spread = (max-min)/median of req/s",
           fmt(hdr), fmt(tuple("-" * w for w in widths)), *map(fmt, lines)]
    return "\n".join(out)


def chart(summary: list[dict[str, Any]], title: str) -> bytes:
    def rows(key: str, spec: str) -> list[tuple[str, float | None, str]]:
        res = []
        for s in summary:
            v = s["median"][key]
            if v is None:
                res.append((s["name"], None, "FAILED"))
            else:
                ratio_key = "ratio_rps_vs_nginx" if key == "rps" else "ratio_p99_vs_nginx"
                r = s[ratio_key]
                text = format(v, spec) + (f" ({r:.2f}x nginx)" if r is not None else "")
                res.append((s["name"] + (" !" if s["flagged"] else ""), v, text))
        return res

    return pngchart.bar_chart(title, [("requests/s (median, higher is better)", rows("rps", ",.0f")),
                                      ("p99 latency ms (median, lower is better)",
                                       rows("p99_ms", ".2f"))]).png()


def versions() -> dict[str, str]:
    def first_line(cmd: list[str]) -> str:
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
            return ((p.stdout or "") + (p.stderr or "")).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "unknown"

    return {"nginx": first_line([find_binary("nginx") or "nginx", "-v"]),
            "haproxy": first_line([find_binary("haproxy") or "haproxy", "-v"]),
            "wrk": first_line([find_binary("wrk") or "wrk", "--version"]),
            "fastgw_git": first_line(["git", "-C", str(REPO), "describe", "--always", "--dirty"])}


# --------------------------------------------------------------------------------------- main

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--duration", type=float, default=5.0, help="seconds per wrk round (>= 1)")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds per row")
    p.add_argument("--warmup", type=float, default=1.0, help="seconds of wrk per row before "
                   "the rounds (0: none)")
    p.add_argument("--connections", type=int, default=50, help="wrk -c")
    p.add_argument("--threads", type=int, default=2, help="wrk -t")
    p.add_argument("--fastgw-workers", type=int, default=1)
    p.add_argument("--fastgw-cmd", default=f"{shlex.quote(sys.executable)} -m fastgw",
                   help="command that runs fastgw (e.g. an installed wheel's `fastgw`)")
    p.add_argument("--rows", help=f"comma-separated rows, any of {','.join(ALL_ROWS)} "
                   f"(default {','.join(DEFAULT_ROWS)} plus the flags below)")
    p.add_argument("--upstreams", action="store_true", help="add fastgw-3targets")
    p.add_argument("--plugins", action="store_true", help="add fastgw-plugins")
    p.add_argument("--jwt", action="store_true", help="add fastgw-jwt")
    p.add_argument("--all", action="store_true", help="every row")
    p.add_argument("--quick", action="store_true", help="1 s x 1 round, no warm-up (smoke test)")
    p.add_argument("--out", type=Path, default=BENCH / "results", help="where JSON + PNG go")
    a = p.parse_args(argv)
    if a.quick:
        a.duration, a.rounds, a.warmup = 1.0, 1, 0.0
    if a.rows:
        a.row_names = [r.strip() for r in a.rows.split(",") if r.strip()]
    else:
        a.row_names = list(ALL_ROWS if a.all else DEFAULT_ROWS)
        for flag, name in (("upstreams", "fastgw-3targets"), ("plugins", "fastgw-plugins"),
                           ("jwt", "fastgw-jwt")):
            if getattr(a, flag) and name not in a.row_names:
                a.row_names.append(name)
    unknown = [r for r in a.row_names if r not in ALL_ROWS]
    if unknown:
        p.error(f"unknown rows {unknown}; known: {', '.join(ALL_ROWS)}")
    if a.duration < 1 or a.rounds < 1 or a.connections < a.threads:
        p.error("need --duration >= 1, --rounds >= 1 and --connections >= --threads")
    return a


def _sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds the ExitStack: every server is stopped


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t0 = time.monotonic()
    missing = [b for b in ("wrk", "nginx") + (("haproxy",) if "haproxy" in args.row_names else ())
               if find_binary(b) is None]
    if missing:
        print(f"bench: missing {', '.join(missing)}: run `make sysdeps` (scripts/sysdeps.sh)",
              file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _sigterm)
    # A shell starts background jobs with SIGINT ignored and Python keeps that: take it back,
    # so an interrupt still stops every server.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    load_before = os.getloadavg()[0]
    cpus = os.cpu_count() or 1
    if load_before > BUSY_LOAD * cpus:
        print(f"bench: WARNING: load average {load_before:.1f} on {cpus} CPUs before the run; "
              "other work shares the CPUs, so expect noisy numbers (see the spread column)",
              file=sys.stderr, flush=True)
    n = len(args.row_names)
    budget = n * (args.warmup + args.rounds * args.duration)
    print(f"bench: rows {', '.join(args.row_names)}; {args.rounds} round(s) x {args.duration:g} s, "
          f"wrk -t{args.threads} -c{args.connections}; ~{budget:.0f} s of load", flush=True)
    rows: list[Row] = []
    with contextlib.ExitStack() as stack:
        up = stack.enter_context(NginxUpstream(servers=3, body=UPSTREAM_BODY, big_size=1))
        for name in args.row_names:
            row = describe(name, args)
            rows.append(row)
            try:
                start_row(row, up, args, stack.enter_context)
                probe(row)
            except Exception as e:  # reported in the table; the other rows still run
                row.failed = f"{type(e).__name__}: {e}"
                print(f"bench: {name}: not measured: {row.failed}", file=sys.stderr, flush=True)
        live = [r for r in rows if not r.failed]
        if args.warmup > 0:
            for r in live:
                with contextlib.suppress(Exception):
                    run_wrk(r.url, args.warmup, args.connections, args.threads, r.headers)
        for rnd in range(args.rounds):
            order = live[rnd % len(live):] + live[:rnd % len(live)] if live else []
            for r in order:
                try:
                    cpu0 = tree_cpu_s(r.pid) if r.pid else None
                    res = run_wrk(r.url, args.duration, args.connections, args.threads, r.headers)
                    if cpu0 is not None and res.get("requests"):
                        res["cpu_us"] = 1e6 * (tree_cpu_s(r.pid) - cpu0) / res["requests"]
                except (RuntimeError, ValueError, subprocess.TimeoutExpired) as e:
                    r.failed = r.failed or f"round {rnd + 1}: {type(e).__name__}: {e}"
                    res = {"errors": 1, "failed": str(e)}
                res["round"] = rnd + 1
                r.rounds.append(res)
                print(f"  round {rnd + 1}/{args.rounds} {r.name:<16} "
                      f"{res.get('rps', 0):>10,.0f} req/s  p99 {res.get('p99_ms', 0):7.2f} ms"
                      f"  {res.get('cpu_us', 0):6.1f} µs CPU/req"
                      + (f"  errors {res['errors']}" if res.get("errors") else ""), flush=True)
    elapsed = time.monotonic() - t0

    summary = summarize(rows)
    goals = targets(summary)
    print()
    print(table(summary, args.rounds))
    for g in goals:
        mark = {True: "met", False: "NOT met", None: "reported"}[g["met"]]
        print(f"  {g['goal']}: {g['value']} -> {mark}")
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    args.out.mkdir(parents=True, exist_ok=True)
    doc = {
        "timestamp": stamp, "duration_s": round(elapsed, 1),
        "settings": {"duration_s": args.duration, "rounds": args.rounds, "warmup_s": args.warmup,
                     "connections": args.connections, "threads": args.threads,
                     "fastgw_workers": args.fastgw_workers, "rows": args.row_names},
        "machine": {"cpus": cpus, "platform": platform.platform(),
                    "python": platform.python_version(),
                    "loadavg_1min_before": round(load_before, 2),
                    "loadavg_1min_after": round(os.getloadavg()[0], 2)},
        "versions": versions(), "reference": REFERENCE, "rows": summary, "targets": goals,
    }
    json_path = args.out / f"{stamp}.json"
    png_path = args.out / f"{stamp}.png"
    json_path.write_text(json.dumps(doc, indent=2) + "\n")
    png_path.write_bytes(chart(summary, f"fastgw bench {stamp}: wrk -t{args.threads} "
                                        f"-c{args.connections}, median of {args.rounds} x "
                                        f"{args.duration:g} s"))
    print(f"\nsaved {json_path} and {png_path}")
    print(f"total duration {elapsed:.1f} s")
    return 1 if any(s["flagged"] for s in summary) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\nbench: interrupted; all servers stopped", file=sys.stderr)
        sys.exit(130)
