# Kong's rate-limiting windows over the shared counters: the one implementation of the window
# arithmetic, the exact counting and the response headers (kong/plugins/rate-limiting/
# handler.lua), used by the Python plugin (plugins/rate_limiting.py, local policy) and by the
# compiled chain (native_ratelimit.pxi).
#
# Rules:
# - Sans-IO: counter keys (one 64-bit key per window, the caller's) and `now` are arguments.
# - Exact: a request over any of its limits is counted in none (windows already counted are
#   taken back), so N workers never allow more than a limit in a window.
# - Windows as Kong: second, minute, hour, day (UTC, epoch-aligned), month and year (UTC
#   calendar, computed here in C); `sliding` (Kong Enterprise's window_type) weighs the previous
#   window over fixed lengths (month = 30 days, year = 365 days: Kong's EXPIRATION table).
# - Headers: X-RateLimit-Limit-<Period>/X-RateLimit-Remaining-<Period> per window,
#   RateLimit-Limit/-Remaining/-Reset of the window with the least remaining (ties: the longer
#   window), Retry-After on a denial; none with hide_client_headers.
from libc.stdint cimport int64_t, uint64_t

from fastgw._core.ratelimit cimport SharedCounters

cdef enum:
    LIMITER_MAX_WINDOWS = 6     # second .. year
    LIMITER_MAX_STRIP = 16      # response header names one limiter sets
    # response header lines of one request: at most 6 windows x 2 lines + 3 lines, names under
    # 32 bytes, values under 24 digits: well under this
    LIMITER_LINES_CAP = 2048
    CAL_MONTH = 1
    CAL_YEAR = 2


ctypedef struct Buf:
    # bounded output assembly on the stack (n > cap after an overflow)
    char* p
    Py_ssize_t n
    Py_ssize_t cap


ctypedef struct LWindow:
    int64_t seconds
    int64_t count_limit         # allowed while count <= floor(limit)
    int calendar                # 0: epoch-aligned; CAL_MONTH, CAL_YEAR: UTC calendar bounds
    int64_t cal_start           # cached [start, end) of the current month/year (seconds)
    int64_t cal_end


cdef class WindowLimiter:
    cdef SharedCounters table
    cdef readonly int nw
    cdef LWindow w[LIMITER_MAX_WINDOWS]
    cdef readonly bint sliding
    cdef readonly bint hide
    cdef readonly int error_code
    cdef readonly bytes error_body      # Kong's {"message": error_message}
    cdef readonly list periods          # period names, shortest first
    cdef list limit_str                 # per window: the limit as bytes (Lua's tostring)
    cdef list lines                     # per window: (limit line, remaining prefix, names)
    cdef object on_overflow             # called with the table when it is too full to count
    cdef readonly list exit_headers     # headers of the last denial (no Content-Type)
    cdef bytes strip_blob               # lowercase response header names this limiter sets
    cdef int n_strip
    cdef Py_ssize_t strip_off[LIMITER_MAX_STRIP]
    cdef Py_ssize_t strip_len[LIMITER_MAX_STRIP]
    cdef uint64_t strip_lens            # bit n set: some name has length n (fast reject)

    cdef void bounds(self, int i, int64_t now_s, int64_t* start, int64_t* end) noexcept
    cdef int check(self, const uint64_t* keys, double now, Buf* b) except -1
    cdef int _finish(self, int nu, int* idx, int64_t* counts, int64_t* resets, int stop,
                     Buf* b) except -1
    cdef bint strip(self, const char* name, Py_ssize_t n) noexcept


cdef void buf_put(Buf* b, const char* s, Py_ssize_t n) noexcept
cdef void buf_put_int(Buf* b, int64_t v) noexcept
