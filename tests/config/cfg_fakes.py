"""A small fake plugin registry (the real one is the plugins engineer's): the config layer only
needs `get(name) -> class with a msgspec Struct Config` and unknown names -> None."""
from __future__ import annotations

from typing import Literal, Union

import msgspec

from fastgw.config import model


class RateLimitingConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    second: Union[int, None] = None
    minute: Union[int, None] = None
    hour: Union[int, None] = None
    policy: Literal["local", "redis"] = "local"
    limit_by: Literal["consumer", "ip", "header"] = "consumer"

    def __post_init__(self) -> None:
        if self.second is None and self.minute is None and self.hour is None:
            raise ValueError("at least one of these fields must be non-empty: "
                             "'config.second', 'config.minute', 'config.hour'")


class RateLimiting:
    name = "rate-limiting"
    Config = RateLimitingConfig


class KeyAuthConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    key_names: list[str] = msgspec.field(default_factory=lambda: ["apikey"])
    hide_credentials: bool = False


class KeyAuth:
    name = "key-auth"
    Config = KeyAuthConfig


class CorsConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    origins: Union[list[str], None] = None
    max_age: Union[int, None] = None


class Cors:
    name = "cors"
    Config = CorsConfig


FAKE_PLUGINS = {c.name: c for c in (RateLimiting, KeyAuth, Cors)}


def install(monkeypatch) -> None:
    monkeypatch.setattr(model, "plugin_class", lambda name: FAKE_PLUGINS.get(name))
    monkeypatch.setattr(model, "available_plugins", lambda: sorted(FAKE_PLUGINS))
