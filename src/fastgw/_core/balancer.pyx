"""Load balancing algorithms (Kong's upstream algorithms), compiled; see balancer.pxd for the rules.

- RoundRobin: smooth weighted round robin, nginx's algorithm (ngx_http_upstream_round_robin.c,
  ngx_http_upstream_get_peer): every pick adds each eligible target's weight to its running
  weight, takes the largest, and subtracts the total from the winner. Weights are reduced by
  their GCD first (as Kong's round_robin.lua does); for 5,1,1 the sequence is a a b a c a a.
- HashRing: Ketama-style consistent hashing. Each target owns points xxh64("host:port#i"),
  i = 0..k-1, k proportional to its weight (RING_REFERENCE_WEIGHT); a key goes to the owner of
  the first point >= its hash (binary search over a sorted C array), walking clockwise past
  points of ineligible targets.
- LeastConnections: weighted, the smallest (inflight + 1) / weight wins; ties go round robin.
- Latency: peak EWMA (Finagle's PeakEwma, Linkerd's PeakEwma balancer): a latency sample above
  the average replaces it at once, below it is mixed in with weight 1 - exp(-dt / decay); idle
  targets decay towards 0 so a target that was slow once is tried again. The smallest
  ewma * (inflight + 1) wins; ties (and unsampled targets, ewma 0) go round robin.
"""
from cpython.object cimport PyObject
from libc.math cimport exp
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc, qsort
from libc.string cimport memcpy

from fastgw._core.hashing cimport xxh64


cdef inline int64_t _gcd(int64_t a, int64_t b) noexcept:
    cdef int64_t t
    while b:
        t = a % b
        a = b
        b = t
    return a


cdef class Target:
    """One upstream target ("host:port", weight). Belongs to at most one Balancer."""

    def __init__(self, str host not None, int port, int weight=100, str id=None,
                 str name=None):
        if not host:
            raise ValueError("target host must not be empty")
        if not 0 < port <= 65535:
            raise ValueError(f"target port must be 1-65535, got {port}")
        if not 0 <= weight <= MAX_TARGET_WEIGHT:
            raise ValueError(f"target weight must be 0-{MAX_TARGET_WEIGHT}, got {weight}")
        self.host = host
        self.port = port
        self.weight = weight
        self.id = id
        # Kong writes IPv6 targets as "[::1]:8080"; in-process targets pass their own name
        # ("asgi:billing", as written in the config)
        if name is not None:
            self.name = name
        else:
            self.name = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.healthy = True
        self.trial = False
        self.inflight = 0
        self.index = -1

    def __repr__(self):
        state = "healthy" if self.healthy else ("trial" if self.trial else "unhealthy")
        return f"<Target {self.name} weight={self.weight} {state} inflight={self.inflight}>"


