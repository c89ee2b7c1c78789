"""The embedding API the docs describe (examples/README.md "The Gateway API") is the code."""
from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from ops_helpers import http_get

from fastgw import Gateway

ROOT = Path(__file__).resolve().parents[2]


def test_serve_until_stopped_example() -> None:
    proc = subprocess.Popen([sys.executable, str(ROOT / "examples" / "serve_until_stopped.py")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
        addrs = json.loads(line)
        status, _, body = http_get(addrs["proxy"][1], "/hello/x")
        assert (status, body) == (200, b"hello from /x\n")
        assert http_get(addrs["admin"][1], "/status")[0] == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_started_flag_bound_address_and_serve_cancel() -> None:
    async def main() -> None:
        gw = Gateway({"_format_version": "3.0"})
        assert not gw.started and gw.address is None
        task = asyncio.ensure_future(gw.serve(("127.0.0.1", 0)))
        for _ in range(200):
            if gw.started:
                break
            await asyncio.sleep(0.01)
        assert gw.started and gw.address[1] > 0 and gw.admin_address is None
        task.cancel()                 # cancelling serve() stops the gateway gracefully
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not gw.started
        # serve() after stop(): starts again
        task = asyncio.ensure_future(gw.serve(("127.0.0.1", 0)))
        while not gw.started:
            await asyncio.sleep(0.01)
        await gw.stop()
        await asyncio.wait_for(task, 10)
        assert not gw.started

    asyncio.run(main())


def test_docs_name_only_real_parameters() -> None:
    import inspect

    text = (ROOT / "examples" / "README.md").read_text()
    section = text.split("## The Gateway API", 1)[1].split("\n## ", 1)[0]
    for name in inspect.signature(Gateway.start).parameters:
        if name != "self":
            assert f"`{name}`" in section, name
    for name in ("serve", "started", "address", "admin_address", "stop", "update"):
        assert f"gw.{name}" in section, name
    from fastgw.inprocess import Response
    for name in inspect.signature(Response).parameters:
        assert f"{name}=" in section, name
