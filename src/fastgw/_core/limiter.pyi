"""Kong's rate-limiting windows over the shared counters (see limiter.pxd)."""

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from fastgw._core.ratelimit import SharedCounters

def calendar_bounds(period: str, now_s: int) -> tuple[int, int]: ...

class WindowLimiter:
    nw: int
    sliding: bool
    hide: bool
    error_code: int
    error_body: bytes
    periods: list[str]
    exit_headers: list[tuple[bytes, bytes]] | None
    def __init__(self, table: SharedCounters | None, windows: Iterable[Any], *,
                 sliding: bool = False, hide: bool = False, error_code: int = 429,
                 error_message: str = "API rate limit exceeded",
                 on_overflow: Callable[[SharedCounters], None] | None = None) -> None: ...
    def hit(self, keys: Sequence[int], now: float) -> tuple[int, list[tuple[bytes, bytes]]]: ...
    def headers_for(self, counts: Sequence[int], resets: Sequence[int],
                    stop: int) -> tuple[int, list[tuple[bytes, bytes]]]: ...
    def window_bounds(self, i: int, now_s: int) -> tuple[int, int]: ...