cdef class Balancer:
    """Base class: the target table, health flags, in-flight counters and threshold.

    Not used directly; build RoundRobin, HashRing, LeastConnections or Latency.
    """
    algorithm = None

    def __cinit__(self, *args, **kwargs):
        self.st = NULL
        self.objs = NULL
        self.n = 0

    def __init__(self, targets, *, double threshold=0.0):
        cdef Py_ssize_t i
        cdef Target t
        cdef list lst = list(targets)
        if self.st != NULL:
            raise RuntimeError("a balancer is immutable: build a new one")
        if type(self) is Balancer:
            raise TypeError("Balancer is abstract: use RoundRobin, HashRing, LeastConnections "
                            "or Latency")
        if not 0.0 <= threshold <= 100.0:
            raise ValueError(f"threshold must be 0-100 (percent), got {threshold}")
        by_name = {}
        for t in lst:  # typed loop variable: rejects anything that is not a Target
            if t.index != -1:
                raise ValueError(f"target {t.name} already belongs to a balancer; "
                                 "build new Targets")
            if t.name in by_name:
                raise ValueError(f"duplicate target {t.name}")
            by_name[t.name] = t
        self.n = len(lst)
        self._owned = tuple(lst)
        self.targets = lst
        self._by_name = by_name
        self.threshold = threshold
        self.st = <TargetState*>malloc(max(self.n, 1) * sizeof(TargetState))
        self.objs = <PyObject**>malloc(max(self.n, 1) * sizeof(PyObject*))
        if self.st == NULL or self.objs == NULL:
            raise MemoryError()
        self.total_weight = 0
        self.avail_weight = 0
        self.n_avail = 0
        self.cursor = 0
        for i in range(self.n):
            t = <Target>self._owned[i]
            self.objs[i] = <PyObject*>t
            self.st[i].weight = t.weight
            self.st[i].current = 0
            self.st[i].inflight = 0
            self.st[i].ewma = 0.0
            self.st[i].ewma_at = -1.0
            self.st[i].state = TS_UP
            self.st[i].eligible = t.weight > 0
            self.total_weight += t.weight
            if t.weight > 0:
                self.avail_weight += t.weight
                self.n_avail += 1
        self.up = self.avail_weight * 100.0 > self.threshold * self.total_weight
        # ownership is taken last so a failed build leaves the Targets reusable
        for i in range(self.n):
            t = <Target>self._owned[i]
            t.index = i
            t.owner = self  # a cycle (balancer -> targets -> balancer) the GC collects
            t.healthy = True
            t.trial = False
            t.inflight = 0

    def __dealloc__(self):
        free(self.st)
        free(self.objs)

    def __len__(self):
        return self.n

    def get(self, str name):
        """The Target named "host:port", or None."""
        return self._by_name.get(name)

    @property
    def total_weight(self):
        return self.total_weight

    @property
    def available_weight(self):
        """Configured weight of the targets pick() may return."""
        return self.avail_weight

    cdef Balancer _home(self, Target t):
        # The balancer whose arrays hold t. Normally self; after a config reload the proxy may
        # finish a request picked from the previous balancer: its counters are updated there.
        if t.owner is self:
            return self
        if t.owner is None:
            raise ValueError(f"target {t.name} does not belong to a balancer")
        return t.owner

    cdef void _set_state(self, Py_ssize_t i, uint8_t state) noexcept:
        cdef TargetState* s = &self.st[i]
        cdef Target t = <Target>self.objs[i]
        cdef uint8_t eligible = state != TS_DOWN and s.weight > 0
        if eligible != s.eligible:
            if eligible:
                self.avail_weight += t.weight
                self.n_avail += 1
            else:
                self.avail_weight -= t.weight
                self.n_avail -= 1
            self.up = self.avail_weight * 100.0 > self.threshold * self.total_weight
        s.state = state
        s.eligible = eligible
        t.healthy = state == TS_UP
        t.trial = state == TS_TRIAL

    cdef inline Py_ssize_t _fallback(self, Py_ssize_t avoid) noexcept:
        # a retry may reuse `avoid` only when it is the one eligible target left
        if avoid >= 0 and self.st[avoid].eligible:
            return avoid
        return -1

    cdef Py_ssize_t _select(self, uint64_t hash_value, Py_ssize_t avoid) noexcept:
        return -1

    cdef void _sample(self, Py_ssize_t i, double latency_ms, double now) noexcept:
        pass

    cpdef Target pick(self, uint64_t hash_value=0, Target avoid=None):
        """An eligible target, or None (no peer / upstream down by threshold).

        hash_value: the key's xxh64 (consistent hashing only; ignored by the others).
        avoid: the target a retry must not reuse while another eligible target exists.
        Picking a half-open target consumes its single trial.
        """
        cdef Py_ssize_t a = -1
        cdef Py_ssize_t i
        if not self.up:
            return None
        if avoid is not None and avoid.owner is self:
            a = avoid.index  # a foreign `avoid` (picked from the previous snapshot) is ignored
        i = self._select(hash_value, a)
        if i < 0:
            return None
        if self.st[i].state == TS_TRIAL:
            self._set_state(i, TS_DOWN)
        return <Target>self.objs[i]

    cpdef void on_start(self, Target t) except *:
        """A request was sent to t (in-flight + 1)."""
        cdef Balancer b = self._home(t)
        cdef Py_ssize_t i = t.index
        b.st[i].inflight += 1
        t.inflight = <int>b.st[i].inflight

    cpdef void on_finish(self, Target t, double latency_ms, double now) except *:
        """The request to t finished after latency_ms; `now` in seconds (the proxy's clock).

        `now` feeds the latency balancer's EWMA decay (the core reads no clock); the other
        algorithms ignore both numbers.
        """
        cdef Balancer b = self._home(t)
        cdef Py_ssize_t i = t.index
        if b.st[i].inflight > 0:
            b.st[i].inflight -= 1
        t.inflight = <int>b.st[i].inflight
        b._sample(i, latency_ms, now)

    cpdef void set_healthy(self, Target t, bint healthy) except *:
        """Health checks' verdict (clears a pending half-open trial)."""
        self._home(t)._set_state(t.index, TS_UP if healthy else TS_DOWN)

    cpdef void allow_trial(self, Target t) except *:
        """Half-open: let exactly one request go to unhealthy t. No-op if t is healthy."""
        cdef Balancer b = self._home(t)
        if b.st[t.index].state == TS_DOWN:
            b._set_state(t.index, TS_TRIAL)

    cpdef bint is_up(self) noexcept:
        """Eligible weight percentage > threshold (Kong: at or below it the upstream is down)."""
        return self.up

    def __repr__(self):
        return (f"<{type(self).__name__} targets={self.n} available_weight={self.avail_weight}"
                f"/{self.total_weight} up={bool(self.up)}>")


