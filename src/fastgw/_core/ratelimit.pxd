# Rate-limit counters in shared memory: fixed and sliding windows keyed by a 64-bit hash, and a
# GCRA token bucket. Lock-free (GCC/Clang __atomic builtins), sans-IO (`now` is an argument).
#
# Rules:
# - The table is ONE mmap(MAP_SHARED|MAP_ANONYMOUS) region. Create it in the master BEFORE the
#   workers fork: every worker of the node then counts in the same memory. It works the same in
#   one process (tests, embedding).
# - Every caller of one table uses the same clock unit for `now`/window bounds ("ticks"; fastgw
#   uses milliseconds). Eviction compares a slot's expiry with the caller's `now`.
# - Exactness: a hit that would pass the limit is NOT counted, and counts are only changed by a
#   compare-and-swap of one 64-bit word, so N processes never allow more than the limit in a
#   window. The one documented inexactness goes the safe way (see TAG below).
# - Table full (every slot of the bounded probe run is live) -> the hit FAILS OPEN: it returns
#   RL_FAIL_OPEN, is not counted, and `overflows` is incremented; the plugin logs it.
#
# Layout (algorithm: open addressing, linear probing bounded to RL_MAX_PROBE slots):
#   slot = { key, meta, expires, b[2], pad } = 64 bytes, one cache line.
#   key      64-bit key hash; 0 = empty (key 0 is mapped to 1). Claimed by CAS 0 -> key.
#   meta     eviction sequence: even = stable, odd = being re-keyed by one process.
#   expires  ticks after which every window recorded in the slot is over; raised (atomic max)
#            BEFORE a count is added, so a slot with a live count is never seen as expired.
#   b[i]     bucket word: gen (8 bits) | window tag (24 bits) | count (32 bits).
#            gen = low bits of meta/2: a re-key bumps it, so a CAS prepared by a process that
#            read the old key fails instead of counting for the new key (no ABA).
#            TAG = 24-bit fold of the window start; a stale bucket whose tag collides with the
#            current window (p = 2^-24 per reuse of an idle key) is read as current: that can
#            only over-deny for one window, never over-allow.
#   Fixed windows use b[0]. Sliding windows use b[idx & 1] for window idx and read the
#   previous window from the other bucket (Cloudflare/Kong Enterprise weighted estimate).
from libc.stdint cimport int64_t, uint64_t


cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    #include <sched.h>
    #include <sys/mman.h>

    typedef struct {
        uint64_t key;
        uint64_t meta;
        int64_t expires;
        uint64_t b[2];
        uint64_t pad[3];
    } rl_slot;

    typedef struct {
        uint64_t magic;
        uint64_t nslots;
        uint64_t overflows;
        uint64_t evictions;
        uint64_t contended;
        uint64_t pad[3];
    } rl_header;

    /* Bounded probing: a key lives within RL_MAX_PROBE slots of its home slot. 16 keeps a miss
       to two 512-byte runs of cache lines; at 75% load linear probing needs ~8.5 probes for a
       miss on average (Knuth), so 16 rarely overflows before the table is nearly full. */
    #define RL_MAX_PROBE 16
    /* hit() results besides a count (counts are >= 0) */
    #define RL_DENIED (-1)        /* over the limit: not counted */
    #define RL_FAIL_OPEN (-2)     /* no slot (table full or slot busy): not counted, let through */
    /* largest limit/count a bucket holds (32-bit count field) */
    #define RL_MAX_COUNT 4294967295LL
    /* default table size: 65536 slots x 64 bytes = 4 MiB (Kong's kong_rate_limiting_counters
       lua_shared_dict is 12 MiB of Lua strings, ~50 bytes a key) */
    #define RL_DEFAULT_SLOTS 65536
    #define RL_MAGIC 0x66677274726c3031ull /* "fgwrtrl01" */
    #define RL_COUNT_MASK 0xFFFFFFFFull
    #define RL_TAG_MASK 0xFFFFFFull
    #define RL_SPINS 4096

    /* results of the internal bucket step */
    #define RL_S_OK 0
    #define RL_S_DENIED 1
    #define RL_S_RETRY 2

    static inline uint64_t rl_gen_of_meta(uint64_t m) { return (m >> 1) & 0xFF; }
    static inline uint64_t rl_w_gen(uint64_t w) { return w >> 56; }
    static inline uint64_t rl_w_tag(uint64_t w) { return (w >> 32) & RL_TAG_MASK; }
    static inline uint64_t rl_w_count(uint64_t w) { return w & RL_COUNT_MASK; }
    static inline uint64_t rl_word(uint64_t gen, uint64_t tag, uint64_t count) {
        return (gen << 56) | ((tag & RL_TAG_MASK) << 32) | (count & RL_COUNT_MASK);
    }
    static inline uint64_t rl_tag(int64_t window_start) {
        uint64_t x = (uint64_t)window_start;
        return (x ^ (x >> 24) ^ (x >> 48)) & RL_TAG_MASK;
    }
    static inline void rl_pause(unsigned i) {
    #if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
    #elif defined(__aarch64__)
        __asm__ __volatile__("yield");
    #endif
        if ((i & 63) == 63) sched_yield();
    }

    static inline rl_slot *rl_slots(rl_header *h) { return (rl_slot *)(h + 1); }

    static rl_header *rl_map(uint64_t nslots, size_t *size_out) {
        size_t size = sizeof(rl_header) + nslots * sizeof(rl_slot);
        void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) return NULL;
        rl_header *h = (rl_header *)p;  /* anonymous mappings are zero-filled */
        h->magic = RL_MAGIC;
        h->nslots = nslots;
        *size_out = size;
        return h;
    }

    static void rl_unmap(void *p, size_t size) { if (p) munmap(p, size); }

    /* Wait until meta is even (no re-key in progress); 0 on give-up. */
    static inline int rl_stable_meta(rl_slot *s, uint64_t *out) {
        for (unsigned i = 0; i < RL_SPINS; i++) {
            uint64_t m = __atomic_load_n(&s->meta, __ATOMIC_ACQUIRE);
            if (!(m & 1)) { *out = m; return 1; }
            rl_pause(i);
        }
        return 0;
    }

    static inline void rl_raise_expires(rl_slot *s, int64_t e) {
        int64_t old = __atomic_load_n(&s->expires, __ATOMIC_RELAXED);
        while (old < e && !__atomic_compare_exchange_n(&s->expires, &old, e, 1,
                                                       __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {}
    }

    /* Re-key an expired slot for `key`. Returns 1 and the new stable meta, or 0 (left as is). */
    static int rl_evict(rl_header *h, rl_slot *s, uint64_t key, int64_t now, uint64_t *mout) {
        uint64_t m = __atomic_load_n(&s->meta, __ATOMIC_ACQUIRE);
        if (m & 1) return 0;
        if (__atomic_load_n(&s->expires, __ATOMIC_ACQUIRE) > now) return 0;
        if (!__atomic_compare_exchange_n(&s->meta, &m, m + 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
            return 0;
        /* we own the re-key; a hitter of the old key may still be between its reads and its CAS */
        if (__atomic_load_n(&s->expires, __ATOMIC_ACQUIRE) > now) {
            __atomic_store_n(&s->meta, m, __ATOMIC_RELEASE);  /* nothing changed: restore */
            return 0;
        }
        uint64_t g = rl_gen_of_meta(m + 2);
        uint64_t fresh = rl_word(g, 0, 0);
        uint64_t b0 = __atomic_load_n(&s->b[0], __ATOMIC_ACQUIRE);
        if (!__atomic_compare_exchange_n(&s->b[0], &b0, fresh, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
            __atomic_store_n(&s->meta, m, __ATOMIC_RELEASE);  /* the old key just counted */
            return 0;
        }
        uint64_t b1 = __atomic_load_n(&s->b[1], __ATOMIC_ACQUIRE);
        if (!__atomic_compare_exchange_n(&s->b[1], &b1, fresh, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
            /* only the owner of the odd meta writes gen g, so b[0] still holds `fresh` */
            __atomic_store_n(&s->b[0], b0, __ATOMIC_RELEASE);
            __atomic_store_n(&s->meta, m, __ATOMIC_RELEASE);
            return 0;
        }
        /* both buckets carry the new gen: any CAS prepared for the old key now fails */
        __atomic_store_n(&s->key, key, __ATOMIC_RELEASE);
        __atomic_store_n(&s->meta, m + 2, __ATOMIC_RELEASE);
        __atomic_fetch_add(&h->evictions, 1, __ATOMIC_RELAXED);
        *mout = m + 2;
        return 1;
    }

    static inline uint64_t rl_home(rl_header *h, uint64_t key) {
        /* keys are hashes already; fold the high half in for tables smaller than 2^32 */
        return (key ^ (key >> 32)) & (h->nslots - 1);
    }

    /* Find (create = claim/evict when missing) the slot of `key`. NULL: not found/no room. */
    static rl_slot *rl_find(rl_header *h, uint64_t key, int64_t now, int create, uint64_t *mout) {
        rl_slot *slots = rl_slots(h);
        uint64_t mask = h->nslots - 1, home = rl_home(h, key);
        for (int attempt = 0; attempt < 4; attempt++) {
            rl_slot *victim = NULL;
            for (uint64_t i = 0; i < RL_MAX_PROBE; i++) {
                rl_slot *s = &slots[(home + i) & mask];
                uint64_t m;
                if (!rl_stable_meta(s, &m)) {
                    __atomic_fetch_add(&h->contended, 1, __ATOMIC_RELAXED);
                    return NULL;
                }
                uint64_t k = __atomic_load_n(&s->key, __ATOMIC_ACQUIRE);
                if (k == key) { *mout = m; return s; }
                if (k == 0) {
                    /* slots never become empty again, so `key` is not further along the run */
                    if (!create) return NULL;
                    uint64_t zero = 0;
                    if (__atomic_compare_exchange_n(&s->key, &zero, key, 0,
                                                    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)
                        || zero == key) {
                        *mout = m;
                        return s;
                    }
                    continue;  /* another key took it: keep probing */
                }
                if (victim == NULL && __atomic_load_n(&s->expires, __ATOMIC_ACQUIRE) <= now)
                    victim = s;
            }
            if (!create) return NULL;
            if (victim == NULL) {
                __atomic_fetch_add(&h->overflows, 1, __ATOMIC_RELAXED);
                return NULL;
            }
            if (rl_evict(h, victim, key, now, mout)) return victim;
            /* lost a race for the victim: look again (someone may have inserted `key`) */
        }
        __atomic_fetch_add(&h->contended, 1, __ATOMIC_RELAXED);
        return NULL;
    }

    /* Add `cost` to bucket `bi` for window `tag` unless that passes `limit`.
       base_extra: already-used amount counted against the limit (sliding estimate). */
    static inline int rl_bucket_add(rl_slot *s, uint64_t m, int bi, uint64_t tag, int64_t base_extra,
                                    int64_t limit, int64_t cost, int64_t *out) {
        uint64_t g = rl_gen_of_meta(m);
        uint64_t old = __atomic_load_n(&s->b[bi], __ATOMIC_ACQUIRE);
        for (;;) {
            if (rl_w_gen(old) != g) return RL_S_RETRY;
            int64_t cur = rl_w_tag(old) == tag ? (int64_t)rl_w_count(old) : 0;
            int64_t n = cur + cost;
            if (n + base_extra > limit) { *out = cur + base_extra; return RL_S_DENIED; }
            if (cost == 0 && rl_w_tag(old) == tag) { *out = n + base_extra; return RL_S_OK; }
            if (__atomic_compare_exchange_n(&s->b[bi], &old, rl_word(g, tag, (uint64_t)n), 1,
                                            __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
                *out = n + base_extra;
                return RL_S_OK;
            }
        }
    }

    /* Fixed window. Returns the new count, RL_DENIED (-1) or RL_FAIL_OPEN (-2). */
    static int64_t rl_hit(rl_header *h, uint64_t key, int64_t now, int64_t window_start,
                          int64_t window_end, int64_t limit, int64_t cost) {
        if (key == 0) key = 1;
        uint64_t tag = rl_tag(window_start);
        for (int attempt = 0; attempt < 8; attempt++) {
            uint64_t m;
            rl_slot *s = rl_find(h, key, now, 1, &m);
            if (s == NULL) return RL_FAIL_OPEN;
            rl_raise_expires(s, window_end);
            int64_t out;
            int r = rl_bucket_add(s, m, 0, tag, 0, limit, cost, &out);
            if (r == RL_S_OK) return out;
            if (r == RL_S_DENIED) return RL_DENIED;
        }
        __atomic_fetch_add(&h->contended, 1, __ATOMIC_RELAXED);
        return RL_FAIL_OPEN;
    }

    /* Take back `cost` counted in bucket `bi` for window `tag` (multi-window requests that
       were denied by a later window). Never below 0; nothing when the window already rolled. */
    static void rl_unhit_bucket(rl_header *h, uint64_t key, int64_t now, int bi, uint64_t tag,
                                int64_t cost) {
        if (key == 0) key = 1;
        uint64_t m;
        rl_slot *s = rl_find(h, key, now, 0, &m);
        if (s == NULL) return;
        uint64_t g = rl_gen_of_meta(m);
        uint64_t old = __atomic_load_n(&s->b[bi], __ATOMIC_ACQUIRE);
        for (;;) {
            if (rl_w_gen(old) != g || rl_w_tag(old) != tag) return;
            uint64_t c = rl_w_count(old);
            uint64_t n = c > (uint64_t)cost ? c - (uint64_t)cost : 0;
            if (__atomic_compare_exchange_n(&s->b[bi], &old, rl_word(g, tag, n), 1,
                                            __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) return;
        }
    }

    static inline void rl_unhit(rl_header *h, uint64_t key, int64_t now, int64_t window_start, int64_t cost) {
        rl_unhit_bucket(h, key, now, 0, rl_tag(window_start), cost);
    }

    static int64_t rl_peek_bucket(rl_header *h, uint64_t key, int64_t now, int bi, uint64_t tag) {
        uint64_t m;
        if (key == 0) key = 1;
        rl_slot *s = rl_find(h, key, now, 0, &m);
        if (s == NULL) return 0;
        uint64_t w = __atomic_load_n(&s->b[bi], __ATOMIC_ACQUIRE);
        if (rl_w_gen(w) != rl_gen_of_meta(m) || rl_w_tag(w) != tag) return 0;
        return (int64_t)rl_w_count(w);
    }

    static inline int64_t rl_floor_div(int64_t a, int64_t b) {
        int64_t q = a / b;
        return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
    }

    /* Weighted previous window: floor(prev * (window - elapsed) / window). */
    static inline int64_t rl_prev_weighted(uint64_t prev, int64_t window, int64_t elapsed) {
        return (int64_t)(((unsigned __int128)prev * (uint64_t)(window - elapsed)) / (uint64_t)window);
    }

    /* Sliding window: estimate = weighted previous window + current window. Returns the new
       estimate, RL_DENIED or RL_FAIL_OPEN. */
    static int64_t rl_hit_sliding(rl_header *h, uint64_t key, int64_t now, int64_t window,
                                  int64_t limit, int64_t cost, int count_it) {
        if (key == 0) key = 1;
        int64_t idx = rl_floor_div(now, window);
        int64_t start = idx * window;
        uint64_t tag = rl_tag(start), ptag = rl_tag(start - window);
        int bi = (int)(idx & 1), pi = bi ^ 1;
        for (int attempt = 0; attempt < 8; attempt++) {
            uint64_t m;
            rl_slot *s = rl_find(h, key, now, count_it, &m);
            if (s == NULL) {
                if (!count_it) return 0;
                return RL_FAIL_OPEN;
            }
            uint64_t pw = __atomic_load_n(&s->b[pi], __ATOMIC_ACQUIRE);
            if (rl_w_gen(pw) != rl_gen_of_meta(m)) continue;
            uint64_t prev = rl_w_tag(pw) == ptag ? rl_w_count(pw) : 0;
            int64_t weighted = rl_prev_weighted(prev, window, now - start);
            if (!count_it) {
                uint64_t cw = __atomic_load_n(&s->b[bi], __ATOMIC_ACQUIRE);
                if (rl_w_gen(cw) != rl_gen_of_meta(m)) continue;
                return weighted + (rl_w_tag(cw) == tag ? (int64_t)rl_w_count(cw) : 0);
            }
            /* the previous window stays readable for one more window */
            rl_raise_expires(s, start + 2 * window);
            int64_t out;
            int r = rl_bucket_add(s, m, bi, tag, weighted, limit, cost, &out);
            if (r == RL_S_OK) return out;
            if (r == RL_S_DENIED) return RL_DENIED;
        }
        __atomic_fetch_add(&h->contended, 1, __ATOMIC_RELAXED);
        return RL_FAIL_OPEN;
    }

    static void rl_unhit_sliding(rl_header *h, uint64_t key, int64_t now, int64_t window, int64_t cost) {
        int64_t idx = rl_floor_div(now, window);
        rl_unhit_bucket(h, key, now, (int)(idx & 1), rl_tag(idx * window), cost);
    }

    /* ---- GCRA token bucket (Envoy TokenBucketImpl semantics, one 64-bit word of state) ----
       State: TAT, the "theoretical arrival time" of the bucket being full again, a double in
       seconds stored as its bit pattern so a single CAS updates it. tokens(now) =
       (now + capacity_time - max(TAT, now)) / interval, where interval = 1/fill_rate and
       capacity_time = max_tokens * interval. A fresh bucket (TAT 0) is full, like Envoy's. */
    typedef struct { uint64_t tat_bits; uint64_t pad[7]; } rl_tb_state;

    static inline double rl_bits_to_d(uint64_t b) { double d; memcpy(&d, &b, sizeof d); return d; }
    static inline uint64_t rl_d_to_bits(double d) { uint64_t b; memcpy(&b, &d, sizeof b); return b; }

    static double rl_tb_available(rl_tb_state *st, double now, double max_tokens, double fill_rate) {
        double tat = rl_bits_to_d(__atomic_load_n(&st->tat_bits, __ATOMIC_ACQUIRE));
        double base = tat > now ? tat : now;
        double avail = (now + max_tokens / fill_rate - base) * fill_rate;
        if (avail < 0) avail = 0;
        if (avail > max_tokens) avail = max_tokens;
        return avail;
    }

    /* Consume `tokens`; with allow_partial take what is there (floored to whole tokens as
       Envoy does). Returns the tokens consumed (0 when not enough). */
    static double rl_tb_consume(rl_tb_state *st, double now, double max_tokens, double fill_rate,
                                double tokens, int allow_partial) {
        double interval = 1.0 / fill_rate, cap = max_tokens * interval;
        uint64_t old = __atomic_load_n(&st->tat_bits, __ATOMIC_ACQUIRE);
        for (;;) {
            double tat = rl_bits_to_d(old);
            double base = tat > now ? tat : now;
            double avail = (now + cap - base) * fill_rate;
            if (avail > max_tokens) avail = max_tokens;
            double take = tokens;
            if (avail + 1e-9 < take) {
                if (!allow_partial) return 0;
                take = (double)(int64_t)(avail + 1e-9);
                if (take <= 0) return 0;
            }
            double ntat = base + take * interval;
            if (__atomic_compare_exchange_n(&st->tat_bits, &old, rl_d_to_bits(ntat), 1,
                                            __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
                return take;
        }
    }

    /* Seconds until at least one token is available (Envoy nextTokenAvailable). */
    static double rl_tb_next(rl_tb_state *st, double now, double max_tokens, double fill_rate) {
        double avail = rl_tb_available(st, now, max_tokens, fill_rate);
        if (avail >= 1.0) return 0.0;
        return (1.0 - avail) / fill_rate;
    }

    /* Envoy maybeReset(num_tokens): set the bucket to hold `tokens` now. */
    static void rl_tb_reset(rl_tb_state *st, double now, double max_tokens, double fill_rate, double tokens) {
        if (tokens > max_tokens) tokens = max_tokens;
        double ntat = now + (max_tokens - tokens) / fill_rate;
        __atomic_store_n(&st->tat_bits, rl_d_to_bits(ntat), __ATOMIC_RELEASE);
    }

    static inline uint64_t rl_load64(uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }

    static rl_tb_state *rl_tb_map(void) {
        void *p = mmap(NULL, sizeof(rl_tb_state), PROT_READ | PROT_WRITE,
                       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        return p == MAP_FAILED ? NULL : (rl_tb_state *)p;
    }
    """
    # constants defined (and explained) in the C block above
    enum:
        RL_MAX_PROBE
        RL_DENIED
        RL_FAIL_OPEN
        RL_DEFAULT_SLOTS
    const int64_t RL_MAX_COUNT

    ctypedef struct rl_header:
        uint64_t magic
        uint64_t nslots
        uint64_t overflows
        uint64_t evictions
        uint64_t contended

    ctypedef struct rl_tb_state:
        uint64_t tat_bits

    rl_header *rl_map(uint64_t nslots, size_t *size_out) nogil
    void rl_unmap(void *p, size_t size) nogil
    int64_t rl_hit(rl_header *h, uint64_t key, int64_t now, int64_t window_start,
                   int64_t window_end, int64_t limit, int64_t cost) nogil
    void rl_unhit(rl_header *h, uint64_t key, int64_t now, int64_t window_start, int64_t cost) nogil
    void rl_unhit_sliding(rl_header *h, uint64_t key, int64_t now, int64_t window, int64_t cost) nogil
    int64_t rl_peek_bucket(rl_header *h, uint64_t key, int64_t now, int bi, uint64_t tag) nogil
    uint64_t rl_tag(int64_t window_start) nogil
    int64_t rl_hit_sliding(rl_header *h, uint64_t key, int64_t now, int64_t window,
                           int64_t limit, int64_t cost, int count_it) nogil
    double rl_tb_available(rl_tb_state *st, double now, double max_tokens, double fill_rate) nogil
    double rl_tb_consume(rl_tb_state *st, double now, double max_tokens, double fill_rate,
                         double tokens, int allow_partial) nogil
    double rl_tb_next(rl_tb_state *st, double now, double max_tokens, double fill_rate) nogil
    void rl_tb_reset(rl_tb_state *st, double now, double max_tokens, double fill_rate,
                     double tokens) nogil
    rl_tb_state *rl_tb_map() nogil
    uint64_t rl_load64(uint64_t *p) nogil


cdef class SharedCounters:
    cdef rl_header *_h
    cdef size_t _size
    cdef readonly uint64_t slots

    cpdef int64_t hit(self, uint64_t key, int64_t now, int64_t window_start, int64_t window_end,
                      int64_t limit, int64_t cost=*) noexcept
    cpdef void unhit(self, uint64_t key, int64_t now, int64_t window_start, int64_t cost=*) noexcept
    cpdef int64_t peek(self, uint64_t key, int64_t now, int64_t window_start) noexcept
    cpdef int64_t hit_sliding(self, uint64_t key, int64_t now, int64_t window, int64_t limit,
                              int64_t cost=*) noexcept
    cpdef int64_t peek_sliding(self, uint64_t key, int64_t now, int64_t window) noexcept
    cpdef void unhit_sliding(self, uint64_t key, int64_t now, int64_t window, int64_t cost=*) noexcept


cdef class TokenBucket:
    cdef rl_tb_state *_st
    cdef readonly double max_tokens
    cdef readonly double fill_rate

    cpdef double consume(self, double now, double tokens=*, bint allow_partial=*) noexcept
    cpdef double available(self, double now) noexcept
    cpdef double next_token_available(self, double now) noexcept
    cpdef void reset(self, double now, double tokens) noexcept
