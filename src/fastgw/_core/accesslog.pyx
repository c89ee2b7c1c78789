# Access log records, formatted off Python objects into one bounded buffer (accesslog.pxd).
#
# Rules:
# - record() runs on the proxy's event loop: no allocation beyond the line, no syscall, no
#   lock (the GIL orders it against take(), which the writer thread calls).
# - Bounded: a line that does not fit in the free space is dropped and counted (`dropped`);
#   proxying never waits for a disk (nginx `access_log ... buffer=` blocks the worker instead).
# - Formats: nginx's "combined" and one JSON object per line.
cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdint cimport int64_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

import contextvars
import logging
import os

cdef extern from "<time.h>" nogil:
    ctypedef long time_t
    cdef struct timespec:
        time_t tv_sec
        long tv_nsec
    cdef struct tm:
        pass
    int CLOCK_MONOTONIC
    int CLOCK_REALTIME
    int clock_gettime(int clk, timespec* ts)
    tm* gmtime_r(const time_t* t, tm* out)
    size_t strftime(char* s, size_t max, const char* fmt, const tm* t)

cdef enum:
    # Request fields (target, referer, user agent) are logged up to this many bytes, then "...";
    # names (route, service, consumer, upstream) up to NAME_MAX_BYTES. nginx logs them whole;
    # the caps keep every line under LINE_MAX_BYTES even when every byte is escaped (x6), so
    # a line is never cut (a cut JSON line would not parse)
    FIELD_MAX_BYTES = 4096
    NAME_MAX_BYTES = 256
    LINE_MAX_BYTES = 131072
    # The buffer between the proxy and the writer thread, flushed every FLUSH_INTERVAL
    # (fastgw.accesslog, 100 ms): 4 MiB holds ~20k lines, ~0.2 s at 100k requests/s
    # (nginx access_log buffer= default 64 KiB, but nginx then blocks on the write)
    DEFAULT_BUFFER_BYTES = 4194304


HEADER_BITS = {"server": HDR_SERVER, "via": HDR_VIA, "x-kong-proxy-latency": HDR_PROXY_LATENCY,
               "x-kong-upstream-latency": HDR_UPSTREAM_LATENCY,
               "x-kong-response-latency": HDR_RESPONSE_LATENCY,
               "x-kong-request-id": HDR_REQUEST_ID,
               "x-kong-upstream-status": HDR_UPSTREAM_STATUS}
#: Kong's `headers_upstream` tokens
UPSTREAM_HEADER_BITS = {"x-kong-request-id": HDR_UPSTREAM_REQUEST_ID}
#: what the proxy sent before `headers` was configurable: Server and Via only
DEFAULT_HEADERS = HDR_SERVER | HDR_VIA


cdef double mono_ms() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1000000.0


# xorshift128+ for request ids (not a secret: nginx's $request_id is random bytes too, but it
# only has to be unique); reseeded in every forked worker
cdef uint64_t _s0 = 0, _s1 = 0


def _reseed():
    global _s0, _s1
    r = os.urandom(16)
    _s0 = int.from_bytes(r[:8], "little") | 1
    _s1 = int.from_bytes(r[8:], "little") | 2


_reseed()
os.register_at_fork(after_in_child=_reseed)

cdef const char* HEX = b"0123456789abcdef"


cdef inline uint64_t _next() noexcept nogil:
    global _s0, _s1
    cdef uint64_t x = _s0
    cdef uint64_t y = _s1
    _s0 = y
    x ^= x << 23
    _s1 = x ^ y ^ (x >> 17) ^ (y >> 26)
    return _s1 + y


cdef bytes new_request_id():
    cdef char out[32]
    cdef uint64_t a = _next(), b = _next()
    cdef int i
    for i in range(16):
        out[i] = HEX[(a >> (60 - 4 * i)) & 15]
        out[16 + i] = HEX[(b >> (60 - 4 * i)) & 15]
    return PyBytes_FromStringAndSize(out, 32)


def request_id() -> bytes:
    return new_request_id()


#: the request id of the exchange whose plugin code is running (set by the proxy around each
#: plugin phase), so log lines plugins and the chain write name it (RequestIdFilter)
REQUEST_ID = contextvars.ContextVar("fastgw_request_id", default=None)


