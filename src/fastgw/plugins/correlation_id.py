"""correlation-id: give every request an id in a header, upstream and optionally downstream (Kong).

Generators (Kong's):
- ``uuid``: a random UUID4 per request;
- ``uuid#counter``: one UUID per worker process plus a per-worker counter (cheap, unique);
- ``tracker``: ``<server_addr>-<server_port>-<pid>-<connection>-<connection_requests>-<time>``;
  fastgw has no nginx connection serials in the plugin API, so ``connection`` is a per-worker
  request counter and ``connection_requests`` is 1; the address and port come from
  ``env.settings["server_addr"]``/``["server_port"]``.
An id already present in the request header is kept (not replaced).
"""

from __future__ import annotations

import itertools
import os
import uuid
from typing import Any, Literal

import msgspec

from .base import Plugin, PluginEnv, field_error

_STATE = "correlation-id"


class _Worker:
    """Per-process uuid and counter; re-seeded after fork so workers never share ids."""

    pid = -1
    uuid = ""
    counter: Any = None

    @classmethod
    def next(cls) -> tuple[str, int]:
        pid = os.getpid()
        if pid != cls.pid:
            cls.pid = pid
            cls.uuid = str(uuid.uuid4())
            cls.counter = itertools.count(1)
        return cls.uuid, next(cls.counter)


class CorrelationIdConfig(msgspec.Struct, forbid_unknown_fields=True):
    header_name: str = "Kong-Request-ID"
    generator: Literal["uuid", "uuid#counter", "tracker"] = "uuid#counter"
    # Also send the id back to the client (default False).
    echo_downstream: bool = False

    def __post_init__(self) -> None:
        if not self.header_name:
            raise field_error("header_name", "length must be at least 1")


class CorrelationId(Plugin):
    name = "correlation-id"
    # Kong 3.8+ (PR #13581, aligned with Enterprise): before every other plugin.
    PRIORITY = 100001
    Config = CorrelationIdConfig

    def __init__(self, config: CorrelationIdConfig, env: PluginEnv) -> None:
        super().__init__(config, env)
        self._lname = config.header_name.lower().encode("latin-1")
        self._addr = str(env.settings.get("server_addr", "0.0.0.0"))
        self._port = str(env.settings.get("server_port", "0"))
        gen = config.generator
        self._generate = self._uuid if gen == "uuid" else self._counter if gen == "uuid#counter" else self._tracker

    def _uuid(self, ctx: Any) -> str:
        return str(uuid.uuid4())

    def _counter(self, ctx: Any) -> str:
        wid, n = _Worker.next()
        return f"{wid}#{n}"

    def _tracker(self, ctx: Any) -> str:
        _, n = _Worker.next()
        return f"{self._addr}-{self._port}-{os.getpid()}-{n}-1-{ctx.now:.3f}"

    def access(self, ctx: Any) -> None:
        raw = ctx.request.get_header_bytes(self._lname)
        if raw:
            cid = raw.decode("latin-1")
        else:
            cid = self._generate(ctx)
            ctx.request.set_header(self._lname, cid)
        ctx.set_serialize_value("correlation_id", cid)
        if self.config.echo_downstream:
            ctx.vars[_STATE] = cid
        return None

    def header_filter(self, ctx: Any) -> None:
        if not self.config.echo_downstream:
            return None
        cid = ctx._vars.get(_STATE) if ctx._vars else None
        if not cid:
            cid = ctx.request.get_header(self.config.header_name) or self._generate(ctx)
        ctx.response.set_header(self.config.header_name, cid)
        return None
