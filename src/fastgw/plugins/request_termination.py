"""request-termination: answer every request (or the triggered ones) with a fixed response
(Kong kong/plugins/request-termination).

Modes, as Kong: a JSON ``{"message": ...}`` (``message`` or Kong's default text for the
status), a raw ``body`` with an optional ``content_type``, or ``echo``: a JSON copy of the
request for debugging. ``trigger`` limits the plugin to requests carrying that header (any
case) or query argument. Only ``echo`` buffers the request body (it is echoed back).
"""

from __future__ import annotations

import os
import socket
from typing import Any

import msgspec

from ._kong_schema import check_between, check_header_name
from ._util import body_kind, decode_body
from .base import Plugin, PluginEnv, Response
from .log_serializer import entity_dict

# Kong's DEFAULT_RESPONSE table (request-termination/handler.lua).
DEFAULT_RESPONSE = {
    401: "Unauthorized",
    404: "Not found",
    405: "Method not allowed",
    500: "An unexpected error occurred",
    502: "Bad Gateway",
    503: "Service unavailable",
}

_SCHEME_PORT = {"http": 80, "https": 443}


def _present(v: str | None) -> bool:
    return isinstance(v, str) and len(v) > 0


class RequestTerminationConfig(msgspec.Struct, forbid_unknown_fields=True):
    status_code: int = 503
    message: str | None = None
    content_type: str | None = None
    body: str | None = None
    echo: bool = False
    trigger: str | None = None

    def __post_init__(self) -> None:
        check_between("status_code", self.status_code, 100, 599)
        check_header_name("trigger", self.trigger)
        # Kong's custom_validator messages, reported at `config` itself.
        if _present(self.message) and (_present(self.content_type) or _present(self.body)):
            raise ValueError("message cannot be used with content_type or body")
        if _present(self.content_type) and not _present(self.body):
            raise ValueError("content_type requires a body")
        if self.echo and (_present(self.content_type) or _present(self.body)):
            raise ValueError("echo cannot be used with content_type and body")


class RequestTermination(Plugin):
    name = "request-termination"
    PRIORITY = 2
    Config = RequestTerminationConfig

    def __init__(self, config: RequestTerminationConfig, env: PluginEnv) -> None:
        super().__init__(config, env)
        self.needs_request_body = config.echo
        self._trigger = config.trigger.lower().encode("latin-1") if config.trigger else None
        status = config.status_code
        message = config.message or DEFAULT_RESPONSE.get(status)
        self._message = message
        # the fixed answer is built once; each request gets a copy (header_filter may edit it)
        if config.body is not None:
            headers = [(b"Content-Type", config.content_type.encode("latin-1"))] if config.content_type else []
            self._fixed: Response | None = Response(status, config.body, headers)
        elif message is not None:
            self._fixed = Response.message(status, message)
        else:
            self._fixed = Response(status)

    def access(self, ctx: Any) -> Response | None:
        req = ctx.request
        trigger = self._trigger
        if trigger is not None and req.get_header_bytes(trigger) is None and self.config.trigger not in req.query:
            return None  # trigger configured but absent: proxy as usual
        if self.config.echo:
            return Response.json(self.config.status_code, self._echo(ctx))
        fixed = self._fixed
        assert fixed is not None
        return Response(fixed.status, fixed.body, list(fixed.headers))

    def _echo(self, ctx: Any) -> dict[str, Any]:
        req = ctx.request
        host, _, port = req.host.partition(":")
        raw = req.get_body()
        body = decode_body(body_kind(req.get_header("content-type")), raw)
        request: dict[str, Any] = {
            "scheme": req.scheme,
            "host": host,
            "port": int(port) if port.isdigit() else _SCHEME_PORT.get(req.scheme, 80),
            "headers": req.get_headers(),
            "query": req.query,
            "raw_body": (raw or b"").decode("utf-8", "replace"),
            "method": req.method,
            "path": req.path,
            "uri_captures": ctx.uri_captures(),
        }
        if body is not None:
            request["body"] = body
        out: dict[str, Any] = {
            "kong": {
                "node_id": self.env.settings.get("node_id"),
                "worker_pid": os.getpid(),
                "hostname": socket.gethostname(),
            },
            "request": request,
        }
        if self._message is not None:
            out["message"] = self._message
        route = entity_dict(ctx.route)
        if route is not None:
            out["matched_route"] = route
        service = entity_dict(ctx.service)
        if service is not None:
            out["matched_service"] = service
        return out
