"""Shared-memory counters, histograms and gauges for the prometheus plugin (see metrics.pxd).

Write side (request path): record(), count(), observe(), gauge_*() -> C atomics only.
Read side (scrape): counters(), histograms(), string() -> Python lists for the collector.
"""
from libc.stdint cimport int64_t, uint32_t, uint64_t


cdef inline uint64_t _pow2(uint64_t n, uint64_t lo) noexcept:
    cdef uint64_t p = lo
    while p < n:
        p <<= 1
    return p


# names of the gauge indexes (Kong's kong_nginx_connections_total{state} values and others)
GAUGES = {
    "accepted": G_CONN_ACCEPTED,
    "handled": G_CONN_HANDLED,
    "active": G_CONN_ACTIVE,
    "reading": G_CONN_READING,
    "writing": G_CONN_WRITING,
    "waiting": G_CONN_WAITING,
    "total": G_REQUESTS_TOTAL,
    "datastore_reachable": G_DATASTORE_REACHABLE,
}
METRIC_HTTP_REQUESTS = M_HTTP_REQUESTS
METRIC_BANDWIDTH = M_BANDWIDTH
METRIC_REQUEST_LATENCY = M_LAT_REQUEST
METRIC_UPSTREAM_LATENCY = M_LAT_UPSTREAM
METRIC_KONG_LATENCY = M_LAT_KONG
FLAG_STATUS = MF_STATUS
FLAG_LATENCY = MF_LATENCY
FLAG_BANDWIDTH = MF_BANDWIDTH
FLAG_SOURCE_KONG = MF_SOURCE_KONG
MAX_LABEL_BYTES = MT_STR_MAX
KONG_LATENCY_BUCKETS = tuple(mt_kong_buckets[i] for i in range(MT_N_KONG_BUCKETS))
UPSTREAM_LATENCY_BUCKETS = tuple(mt_upstream_buckets[i] for i in range(MT_N_UPSTREAM_BUCKETS))


def series_key(uint64_t metric, uint64_t service=0, uint64_t route=0, uint64_t consumer=0,
               uint64_t code=0, uint64_t flag=0) -> int:
    """Pack a series key (layout in metrics.pxd)."""
    return mt_key(metric, service, route, consumer, code, flag)


def split_key(uint64_t key) -> tuple:
    """(metric, service, route, consumer, code, flag) of a series key."""
    return (key >> 60, (key >> 44) & 0xFFFF, (key >> 28) & 0xFFFF, (key >> 12) & 0xFFFF,
            (key >> 2) & 0x3FF, (key >> 1) & 1)


