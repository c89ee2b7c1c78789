"""redirect: answer with a redirect to a fixed URL, optionally keeping the incoming path and
query (Kong kong/plugins/redirect). Kong's PRIORITY 779 runs it after authentication, rate
limiting and the transformers."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import msgspec

from ._kong_schema import check_between, check_url
from .base import Plugin, PluginEnv, Response

_BODY = b"redirecting"  # Kong's exit body


class RedirectConfig(msgspec.Struct, forbid_unknown_fields=True):
    location: str
    status_code: int = 301
    keep_incoming_path: bool = False

    def __post_init__(self) -> None:
        check_between("status_code", self.status_code, 100, 599)
        check_url("location", self.location)


class Redirect(Plugin):
    name = "redirect"
    PRIORITY = 779
    Config = RedirectConfig

    def __init__(self, config: RedirectConfig, env: PluginEnv) -> None:
        super().__init__(config, env)
        self._parts = urlsplit(config.location)
        self._location = config.location.encode("latin-1")

    def access(self, ctx: Any) -> Response:
        location = self._location
        if self.config.keep_incoming_path:
            p = self._parts
            req = ctx.request
            # Kong (ada): the request's path and raw query replace the location's, the
            # location's fragment stays
            location = urlunsplit(
                (p.scheme, p.netloc, req.path, req.raw_query.decode("latin-1"), p.fragment)
            ).encode("latin-1")
        return Response(self.config.status_code, _BODY, [(b"Location", location)])
