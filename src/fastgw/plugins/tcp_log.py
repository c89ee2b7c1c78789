"""tcp-log: send each request's Kong log entry as one JSON line over TCP, optionally TLS (Kong
kong/plugins/tcp-log). The entry is Kong's serializer (log_serializer.py) plus ``\\n``; the
connection is kept alive for ``keepalive`` ms. Delivery is off the request path
(_net_sender.py)."""

from __future__ import annotations

from typing import Any

import msgspec
import orjson

from ._kong_schema import check_host, check_port, reject_lua
from ._net_sender import Sender, sender_for
from .base import Plugin, PluginEnv
from .log_serializer import serialize


class TcpLogConfig(msgspec.Struct, forbid_unknown_fields=True):
    host: str
    port: int
    timeout: float = 10_000  # ms
    keepalive: float = 60_000  # ms
    tls: bool = False
    tls_sni: str | None = None
    custom_fields_by_lua: dict[str, str] | None = None

    def __post_init__(self) -> None:
        check_host("host", self.host)
        check_port("port", self.port)
        reject_lua("custom_fields_by_lua", self.custom_fields_by_lua)


class TcpLog(Plugin):
    name = "tcp-log"
    PRIORITY = 7
    Config = TcpLogConfig

    def __init__(self, config: TcpLogConfig, env: PluginEnv) -> None:
        super().__init__(config, env)
        c = config
        self._key = ("tcp-log", c.host, c.port, c.timeout, c.keepalive, c.tls, c.tls_sni)

    def _make(self, loop: Any) -> Sender:
        c = self.config
        return Sender("tcp", (c.host, c.port), loop, timeout_ms=c.timeout, keepalive_ms=c.keepalive,
                      tls=c.tls, tls_sni=c.tls_sni, name="tcp-log")

    def log(self, ctx: Any) -> None:
        s = sender_for(self._key, self._make)
        if s is not None:
            s.put(orjson.dumps(serialize(ctx)) + b"\n")
        return None