cdef class SharedMetrics:
    """The node's metric tables in MAP_SHARED memory; create before forking workers.

    ``strings`` (label values), ``counters`` and ``histograms`` are slot counts, rounded up to
    powers of two; string ids are 16 bits, so at most 32768 label values.
    """

    def __cinit__(self, uint64_t strings=8192, uint64_t counters=65536, uint64_t histograms=8192):
        if strings == 0 or strings > 32768 or counters == 0 or histograms == 0:
            raise ValueError("strings must be 1..32768; counters, histograms > 0")
        if counters > (<uint64_t>1 << 26) or histograms > (<uint64_t>1 << 22):
            raise ValueError("metric tables too large")
        self.string_slots = _pow2(strings, 16)
        self.counter_slots = _pow2(counters, 64)
        self.histogram_slots = _pow2(histograms, 64)
        if not mt_map(&self._r, self.string_slots, self.counter_slots, self.histogram_slots):
            raise MemoryError("mmap of the metric tables failed")

    def __dealloc__(self):
        if self._r.h != NULL:
            mt_unmap(&self._r)

    cpdef int64_t intern(self, str value) except -3:
        """The id of a label value, the same in every process ("" -> 0). Off the request path.

        Raises ValueError when the value is longer than MAX_LABEL_BYTES UTF-8 bytes and
        OverflowError when the string table is full.
        """
        cdef bytes b = value.encode("utf-8")
        cdef int64_t r = mt_intern(&self._r, b, len(b))
        if r == -2:
            raise ValueError(f"label value longer than {MT_STR_MAX} bytes")
        if r == -1:
            raise OverflowError("metric label table is full")
        return r

    def string(self, uint64_t sid) -> str:
        """The label value of id ``sid`` ("" for 0 or unknown)."""
        cdef uint32_t n = 0
        cdef const char *p = mt_string_of(&self._r, sid, &n)
        if p == NULL:
            return ""
        return p[:n].decode("utf-8", "replace")

    cpdef void record(self, uint32_t service, uint32_t route, uint32_t consumer, uint32_t code,
                      uint32_t flags, int64_t bytes_in, int64_t bytes_out, double request_ms,
                      double upstream_ms, double kong_ms) noexcept:
        """One request as Kong's prometheus log phase sees it; ``flags`` = FLAG_* of the
        families to record (+ FLAG_SOURCE_KONG when the response did not come from the
        service). Latencies < 0 are not observed."""
        mt_record(&self._r, service, route, consumer, code, flags, bytes_in, bytes_out,
                  request_ms, upstream_ms, kong_ms)

    cpdef bint count(self, uint64_t key, uint64_t n=1) noexcept:
        return mt_count(&self._r, key, n)

    cpdef bint observe(self, uint64_t key, double ms) noexcept:
        return mt_observe(&self._r, key, ms)

    cpdef void connection_opened(self) noexcept:
        mt_gauge_add(&self._r, G_CONN_ACCEPTED, 1)
        mt_gauge_add(&self._r, G_CONN_HANDLED, 1)
        mt_gauge_add(&self._r, G_CONN_ACTIVE, 1)

    cpdef void connection_closed(self) noexcept:
        mt_gauge_add(&self._r, G_CONN_ACTIVE, -1)

    cpdef void request_started(self) noexcept:
        mt_gauge_add(&self._r, G_REQUESTS_TOTAL, 1)

    cpdef void gauge_add(self, int index, int64_t delta) noexcept:
        if 0 <= index < MT_NGAUGES:
            mt_gauge_add(&self._r, index, delta)

    cpdef void gauge_set(self, int index, int64_t value) noexcept:
        if 0 <= index < MT_NGAUGES:
            mt_gauge_set(&self._r, index, value)

    cpdef int64_t gauge(self, int index) noexcept:
        if 0 <= index < MT_NGAUGES:
            return mt_gauge_get(&self._r, index)
        return 0

    @property
    def errors(self) -> int:
        """Observations dropped because a table was full."""
        return mt_load(&self._r.h.errors)

    def counters(self) -> list:
        """[(key, value)] of every counter series (scrape time)."""
        cdef list out = []
        cdef uint64_t i, k
        for i in range(self.counter_slots):
            k = mt_load(&self._r.counters[i].key)
            if k != 0:
                out.append((k, mt_load(&self._r.counters[i].value)))
        return out

    def histograms(self) -> list:
        """[(key, count, sum_ms, (bucket counts, NOT cumulative; last = +Inf))] (scrape)."""
        cdef list out = []
        cdef uint64_t i, k
        cdef int j, nb
        cdef mt_hist *hs
        for i in range(self.histogram_slots):
            hs = &self._r.hists[i]
            k = mt_load(&hs.key)
            if k == 0:
                continue
            nb = (MT_N_KONG_BUCKETS if (k >> 60) == M_LAT_KONG else MT_N_UPSTREAM_BUCKETS) + 1
            out.append((k, mt_load(&hs.count), mt_load(&hs.sum_us) / 1000.0,
                        tuple(mt_load(&hs.buckets[j]) for j in range(nb))))
        return out

    @property
    def nbytes(self) -> int:
        return self._r.size
