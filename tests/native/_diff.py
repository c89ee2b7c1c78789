"""Run one request script through a Gateway on the native or the Python plugin path and record
everything observable: client responses (raw heads without Date, bodies), the upstream's raw
request heads, rate-limit counters in the shared table, and the prometheus lines."""
from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Any

import xxhash

from fastgw.plugins import prometheus, rate_limiting
from fastgw.testing import FakeClock, gateway_client

# a wall-clock instant (windows are epoch-aligned): 20 s into a minute, 800 s into an hour
T0 = 1_700_000_000.25


@dataclass
class Record:
    native_routes: dict[str, bool] = field(default_factory=dict)
    responses: list[tuple[int, list[bytes], bytes]] = field(default_factory=list)
    upstream: list[bytes] = field(default_factory=list)
    counters: dict[tuple[str, str, str], int] = field(default_factory=dict)
    metrics: list[str] = field(default_factory=list)


async def read_response(reader: asyncio.StreamReader, method: bytes) -> tuple[int, list[bytes], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head[:-4].split(b"\r\n")
    status = int(lines[0].split(b" ")[1])
    headers = [ln for ln in lines[1:] if not ln.lower().startswith(b"date:")]
    length = None
    chunked = False
    for ln in lines[1:]:
        name, _, value = ln.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
        elif name.lower() == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
    body = b""
    if method == b"HEAD" or status in (204, 304):
        pass
    elif length is not None:
        body = await reader.readexactly(length)
    elif chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n"))[:-2].split(b";")[0], 16)
            body += await reader.readexactly(size + 2)
            if size == 0:
                break
    return status, [lines[0]] + headers, body


def rl_counts(gw: Any, idents: list[str], now: float) -> dict[tuple[str, str, str], int]:
    """Every rate-limiting instance's count of every identifier in every window at `now`, read
    from its shared table with the plugin's own key derivation."""
    out = {}
    now_ms = int(now * 1000)
    for inst in gw.snapshot.chains.instances:
        p = inst.plugin
        if p.name != "rate-limiting":
            continue
        seeds = p.seeds_for(p.scope_prefix(None))
        for ident in idents:
            for i, (w, seed) in enumerate(zip(p.windows, seeds)):
                start, _ = p.limiter.window_bounds(i, now_ms // 1000)
                key = xxhash.xxh3_64_intdigest(ident.encode(), seed)
                out[(p.scope_prefix(None), ident, w.period)] = p.table.peek(key, now_ms, start * 1000)
    return out


_METRIC_LINES = re.compile(
    r"^(kong_http_requests_total\{|kong_bandwidth_bytes\{|kong_(request|upstream|kong)_latency_ms_count)")


def run_script(fastgw_run: Any, monkeypatch: Any, make_echo: Any, make_config: Any, script: list,
               native: bool, idents: list[str] = ()) -> Record:
    """`script`: ("advance", seconds) or (route label, raw request head bytes). A fresh upstream
    per run (`make_echo()`), so its connection numbers start over; `make_config(port)`."""
    echo = make_echo()
    config = make_config(echo.port)
    monkeypatch.setenv("FASTGW_NATIVE_PLUGINS", "1" if native else "0")
    # fresh shared tables, so both runs start from zero (the plugins take them at build time)
    monkeypatch.setattr(rate_limiting, "_shared", None)
    monkeypatch.setattr(prometheus, "_shared", None)
    rate_limiting.init_shared(4096)
    metrics = prometheus.init_shared()
    rec = Record()
    clock = FakeClock(T0)

    async def main() -> None:
        async with gateway_client(config, clock=clock) as client:
            gw = client.gateway
            rec.native_routes = {rt.name: rt.native is not None for rt in gw.snapshot.routes.values()}
            for rt in gw.snapshot.routes.values():
                assert (rt.native is None) or (rt.chain is None)
            port = gw.address[1]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                for step in script:
                    if step[0] == "advance":
                        clock.advance(step[1])
                        continue
                    raw = step[1]
                    writer.write(raw)
                    status, head, body = await asyncio.wait_for(
                        read_response(reader, raw.split(b" ", 1)[0]), 5)
                    head = [ln.replace(str(echo.port).encode(), b"<up>") for ln in head]
                    body = re.sub(rb'"request_id":"[0-9a-f]+"', b'"request_id":"<id>"', body)
                    rec.responses.append((status, head, body))
                    if any(ln.lower() == b"connection: close" for ln in head):
                        writer.close()
                        reader, writer = await asyncio.open_connection("127.0.0.1", port)
            finally:
                writer.close()
            rec.counters = rl_counts(gw, list(idents), clock())
            # the log phase runs when the exchange finishes: give the loop a turn
            await asyncio.sleep(0.05)

    fastgw_run(main())
    rec.upstream = [re.sub(rb"X-Forwarded-Port: \d+", b"X-Forwarded-Port: <gw>",
                           r.raw_head.replace(str(echo.port).encode(), b"<up>"))
                    for r in echo.requests]
    text = prometheus.metrics_text(metrics).decode()
    rec.metrics = sorted(ln for ln in text.splitlines() if _METRIC_LINES.match(ln))
    return rec
