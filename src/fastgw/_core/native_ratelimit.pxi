# rate-limiting kernel of the compiled chain (included by native.pyx): policy local, fixed
# windows, limit_by consumer / credential / ip / service. Counting, windows and headers are the
# plugin's own WindowLimiter (limiter.pyx) over its own table with its own keys
# (seeds_for/scope_prefix), so both paths count together and answer alike; this kernel only
# picks the identifier and caches its keys.

cdef enum:
    RL_BY_CONSUMER = 0
    RL_BY_CREDENTIAL = 1
    RL_BY_IP = 2
    RL_BY_SERVICE = 3
    # identifier -> counter keys cache entries (client IPs are unbounded): cleared when full
    RL_KEYS_CAP = 65536


cdef class _Keys:
    pass


cdef class RateLimitKernel:
    def __init__(self, plugin, route, service):
        cdef int i
        c = plugin.config
        self.limiter = plugin.limiter
        self.by = {"consumer": RL_BY_CONSUMER, "credential": RL_BY_CREDENTIAL,
                   "ip": RL_BY_IP, "service": RL_BY_SERVICE}[c.limit_by]
        sid = getattr(service, "id", None) if service is not None else None
        self.service_ident = str(sid).encode() if sid else None
        self.keys = {}
        # the counter keys' seeds, by the plugin's own functions (same keys, same table)
        seeds = plugin.seeds_for(plugin.scope_prefix(SimpleNamespace(route=route, service=service)))
        if len(seeds) != self.limiter.nw or self.limiter.nw > NATIVE_MAX_WINDOWS:
            raise ValueError("rate-limiting windows and seeds differ")
        self.nw = self.limiter.nw
        for i in range(self.nw):
            self.seeds[i] = seeds[i]

    cdef _Keys keys_for(self, bytes ident):
        cdef _Keys k
        cdef int i
        o = self.keys.get(ident)
        if o is not None:
            return <_Keys>o
        import xxhash
        h64 = xxhash.xxh3_64_intdigest
        k = _Keys()
        for i in range(self.nw):
            k.k[i] = h64(ident, self.seeds[i])
        if len(self.keys) >= RL_KEYS_CAP:
            self.keys.clear()
        self.keys[ident] = k
        return k

    cdef int access(self, NativeChain c, NativeReq* r, bytes client_ip, double now) except -1:
        cdef bytes ident = None
        cdef ConsumerRecord rec
        cdef char lines[LIMITER_LINES_CAP]
        cdef Buf b
        cdef int st
        # the identifier (the plugin's _identifier)
        if self.by == RL_BY_SERVICE:
            ident = self.service_ident
        elif self.by != RL_BY_IP and r.consumer > 0:
            rec = <ConsumerRecord>c.records.items[r.consumer - 1]
            ident = rec.ident_consumer if self.by == RL_BY_CONSUMER else rec.ident_credential
        if ident is None:
            ident = client_ip
        b.p = lines
        b.n = 0
        b.cap = LIMITER_LINES_CAP
        st = self.limiter.check(self.keys_for(ident).k, now, &b)
        if st:
            return c.exit(r, st, [(b"Content-Type", JSON_CT)] + self.limiter.exit_headers,
                          self.limiter.error_body)
        if b.n:
            c.resp_lines = PyBytes_FromStringAndSize(b.p, b.n)
        return 0
