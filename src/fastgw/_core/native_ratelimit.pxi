# rate-limiting kernel of the compiled chain (included by native.pyx): policy local, fixed
# windows, limit_by consumer / credential / ip / service. The counters are the plugin's own
# SharedCounters table with the plugin's own keys (seeds_for/scope_prefix), so both paths count
# together; calendar windows take their bounds from the plugin's bounds().

cdef enum:
    RL_BY_CONSUMER = 0
    RL_BY_CREDENTIAL = 1
    RL_BY_IP = 2
    RL_BY_SERVICE = 3
    # response header lines of one request: at most 6 windows x 2 lines + 3 lines, names under
    # 32 bytes, values under 24 digits: well under this
    LINES_CAP = 2048
    # identifier -> counter keys cache entries (client IPs are unbounded): cleared when full
    RL_KEYS_CAP = 65536


def _one_parts(w):
    # the constant parts of w.allowed_headers(rem, reset) as header lines; the plugin's shape
    # is [(limit, L), (remaining, R), (RL limit, L), (RL remaining, R), (RL reset, T)]
    hs = w.allowed_headers("\x00R", "\x00T")
    lim = w.limit_str.encode()
    if [v for _, v in hs] != [lim, b"\x00R", lim, b"\x00R", b"\x00T"]:
        raise ValueError("rate-limiting allowed_headers has an unknown shape")
    (n0, _), (n1, _), (n2, _), (n3, _), (n4, _) = hs
    return (n0 + b": " + lim + b"\r\n" + n1 + b": ",
            b"\r\n" + n2 + b": " + lim + b"\r\n" + n3 + b": ",
            b"\r\n" + n4 + b": ")


cdef class _Keys:
    pass


