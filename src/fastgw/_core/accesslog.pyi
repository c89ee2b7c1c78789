"""Access log records into a bounded buffer (see accesslog.pyx)."""

HEADER_BITS: dict[str, int]
UPSTREAM_HEADER_BITS: dict[str, int]
DEFAULT_HEADERS: int

import contextvars
import logging

REQUEST_ID: contextvars.ContextVar[bytes | None]

class RequestIdFilter(logging.Filter): ...

def request_id() -> bytes: ...

class AccessLog:
    dropped: int
    lines: int
    def __init__(self, fmt: str = "combined", buffer_bytes: int = ...) -> None: ...
    def take(self) -> bytes: ...
    @property
    def pending(self) -> int: ...
    def add(self, client: bytes, method: bytes | None, target: bytes | None, status: int,
            nbytes: int = 0, route: object = None, service: object = None,
            upstream: object = None, upstream_status: int = 0, proxy_ms: float = -1.0,
            upstream_ms: float = -1.0, total_ms: float = -1.0,
            request_id: bytes | None = None, consumer: object = None,
            referer: bytes | None = None, user_agent: bytes | None = None) -> None: ...
