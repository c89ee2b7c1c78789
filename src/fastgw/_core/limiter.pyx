# Kong's rate-limiting windows over the shared counters (rules in limiter.pxd).
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdint cimport int64_t, uint64_t
from libc.string cimport memcpy

from fastgw._core.ascii cimport ieq_lower
from fastgw._core.ratelimit cimport RL_FAIL_OPEN, SharedCounters

import orjson


cdef void buf_put(Buf* b, const char* s, Py_ssize_t n) noexcept:
    if b.n + n <= b.cap:
        memcpy(b.p + b.n, s, n)
    b.n += n   # an overflow shows as n > cap (checked by the caller)


cdef inline void _putb(Buf* b, bytes s) noexcept:
    buf_put(b, PyBytes_AS_STRING(s), PyBytes_GET_SIZE(s))


cdef void buf_put_int(Buf* b, int64_t v) noexcept:
    # Python's str(int) for the values headers carry
    cdef char tmp[24]
    cdef int i = 24
    cdef bint neg = v < 0
    if neg:
        v = -v
    if v == 0:
        buf_put(b, b"0", 1)
        return
    while v > 0:
        i -= 1
        tmp[i] = <char>(48 + v % 10)
        v //= 10
    if neg:
        i -= 1
        tmp[i] = b'-'
    buf_put(b, tmp + i, 24 - i)


# ------------------------------------------------------------------------- UTC calendar
# Howard Hinnant's days_from_civil / civil_from_days (proleptic Gregorian, day 0 = 1970-01-01):
# the month and year windows without a Python call (Kong's timestamp.get_timestamps: UTC).

cdef inline int64_t _days_from_civil(int64_t y, int64_t m, int64_t d) noexcept:
    cdef int64_t era, yoe, doy, doe
    if m <= 2:
        y -= 1
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


cdef inline void _civil_from_days(int64_t z, int64_t* y, int64_t* m) noexcept:
    cdef int64_t era, doe, yoe, doy, mp
    z += 719468
    era = (z if z >= 0 else z - 146096) // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    m[0] = mp + (3 if mp < 10 else -9)
    y[0] = yoe + era * 400 + (1 if m[0] <= 2 else 0)


cdef void _calendar(bint month, int64_t now_s, int64_t* start, int64_t* end) noexcept:
    cdef int64_t y, m, days = now_s // 86400 if now_s >= 0 else -((-now_s + 86399) // 86400)
    _civil_from_days(days, &y, &m)
    if month:
        start[0] = _days_from_civil(y, m, 1) * 86400
        end[0] = (_days_from_civil(y + 1, 1, 1) if m == 12 else _days_from_civil(y, m + 1, 1)) * 86400
    else:
        start[0] = _days_from_civil(y, 1, 1) * 86400
        end[0] = _days_from_civil(y + 1, 1, 1) * 86400


def calendar_bounds(str period, int64_t now_s):
    """UTC [start, end) in seconds of the month or year containing ``now_s``."""
    cdef int64_t start, end
    if period not in ("month", "year"):
        raise ValueError("calendar windows are month and year")
    _calendar(period == "month", now_s, &start, &end)
    return start, end


# -------------------------------------------------------------------------------------------

