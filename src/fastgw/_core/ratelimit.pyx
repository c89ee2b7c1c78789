"""Shared-memory rate-limit counters (fixed and sliding windows) and a GCRA token bucket.

The algorithms and the memory layout are described in ratelimit.pxd; this module wraps them in
two classes. Everything is sans-IO: `now` and window bounds are arguments, never a clock read.
"""
from libc.stdint cimport int64_t, uint64_t


cdef inline uint64_t _round_pow2(uint64_t n) noexcept:
    cdef uint64_t p = 16
    while p < n:
        p <<= 1
    return p


cdef class SharedCounters:
    """A table of window counters in MAP_SHARED memory.

    Create it before forking workers; every process then shares the counts. ``slots`` is
    rounded up to a power of two (>= 16). Time values are integer ticks, the same unit for
    every caller of one table (fastgw uses milliseconds).
    """

    def __cinit__(self, uint64_t slots=RL_DEFAULT_SLOTS):
        if slots == 0 or slots > (<uint64_t>1 << 30):
            raise ValueError("slots must be between 1 and 2**30")
        self.slots = _round_pow2(slots)
        self._h = rl_map(self.slots, &self._size)
        if self._h == NULL:
            raise MemoryError(f"mmap of {self.slots} rate-limit slots failed")

    def __dealloc__(self):
        # each process (the master and every forked worker) unmaps its own view
        if self._h != NULL:
            rl_unmap(self._h, self._size)
            self._h = NULL

    cpdef int64_t hit(self, uint64_t key, int64_t now, int64_t window_start, int64_t window_end,
                      int64_t limit, int64_t cost=1) noexcept:
        """Count ``cost`` in the fixed window [window_start, window_end) of ``key``.

        Returns the new count, -1 (RL_DENIED: it would pass ``limit``; NOT counted) or
        -2 (RL_FAIL_OPEN: no slot for the key; not counted, let the request through).
        """
        if cost < 0 or limit < 0:
            return RL_DENIED
        if limit > RL_MAX_COUNT:
            limit = RL_MAX_COUNT
        return rl_hit(self._h, key, now, window_start, window_end, limit, cost)

    cpdef void unhit(self, uint64_t key, int64_t now, int64_t window_start, int64_t cost=1) noexcept:
        """Take back ``cost`` counted by :meth:`hit` in the same window (never below 0)."""
        if cost > 0:
            rl_unhit(self._h, key, now, window_start, cost)

    cpdef int64_t peek(self, uint64_t key, int64_t now, int64_t window_start) noexcept:
        """The count of ``key`` in the fixed window starting at ``window_start`` (0 if none)."""
        return rl_peek_bucket(self._h, key, now, 0, rl_tag(window_start))

    cpdef int64_t hit_sliding(self, uint64_t key, int64_t now, int64_t window, int64_t limit,
                              int64_t cost=1) noexcept:
        """Sliding window of length ``window`` ticks ending at ``now``, estimated as
        ``floor(previous * (window - elapsed) / window) + current``.

        Returns the new estimate, -1 (denied, not counted) or -2 (fail open, not counted).
        """
        if cost < 0 or limit < 0 or window <= 0:
            return RL_DENIED
        if limit > RL_MAX_COUNT:
            limit = RL_MAX_COUNT
        return rl_hit_sliding(self._h, key, now, window, limit, cost, 1)

    cpdef int64_t peek_sliding(self, uint64_t key, int64_t now, int64_t window) noexcept:
        """The sliding estimate of ``key`` at ``now`` without counting."""
        if window <= 0:
            return 0
        return rl_hit_sliding(self._h, key, now, window, 0, 0, 0)

    cpdef void unhit_sliding(self, uint64_t key, int64_t now, int64_t window, int64_t cost=1) noexcept:
        """Take back ``cost`` counted by :meth:`hit_sliding` in the current window."""
        if cost > 0 and window > 0:
            rl_unhit_sliding(self._h, key, now, window, cost)

    @property
    def overflows(self) -> int:
        """Hits that found no slot (table full) and failed open."""
        return rl_load64(&self._h.overflows)

    @property
    def evictions(self) -> int:
        """Slots re-keyed after all their windows ended."""
        return rl_load64(&self._h.evictions)

    @property
    def contended(self) -> int:
        """Hits that failed open because a slot stayed busy (a re-key in progress)."""
        return rl_load64(&self._h.contended)

    @property
    def nbytes(self) -> int:
        return self._size


cdef class TokenBucket:
    """Envoy-style token bucket (``TokenBucketImpl(max_tokens, time_source, fill_rate)``),
    implemented as GCRA over one 64-bit word so concurrent processes update it with one CAS.

    ``now`` is seconds (float) from the caller's clock. The state lives in its own
    MAP_SHARED page: create the bucket before forking and every worker draws from it.
    A new bucket is full.
    """

    def __cinit__(self, double max_tokens, double fill_rate):
        if not (max_tokens > 0) or not (fill_rate > 0):
            raise ValueError("max_tokens and fill_rate must be > 0")
        self.max_tokens = max_tokens
        self.fill_rate = fill_rate
        self._st = rl_tb_map()
        if self._st == NULL:
            raise MemoryError("mmap of a token bucket failed")

    def __dealloc__(self):
        if self._st != NULL:
            rl_unmap(self._st, sizeof(rl_tb_state))
            self._st = NULL

    cpdef double consume(self, double now, double tokens=1.0, bint allow_partial=False) noexcept:
        """Take ``tokens``; returns the number taken (0 when not enough and not partial;
        with ``allow_partial`` the whole tokens available, up to ``tokens``)."""
        if tokens <= 0:
            return 0.0
        return rl_tb_consume(self._st, now, self.max_tokens, self.fill_rate, tokens, allow_partial)

    cpdef double available(self, double now) noexcept:
        """Tokens in the bucket at ``now`` (fractional)."""
        return rl_tb_available(self._st, now, self.max_tokens, self.fill_rate)

    cpdef double next_token_available(self, double now) noexcept:
        """Seconds until one token is available (0 when one is)."""
        return rl_tb_next(self._st, now, self.max_tokens, self.fill_rate)

    cpdef void reset(self, double now, double tokens) noexcept:
        """Set the bucket to hold ``tokens`` at ``now`` (Envoy ``maybeReset``)."""
        rl_tb_reset(self._st, now, self.max_tokens, self.fill_rate, tokens)


MAX_COUNT = RL_MAX_COUNT
DEFAULT_SLOTS = RL_DEFAULT_SLOTS
MAX_PROBE = RL_MAX_PROBE
DENIED = RL_DENIED
FAIL_OPEN = RL_FAIL_OPEN


def hit_loop(SharedCounters table, uint64_t key, int64_t n, int64_t now, int64_t window_start,
             int64_t window_end, int64_t limit, bint distinct_keys=False) -> int:
    """Call ``table.hit`` ``n`` times from C (the cost a Cython caller such as the proxy pays;
    bench/bench_ratelimit.py times it). ``distinct_keys`` uses key, key+1, ... Returns the
    number of hits allowed."""
    cdef int64_t i, allowed = 0
    cdef uint64_t k = key
    for i in range(n):
        if distinct_keys:
            k = key + <uint64_t>i
        if table.hit(k, now, window_start, window_end, limit, 1) >= 0:
            allowed += 1
    return allowed
