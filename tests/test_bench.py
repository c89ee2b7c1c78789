"""bench/run.py: wrk output parsing, config templates, the PNG chart, and a quick real run."""
from __future__ import annotations

import importlib.util
import json
import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest

from servers import find_binary, wait_until

REPO = Path(__file__).resolve().parent.parent
RUN = REPO / "bench" / "run.py"


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


bench = _load("bench_run", RUN)
pngchart = _load("bench_pngchart", REPO / "bench" / "pngchart.py")

needs_load_tools = pytest.mark.skipif(
    not all(find_binary(b) for b in ("wrk", "nginx", "haproxy")),
    reason="wrk, nginx and haproxy are needed (scripts/sysdeps.sh)")

WRK_CLEAN = """\
Running 1s test @ http://127.0.0.1:8080/
  2 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.52ms  812.41us  14.50ms   87.40%
    Req/Sec    16.80k     1.21k   18.90k    70.00%
  Latency Distribution
     50%  512.00us
     75%    1.73ms
     90%    2.40ms
     99%    1.02s
  33436 requests in 1.00s, 5.26MB read
Requests/sec:  33402.10
Transfer/sec:      5.25MB
"""

WRK_ERRORS = """\
Running 1s test @ http://127.0.0.1:8080/
  2 threads and 50 connections
  Latency Distribution
     50%    2.00ms
     75%    3.00ms
     90%    4.00ms
     99%    1.50m
  1000 requests in 1.00s, 5.26MB read
  Socket errors: connect 3, read 2, write 0, timeout 7
  Non-2xx or 3xx responses: 11
Requests/sec:   1000.00
Transfer/sec:      5.25MB
"""


def test_parse_wrk_clean_output_and_units():
    r = bench.parse_wrk(WRK_CLEAN)
    assert r["rps"] == 33402.10 and r["requests"] == 33436
    assert r["p50_ms"] == pytest.approx(0.512) and r["p75_ms"] == 1.73
    assert r["p99_ms"] == pytest.approx(1020.0)
    assert r["errors"] == 0 and r["non_2xx"] == 0 and r["socket_errors"] == {}


def test_parse_wrk_counts_every_error_kind():
    r = bench.parse_wrk(WRK_ERRORS)
    assert r["socket_errors"] == {"connect": 3, "read": 2, "write": 0, "timeout": 7}
    assert r["non_2xx"] == 11 and r["errors"] == 23
    assert r["p99_ms"] == pytest.approx(90_000.0)


def test_parse_wrk_rejects_output_without_latency_distribution():
    with pytest.raises(ValueError, match="--latency"):
        bench.parse_wrk("Requests/sec:  10.0\n")
    with pytest.raises(ValueError, match="Requests/sec"):
        bench.parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_templates_render_completely_and_only_with_their_values():
    values = {"PORT": 1, "UPSTREAM_PORT": 2, "UPSTREAM_PORT_0": 3, "UPSTREAM_PORT_1": 4,
              "UPSTREAM_PORT_2": 5, "API_KEY": "k", "JWT_KEY": "i", "JWT_SECRET": "s"}
    import yaml

    for t in sorted((REPO / "bench" / "conf").iterdir()):
        text = bench.render(t.name, **values)
        assert "{{" not in text and "127.0.0.1:" in text
        if t.suffix == ".yml":
            doc = yaml.safe_load(text)
            assert doc["_format_version"] == "3.0" and doc["services"][0]["routes"]
    with pytest.raises(KeyError, match="UPSTREAM_PORT"):
        bench.render("nginx-proxy.conf", PORT=1)
    three = yaml.safe_load(bench.render("fastgw-3targets.yml", **values))
    assert [t["weight"] for t in three["upstreams"][0]["targets"]] == [100, 50, 50]
    assert three["services"][0]["host"] == three["upstreams"][0]["name"]


def test_jwt_token_verifies_with_the_configured_secret():
    import jwt

    claims = jwt.decode(bench.jwt_token(), bench.JWT_SECRET, algorithms=["HS256"])
    assert claims["iss"] == bench.JWT_KEY


def _decode_png(data: bytes) -> tuple[int, int, bytes]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert crc == zlib.crc32(kind + body)
        if kind == b"IHDR":
            width, height, depth, ctype = struct.unpack(">IIBB", body[:10])
            assert (depth, ctype) == (8, 2)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    assert len(raw) == height * (1 + 3 * width)
    return width, height, raw