cdef class WindowLimiter:
    """The windows of one rate-limiting plugin instance over a SharedCounters table."""

    def __init__(self, SharedCounters table, windows, *, bint sliding=False, bint hide=False,
                 int error_code=429, str error_message="API rate limit exceeded",
                 on_overflow=None):
        """``windows``: the plugin's windows, shortest first, each with ``period``,
        ``seconds``, ``count_limit``, ``calendar``, ``limit_str``, ``limit_header`` and
        ``remaining_header``."""
        cdef int i
        windows = list(windows)
        if not 0 < len(windows) <= LIMITER_MAX_WINDOWS:
            raise ValueError(f"a rate limiter has 1 to {LIMITER_MAX_WINDOWS} windows")
        self.table = table
        self.nw = len(windows)
        self.sliding = sliding
        self.hide = hide
        self.error_code = error_code
        self.error_body = orjson.dumps({"message": error_message})
        self.on_overflow = on_overflow
        self.periods = []
        self.limit_str = []
        self.lines = []
        names = []
        for i, win in enumerate(windows):
            self.w[i].seconds = win.seconds
            self.w[i].count_limit = win.count_limit
            # sliding windows have fixed lengths, month and year included
            self.w[i].calendar = 0 if sliding or not win.calendar else (
                CAL_MONTH if win.period == "month" else CAL_YEAR)
            self.w[i].cal_start = 0
            self.w[i].cal_end = 0
            self.periods.append(win.period)
            limit = win.limit_str.encode()
            lh = win.limit_header.encode("latin-1")
            rh = win.remaining_header.encode("latin-1")
            self.limit_str.append(limit)
            self.lines.append((lh + b": " + limit + b"\r\n", rh + b": ", lh, rh))
            names += [lh.lower(), rh.lower()]
        names += [b"ratelimit-limit", b"ratelimit-remaining", b"ratelimit-reset"]
        names = list(dict.fromkeys(names))
        if len(names) > LIMITER_MAX_STRIP:
            raise ValueError("a rate limiter sets too many response headers")
        self.strip_blob = b"".join(names)
        self.n_strip = len(names)
        off = 0
        self.strip_lens = 0
        for i, name in enumerate(names):
            self.strip_off[i] = off
            self.strip_len[i] = len(name)
            self.strip_lens |= (<uint64_t>1) << len(name)
            off += len(name)

    cdef void bounds(self, int i, int64_t now_s, int64_t* start, int64_t* end) noexcept:
        # [start, end) in seconds of fixed window i at now_s
        cdef LWindow* w = &self.w[i]
        if w.calendar:
            if not (w.cal_start <= now_s < w.cal_end):
                _calendar(w.calendar == CAL_MONTH, now_s, &w.cal_start, &w.cal_end)
            start[0] = w.cal_start
            end[0] = w.cal_end
            return
        start[0] = now_s - now_s % w.seconds
        end[0] = start[0] + w.seconds

    cdef int check(self, const uint64_t* keys, double now, Buf* b) except -1:
        """Count one request in every window (keys[i]: window i's counter key). 0: allowed
        (the response header lines are appended to b); else the status of the denial
        (exit_headers, error_body)."""
        cdef int64_t now_ms = <int64_t>(now * 1000.0)
        cdef int64_t now_s = now_ms // 1000
        cdef int64_t start = 0, end, res, reset, ms
        cdef int64_t counts[LIMITER_MAX_WINDOWS]
        cdef int64_t resets[LIMITER_MAX_WINDOWS]
        cdef int64_t args[LIMITER_MAX_WINDOWS]
        cdef int idx[LIMITER_MAX_WINDOWS]
        cdef bint counted[LIMITER_MAX_WINDOWS]
        cdef int nu = 0, stop = -1, i, u
        cdef SharedCounters table = self.table
        for i in range(self.nw):
            ms = self.w[i].seconds * 1000
            if self.sliding:
                reset = self.w[i].seconds - (now_ms % ms) // 1000
            else:
                self.bounds(i, now_s, &start, &end)
                start *= 1000
                reset = end - now_s
            if reset < 1:
                reset = 1
            if stop >= 0:
                # after a denial: the other windows' usage without counting (Kong shows all)
                res = table.peek_sliding(keys[i], now_ms, ms) if self.sliding \
                    else table.peek(keys[i], now_ms, start)
                idx[nu] = i
                counts[nu] = res
                resets[nu] = reset
                counted[nu] = False
                nu += 1
                continue
            if self.sliding:
                res = table.hit_sliding(keys[i], now_ms, ms, self.w[i].count_limit, 1)
            else:
                res = table.hit(keys[i], now_ms, start, end * 1000, self.w[i].count_limit, 1)
            if res == RL_FAIL_OPEN:
                # the table is too full to host the key: let the request through uncounted
                if self.on_overflow is not None:
                    self.on_overflow(table)
                continue
            idx[nu] = i
            resets[nu] = reset
            args[nu] = ms if self.sliding else start
            if res < 0:
                # denied: the current usage, without this request
                stop = i
                counts[nu] = table.peek_sliding(keys[i], now_ms, ms) if self.sliding \
                    else table.peek(keys[i], now_ms, start)
                counted[nu] = False
            else:
                counts[nu] = res
                counted[nu] = True
            nu += 1
        if stop >= 0:
            # exactness: a denied request counts in no window
            for u in range(nu):
                if counted[u]:
                    if self.sliding:
                        table.unhit_sliding(keys[idx[u]], now_ms, args[u], 1)
                    else:
                        table.unhit(keys[idx[u]], now_ms, args[u], 1)
                    counts[u] -= 1
        return self._finish(nu, idx, counts, resets, stop, b)

    cdef int _finish(self, int nu, int* idx, int64_t* counts, int64_t* resets, int stop,
                     Buf* b) except -1:
        cdef int u, i, best = -1
        cdef int64_t remaining, best_remaining = 0, reset = 0
        cdef list headers = None
        if stop >= 0:
            headers = []
        if not self.hide and nu > 0:
            for u in range(nu):
                i = idx[u]
                # allowed: the count includes this request; the stopping window shows 0
                remaining = self.w[i].count_limit - counts[u] if i != stop else 0
                if remaining < 0:
                    remaining = 0
                limit_line, rem_prefix, lh, rh = <tuple>self.lines[i]
                if headers is not None:
                    headers.append((lh, <bytes>self.limit_str[i]))
                    headers.append((rh, str(remaining).encode()))
                else:
                    _putb(b, limit_line)
                    _putb(b, rem_prefix)
                    buf_put_int(b, remaining)
                    buf_put(b, b"\r\n", 2)
                if best < 0 or remaining < best_remaining or (
                        remaining == best_remaining and self.w[i].seconds > self.w[best].seconds):
                    best = i
                    best_remaining = remaining
                    reset = resets[u]
            if headers is not None:
                headers.append((b"RateLimit-Limit", <bytes>self.limit_str[best]))
                headers.append((b"RateLimit-Remaining", str(best_remaining).encode()))
                headers.append((b"RateLimit-Reset", str(reset).encode()))
                headers.append((b"Retry-After", str(reset).encode()))
            else:
                buf_put(b, b"RateLimit-Limit: ", 17)
                _putb(b, <bytes>self.limit_str[best])
                buf_put(b, b"\r\nRateLimit-Remaining: ", 23)
                buf_put_int(b, best_remaining)
                buf_put(b, b"\r\nRateLimit-Reset: ", 19)
                buf_put_int(b, reset)
                buf_put(b, b"\r\n", 2)
        if stop >= 0:
            self.exit_headers = headers
            return self.error_code
        if b.n > b.cap:
            raise OverflowError("rate-limiting response headers too long")
        return 0

    cdef bint strip(self, const char* name, Py_ssize_t n) noexcept:
        """The upstream's response lines this limiter's headers replace (set_header)."""
        cdef int i
        if n >= 64 or not (self.strip_lens & (<uint64_t>1 << n)):
            return False
        for i in range(self.n_strip):
            if self.strip_len[i] == n and ieq_lower(name, PyBytes_AS_STRING(self.strip_blob)
                                               + self.strip_off[i], n):
                return True
        return False

    # ------------------------------------------------------------- Python API
    def hit(self, keys, double now):
        """Count one request (``keys``: one counter key per window): (0, response headers)
        when allowed, else (error status, response headers of the denial)."""
        cdef uint64_t k[LIMITER_MAX_WINDOWS]
        cdef char lines[LIMITER_LINES_CAP]
        cdef Buf b
        cdef int i, st
        if len(keys) != self.nw:
            raise ValueError("one key per window")
        for i in range(self.nw):
            k[i] = keys[i]
        b.p = lines
        b.n = 0
        b.cap = LIMITER_LINES_CAP
        st = self.check(k, now, &b)
        if st:
            return st, list(self.exit_headers)
        return 0, _pairs(PyBytes_FromStringAndSize(b.p, b.n))

    def headers_for(self, counts, resets, int stop):
        """The response headers (and status) for usage counted elsewhere (the redis policy):
        per window its count and reset seconds; ``stop`` the denying window or -1."""
        cdef int64_t c[LIMITER_MAX_WINDOWS]
        cdef int64_t r[LIMITER_MAX_WINDOWS]
        cdef int idx[LIMITER_MAX_WINDOWS]
        cdef char lines[LIMITER_LINES_CAP]
        cdef Buf b
        cdef int i, st
        if len(counts) != self.nw or len(resets) != self.nw:
            raise ValueError("one count and one reset per window")
        for i in range(self.nw):
            c[i] = counts[i]
            r[i] = max(1, resets[i])
            idx[i] = i
        b.p = lines
        b.n = 0
        b.cap = LIMITER_LINES_CAP
        st = self._finish(self.nw, idx, c, r, stop, &b)
        if st:
            return st, list(self.exit_headers)
        return 0, _pairs(PyBytes_FromStringAndSize(b.p, b.n))

    def window_bounds(self, int i, int64_t now_s):
        """[start, end) in seconds of fixed window i at now_s."""
        cdef int64_t start, end
        if not 0 <= i < self.nw:
            raise IndexError(i)
        self.bounds(i, now_s, &start, &end)
        return start, end


cdef list _pairs(bytes lines):
    cdef list out = []
    for line in lines.split(b"\r\n"):
        if line:
            name, _, value = line.partition(b": ")
            out.append((name, value))
    return out
