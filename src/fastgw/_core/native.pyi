"""The compiled plugin chain: key-auth / jwt / rate-limiting(local) / prometheus kernels
(see native.pxd)."""

from typing import Any, Callable

class ConsumerRecord:
    consumer: Any
    credential: Any
    index: int
    req_lines: bytes | None
    ident_consumer: bytes | None
    ident_credential: bytes | None
    def __init__(self, index: int, consumer: Any, credential: Any, identifier: str | None) -> None: ...

class Records:
    items: list[ConsumerRecord]

class KeyAuthKernel:
    keys: dict[str, tuple[Any, Any]]
    records: Records
    def __init__(self, plugin: Any) -> None: ...

class JwtKernel:
    records: Records
    def __init__(self, plugin: Any) -> None: ...

class RateLimitKernel:
    def __init__(self, plugin: Any, route: Any, service: Any) -> None: ...

class PrometheusKernel:
    def __init__(self, plugin: Any, route: Any, service: Any, records: Records | None) -> None: ...

class NativeChain:
    names: list[str]
    timed: bool
    exit_headers: list[tuple[bytes, bytes]] | None
    exit_body: bytes | None
    req_lines: bytes | None
    resp_lines: bytes | None
    def now(self) -> float: ...
    def run(
        self, head: bytes, client_ip: bytes = b"127.0.0.1", now: float | None = None
    ) -> tuple[int, bytes | None, bytes | None, list[tuple[bytes, bytes]] | None, bytes | None, int]: ...

def native_enabled() -> bool: ...
def unsupported(chain: Any, hash_spec: Any = None) -> str | None: ...
def compile_chain(
    chain: Any,
    route: Any = None,
    service: Any = None,
    *,
    hash_spec: Any = None,
    clock: Callable[[], float] | None = None,
) -> NativeChain | None: ...