cdef class RoundRobin(Balancer):
    """Smooth weighted round robin (nginx), weights reduced by their GCD."""
    algorithm = "round-robin"

    def __init__(self, targets, *, double threshold=0.0):
        cdef Py_ssize_t i
        cdef int64_t g = 0
        Balancer.__init__(self, targets, threshold=threshold)
        for i in range(self.n):
            if self.st[i].weight > 0:
                g = _gcd(self.st[i].weight, g) if g else self.st[i].weight
        if g > 1:
            for i in range(self.n):
                self.st[i].weight //= g

    @property
    def reduced_weights(self):
        """Weights after GCD reduction, in target order."""
        return [self.st[i].weight for i in range(self.n)]

    cdef Py_ssize_t _select(self, uint64_t hash_value, Py_ssize_t avoid) noexcept:
        cdef Py_ssize_t i
        cdef Py_ssize_t best = -1
        cdef int64_t total = 0
        cdef TargetState* st = self.st
        for i in range(self.n):
            if not st[i].eligible or i == avoid:
                continue
            st[i].current += st[i].weight
            total += st[i].weight
            if best < 0 or st[i].current > st[best].current:
                best = i
        if best < 0:
            return self._fallback(avoid)
        st[best].current -= total
        return best


cdef struct _Point:
    uint64_t hash
    uint32_t rank       # owner's position in name order: ties are resolved the same everywhere
    uint32_t owner


cdef int _cmp_points(const void* a, const void* b) noexcept nogil:
    cdef const _Point* x = <const _Point*>a
    cdef const _Point* y = <const _Point*>b
    if x.hash != y.hash:
        return -1 if x.hash < y.hash else 1
    if x.rank != y.rank:
        return -1 if x.rank < y.rank else 1
    return 0


