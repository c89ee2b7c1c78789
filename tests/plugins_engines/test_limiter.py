"""The compiled rate-limit windows (fastgw._core.limiter): calendar bounds, exact counting,
Kong's headers. The plugin tests (test_rate_limiting.py) run the same kernel through the plugin."""
from __future__ import annotations

import calendar
import random
import time

import pytest

from fastgw._core.limiter import WindowLimiter, calendar_bounds
from fastgw._core.ratelimit import SharedCounters
from fastgw.plugins.rate_limiting import _Window


def _python_calendar(period: str, now_s: int) -> tuple[int, int]:
    t = time.gmtime(now_s)
    if period == "month":
        y, m = (t.tm_year + 1, 1) if t.tm_mon == 12 else (t.tm_year, t.tm_mon + 1)
        return (calendar.timegm((t.tm_year, t.tm_mon, 1, 0, 0, 0)),
                calendar.timegm((y, m, 1, 0, 0, 0)))
    return calendar.timegm((t.tm_year, 1, 1, 0, 0, 0)), calendar.timegm((t.tm_year + 1, 1, 1, 0, 0, 0))


def test_calendar_bounds_match_the_utc_calendar() -> None:
    rnd = random.Random(7)
    edges = [0, 951782399, 951782400, 1709251199, 1709251200, 4102444799]  # leap days, 2100
    for t in edges + [rnd.randint(0, 4_102_444_800) for _ in range(5000)]:
        for period in ("month", "year"):
            assert calendar_bounds(period, t) == _python_calendar(period, t), (period, t)
    with pytest.raises(ValueError):
        calendar_bounds("day", 0)


def limiter(*limits: tuple[str, float], **kw) -> WindowLimiter:
    return WindowLimiter(SharedCounters(256), [_Window(p, v, kw.get("sliding", False)) for p, v in limits],
                         **kw)


NOW = 1_700_000_000.25


def test_allowed_headers_and_exact_denial() -> None:
    lim = limiter(("second", 2), ("minute", 3))
    keys = [11, 12]
    st, hs = lim.hit(keys, NOW)
    assert st == 0 and hs == [(b"X-RateLimit-Limit-Second", b"2"), (b"X-RateLimit-Remaining-Second", b"1"),
                              (b"X-RateLimit-Limit-Minute", b"3"), (b"X-RateLimit-Remaining-Minute", b"2"),
                              (b"RateLimit-Limit", b"2"), (b"RateLimit-Remaining", b"1"),
                              (b"RateLimit-Reset", b"1")]
    assert lim.hit(keys, NOW + 0.1)[0] == 0
    st, hs = lim.hit(keys, NOW + 0.2)   # the second's third request: denied, counted nowhere
    assert st == 429 and (b"Retry-After", b"1") in hs and (b"X-RateLimit-Remaining-Second", b"0") in hs
    assert lim.error_body == b'{"message":"API rate limit exceeded"}'
    st, hs = lim.hit(keys, NOW + 1.0)   # next second: the minute still has one left
    assert st == 0 and (b"X-RateLimit-Remaining-Minute", b"0") in hs
    st, hs = lim.hit(keys, NOW + 1.1)
    assert st == 429 and (b"RateLimit-Reset", str(60 - int(NOW + 1.1) % 60).encode()) in hs


def test_hide_client_headers_and_error_code() -> None:
    lim = limiter(("minute", 1), hide=True, error_code=418, error_message="slow down")
    assert lim.hit([5], NOW) == (0, [])
    assert lim.hit([5], NOW) == (418, [])
    assert lim.error_body == b'{"message":"slow down"}'


def test_sliding_windows_weigh_the_previous_window() -> None:
    lim = limiter(("second", 4), sliding=True)
    for _ in range(4):
        assert lim.hit([9], 100.0)[0] == 0
    assert lim.hit([9], 100.5)[0] == 429            # the current window holds 4 already
    assert lim.hit([9], 101.75)[0] == 0             # the previous 4 weigh 4 * 0.25 = 1


def test_headers_for_usage_counted_elsewhere() -> None:
    lim = limiter(("second", 5), ("hour", 100))
    assert lim.headers_for([5, 7], [1, 10], 0)[0] == 429
    st, hs = lim.headers_for([2, 7], [0, 10], -1)
    assert st == 0 and (b"RateLimit-Remaining", b"3") in hs and (b"RateLimit-Reset", b"1") in hs
    assert lim.window_bounds(1, 7201) == (7200, 10800)
    with pytest.raises(ValueError):
        lim.headers_for([1], [1], -1)
