"""The compiled key-auth / rate-limiting(local) / prometheus chain (see native.pxd)."""

from typing import Any, Callable

class KeyRecord:
    consumer: Any
    credential: Any
    index: int
    req_lines: bytes | None
    ident_consumer: bytes | None
    ident_credential: bytes | None

class KeyIndex:
    by_bytes: dict[bytes, KeyRecord]
    by_str: dict[str, KeyRecord]
    records: list[KeyRecord]
    def __init__(self, keys: dict[str, tuple[Any, Any]]) -> None: ...

class NativeChain:
    names: list[str]
    exit_headers: list[tuple[bytes, bytes]] | None
    exit_body: bytes | None
    req_lines: bytes | None
    resp_lines: bytes | None
    def now(self) -> float: ...
    def run(
        self, head: bytes, client_ip: bytes = b"127.0.0.1", now: float | None = None
    ) -> tuple[int, bytes | None, bytes | None, list[tuple[bytes, bytes]] | None, bytes | None, int]: ...

def key_index(plugin: Any) -> KeyIndex: ...
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
