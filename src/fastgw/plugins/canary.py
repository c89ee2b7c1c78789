"""canary: send a share of the traffic of a route/service to another upstream (gray release).

fastgw's own take on Kong Enterprise's canary plugin: the request goes to ``upstream`` when
- ``header`` is configured and the request carries it (with ``header_value`` when that is set:
  a forced opt-in, e.g. ``X-Canary: always``), or
- its bucket falls below ``percentage``. The bucket is random per request (``hash: none``) or a
  stable hash of the consumer id (``consumer``; falls back to the client IP for anonymous
  requests, as Kong's canary) or of the client IP (``ip``), so a given user keeps seeing the
  same version while the percentage stays the same, and raising it only adds users.

Buckets: xxh32 of the key modulo 10000, compared with ``percentage * 100`` (0.01% steps).
"""

from __future__ import annotations

import random
from typing import Any, Literal

import msgspec
import xxhash

from .base import Plugin, PluginEnv, field_error

BUCKETS = 10_000


class CanaryConfig(msgspec.Struct, forbid_unknown_fields=True):
    # Name of the upstream entity receiving the canary share (required).
    upstream: str
    # Share of requests, 0..100 (default 0: only the header opt-in routes to the canary).
    percentage: float = 0.0
    # Request header forcing the canary (None: no header opt-in).
    header: str | None = None
    # Required value of `header` (None: any value).
    header_value: str | None = None
    hash: Literal["none", "consumer", "ip"] = "none"

    def __post_init__(self) -> None:
        if not 0 <= self.percentage <= 100:
            raise field_error("percentage", "value should be between 0 and 100")
        if not self.upstream:
            raise field_error("upstream", "length must be at least 1")
        if self.header_value is not None and not self.header:
            raise field_error("header", "required when header_value is set")


class Canary(Plugin):
    name = "canary"
    # Kong Enterprise's canary priority: after auth and rate limiting, before logging.
    PRIORITY = 20
    Config = CanaryConfig

    def __init__(self, config: CanaryConfig, env: PluginEnv) -> None:
        super().__init__(config, env)
        known = env.upstream_names()
        if env.upstreams and config.upstream not in known:
            raise ValueError(f"upstream '{config.upstream}' does not exist - at `$.upstream`")
        self._threshold = int(round(config.percentage * 100))
        self._header = config.header.lower().encode("latin-1") if config.header else None
        self._rand = random.Random()

    def bucket(self, ctx: Any) -> int:
        mode = self.config.hash
        if mode == "none":
            return self._rand.randrange(BUCKETS)
        key = None
        if mode == "consumer" and ctx.consumer is not None:
            key = str(getattr(ctx.consumer, "id", "") or "")
        if not key:
            key = ctx.client_ip
        return xxhash.xxh32_intdigest(key.encode("utf-8")) % BUCKETS

    def access(self, ctx: Any) -> None:
        conf = self.config
        if self._header is not None:
            v = ctx.request.get_header_bytes(self._header)
            if v is not None and (conf.header_value is None or v.decode("latin-1") == conf.header_value):
                ctx.set_upstream(conf.upstream)
                return None
        if self._threshold and self.bucket(ctx) < self._threshold:
            ctx.set_upstream(conf.upstream)
        return None
