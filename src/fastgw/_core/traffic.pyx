# Traffic counters (traffic.pxd): plain C arrays, one increment per exchange, read as a dict
# snapshot by the dashboard once a second. Counters only grow; rates and percentiles come from
# the difference of two snapshots (as Prometheus does with counters and histograms).
cimport cython
from libc.string cimport memset

#: histogram upper bounds in ms (Kong's prometheus plugin uses 1..60000 ms buckets; these are
#: finer at the low end where a gateway's own latency lives)
BUCKET_BOUNDS_MS = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0,
                    2000.0, 5000.0, 10000.0, 30000.0)

cdef double _bounds[TRAFFIC_BUCKETS - 1]
for _i, _b in enumerate(BUCKET_BOUNDS_MS):
    _bounds[_i] = _b


@cython.final
cdef class TrafficStats:
    def __cinit__(self):
        memset(self.by_status, 0, sizeof(self.by_status))
        memset(self.hist, 0, sizeof(self.hist))
        self.total = 0
        self.latency_sum_ms = 0.0

    cdef void observe(self, int status, double total_ms) noexcept:
        cdef int i = 0
        if status < 0 or status >= TRAFFIC_MAX_STATUS:
            status = 0
        self.by_status[status] += 1
        self.total += 1
        if total_ms < 0:
            return
        self.latency_sum_ms += total_ms
        while i < TRAFFIC_BUCKETS - 1 and total_ms > _bounds[i]:
            i += 1
        self.hist[i] += 1

    def add(self, int status, double total_ms=-1.0) -> None:
        self.observe(status, total_ms)

    def snapshot(self) -> dict:
        cdef int i
        return {
            "total": self.total,
            "latency_sum_ms": self.latency_sum_ms,
            "by_status": {str(i): self.by_status[i] for i in range(TRAFFIC_MAX_STATUS)
                          if self.by_status[i]},
            "hist": [self.hist[i] for i in range(TRAFFIC_BUCKETS)],
        }


def merge(snapshots) -> dict:
    """The sum of several workers' snapshots."""
    out = {"total": 0, "latency_sum_ms": 0.0, "by_status": {}, "hist": [0] * TRAFFIC_BUCKETS}
    for s in snapshots:
        out["total"] += s["total"]
        out["latency_sum_ms"] += s["latency_sum_ms"]
        for k, v in s["by_status"].items():
            out["by_status"][k] = out["by_status"].get(k, 0) + v
        for i, v in enumerate(s["hist"]):
            out["hist"][i] += v
    return out
