"""examples/embedded_aiohttp.py runs and serves its three kinds of path over real HTTP."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from fastgw.testing import HttpClient, run

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "embedded_aiohttp.py"


@pytest.mark.parametrize("loop_flag", [[], ["--uvloop"]], ids=["asyncio", "uvloop"])
def test_embedded_aiohttp_example(loop_flag):
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLE), "--app-port", "0", "--gateway-port", "0", *loop_flag],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={k: v for k, v in os.environ.items() if k != "FASTGW_EXAMPLE_UPSTREAM"})
    try:
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
        ports = json.loads(line)

        async def main():
            gw = HttpClient("127.0.0.1", ports["gateway_port"], timeout=5)
            app = HttpClient("127.0.0.1", ports["app_port"], timeout=5)
            try:
                r = await app.get("/")
                assert r.status == 200 and r.json() == {"app": "aiohttp", "path": "/"}
                r = await gw.get("/api/hello")
                assert r.status == 200, r
                assert r.json() == {"upstream": "network", "path": "/hello"}
                assert r.headers["via"] == "1.1 fastgw"
                r = await gw.post("/internal/jobs", body=b"12345")
                assert r.status == 200, r
                assert r.json() == {"handler": "internal", "path": "/jobs", "method": "POST",
                                    "client": "127.0.0.1", "body_bytes": 5}
                r = await gw.get("/elsewhere")
                assert r.status == 404
                r = await app.get("/gateway/status")
                assert r.json()["total_requests"] == 3
            finally:
                await gw.close()
                await app.close()

        run(main())
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
