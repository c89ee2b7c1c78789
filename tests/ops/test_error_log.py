"""A plugin exception: Kong's 500, and one error-log line with the traceback and the request id
the response carries."""
from __future__ import annotations

import logging
from typing import Any

import msgspec
import orjson
import pytest

from fastgw.plugins.base import Plugin
from fastgw.plugins.registry import register
from fastgw.testing import MemoryUpstream, gateway_client, run


@register
class Exploding(Plugin):
    name = "t-ops-explode"
    PRIORITY = 10

    class Config(msgspec.Struct, forbid_unknown_fields=True):
        pass

    def access(self, ctx: Any) -> None:
        raise ZeroDivisionError("plugin went boom")


def test_plugin_exception_logged_with_traceback_and_request_id(caplog: pytest.LogCaptureFixture
                                                              ) -> None:
    config = {"_format_version": "3.0",
              "upstreams": [{"name": "u", "targets": [{"target": "asgi:up"}]}],
              "services": [{"name": "s", "host": "u", "routes": [{"paths": ["/"]}],
                            "plugins": [{"name": "t-ops-explode"}]}]}

    async def main() -> tuple[int, dict, bytes]:
        async with gateway_client(config, handlers={"asgi:up": MemoryUpstream()},
                                  headers=["x-kong-request-id"]) as client:
            r = await client.get("/x")
            return r.status, r.headers, r.body

    with caplog.at_level(logging.ERROR):
        status, headers, body = run(main())
    assert status == 500
    assert orjson.loads(body) == {"message": "An unexpected error occurred"}
    rid = headers["x-kong-request-id"]
    lines = [r for r in caplog.records if rid in r.getMessage()]
    assert len(lines) == 2, [r.getMessage() for r in caplog.records]
    tb, summary = lines
    assert "plugin t-ops-explode failed in access phase" in tb.getMessage()
    assert tb.exc_info is not None and tb.exc_info[0] is ZeroDivisionError
    assert summary.name == "fastgw.proxy" and "500" in summary.getMessage()
