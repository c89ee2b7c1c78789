"""fastgw._core.ratelimit: window counters and token bucket, in one process and across forks."""
from __future__ import annotations

import os
import random

import pytest

from fastgw._core.ratelimit import (
    DENIED,
    FAIL_OPEN,
    MAX_COUNT,
    SharedCounters,
    TokenBucket,
)

SEC = 1000  # the table's ticks are ms here, like the plugin's


def test_fixed_window_counts_until_limit_and_does_not_count_denied() -> None:
    t = SharedCounters(1024)
    assert [t.hit(42, 10, 0, SEC, 3) for _ in range(5)] == [1, 2, 3, DENIED, DENIED]
    assert t.peek(42, 10, 0) == 3  # denied hits were not counted


def test_cost_and_exact_fit() -> None:
    t = SharedCounters(1024)
    assert t.hit(1, 0, 0, SEC, 10, cost=7) == 7
    assert t.hit(1, 0, 0, SEC, 10, cost=4) == DENIED
    assert t.hit(1, 0, 0, SEC, 10, cost=3) == 10
    assert t.hit(1, 0, 0, SEC, 10, cost=0) == 10
    assert t.hit(1, 0, 0, SEC, 10, cost=1) == DENIED


def test_new_window_starts_from_zero() -> None:
    t = SharedCounters(1024)
    for _ in range(3):
        t.hit(7, 100, 0, SEC, 3)
    assert t.hit(7, 100, 0, SEC, 3) == DENIED
    assert t.hit(7, SEC + 5, SEC, 2 * SEC, 3) == 1
    assert t.peek(7, SEC + 5, SEC) == 1
    assert t.peek(7, SEC + 5, 0) == 0  # the old window is gone


def test_keys_are_independent_including_zero() -> None:
    t = SharedCounters(1024)
    assert t.hit(0, 0, 0, SEC, 1) == 1
    assert t.hit(0, 0, 0, SEC, 1) == DENIED
    assert t.hit(2, 0, 0, SEC, 1) == 1
    assert t.hit(2**64 - 1, 0, 0, SEC, 1) == 1


def test_unhit_takes_back_and_never_goes_negative() -> None:
    t = SharedCounters(1024)
    t.hit(9, 0, 0, SEC, 5, cost=2)
    t.unhit(9, 0, 0, cost=1)
    assert t.peek(9, 0, 0) == 1
    t.unhit(9, 0, 0, cost=5)
    assert t.peek(9, 0, 0) == 0
    t.unhit(9, SEC, SEC, cost=1)  # another window: nothing to take back
    assert t.peek(9, SEC, SEC) == 0


def test_limit_above_32_bits_is_capped_not_wrapped() -> None:
    t = SharedCounters(64)
    assert t.hit(3, 0, 0, SEC, 2**40, cost=MAX_COUNT) == MAX_COUNT
    assert t.hit(3, 0, 0, SEC, 2**40, cost=1) == DENIED


def test_negative_cost_or_limit_is_denied() -> None:
    t = SharedCounters(64)
    assert t.hit(3, 0, 0, SEC, 5, cost=-1) == DENIED
    assert t.hit(3, 0, 0, SEC, -1) == DENIED
    assert t.hit_sliding(3, 0, 0, 5) == DENIED


def test_slots_round_up_to_power_of_two() -> None:
    assert SharedCounters(1000).slots == 1024
    assert SharedCounters(1).slots == 16
    with pytest.raises(ValueError):
        SharedCounters(0)


def test_table_full_fails_open_and_counts_overflows() -> None:
    t = SharedCounters(16)
    results = [t.hit(1000 + i, 0, 0, SEC, 5) for i in range(16 + 4)]
    assert results.count(1) == 16
    assert results.count(FAIL_OPEN) == 4
    assert t.overflows == 4
    # the failed keys were not counted anywhere: the table still holds exactly 16 keys
    assert sum(t.peek(1000 + i, 0, 0) for i in range(20)) == 16


