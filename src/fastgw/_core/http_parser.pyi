"""Strict incremental HTTP/1.1 parser (Python-visible API; the proxy uses the C API in the .pxd)."""

from typing import Final

BODY_NONE_: Final[int]
BODY_LENGTH_: Final[int]
BODY_CHUNKED_: Final[int]
BODY_UNTIL_CLOSE_: Final[int]

class HttpParseError(ValueError):
    status: int
    reason: str
    def __init__(self, status: int, reason: str) -> None: ...

class Request:
    method: bytes
    target: bytes
    version: tuple[int, int]
    headers: list[tuple[bytes, bytes]]
    keep_alive: bool
    expect_continue: bool
    upgrade: bool
    body_kind: int
    content_length: int
    def __init__(
        self,
        method: bytes,
        target: bytes,
        version: tuple[int, int],
        headers: list[tuple[bytes, bytes]],
        keep_alive: bool,
        expect_continue: bool,
        upgrade: bool,
        body_kind: int,
        content_length: int,
    ) -> None: ...

class Response:
    status: int
    reason: bytes
    version: tuple[int, int]
    headers: list[tuple[bytes, bytes]]
    keep_alive: bool
    body_kind: int
    content_length: int
    upgrade: bool
    def __init__(
        self,
        status: int,
        reason: bytes,
        version: tuple[int, int],
        headers: list[tuple[bytes, bytes]],
        keep_alive: bool,
        body_kind: int,
        content_length: int,
        upgrade: bool = False,
    ) -> None: ...

class Data:
    data: bytes
    def __init__(self, data: bytes) -> None: ...

class EndOfMessage:
    def __init__(self) -> None: ...

Event = Request | Response | Data | EndOfMessage

class HttpParser:
    max_start_line: int
    max_header_line: int
    max_head: int
    max_headers: int
    max_chunk_ext: int
    raw_chunks: bool
    def __init__(
        self,
        *,
        max_start_line: int = ...,
        max_header_line: int = ...,
        max_head: int = ...,
        max_headers: int = ...,
        max_chunk_ext: int = ...,
        raw_chunks: bool = ...,
    ) -> None: ...
    def feed(self, data: bytes | bytearray | memoryview) -> list[Event]: ...
    def feed_eof(self) -> list[Event]: ...
    @property
    def trailing_data(self) -> bytes: ...

class RequestParser(HttpParser):
    require_host: bool
    def __init__(
        self,
        *,
        require_host: bool = True,
        max_start_line: int = ...,
        max_header_line: int = ...,
        max_head: int = ...,
        max_headers: int = ...,
        max_chunk_ext: int = ...,
        raw_chunks: bool = ...,
    ) -> None: ...

class ResponseParser(HttpParser):
    def set_request_method(self, method: bytes) -> None: ...

def _bench_parse(data: bytes, n: int, response: bool = False) -> int: ...
def _probe_request(data: bytes, find: bytes = b"host", require_host: bool = False) -> dict | tuple: ...
