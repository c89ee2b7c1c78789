# Prometheus counters, fixed-bucket histograms and gauges kept in C, in shared memory.
#
# Rules:
# - ONE mmap(MAP_SHARED|MAP_ANONYMOUS) region, created in the master before workers fork:
#   every worker adds into the same memory, so /metrics is aggregated across workers by
#   construction and any process (a worker, the admin listener) can render it.
# - Label VALUES (service, route, consumer, upstream names) are interned into the region's
#   string table (intern(): off the request path, at snapshot build). The id of a string is
#   the same in every process and across config reloads, so ids never mislabel a series.
# - The request path only does C: record() packs the ids and the status code into a 64-bit
#   series key, finds the series by open addressing (claimed once by CAS) and adds with
#   __atomic_fetch_add. No locks, no Python objects.
# - Tables full -> the observation is dropped and `errors` incremented (exported as Kong's
#   kong_nginx_metric_errors_total).
#
# Series key layout (uint64):
#   bits 60-63 metric (M_*), 44-59 service id, 28-43 route id, 12-27 consumer id,
#   2-11 status code (0-1023), bit 1 flag (source=kong for requests; egress for bandwidth).
#   String id 0 is the empty label value "".
from libc.stdint cimport int64_t, uint32_t, uint64_t


cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    #include <sched.h>
    #include <sys/mman.h>

    /* metrics (series key bits 60-63) */
    #define M_HTTP_REQUESTS 1
    #define M_BANDWIDTH 2
    #define M_LAT_REQUEST 3
    #define M_LAT_UPSTREAM 4
    #define M_LAT_KONG 5

    /* gauges (node-wide) */
    #define G_CONN_ACCEPTED 0
    #define G_CONN_HANDLED 1
    #define G_CONN_ACTIVE 2
    #define G_CONN_READING 3
    #define G_CONN_WRITING 4
    #define G_CONN_WAITING 5
    #define G_REQUESTS_TOTAL 6
    #define G_DATASTORE_REACHABLE 7
    #define MT_NGAUGES 16

    /* record() flags: which families a prometheus plugin instance exports */
    #define MF_STATUS 1
    #define MF_LATENCY 2
    #define MF_BANDWIDTH 4
    #define MF_SOURCE_KONG 8

    /* A string id is 16 bits in a series key; one entry is 256 bytes. */
    #define MT_STR_MAX 240
    #define MT_MAX_STRINGS 65535
    #define MT_NBUCKETS 16
    #define MT_PROBE 32

    typedef struct {
        uint64_t hash;      /* 0 = empty; claimed by CAS */
        uint32_t ready;     /* 1 once len/data are written (release) */
        uint32_t len;
        char data[MT_STR_MAX];
        uint64_t pad;
    } mt_string;

    typedef struct { uint64_t key; uint64_t value; } mt_counter;

    typedef struct {
        uint64_t key;
        uint64_t count;
        uint64_t sum_us;    /* sum of observations in microseconds (exact integer adds) */
        uint64_t buckets[MT_NBUCKETS];  /* NOT cumulative; the exporter accumulates */
    } mt_hist;

    typedef struct {
        uint64_t magic;
        uint64_t nstrings, ncounters, nhists;
        uint64_t errors;
        int64_t gauges[MT_NGAUGES];
        uint64_t pad[3];
    } mt_header;

    /* Kong 3.x exporter.lua: KONG_LATENCY_BUCKETS (kong_kong_latency_ms) and
       UPSTREAM_LATENCY_BUCKETS (kong_upstream_latency_ms, kong_request_latency_ms), in ms. */
    static const double mt_kong_buckets[] = {1, 2, 5, 7, 10, 15, 20, 30, 50, 75, 100, 200, 500, 750, 1000};
    static const double mt_upstream_buckets[] = {25, 50, 80, 100, 250, 400, 700, 1000, 2000, 5000, 10000, 30000, 60000};
    #define MT_N_KONG_BUCKETS 15
    #define MT_N_UPSTREAM_BUCKETS 13

    typedef struct {
        mt_header *h;
        mt_string *strings;
        mt_counter *counters;
        mt_hist *hists;
        size_t size;
    } mt_region;

    static int mt_map(mt_region *r, uint64_t nstrings, uint64_t ncounters, uint64_t nhists) {
        size_t size = sizeof(mt_header) + nstrings * sizeof(mt_string)
                    + ncounters * sizeof(mt_counter) + nhists * sizeof(mt_hist);
        void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) return 0;
        r->h = (mt_header *)p;
        r->strings = (mt_string *)(r->h + 1);
        r->counters = (mt_counter *)(r->strings + nstrings);
        r->hists = (mt_hist *)(r->counters + ncounters);
        r->size = size;
        r->h->magic = 0x6667776d65747231ull;
        r->h->nstrings = nstrings;
        r->h->ncounters = ncounters;
        r->h->nhists = nhists;
        return 1;
    }

    static void mt_unmap(mt_region *r) { if (r->h) munmap(r->h, r->size); r->h = NULL; }

    static inline uint64_t mt_mix(uint64_t x) {  /* splitmix64 finalizer */
        x ^= x >> 30; x *= 0xbf58476d1ce4e5b9ull;
        x ^= x >> 27; x *= 0x94d049bb133111ebull;
        return x ^ (x >> 31);
    }

    static uint64_t mt_hash_bytes(const char *s, size_t n) {  /* FNV-1a, then mixed */
        uint64_t h = 0xcbf29ce484222325ull;
        for (size_t i = 0; i < n; i++) { h ^= (unsigned char)s[i]; h *= 0x100000001b3ull; }
        h = mt_mix(h);
        return h ? h : 1;
    }

    /* Intern a label value: its id (1..nstrings), 0 for "", -1 table full, -2 too long. */
    static int64_t mt_intern(mt_region *r, const char *s, size_t n) {
        if (n == 0) return 0;
        if (n > MT_STR_MAX) return -2;
        uint64_t h = mt_hash_bytes(s, n), mask = r->h->nstrings - 1;
        for (uint64_t i = 0; i <= mask; i++) {
            uint64_t idx = (h + i) & mask;
            mt_string *e = &r->strings[idx];
            uint64_t cur = __atomic_load_n(&e->hash, __ATOMIC_ACQUIRE);
            if (cur == 0) {
                uint64_t zero = 0;
                if (__atomic_compare_exchange_n(&e->hash, &zero, h, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
                    memcpy(e->data, s, n);
                    e->len = (uint32_t)n;
                    __atomic_store_n(&e->ready, 1, __ATOMIC_RELEASE);
                    return (int64_t)idx + 1;
                }
                cur = zero;
            }
            if (cur != h) continue;
            for (unsigned spin = 0; !__atomic_load_n(&e->ready, __ATOMIC_ACQUIRE); spin++)
                if ((spin & 63) == 63) sched_yield();
            if (e->len == n && memcmp(e->data, s, n) == 0) return (int64_t)idx + 1;
        }
        return -1;
    }

    /* The bytes of string `id` (NULL when unknown / not ready). */
    static const char *mt_string_of(mt_region *r, uint64_t id, uint32_t *len) {
        if (id == 0 || id > r->h->nstrings) return NULL;
        mt_string *e = &r->strings[id - 1];
        if (!__atomic_load_n(&e->ready, __ATOMIC_ACQUIRE)) return NULL;
        *len = e->len;
        return e->data;
    }

    static inline uint64_t mt_key(uint64_t metric, uint64_t service, uint64_t route, uint64_t consumer,
                                  uint64_t code, uint64_t flag) {
        return (metric << 60) | ((service & 0xFFFF) << 44) | ((route & 0xFFFF) << 28)
             | ((consumer & 0xFFFF) << 12) | ((code & 0x3FF) << 2) | ((flag & 1) << 1);
    }

    static mt_counter *mt_counter_slot(mt_region *r, uint64_t key) {
        uint64_t mask = r->h->ncounters - 1, home = mt_mix(key);
        for (uint64_t i = 0; i < MT_PROBE; i++) {
            mt_counter *c = &r->counters[(home + i) & mask];
            uint64_t k = __atomic_load_n(&c->key, __ATOMIC_ACQUIRE);
            if (k == key) return c;
            if (k == 0) {
                uint64_t zero = 0;
                if (__atomic_compare_exchange_n(&c->key, &zero, key, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)
                    || zero == key)
                    return c;
            }
        }
        __atomic_fetch_add(&r->h->errors, 1, __ATOMIC_RELAXED);
        return NULL;
    }

    static inline int mt_count(mt_region *r, uint64_t key, uint64_t n) {
        mt_counter *c = mt_counter_slot(r, key);
        if (c == NULL) return 0;
        __atomic_fetch_add(&c->value, n, __ATOMIC_RELAXED);
        return 1;
    }

    static mt_hist *mt_hist_slot(mt_region *r, uint64_t key) {
        uint64_t mask = r->h->nhists - 1, home = mt_mix(key);
        for (uint64_t i = 0; i < MT_PROBE; i++) {
            mt_hist *c = &r->hists[(home + i) & mask];
            uint64_t k = __atomic_load_n(&c->key, __ATOMIC_ACQUIRE);
            if (k == key) return c;
            if (k == 0) {
                uint64_t zero = 0;
                if (__atomic_compare_exchange_n(&c->key, &zero, key, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)
                    || zero == key)
                    return c;
            }
        }
        __atomic_fetch_add(&r->h->errors, 1, __ATOMIC_RELAXED);
        return NULL;
    }

    static inline const double *mt_bounds(uint64_t metric, int *n) {
        if (metric == M_LAT_KONG) { *n = MT_N_KONG_BUCKETS; return mt_kong_buckets; }
        *n = MT_N_UPSTREAM_BUCKETS;
        return mt_upstream_buckets;
    }

    /* Observe `ms` (>= 0) in histogram `key`. Bucket i counts bounds[i-1] < ms <= bounds[i];
       bucket n counts the rest (+Inf). */
    static int mt_observe(mt_region *r, uint64_t key, double ms) {
        if (!(ms >= 0)) return 0;
        mt_hist *hs = mt_hist_slot(r, key);
        if (hs == NULL) return 0;
        int n;
        const double *b = mt_bounds(key >> 60, &n);
        int i = 0;
        while (i < n && ms > b[i]) i++;
        __atomic_fetch_add(&hs->buckets[i], 1, __ATOMIC_RELAXED);
        __atomic_fetch_add(&hs->sum_us, (uint64_t)(ms * 1000.0 + 0.5), __ATOMIC_RELAXED);
        __atomic_fetch_add(&hs->count, 1, __ATOMIC_RELAXED);
        return 1;
    }

    /* Everything Kong's prometheus log phase records for one request, in one call. Latencies
       < 0 mean "not measured" (e.g. no upstream was contacted). */
    static void mt_record(mt_region *r, uint64_t service, uint64_t route, uint64_t consumer,
                          uint64_t code, uint64_t flags, int64_t bytes_in, int64_t bytes_out,
                          double request_ms, double upstream_ms, double kong_ms) {
        if (flags & MF_STATUS)
            mt_count(r, mt_key(M_HTTP_REQUESTS, service, route, consumer, code,
                               (flags & MF_SOURCE_KONG) ? 1 : 0), 1);
        if (flags & MF_BANDWIDTH) {
            if (bytes_in > 0) mt_count(r, mt_key(M_BANDWIDTH, service, route, consumer, 0, 0), (uint64_t)bytes_in);
            if (bytes_out > 0) mt_count(r, mt_key(M_BANDWIDTH, service, route, consumer, 0, 1), (uint64_t)bytes_out);
        }
        if (flags & MF_LATENCY) {
            if (request_ms >= 0) mt_observe(r, mt_key(M_LAT_REQUEST, service, route, 0, 0, 0), request_ms);
            if (upstream_ms >= 0) mt_observe(r, mt_key(M_LAT_UPSTREAM, service, route, 0, 0, 0), upstream_ms);
            if (kong_ms >= 0) mt_observe(r, mt_key(M_LAT_KONG, service, route, 0, 0, 0), kong_ms);
        }
    }

    static inline void mt_gauge_add(mt_region *r, int i, int64_t d) {
        __atomic_fetch_add(&r->h->gauges[i], d, __ATOMIC_RELAXED);
    }
    static inline void mt_gauge_set(mt_region *r, int i, int64_t v) {
        __atomic_store_n(&r->h->gauges[i], v, __ATOMIC_RELAXED);
    }
    static inline int64_t mt_gauge_get(mt_region *r, int i) {
        return __atomic_load_n(&r->h->gauges[i], __ATOMIC_RELAXED);
    }
    static inline uint64_t mt_load(uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
    """
    enum:
        M_HTTP_REQUESTS
        M_BANDWIDTH
        M_LAT_REQUEST
        M_LAT_UPSTREAM
        M_LAT_KONG
        G_CONN_ACCEPTED
        G_CONN_HANDLED
        G_CONN_ACTIVE
        G_CONN_READING
        G_CONN_WRITING
        G_CONN_WAITING
        G_REQUESTS_TOTAL
        G_DATASTORE_REACHABLE
        MT_NGAUGES
        MF_STATUS
        MF_LATENCY
        MF_BANDWIDTH
        MF_SOURCE_KONG
        MT_STR_MAX
        MT_MAX_STRINGS
        MT_NBUCKETS
        MT_N_KONG_BUCKETS
        MT_N_UPSTREAM_BUCKETS

    ctypedef struct mt_header:
        uint64_t nstrings
        uint64_t ncounters
        uint64_t nhists
        uint64_t errors

    ctypedef struct mt_counter:
        uint64_t key
        uint64_t value

    ctypedef struct mt_hist:
        uint64_t key
        uint64_t count
        uint64_t sum_us
        uint64_t buckets[16]

    ctypedef struct mt_region:
        mt_header *h
        mt_counter *counters
        mt_hist *hists
        size_t size

    const double *mt_kong_buckets
    const double *mt_upstream_buckets

    int mt_map(mt_region *r, uint64_t nstrings, uint64_t ncounters, uint64_t nhists) nogil
    void mt_unmap(mt_region *r) nogil
    int64_t mt_intern(mt_region *r, const char *s, size_t n) nogil
    const char *mt_string_of(mt_region *r, uint64_t id, uint32_t *len) nogil
    uint64_t mt_key(uint64_t metric, uint64_t service, uint64_t route, uint64_t consumer,
                    uint64_t code, uint64_t flag) nogil
    int mt_count(mt_region *r, uint64_t key, uint64_t n) nogil
    int mt_observe(mt_region *r, uint64_t key, double ms) nogil
    void mt_record(mt_region *r, uint64_t service, uint64_t route, uint64_t consumer,
                   uint64_t code, uint64_t flags, int64_t bytes_in, int64_t bytes_out,
                   double request_ms, double upstream_ms, double kong_ms) nogil
    void mt_gauge_add(mt_region *r, int i, int64_t d) nogil
    void mt_gauge_set(mt_region *r, int i, int64_t v) nogil
    int64_t mt_gauge_get(mt_region *r, int i) nogil
    uint64_t mt_load(uint64_t *p) nogil


cdef class SharedMetrics:
    cdef mt_region _r
    cdef readonly uint64_t string_slots
    cdef readonly uint64_t counter_slots
    cdef readonly uint64_t histogram_slots

    cpdef int64_t intern(self, str value) except -3
    cpdef void record(self, uint32_t service, uint32_t route, uint32_t consumer, uint32_t code,
                      uint32_t flags, int64_t bytes_in, int64_t bytes_out, double request_ms,
                      double upstream_ms, double kong_ms) noexcept
    cpdef bint count(self, uint64_t key, uint64_t n=*) noexcept
    cpdef bint observe(self, uint64_t key, double ms) noexcept
    # connection/request gauges for the proxy (Kong's kong_nginx_connections_total states)
    cpdef void connection_opened(self) noexcept
    cpdef void connection_closed(self) noexcept
    cpdef void request_started(self) noexcept
    cpdef void gauge_add(self, int index, int64_t delta) noexcept
    cpdef void gauge_set(self, int index, int64_t value) noexcept
    cpdef int64_t gauge(self, int index) noexcept