def test_expired_slots_are_reused() -> None:
    t = SharedCounters(16)
    for i in range(16):
        assert t.hit(1000 + i, 0, 0, SEC, 5) == 1
    assert t.hit(5000, 500, 0, SEC, 5) == FAIL_OPEN  # everything still live
    # at now=SEC every first-window slot is over: new keys evict them
    for i in range(16):
        assert t.hit(2000 + i, SEC, SEC, 2 * SEC, 5) == 1
    assert t.evictions == 16
    for i in range(16):
        assert t.peek(2000 + i, SEC, SEC) == 1
        assert t.peek(1000 + i, SEC, 0) == 0
    assert t.overflows == 1


def test_live_key_keeps_its_slot_while_others_churn() -> None:
    t = SharedCounters(16)
    rng = random.Random(5)
    # one long window (a day) and many short-lived keys on the same small table
    day = 86400 * SEC
    live = 77
    allowed = 0
    now = 0
    for step in range(2000):
        now += rng.randint(0, 50)
        ws = now - now % SEC
        t.hit(rng.getrandbits(64), now, ws, ws + SEC, 100)
        if step % 10 == 0:
            r = t.hit(live, now, 0, day, 150)
            if r >= 0:
                allowed += 1
            elif r == FAIL_OPEN:
                pytest.fail("the live key lost its slot")
    assert allowed == 150  # 200 tries, exactly the limit allowed
    assert t.peek(live, now, 0) == 150


def test_sliding_window_weights_previous_window() -> None:
    t = SharedCounters(1024)
    w = 10 * SEC
    assert [t.hit_sliding(5, 1000, w, 10) for _ in range(10)][-1] == 10
    assert t.hit_sliding(5, 1000, w, 10) == DENIED
    # 25% into the next window: the previous 10 weigh 7.5 -> floor 7; 3 more fit
    now = w + w // 4
    assert t.peek_sliding(5, now, w) == 7
    assert [t.hit_sliding(5, now, w, 10) for _ in range(4)] == [8, 9, 10, DENIED]
    # two windows later the first one no longer counts; the second weighs (3 * 0.5) -> 1
    now = 2 * w + w // 2
    assert t.peek_sliding(5, now, w) == 1
    # far later: nothing
    assert t.peek_sliding(5, 10 * w, w) == 0


