# The access log's compiled side: records formatted in C into a bounded buffer on the proxy's
# thread; a writer thread (fastgw.accesslog) takes the buffer and writes it to disk.
from libc.stdint cimport int64_t, uint64_t

# Kong's `headers` setting as bits of ProxyCore.headers (kong/constants.lua HEADERS)
cdef enum:
    HDR_SERVER = 1              # Server on responses the gateway makes
    HDR_VIA = 2                 # Via on proxied responses
    HDR_PROXY_LATENCY = 4       # X-Kong-Proxy-Latency
    HDR_UPSTREAM_LATENCY = 8    # X-Kong-Upstream-Latency
    HDR_RESPONSE_LATENCY = 16   # X-Kong-Response-Latency (gateway-made responses)
    HDR_REQUEST_ID = 32         # X-Kong-Request-Id
    HDR_UPSTREAM_STATUS = 64    # X-Kong-Upstream-Status
    HDR_UPSTREAM_REQUEST_ID = 128   # X-Kong-Request-Id on the upstream request (headers_upstream)

cdef double mono_ms() noexcept nogil        # CLOCK_MONOTONIC in milliseconds
cdef bytes new_request_id()                 # 32 hex digits, as nginx's $request_id


cdef class AccessLog:
    cdef char* buf                  # [0, size) holds whole lines not yet taken by the writer
    cdef Py_ssize_t cap
    cdef Py_ssize_t size
    cdef char* line                 # scratch for one line (LINE_MAX_BYTES)
    cdef Py_ssize_t n
    cdef bint json
    cdef int64_t cached_sec         # the second the cached time strings are for
    cdef char time_local[40]        # combined: 02/Dec/2026:03:04:50 +0000
    cdef char time_iso[32]          # json: 2026-12-02T03:04:50
    cdef public int64_t dropped     # lines dropped because the buffer was full
    cdef public int64_t lines       # lines accepted into the buffer

    cdef void put(self, const char* s, Py_ssize_t k) noexcept
    cdef void putc(self, char c) noexcept
    cdef void put_int(self, int64_t v) noexcept
    cdef void put_ms(self, double ms) noexcept
    cdef void put_bytes_field(self, bytes b, bint quoted, Py_ssize_t limit=*) noexcept
    cdef void put_obj(self, object v) noexcept
    cdef void refresh_time(self, int64_t sec) noexcept
    cdef void record(self, bytes client, bytes method, bytes target, int status,
                     int64_t nbytes, object route, object service, object upstream,
                     int upstream_status, double proxy_ms, double upstream_ms,
                     double total_ms, bytes request_id, object consumer, bytes referer,
                     bytes user_agent)
