"""request-size-limiting: reject bodies larger than a limit with 413 (Kong).

With a Content-Length the check is immediate. Without one (chunked), the limit is handed to the
proxy through ``ctx.max_body_size``: the proxy counts bytes while streaming and answers 413
``Request size limit exceeded`` when they pass it, so the body is never buffered for this.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from .base import Plugin, PluginEnv, Response, field_error

# Kong's multipliers: binary units.
UNITS = {"bytes": 1, "kilobytes": 1024, "megabytes": 1024 * 1024}


class RequestSizeLimitingConfig(msgspec.Struct, forbid_unknown_fields=True):
    # Kong default 128 (megabytes).
    allowed_payload_size: int = 128
    size_unit: Literal["megabytes", "kilobytes", "bytes"] = "megabytes"
    # Reject requests without a valid Content-Length (and not chunked) with 411 (default False).
    require_content_length: bool = False

    def __post_init__(self) -> None:
        if self.allowed_payload_size < 0:
            raise field_error("allowed_payload_size", "value must be greater than or equal to 0")


class RequestSizeLimiting(Plugin):
    name = "request-size-limiting"
    PRIORITY = 951
    Config = RequestSizeLimitingConfig

    def __init__(self, config: RequestSizeLimitingConfig, env: PluginEnv) -> None:
        super().__init__(config, env)
        self.limit = config.allowed_payload_size * UNITS[config.size_unit]

    def access(self, ctx: Any) -> Response | None:
        req = ctx.request
        raw = req.get_header_bytes(b"content-length")
        if raw is not None and raw.strip().isdigit():
            if int(raw) > self.limit:
                # Kong's check_size: a client waiting for 100 Continue is told 417
                # (RFC 9110 section 10.1.1: the expectation cannot be met), others 413
                expect = req.get_header_bytes(b"expect")
                if expect is not None and expect.strip().lower() == b"100-continue":
                    return Response.message(417, "Request size limit exceeded")
                return Response.message(413, "Request size limit exceeded")
            return None
        te = req.get_header_bytes(b"transfer-encoding")
        chunked = te is not None and te.strip().lower().endswith(b"chunked")
        if self.config.require_content_length and not chunked:
            return Response.message(411, "A valid Content-Length header is required")
        if ctx.max_body_size is None or ctx.max_body_size > self.limit:
            ctx.max_body_size = self.limit
        return None