class RequestIdFilter(logging.Filter):
    """Appends ` [request_id <id>]` to records logged while a request's plugin code runs."""

    def filter(self, record):
        rid = REQUEST_ID.get()
        if rid is not None and not getattr(record, "request_id", None):
            record.request_id = rid.decode()
            record.msg = f"{record.msg} [request_id {record.request_id}]"
        return True


@cython.final
cdef class AccessLog:
    def __cinit__(self, str fmt="combined", Py_ssize_t buffer_bytes=DEFAULT_BUFFER_BYTES):
        if fmt not in ("combined", "json"):
            raise ValueError(f"access log format must be combined or json, not {fmt!r}")
        if buffer_bytes < LINE_MAX_BYTES:
            buffer_bytes = LINE_MAX_BYTES
        self.json = fmt == "json"
        self.cap = buffer_bytes
        self.buf = <char*>malloc(buffer_bytes)
        self.line = <char*>malloc(LINE_MAX_BYTES)
        if self.buf == NULL or self.line == NULL:
            raise MemoryError()
        self.size = 0
        self.cached_sec = -1

    def __dealloc__(self):
        free(self.buf)
        free(self.line)

    def take(self) -> bytes:
        """Everything recorded since the last take() (whole lines), emptying the buffer."""
        cdef bytes out = PyBytes_FromStringAndSize(self.buf, self.size)
        self.size = 0
        return out

    @property
    def pending(self) -> int:
        return self.size

    # -- line assembly (into self.line; the field caps keep it below LINE_MAX_BYTES, the
    #    checks in put/putc only guard memory) --
    cdef void put(self, const char* s, Py_ssize_t k) noexcept:
        if self.n + k > LINE_MAX_BYTES - 1:
            k = LINE_MAX_BYTES - 1 - self.n
        if k > 0:
            memcpy(self.line + self.n, s, k)
            self.n += k

    cdef void putc(self, char c) noexcept:
        if self.n < LINE_MAX_BYTES - 1:
            self.line[self.n] = c
            self.n += 1

    cdef void put_int(self, int64_t v) noexcept:
        cdef char tmp[24]
        cdef int i = 24
        cdef bint neg = v < 0
        if neg:
            v = -v
        while True:
            i -= 1
            tmp[i] = <char>(48 + v % 10)
            v //= 10
            if v == 0:
                break
        if neg:
            i -= 1
            tmp[i] = b'-'
        self.put(tmp + i, 24 - i)

    cdef void put_ms(self, double ms) noexcept:
        # milliseconds with 3 decimals (nginx $request_time has 3 decimals of seconds)
        cdef int64_t us
        if ms < 0:
            if self.json:
                self.put(b"null", 4)
            else:
                self.putc(b'-')
            return
        us = <int64_t>(ms * 1000.0 + 0.5)
        self.put_int(us // 1000)
        self.putc(b'.')
        self.putc(<char>(48 + (us // 100) % 10))
        self.putc(<char>(48 + (us // 10) % 10))
        self.putc(<char>(48 + us % 10))

    cdef void put_bytes_field(self, bytes b, bint quoted,
                              Py_ssize_t limit=FIELD_MAX_BYTES) noexcept:
        # combined: nginx escapes ", \ and bytes < 0x20 or >= 0x7f as \xHH
        # json: RFC 8259 escapes; bytes >= 0x80 as \u00HH (the field is latin-1 bytes)
        cdef const unsigned char* p
        cdef Py_ssize_t i, k
        cdef unsigned char c
        if b is None:
            if self.json:
                self.put(b"null", 4)
            else:
                self.putc(b'-')
            return
        p = <const unsigned char*>PyBytes_AS_STRING(b)
        k = PyBytes_GET_SIZE(b)
        cdef bint cut = k > limit
        if cut:
            k = limit
        if quoted:
            self.putc(b'"')
        for i in range(k):
            c = p[i]
            if c == b'"' or c == b'\\':
                self.putc(b'\\')
                self.putc(<char>c)
            elif c < 0x20 or c >= 0x7f:
                if self.json:
                    self.put(b"\\u00", 4)
                else:
                    self.put(b"\\x", 2)
                self.putc(HEX[c >> 4])
                self.putc(HEX[c & 15])
            else:
                self.putc(<char>c)
        if cut:
            self.put(b"...", 3)
        if quoted:
            self.putc(b'"')

    cdef void put_obj(self, object v) noexcept:
        if v is None:
            self.put_bytes_field(None, True)
        else:
            try:
                self.put_bytes_field(str(v).encode("utf-8", "replace"), True, NAME_MAX_BYTES)
            except Exception:
                self.put_bytes_field(None, True)

    cdef void refresh_time(self, int64_t sec) noexcept:
        cdef time_t t = <time_t>sec
        cdef tm parts
        gmtime_r(&t, &parts)
        strftime(self.time_local, 40, b"%d/%b/%Y:%H:%M:%S +0000", &parts)
        strftime(self.time_iso, 32, b"%Y-%m-%dT%H:%M:%S", &parts)
        self.cached_sec = sec

    cdef void record(self, bytes client, bytes method, bytes target, int status,
                     int64_t nbytes, object route, object service, object upstream,
                     int upstream_status, double proxy_ms, double upstream_ms,
                     double total_ms, bytes request_id, object consumer, bytes referer,
                     bytes user_agent):
        cdef timespec ts
        cdef int64_t ms
        clock_gettime(CLOCK_REALTIME, &ts)
        if ts.tv_sec != self.cached_sec:
            self.refresh_time(ts.tv_sec)
        self.n = 0
        if self.json:
            ms = ts.tv_nsec // 1000000
            self.put(b'{"time":"', 9)
            self.put(self.time_iso, 19)
            self.putc(b'.')
            self.putc(<char>(48 + ms // 100))
            self.putc(<char>(48 + (ms // 10) % 10))
            self.putc(<char>(48 + ms % 10))
            self.put(b'Z","request_id":', 16)
            self.put_bytes_field(request_id, True)
            self.put(b',"client":', 10)
            self.put_bytes_field(client, True)
            self.put(b',"method":', 10)
            self.put_bytes_field(method, True)
            self.put(b',"path":', 8)
            self.put_bytes_field(target, True)
            self.put(b',"status":', 10)
            self.put_int(status)
            self.put(b',"bytes":', 9)
            self.put_int(nbytes)
            self.put(b',"route":', 9)
            self.put_obj(route)
            self.put(b',"service":', 11)
            self.put_obj(service)
            self.put(b',"upstream_addr":', 17)
            self.put_obj(upstream)
            self.put(b',"upstream_status":', 19)
            if upstream_status > 0:
                self.put_int(upstream_status)
            else:
                self.put(b"null", 4)
            self.put(b',"latencies":{"proxy":', 22)
            self.put_ms(proxy_ms)
            self.put(b',"upstream":', 12)
            self.put_ms(upstream_ms)
            self.put(b',"total":', 9)
            self.put_ms(total_ms)
            self.put(b'},"consumer":', 13)
            self.put_obj(consumer)
            self.put(b"}", 1)
        else:
            # nginx combined: $remote_addr - $remote_user [$time_local] "$request" $status
            # $body_bytes_sent "$http_referer" "$http_user_agent"; then Kong-style extras
            self.put_bytes_field(client, False)
            self.put(b" - - [", 6)
            self.put(self.time_local, 26)
            self.put(b'] "', 3)
            if method is not None:
                self.put_bytes_field(method, False)
                self.putc(b' ')
                self.put_bytes_field(target, False)
                self.put(b' HTTP/1.1"', 10)
            else:
                self.put(b'-"', 2)
            self.putc(b' ')
            self.put_int(status)
            self.putc(b' ')
            self.put_int(nbytes)
            self.putc(b' ')
            self.put_bytes_field(referer if referer is not None else b"-", True)
            self.putc(b' ')
            self.put_bytes_field(user_agent if user_agent is not None else b"-", True)
            self.put(b" rid=", 5)
            self.put_bytes_field(request_id, False)
            self.put(b" rt=", 4)
            self.put_ms(total_ms)
        self.line[self.n] = b'\n'
        self.n += 1
        if self.size + self.n > self.cap:
            self.dropped += 1
            return
        memcpy(self.buf + self.size, self.line, self.n)
        self.size += self.n
        self.lines += 1

    def add(self, bytes client, bytes method, bytes target, int status, int64_t nbytes=0,
            route=None, service=None, upstream=None, int upstream_status=0,
            double proxy_ms=-1.0, double upstream_ms=-1.0, double total_ms=-1.0,
            bytes request_id=None, consumer=None, bytes referer=None,
            bytes user_agent=None):
        """record() for Python callers and tests."""
        self.record(client, method, target, status, nbytes, route, service, upstream,
                    upstream_status, proxy_ms, upstream_ms, total_ms, request_id, consumer,
                    referer, user_agent)
