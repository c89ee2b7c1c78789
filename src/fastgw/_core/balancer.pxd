# Load balancers of the compiled core (sans-IO: no clock, no socket; `now` is an argument).
#
# Rules:
# - A Balancer is built off the request path from a list of Targets and never changes shape:
#   the target set, weights and the hash ring are immutable. Only per-target counters
#   (in-flight, smooth-WRR running weights, latency EWMA) and health flags change, and only
#   through the methods below. A config change builds a new Balancer (health carries over by
#   target name, see fastgw.health.carry_over) and the snapshot swap replaces it atomically.
# - The hot state lives in one malloc'd C array of TargetState; pick() touches no Python
#   container and allocates nothing (it returns a borrowed-then-increfed Target).
# - pick() returns None when no target is eligible or when the upstream is down by threshold
#   (healthy weight percentage <= healthchecks.threshold); the proxy then answers
#   503 {"message":"failure to get a peer from the ring-balancer"}.
# - A target is eligible when its weight > 0 and it is healthy, or half-open with its one trial
#   request still available (picking it consumes the trial: see allow_trial()).
from cpython.object cimport PyObject
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t

cdef enum:
    # Health state of a target as seen by pick().
    TS_DOWN = 0     # unhealthy: never picked
    TS_UP = 1       # healthy
    TS_TRIAL = 2    # half-open: one trial request may be sent, then it is TS_DOWN again
    # Consistent-hashing ring density: a target of weight w gets round(w * slots / 2500) points
    # (at least 1), i.e. the ring holds `slots` points when the weights sum to 2500 (25 targets
    # of Kong's default weight 100; 400 points each with the default 10000 slots, Ketama uses
    # 160). A target's point count depends only on its own weight and `slots`, so adding or
    # removing one target moves only the keys on that target's points.
    RING_REFERENCE_WEIGHT = 2500
    # Cap on ring points (12 bytes each: 12 MiB). Above it every density is scaled down by the
    # same factor (the minimal-disruption property then holds only between rings built at the
    # same scale). Envoy caps its ring at 8M entries (maximum_ring_size), Kong at slots=65536.
    RING_MAX_POINTS = 1048576
    # Lookup index of 2**bits buckets, bits = floor(log2(points)) (1 to 20 bits: <= 4 MiB).
    RING_MAX_INDEX_BITS = 20
    # Kong's limits on target weights (targets.weight: 0-65535) and upstream slots (10-65536).
    MAX_TARGET_WEIGHT = 65535
    MIN_RING_SLOTS = 10
    MAX_RING_SLOTS = 65536


cdef struct TargetState:
    int64_t weight      # round robin: configured weight / GCD; others: configured weight
    int64_t current     # smooth WRR running weight (nginx's peer->current_weight)
    int64_t inflight    # requests sent and not finished (on_start/on_finish)
    double ewma         # latency: peak EWMA of latency in ms, 0 before the first sample
    double ewma_at      # `now` (seconds) of the last EWMA update, < 0 before the first sample
    uint8_t state       # TS_*
    uint8_t eligible    # state != TS_DOWN and weight > 0 (kept in sync by _set_state)


cdef class Balancer


cdef class Target:
    cdef readonly str host
    cdef readonly int port
    cdef readonly int weight
    cdef readonly str name          # "host:port" ("[v6]:port"), Kong's target string
    cdef readonly str id
    cdef public object pool         # the proxy's connection pool (opaque here)
    cdef public object health       # fastgw.health.TargetHealth (opaque here)
    cdef readonly bint healthy      # mirrors state == TS_UP
    cdef readonly bint trial        # mirrors state == TS_TRIAL
    cdef readonly int inflight      # mirrors TargetState.inflight
    cdef readonly Py_ssize_t index  # position in its balancer, -1 until a balancer owns it
    cdef readonly Balancer owner    # the balancer it belongs to (None until built)


cdef class Balancer:
    cdef readonly list targets      # a copy; the balancer's own order is fixed at build
    cdef readonly double threshold  # percent, healthchecks.threshold
    cdef Py_ssize_t n
    cdef TargetState* st
    cdef PyObject** objs            # borrowed references, owned by self._owned
    cdef tuple _owned
    cdef dict _by_name
    cdef int64_t total_weight       # sum of configured weights
    cdef int64_t avail_weight       # sum of configured weights of eligible targets
    cdef Py_ssize_t n_avail         # eligible targets
    cdef bint up                    # avail_weight * 100 > threshold * total_weight
    cdef Py_ssize_t cursor          # round-robin start / tie-break position

    cpdef Target pick(self, uint64_t hash_value=*, Target avoid=*)
    cpdef void on_start(self, Target t) except *
    cpdef void on_finish(self, Target t, double latency_ms, double now) except *
    cpdef void set_healthy(self, Target t, bint healthy) except *
    cpdef void allow_trial(self, Target t) except *
    cpdef bint is_up(self) noexcept
    # algorithm hooks (inline methods are final; these two are virtual on purpose)
    cdef Py_ssize_t _select(self, uint64_t hash_value, Py_ssize_t avoid) noexcept
    cdef void _sample(self, Py_ssize_t i, double latency_ms, double now) noexcept
    cdef Balancer _home(self, Target t)
    cdef void _set_state(self, Py_ssize_t i, uint8_t state) noexcept
    cdef inline Py_ssize_t _fallback(self, Py_ssize_t avoid) noexcept


cdef class RoundRobin(Balancer):
    pass


cdef class HashRing(Balancer):
    cdef readonly int slots         # upstream.slots
    cdef readonly Py_ssize_t npoints
    cdef uint64_t* points           # sorted point hashes
    cdef uint32_t* owners           # owners[i] = target index of points[i]
    # lookup index: the points whose top `index_bits` bits equal b are
    # points[index[b]:index[b + 1]], so a lookup binary-searches ~1 point instead of all
    cdef uint32_t* index
    cdef int index_shift            # 64 - index_bits
    cdef void _build_index(self) except *
    cdef inline Py_ssize_t _lower_bound(self, uint64_t h) noexcept


cdef class LeastConnections(Balancer):
    pass


cdef class Latency(Balancer):
    cdef readonly double decay      # EWMA time constant, seconds
    cdef double last_decay          # `now` of the last idle-decay sweep