def test_sliding_never_exceeds_limit_over_any_window_start() -> None:
    """Over a steady stream the sum of allowed hits in any window length is bounded by about
    the limit plus the weighting error; and the estimate itself never passes the limit."""
    t = SharedCounters(1024)
    w, limit = SEC, 50
    allowed_at: list[int] = []
    for now in range(0, 10 * w, 7):
        r = t.hit_sliding(11, now, w, limit)
        assert r <= limit
        if r >= 0:
            allowed_at.append(now)
    # steady state: about `limit` per window, never more than 2x in one fixed window
    per_window = [sum(1 for a in allowed_at if k * w <= a < (k + 1) * w) for k in range(10)]
    assert per_window[0] == limit
    assert all(limit // 2 <= c <= limit for c in per_window[1:]), per_window


def _hammer(t: SharedCounters, key: int, limit: int, tries: int, sliding: bool, wfd: int) -> None:
    allowed = 0
    for _ in range(tries):
        r = t.hit_sliding(key, 500, 60 * SEC, limit) if sliding else t.hit(key, 500, 0, 60 * SEC, limit)
        if r >= 0:
            allowed += 1
        elif r == FAIL_OPEN:
            allowed += 1_000_000  # must never happen here: makes the sum fail loudly
    os.write(wfd, f"{allowed}\n".encode())
    os.close(wfd)


def _run_forked(nproc: int, target, *args) -> list[int]:
    rfd, wfd = os.pipe()
    pids = []
    for _ in range(nproc):
        pid = os.fork()
        if pid == 0:  # child
            try:
                os.close(rfd)
                target(*args, wfd)
            finally:
                os._exit(0)
        pids.append(pid)
    os.close(wfd)
    data = b""
    while True:
        chunk = os.read(rfd, 4096)
        if not chunk:
            break
        data += chunk
    os.close(rfd)
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    return [int(x) for x in data.split()]


@pytest.mark.parametrize("nproc", [2, 3, 4])
@pytest.mark.parametrize("sliding", [False, True])
def test_exact_across_forked_processes(nproc: int, sliding: bool) -> None:
    t = SharedCounters(1024)  # created before fork: shared by every child
    limit = 5000
    counts = _run_forked(nproc, _hammer, t, 1234, limit, 4000, sliding)
    assert len(counts) == nproc
    assert sum(counts) == limit  # 4000 * nproc >= 8000 tries, exactly `limit` allowed
    if sliding:
        assert t.peek_sliding(1234, 500, 60 * SEC) == limit
    else:
        assert t.peek(1234, 500, 0) == limit


def _churn(t: SharedCounters, seed: int, live_key: int, rounds: int, wfd: int) -> None:
    """Hit a live key between hits of random short-window keys that force evictions."""
    rng = random.Random(seed)
    allowed = 0
    for i in range(rounds):
        now = 1000 + i  # the short windows below end every tick: their slots are evictable
        for _ in range(3):
            t.hit(rng.getrandbits(64), now, now, now + 1, 10)
        r = t.hit(live_key, now, 0, 10**9, 300)
        if r >= 0:
            allowed += 1
        elif r == FAIL_OPEN:
            allowed += 1_000_000
    os.write(wfd, f"{allowed}\n".encode())
    os.close(wfd)


def test_exact_across_processes_under_eviction_churn() -> None:
    t = SharedCounters(32)  # tiny: the random keys keep re-keying slots around the live one
    counts = _run_forked_churn(t)
    assert len(counts) == 3
    assert sum(counts) == 300  # 1200 tries of the live key, exactly its limit allowed
    assert t.evictions > 0


def _run_forked_churn(t: SharedCounters) -> list[int]:
    rfd, wfd = os.pipe()
    pids = []
    for seed in range(3):
        pid = os.fork()
        if pid == 0:
            try:
                os.close(rfd)
                _churn(t, seed, 99, 400, wfd)
            finally:
                os._exit(0)
        pids.append(pid)
    os.close(wfd)
    data = b""
    while chunk := os.read(rfd, 4096):
        data += chunk
    os.close(rfd)
    for pid in pids:
        os.waitpid(pid, 0)
    return [int(x) for x in data.split()]


# ---- token bucket ----

def test_token_bucket_starts_full_and_refills() -> None:
    b = TokenBucket(10, 2.0)  # 10 tokens, 2 per second
    assert b.available(100.0) == 10
    assert b.consume(100.0, 10) == 10
    assert b.consume(100.0) == 0
    assert b.next_token_available(100.0) == pytest.approx(0.5)
    assert b.consume(100.5) == 1
    assert b.consume(100.5) == 0
    assert b.available(200.0) == 10  # never above max


def test_token_bucket_partial_consume() -> None:
    b = TokenBucket(5, 1.0)
    assert b.consume(0.0, 3) == 3
    assert b.consume(0.0, 5) == 0
    assert b.consume(0.0, 5, allow_partial=True) == 2
    assert b.consume(0.0, 1, allow_partial=True) == 0


def test_token_bucket_reset() -> None:
    b = TokenBucket(5, 1.0)
    b.reset(10.0, 1)
    assert b.available(10.0) == pytest.approx(1)
    assert b.consume(10.0, 2) == 0
    assert b.consume(11.0, 2) == 2


def test_token_bucket_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError):
        TokenBucket(0, 1)
    with pytest.raises(ValueError):
        TokenBucket(1, 0)


def _drain(b: TokenBucket, tries: int, wfd: int) -> None:
    got = 0
    for _ in range(tries):
        got += int(b.consume(50.0))
    os.write(wfd, f"{got}\n".encode())
    os.close(wfd)


@pytest.mark.parametrize("nproc", [2, 4])
def test_token_bucket_exact_across_processes(nproc: int) -> None:
    b = TokenBucket(3000, 1.0)
    counts = _run_forked(nproc, _drain, b, 2000)
    assert sum(counts) == 3000  # at a fixed `now`, exactly the bucket's tokens
    assert b.available(50.0) == pytest.approx(0, abs=1e-6)


def test_unhit_sliding_takes_back_from_the_current_window_only() -> None:
    t = SharedCounters(64)
    w = 10 * SEC
    assert t.hit_sliding(4, 1000, w, 10, cost=3) == 3
    t.unhit_sliding(4, 1000, w)
    assert t.peek_sliding(4, 1000, w) == 2
    # next window: the previous one is weighed, never decremented
    t.unhit_sliding(4, w + 1, w, cost=5)
    assert t.peek_sliding(4, w, w) == 2
