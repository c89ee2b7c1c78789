# Per-worker traffic counters for the dashboard: responses by status code and a latency
# histogram, updated once per finished exchange (Downstream.log_access).
from libc.stdint cimport int64_t

cdef enum:
    TRAFFIC_BUCKETS = 16        # latency histogram buckets (the last is +Inf)
    TRAFFIC_MAX_STATUS = 600    # status codes 0..599 (0: no response, e.g. a client abort)


cdef class TrafficStats:
    cdef int64_t by_status[TRAFFIC_MAX_STATUS]
    cdef int64_t hist[TRAFFIC_BUCKETS]
    cdef public int64_t total
    cdef public double latency_sum_ms
    cdef void observe(self, int status, double total_ms) noexcept