cdef class RateLimitKernel:
    def __init__(self, plugin, route, service):
        cdef int i
        c = plugin.config
        self.plugin = plugin
        self.table = plugin.table
        self.by = {"consumer": RL_BY_CONSUMER, "credential": RL_BY_CREDENTIAL,
                   "ip": RL_BY_IP, "service": RL_BY_SERVICE}[c.limit_by]
        sid = getattr(service, "id", None) if service is not None else None
        self.service_ident = str(sid).encode() if sid else None
        self.one = plugin.single is not None
        self.hide = c.hide_client_headers
        self.error_code = c.error_code
        self.error_body = orjson.dumps({"message": c.error_message})
        self.keys = {}
        # the counter keys' seeds, by the plugin's own functions (same keys, same table)
        seeds = plugin.seeds_for(plugin.scope_prefix(SimpleNamespace(route=route, service=service)))
        windows = plugin.windows
        if len(windows) > NATIVE_MAX_WINDOWS:
            raise ValueError("rate-limiting has too many windows")
        self.nw = len(windows)
        self.w_py = list(windows)
        self.one_parts = _one_parts(windows[0]) if self.one else None
        self.w_cap = []
        self.w_limit = []
        names = []
        for i, w in enumerate(windows):
            self.w[i].seconds = w.seconds
            self.w[i].count_limit = w.count_limit
            self.w[i].calendar = w.calendar
            self.w[i].cal_start = 0
            self.w[i].cal_end = 0
            self.w[i].seed = seeds[i]
            limit = w.limit_str.encode()
            self.w_limit.append(limit)
            lh = w.limit_header.encode("latin-1")
            rh = w.remaining_header.encode("latin-1")
            self.w_cap.append((lh + b": " + limit + b"\r\n", rh + b": ", lh, rh))
            names += [lh.lower(), rh.lower()]
        names += [b"ratelimit-limit", b"ratelimit-remaining", b"ratelimit-reset"]
        if self.one:
            names += [k.lower() for k, _ in windows[0].allowed_headers("0", "0")]
        names = list(dict.fromkeys(names))
        if len(names) > NATIVE_MAX_STRIP:
            raise ValueError("rate-limiting sets too many response headers")
        self.strip_blob = b"".join(names)
        self.n_strip = len(names)
        off = 0
        self.strip_lens = 0
        for i, name in enumerate(names):
            self.strip_off[i] = off
            self.strip_len[i] = len(name)
            self.strip_lens |= (<uint64_t>1) << len(name)
            off += len(name)

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
            k.k[i] = h64(ident, self.w[i].seed)
        if len(self.keys) >= RL_KEYS_CAP:
            self.keys.clear()
        self.keys[ident] = k
        return k

    cdef void bounds(self, int i, int64_t now_s, int64_t* start, int64_t* end) except *:
        cdef NWindow* w = &self.w[i]
        if w.calendar:
            if not (w.cal_start <= now_s < w.cal_end):
                b = self.plugin.bounds(self.w_py[i], now_s)
                w.cal_start = b[0]
                w.cal_end = b[1]
            start[0] = w.cal_start
            end[0] = w.cal_end
            return
        start[0] = now_s - now_s % w.seconds
        end[0] = start[0] + w.seconds

    cdef int access(self, NativeChain c, NativeReq* r, bytes client_ip, double now) except -1:
        cdef int64_t now_ms = <int64_t>(now * 1000.0)
        cdef int64_t now_s = now_ms // 1000
        cdef int64_t start, end, res, rem, reset
        cdef int64_t counts[NATIVE_MAX_WINDOWS]
        cdef int64_t resets[NATIVE_MAX_WINDOWS]
        cdef int64_t starts[NATIVE_MAX_WINDOWS]
        cdef int idx[NATIVE_MAX_WINDOWS]
        cdef bint counted[NATIVE_MAX_WINDOWS]
        cdef int nu = 0, stop = -1, i, u
        cdef bytes ident = None
        cdef ConsumerRecord rec
        cdef _Keys keys
        cdef SharedCounters table = self.table
        cdef char lines[LINES_CAP]
        cdef Buf b
        b.p = lines
        b.n = 0
        b.cap = LINES_CAP
        # identifier (the plugin's _identifier)
        if self.by == RL_BY_SERVICE:
            ident = self.service_ident
        elif self.by != RL_BY_IP and r.consumer > 0:
            rec = <ConsumerRecord>c.records[r.consumer - 1]
            ident = rec.ident_consumer if self.by == RL_BY_CONSUMER else rec.ident_credential
        if ident is None:
            ident = client_ip
        keys = self.keys_for(ident)
        if self.one:
            # the plugin's single fixed window fast path (_Window.allowed_headers)
            start = now_s - now_s % self.w[0].seconds
            res = table.hit(keys.k[0], now_ms, start * 1000, (start + self.w[0].seconds) * 1000,
                            self.w[0].count_limit, 1)
            if res >= 0:
                if not self.hide:
                    rem = self.w[0].count_limit - res
                    if rem < 0:
                        rem = 0
                    reset = start + self.w[0].seconds - now_s
                    if reset < 1:
                        reset = 1
                    # "<limit>: L\r\n<remaining>: " R "\r\n<RL limit>: L\r\n<RL remaining>: "
                    # R "\r\n<RL reset>: " T "\r\n"
                    part_a, part_b, part_c = <tuple>self.one_parts
                    _putb(&b, part_a)
                    _put_int(&b, rem)
                    _putb(&b, part_b)
                    _put_int(&b, rem)
                    _putb(&b, part_c)
                    _put_int(&b, reset)
                    _put(&b, b"\r\n", 2)
                    c.set_resp_lines(&b)
                return 0
            if res == RL_FAIL_OPEN:
                self.plugin.log_overflow(table)
                return 0
        # the general path (the plugin's access() after its fast path)
        for i in range(self.nw):
            self.bounds(i, now_s, &start, &end)
            reset = end - now_s
            if reset < 1:
                reset = 1
            if stop >= 0:
                idx[nu] = i
                counts[nu] = table.peek(keys.k[i], now_ms, start * 1000)
                resets[nu] = reset
                counted[nu] = False
                nu += 1
                continue
            res = table.hit(keys.k[i], now_ms, start * 1000, end * 1000, self.w[i].count_limit, 1)
            if res == RL_FAIL_OPEN:
                self.plugin.log_overflow(table)
                continue
            idx[nu] = i
            resets[nu] = reset
            starts[nu] = start * 1000
            if res < 0:
                stop = i
                counts[nu] = table.peek(keys.k[i], now_ms, start * 1000)
                counted[nu] = False
            else:
                counts[nu] = res
                counted[nu] = True
            nu += 1
        if stop >= 0:
            # a denied request counts in no window
            for u in range(nu):
                if counted[u]:
                    table.unhit(keys.k[idx[u]], now_ms, starts[u], 1)
                    counts[u] -= 1
        return self.finish(c, r, nu, idx, counts, resets, stop, &b)

    cdef int finish(self, NativeChain c, NativeReq* r, int nu, int* idx, int64_t* counts,
                    int64_t* resets, int stop, Buf* b) except -1:
        # the plugin's _finish(): X-RateLimit-* per window, RateLimit-* of the window with the
        # least remaining (ties: the longer one), Retry-After and the error on a denial
        cdef int u, i, best = -1
        cdef int64_t remaining, best_remaining = 0, reset = 0
        cdef list headers = None
        if not self.hide and nu > 0:
            if stop >= 0:
                headers = [(b"Content-Type", JSON_CT)]
            for u in range(nu):
                i = idx[u]
                remaining = self.w[i].count_limit - counts[u] if i != stop else 0
                if remaining < 0:
                    remaining = 0
                limit_line, rem_prefix, lh, rh = <tuple>self.w_cap[i]
                if headers is not None:
                    headers.append((lh, <bytes>self.w_limit[i]))
                    headers.append((rh, str(remaining).encode()))
                else:
                    _putb(b, limit_line)
                    _putb(b, rem_prefix)
                    _put_int(b, remaining)
                    _put(b, b"\r\n", 2)
                if best < 0 or remaining < best_remaining or (
                        remaining == best_remaining and self.w[i].seconds > self.w[best].seconds):
                    best = i
                    best_remaining = remaining
                    reset = resets[u]
            if headers is not None:
                headers.append((b"RateLimit-Limit", <bytes>self.w_limit[best]))
                headers.append((b"RateLimit-Remaining", str(best_remaining).encode()))
                headers.append((b"RateLimit-Reset", str(reset).encode()))
            else:
                _put(b, b"RateLimit-Limit: ", 17)
                _putb(b, <bytes>self.w_limit[best])
                _put(b, b"\r\nRateLimit-Remaining: ", 23)
                _put_int(b, best_remaining)
                _put(b, b"\r\nRateLimit-Reset: ", 19)
                _put_int(b, reset)
                _put(b, b"\r\n", 2)
        if stop >= 0:
            if headers is None:
                headers = [(b"Content-Type", JSON_CT)]
            else:
                headers.append((b"Retry-After", str(reset).encode()))
            return c.exit(r, self.error_code, headers, self.error_body)
        if b.n:
            c.set_resp_lines(b)
        return 0

    cdef bint strip(self, const char* name, Py_ssize_t n) noexcept:
        # the upstream's lines the rate-limiting headers replace (header_op set_header)
        cdef int i
        if n >= 64 or not (self.strip_lens & (<uint64_t>1 << n)):
            return False
        for i in range(self.n_strip):
            if self.strip_len[i] == n and _ieq(name, PyBytes_AS_STRING(self.strip_blob)
                                               + self.strip_off[i], n):
                return True
        return False
