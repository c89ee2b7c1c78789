"""Shared-memory rate-limit counters and a GCRA token bucket (see ratelimit.pxd for the design)."""

DENIED: int  # -1: over the limit, not counted
FAIL_OPEN: int  # -2: no slot for the key (table full / busy), not counted: let the request through
MAX_COUNT: int  # largest limit a window can enforce (2**32 - 1)
DEFAULT_SLOTS: int
MAX_PROBE: int

class SharedCounters:
    """Fixed/sliding window counters in MAP_SHARED memory; create before forking workers.

    Time values are integer ticks in one unit for every caller of a table (fastgw: ms)."""

    slots: int
    def __init__(self, slots: int = 65536) -> None: ...
    def hit(
        self, key: int, now: int, window_start: int, window_end: int, limit: int, cost: int = 1
    ) -> int:
        """New count, DENIED (not counted) or FAIL_OPEN (not counted)."""
    def unhit(self, key: int, now: int, window_start: int, cost: int = 1) -> None: ...
    def peek(self, key: int, now: int, window_start: int) -> int: ...
    def hit_sliding(self, key: int, now: int, window: int, limit: int, cost: int = 1) -> int:
        """New weighted estimate, DENIED or FAIL_OPEN."""
    def peek_sliding(self, key: int, now: int, window: int) -> int: ...
    def unhit_sliding(self, key: int, now: int, window: int, cost: int = 1) -> None: ...
    @property
    def overflows(self) -> int: ...
    @property
    def evictions(self) -> int: ...
    @property
    def contended(self) -> int: ...
    @property
    def nbytes(self) -> int: ...

class TokenBucket:
    """Envoy-style token bucket (GCRA, one shared 64-bit word); ``now`` in seconds."""

    max_tokens: float
    fill_rate: float
    def __init__(self, max_tokens: float, fill_rate: float) -> None: ...
    def consume(self, now: float, tokens: float = 1.0, allow_partial: bool = False) -> float: ...
    def available(self, now: float) -> float: ...
    def next_token_available(self, now: float) -> float: ...
    def reset(self, now: float, tokens: float) -> None: ...

def hit_loop(
    table: SharedCounters,
    key: int,
    n: int,
    now: int,
    window_start: int,
    window_end: int,
    limit: int,
    distinct_keys: bool = False,
) -> int:
    """``n`` hits from C; returns how many were allowed (for benchmarks)."""
