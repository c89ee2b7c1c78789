from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qs

import orjson

from fastgw.admin.app import AdminAPI
from fastgw.config import declarative
from fastgw.config.store import ConfigStore


class FakeGateway:
    def __init__(self) -> None:
        self.health_calls: list[tuple[str, str, bool]] = []
        self.metrics_value: tuple[bytes, str] | None = (b"fastgw_requests_total 3\n",
                                                       "text/plain; version=0.0.4")

    def status(self) -> dict[str, Any]:
        return {"connections_active": 2, "total_requests": 7}

    def upstream_health(self, name: str) -> list[dict[str, Any]]:
        return [{"target": "127.0.0.1:9001", "health": "HEALTHY", "upstream": name}]

    def set_target_health(self, upstream: str, target: str, healthy: bool) -> None:
        self.health_calls.append((upstream, target, healthy))

    def metrics(self):
        return self.metrics_value

    def node_info(self) -> dict[str, Any]:
        return {"node_id": "node-1", "pids": {"workers": [1]}}


class Client:
    def __init__(self, doc: dict[str, Any] | None = None, apply=None, persist=None) -> None:
        self.applied: list[Any] = []
        cfg = declarative.load_dict(doc or {"_format_version": "3.0"})
        self.store = ConfigStore(cfg, apply or self.applied.append, persist)
        self.gw = FakeGateway()
        self.api = AdminAPI(self.store, self.gw)

    def call(self, method: str, path: str, body: Any = None, *, form: dict | str | None = None,
             raw: bytes | None = None, ctype: str | None = None,
             headers: dict[str, str] | None = None):
        path, _, qs = path.partition("?")
        query = parse_qs(qs, keep_blank_values=True)
        hdrs = dict(headers or {})
        if form is not None:
            from urllib.parse import urlencode
            data = (form if isinstance(form, str) else urlencode(form, doseq=True)).encode()
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        elif raw is not None:
            data = raw
            hdrs["Content-Type"] = ctype or "application/json"
        elif body is not None:
            data = orjson.dumps(body)
            hdrs["Content-Type"] = "application/json"
        else:
            data = b""
        status, rh, out = asyncio.run(self.api.handle(method, path, query, hdrs, data))
        self.headers = dict(rh)
        self.raw = out
        ct = self.headers.get("Content-Type", "")
        return status, (orjson.loads(out) if out and ct.startswith("application/json") else out)
