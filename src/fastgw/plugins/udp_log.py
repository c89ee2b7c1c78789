"""udp-log: send each request's Kong log entry as one JSON datagram (Kong
kong/plugins/udp-log). Delivery is off the request path (_net_sender.py)."""

from __future__ import annotations

from typing import Any

import msgspec
import orjson

from ._kong_schema import check_host, check_port, reject_lua
from ._net_sender import Sender, sender_for
from .base import Plugin, PluginEnv
from .log_serializer import serialize


class UdpLogConfig(msgspec.Struct, forbid_unknown_fields=True):
    host: str
    port: int
    timeout: float = 10_000  # ms
    custom_fields_by_lua: dict[str, str] | None = None

    def __post_init__(self) -> None:
        check_host("host", self.host)
        check_port("port", self.port)
        reject_lua("custom_fields_by_lua", self.custom_fields_by_lua)


class UdpLog(Plugin):
    name = "udp-log"
    PRIORITY = 8
    Config = UdpLogConfig

    def __init__(self, config: UdpLogConfig, env: PluginEnv) -> None:
        super().__init__(config, env)
        self._key = ("udp-log", config.host, config.port, config.timeout)

    def _make(self, loop: Any) -> Sender:
        c = self.config
        return Sender("udp", (c.host, c.port), loop, timeout_ms=c.timeout, name="udp-log")

    def log(self, ctx: Any) -> None:
        s = sender_for(self._key, self._make)
        if s is not None:
            s.put(orjson.dumps(serialize(ctx)))
        return None