def _color_count(width: int, raw: bytes, color: tuple[int, int, int]) -> int:
    stride = 1 + 3 * width
    px = b"".join(raw[i * stride + 1:(i + 1) * stride] for i in range(len(raw) // stride))
    return sum(1 for rgb in zip(px[0::3], px[1::3], px[2::3]) if rgb == color)


def test_chart_png_is_valid_and_bars_scale_with_values():
    summary = [
        {"name": "nginx", "flagged": False, "median": {"rps": 30000.0, "p99_ms": 5.0},
         "ratio_rps_vs_nginx": 1.0, "ratio_p99_vs_nginx": 1.0},
        {"name": "fastgw", "flagged": False, "median": {"rps": 15000.0, "p99_ms": 10.0},
         "ratio_rps_vs_nginx": 0.5, "ratio_p99_vs_nginx": 2.0},
        {"name": "haproxy", "flagged": True, "median": {"rps": None, "p99_ms": None},
         "ratio_rps_vs_nginx": None, "ratio_p99_vs_nginx": None},
    ]
    width, height, raw = _decode_png(bench.chart(summary, "test chart 1.5x"))
    assert width == 1000 and 200 < height < 1000
    green = _color_count(width, raw, pngchart.color_for("nginx"))
    blue = _color_count(width, raw, pngchart.color_for("fastgw"))
    # Both panels: nginx's rps bar is twice fastgw's, fastgw's p99 bar twice nginx's: equal ink.
    assert green > 1000 and blue == pytest.approx(green, rel=0.05)
    assert _color_count(width, raw, pngchart.RED) > 0  # the failed row says so
    assert _color_count(width, raw, pngchart.color_for("haproxy")) == 0


def _bench_procs(marker: str) -> list[str]:
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if marker in cmd:
                found.append(f"{pid}: {cmd}")
    return found


def _bench_env(tmp_path: Path) -> dict[str, str]:
    # Private TMPDIR: every server the bench starts has it in its command line, so leftovers
    # are easy to find (and other tests' servers are not mistaken for ours).
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    return dict(os.environ, TMPDIR=str(tmp))


@needs_load_tools
def test_quick_bench_measures_nginx_haproxy_and_upstream_and_stops_everything(tmp_path):
    env = _bench_env(tmp_path)
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, str(RUN), "--quick", "--rows", "direct,nginx,haproxy",
                        "--out", str(tmp_path / "out")], capture_output=True, text=True,
                       timeout=60, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    assert time.monotonic() - t0 < 30
    assert "total duration" in p.stdout and "req/s÷nginx" in p.stdout
    (result,) = (tmp_path / "out").glob("*.json")
    doc = json.loads(result.read_text())
    rows = {r["name"]: r for r in doc["rows"]}
    assert list(rows) == ["direct", "nginx", "haproxy"]
    for r in rows.values():
        assert r["median"]["rps"] > 100 and r["median"]["p99_ms"] > 0
        assert not r["flagged"] and len(r["rounds"]) == 1
    assert rows["nginx"]["ratio_rps_vs_nginx"] == 1.0
    assert rows["haproxy"]["ratio_p99_vs_nginx"] == pytest.approx(
        rows["haproxy"]["median"]["p99_ms"] / rows["nginx"]["median"]["p99_ms"])
    _decode_png(result.with_suffix(".png").read_bytes())
    assert _bench_procs(env["TMPDIR"]) == []


@needs_load_tools
def test_a_row_that_cannot_start_is_reported_and_flagged(tmp_path):
    env = _bench_env(tmp_path)
    broken = f"{sys.executable} -c \"raise SystemExit('broken')\""
    p = subprocess.run([sys.executable, str(RUN), "--quick", "--rows", "fastgw,nginx",
                        "--fastgw-cmd", broken,
                        "--out", str(tmp_path / "out")], capture_output=True, text=True,
                       timeout=60, env=env)
    assert p.returncode == 1
    assert "fastgw: not measured" in p.stderr and "broken" in p.stderr
    doc = json.loads(next((tmp_path / "out").glob("*.json")).read_text())
    fg, ng = doc["rows"]
    assert fg["flagged"] and fg["failed"] and fg["rounds"] == []
    assert not ng["flagged"] and ng["median"]["rps"] > 0
    assert _bench_procs(env["TMPDIR"]) == []


def _children(ppid: int) -> dict[int, str]:
    out = {}
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == ppid:
                out[int(pid)] = cmd
    return out


@needs_load_tools
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_bench_stops_every_process(tmp_path, sig):
    env = _bench_env(tmp_path)
    p = subprocess.Popen([sys.executable, str(RUN), "--rows", "direct,nginx,haproxy",
                          "--duration", "10", "--rounds", "3", "--warmup", "0",
                          "--out", str(tmp_path / "out")], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env)
    try:
        # interrupt while wrk is loading, with the upstream and both proxies up
        wrk = wait_until(lambda: [pid for pid, cmd in _children(p.pid).items() if "--latency" in cmd],
                         timeout=20, interval=0.05)
        assert len(_bench_procs(env["TMPDIR"])) >= 3
        p.send_signal(sig)
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == (130 if sig == signal.SIGINT else 128 + sig), err
    assert _bench_procs(env["TMPDIR"]) == []
    assert not Path(f"/proc/{wrk[0]}").exists() or wrk[0] not in _children(p.pid)
    assert not (tmp_path / "out").exists()  # no result file from a half-measured run


@pytest.mark.skipif(importlib.util.find_spec("fastgw.cli") is None,
                    reason="fastgw.cli is not written yet (issue 3)")
@needs_load_tools
def test_quick_bench_fastgw_row(tmp_path):
    env = _bench_env(tmp_path)
    p = subprocess.run([sys.executable, str(RUN), "--quick", "--rows", "fastgw,nginx",
                        "--out", str(tmp_path / "out")], capture_output=True, text=True,
                       timeout=60, env=env)
    doc = json.loads(next((tmp_path / "out").glob("*.json")).read_text())
    fg = doc["rows"][0]
    assert fg["name"] == "fastgw" and not fg["flagged"], p.stdout + p.stderr
    assert fg["median"]["rps"] > 100
    assert p.returncode == 0
    assert _bench_procs(env["TMPDIR"]) == []