cdef class HashRing(Balancer):
    """Consistent hashing: Ketama-style ring of xxh64 points, binary-search lookup."""
    algorithm = "consistent-hashing"

    def __cinit__(self, *args, **kwargs):
        self.points = NULL
        self.owners = NULL
        self.index = NULL
        self.npoints = 0
        self.index_shift = 63

    def __init__(self, targets, int slots=10000, *, double threshold=0.0):
        cdef Py_ssize_t i, j, k, total, pos
        cdef double scale
        cdef list counts
        cdef list names
        cdef bytes label
        cdef const unsigned char* src
        cdef Py_ssize_t ln
        cdef unsigned char buf[320]
        cdef char digits[24]
        cdef Py_ssize_t nd
        cdef Py_ssize_t v
        cdef _Point* pts
        if not MIN_RING_SLOTS <= slots <= MAX_RING_SLOTS:
            raise ValueError(f"slots must be {MIN_RING_SLOTS}-{MAX_RING_SLOTS}, got {slots}")
        Balancer.__init__(self, targets, threshold=threshold)
        self.slots = slots
        counts = []
        total = 0
        for i in range(self.n):
            w = (<Target>self.objs[i]).weight
            c = (w * slots + RING_REFERENCE_WEIGHT // 2) // RING_REFERENCE_WEIGHT if w > 0 else 0
            if w > 0 and c == 0:
                c = 1
            counts.append(c)
            total += c
        if total > RING_MAX_POINTS:
            scale = <double>RING_MAX_POINTS / total
            total = 0
            for i in range(self.n):
                c = int(counts[i] * scale) if counts[i] else 0
                if counts[i] and c == 0:
                    c = 1
                counts[i] = c
                total += c
        # targets sorted by name before hashing: the ring depends only on the set of targets
        names = sorted(range(self.n), key=lambda x: (<Target>self.objs[x]).name)
        ranks = [0] * self.n
        for j, i in enumerate(names):
            ranks[i] = j
        pts = <_Point*>malloc(max(total, 1) * sizeof(_Point))
        self.points = <uint64_t*>malloc(max(total, 1) * sizeof(uint64_t))
        self.owners = <uint32_t*>malloc(max(total, 1) * sizeof(uint32_t))
        if pts == NULL or self.points == NULL or self.owners == NULL:
            free(pts)
            raise MemoryError()
        try:
            pos = 0
            for i in range(self.n):
                label = (<Target>self.objs[i]).name.encode("utf-8")
                ln = len(label)
                if ln > 290:  # a hostname is at most 253 bytes, plus ":65535"
                    raise ValueError(f"target name too long for the ring: {label[:64]!r}...")
                src = label
                memcpy(buf, src, ln)
                buf[ln] = ord("#")
                for k in range(counts[i]):
                    # "host:port#k" with k in decimal, built in C: no Python string per point
                    v = k
                    nd = 0
                    while True:
                        digits[nd] = <char>(48 + v % 10)
                        nd += 1
                        v //= 10
                        if v == 0:
                            break
                    for j in range(nd):
                        buf[ln + 1 + j] = <unsigned char>digits[nd - 1 - j]
                    pts[pos].hash = xxh64(buf, ln + 1 + nd, 0)
                    pts[pos].rank = <uint32_t>ranks[i]
                    pts[pos].owner = <uint32_t>i
                    pos += 1
            qsort(pts, total, sizeof(_Point), _cmp_points)
            for i in range(total):
                self.points[i] = pts[i].hash
                self.owners[i] = pts[i].owner
            self.npoints = total
        finally:
            free(pts)
        self._build_index()

    cdef void _build_index(self) except *:
        cdef int bits = 1
        cdef Py_ssize_t b, pos, nb
        while bits < RING_MAX_INDEX_BITS and (<Py_ssize_t>1 << (bits + 1)) <= self.npoints:
            bits += 1
        nb = <Py_ssize_t>1 << bits
        self.index = <uint32_t*>malloc((nb + 1) * sizeof(uint32_t))
        if self.index == NULL:
            raise MemoryError()
        self.index_shift = 64 - bits
        pos = 0
        for b in range(nb):
            while pos < self.npoints and <Py_ssize_t>(self.points[pos] >> self.index_shift) < b:
                pos += 1
            self.index[b] = <uint32_t>pos
        self.index[nb] = <uint32_t>self.npoints

    def __dealloc__(self):
        free(self.points)
        free(self.owners)
        free(self.index)

    def owner_of(self, uint64_t hash_value):
        """The target owning hash_value on the full ring, ignoring health (for tests/tools)."""
        cdef Py_ssize_t i
        if self.npoints == 0:
            return None
        i = self._lower_bound(hash_value)
        return <Target>self.objs[self.owners[i]]

    def point_counts(self):
        """{target name: number of ring points}."""
        counts = {(<Target>self.objs[i]).name: 0 for i in range(self.n)}
        for i in range(self.npoints):
            counts[(<Target>self.objs[self.owners[i]]).name] += 1
        return counts

    cdef inline Py_ssize_t _lower_bound(self, uint64_t h) noexcept:
        # first point >= h, wrapping to 0 past the last one. Only h's bucket can hold it, or
        # else it is the first point of a later bucket, which index[b + 1] is.
        cdef Py_ssize_t b = <Py_ssize_t>(h >> self.index_shift)
        cdef Py_ssize_t lo = self.index[b]
        cdef Py_ssize_t hi = self.index[b + 1]
        cdef Py_ssize_t mid
        while lo < hi:
            mid = (lo + hi) >> 1
            if self.points[mid] < h:
                lo = mid + 1
            else:
                hi = mid
        return lo if lo < self.npoints else 0

    cdef Py_ssize_t _select(self, uint64_t hash_value, Py_ssize_t avoid) noexcept:
        cdef Py_ssize_t i, k, o
        cdef Py_ssize_t np = self.npoints
        if np == 0 or self.n_avail == 0:
            return -1
        if self.n_avail == 1 and avoid >= 0 and self.st[avoid].eligible:
            return avoid  # the only eligible target: no need to walk the whole ring
        i = self._lower_bound(hash_value)
        for k in range(np):
            o = self.owners[i]
            if self.st[o].eligible and o != avoid:
                return o
            i += 1
            if i == np:
                i = 0
        return self._fallback(avoid)


cdef class LeastConnections(Balancer):
    """Weighted least connections: min (inflight + 1) / weight, ties round robin."""
    algorithm = "least-connections"

    cdef Py_ssize_t _select(self, uint64_t hash_value, Py_ssize_t avoid) noexcept:
        cdef Py_ssize_t k, i
        cdef Py_ssize_t best = -1
        cdef Py_ssize_t n = self.n
        cdef TargetState* st = self.st
        i = self.cursor
        for k in range(n):
            if st[i].eligible and i != avoid:
                # (a+1)/wa < (b+1)/wb without division: (a+1)*wb < (b+1)*wa
                if best < 0 or ((st[i].inflight + 1) * st[best].weight
                                < (st[best].inflight + 1) * st[i].weight):
                    best = i
            i += 1
            if i == n:
                i = 0
        if best < 0:
            return self._fallback(avoid)
        self.cursor = best + 1 if best + 1 < n else 0
        return best


cdef class Latency(Balancer):
    """Peak EWMA of latency x (inflight + 1), smallest wins; decay = EWMA time constant (s)."""
    algorithm = "latency"

    def __init__(self, targets, double decay=10.0, *, double threshold=0.0):
        if not decay > 0.0:
            raise ValueError(f"decay must be > 0 seconds, got {decay}")
        Balancer.__init__(self, targets, threshold=threshold)
        self.decay = decay
        self.last_decay = -1.0

    def ewma(self, Target t):
        """The target's current latency EWMA in ms (0.0 before its first sample)."""
        if t.owner is not self:
            raise ValueError(f"target {t.name} does not belong to this balancer")
        return self.st[t.index].ewma

    cdef void _sample(self, Py_ssize_t i, double latency_ms, double now) noexcept:
        cdef TargetState* s
        cdef double w, dt
        cdef Py_ssize_t j
        if latency_ms < 0.0:
            latency_ms = 0.0
        # Idle decay towards 0 (Finagle's PeakEwma observes 0 on read; pick() has no `now`,
        # so the sweep runs here, at most 8 times per time constant: O(n) rarely, O(1) usually).
        if self.last_decay < 0.0:
            self.last_decay = now
        elif now - self.last_decay >= self.decay / 8.0:
            for j in range(self.n):
                s = &self.st[j]
                if j != i and s.ewma_at >= 0.0 and now > s.ewma_at:
                    s.ewma *= exp(-(now - s.ewma_at) / self.decay)
                    s.ewma_at = now
            self.last_decay = now
        s = &self.st[i]
        if s.ewma_at < 0.0:
            s.ewma = latency_ms
        elif latency_ms > s.ewma:
            s.ewma = latency_ms  # peak: a slow response counts in full at once
        else:
            dt = now - s.ewma_at
            if dt < 0.0:
                dt = 0.0
            w = exp(-dt / self.decay)
            s.ewma = s.ewma * w + latency_ms * (1.0 - w)
        s.ewma_at = now

    cdef Py_ssize_t _select(self, uint64_t hash_value, Py_ssize_t avoid) noexcept:
        cdef Py_ssize_t k, i
        cdef Py_ssize_t best = -1
        cdef double score
        cdef double best_score = 0.0
        cdef Py_ssize_t n = self.n
        cdef TargetState* st = self.st
        i = self.cursor
        for k in range(n):
            if st[i].eligible and i != avoid:
                score = st[i].ewma * (st[i].inflight + 1)
                if best < 0 or score < best_score:
                    best = i
                    best_score = score
            i += 1
            if i == n:
                i = 0
        if best < 0:
            return self._fallback(avoid)
        self.cursor = best + 1 if best + 1 < n else 0
        return best


def _bench_pick(Balancer b, Py_ssize_t n, bint vary_hash=True, bint start_finish=False):
    """Benchmark helper: n picks in a C loop (no clock here: the caller times the call).

    vary_hash: feed a different 64-bit hash to every pick (xorshift64*), as ring lookups see.
    start_finish: wrap each pick in on_start/on_finish (least-connections' real cost).
    Returns the number of picks that returned a target.
    """
    cdef Py_ssize_t k
    cdef Py_ssize_t got = 0
    cdef uint64_t h = 0x9E3779B97F4A7C15ULL
    cdef Target t
    for k in range(n):
        if vary_hash:
            h ^= h >> 12
            h ^= h << 25
            h ^= h >> 27
        t = b.pick(h * 0x2545F4914F6CDD1DULL if vary_hash else 0)
        if t is not None:
            got += 1
            if start_finish:
                b.on_start(t)
                b.on_finish(t, 1.0, 0.0)
    return got
