# The compiled plugin chain (rules in native.pxd).
#
# Supported subset (compile_chain returns None for anything else, and the route keeps the
# Python chain):
# - key-auth: key_names from headers (key_in_header) and the query (key_in_query),
#   run_on_preflight, realm. Not: hide_credentials, anonymous, key_in_body.
# - rate-limiting: policy local, window_type fixed (second .. year), limit_by consumer,
#   credential, ip or service, hide_client_headers, error_code/error_message. Not: redis,
#   sliding windows, limit_by header/path, trusted_ips (the client IP would come from
#   X-Forwarded-For).
# - prometheus: every config (the same SharedMetrics.record call as its log phase).
# - the chain itself: no consumer-scoped variants, no per-scheme variants, no plugin needing the
#   request body, no consistent hashing on the consumer (the proxy has no Context to read it).
#
# Mirrored oddities of the Python path (the Python plugins are the spec, both paths coexist):
# - rate-limiting's single fixed window fast path and its general path spell their header
#   names each their own way: the fast path's names are taken from _Window.allowed_headers().
# - an exit response (and a gateway error: 502/504/503) is seen by prometheus with its code and
#   source "kong" (the proxy sets both for responses it makes).
cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdint cimport int64_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcmp, memcpy
from posix.time cimport CLOCK_REALTIME, clock_gettime, timespec

from fastgw._core.http_parser cimport Header, M_OPTIONS, RequestParser
from fastgw._core.metrics cimport MF_LATENCY, MF_SOURCE_KONG, SharedMetrics
from fastgw._core.ratelimit cimport RL_FAIL_OPEN, SharedCounters

import logging
import os
from types import SimpleNamespace

import orjson

log = logging.getLogger("fastgw.native")

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

cdef bytes JSON_CT = b"application/json; charset=utf-8"
cdef bytes _kept_json(obj):
    # orjson.dumps returns bytes over a 4 KiB allocation whatever its length; a body kept for
    # the life of a snapshot (one per route) is copied to its own size
    cdef bytes b = orjson.dumps(obj)
    return PyBytes_FromStringAndSize(PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b))


cdef bytes SERVER_ERROR_BODY = _kept_json({"message": "An unexpected error occurred"})
# key-auth's fixed answers, shared by every route
cdef bytes KA_BODY_NONE = _kept_json({"message": "No API key found in request"})
cdef bytes KA_BODY_DUP = _kept_json({"message": "Duplicate API key found"})
cdef bytes KA_BODY_INVALID = _kept_json({"message": "Invalid authentication credentials"})


# -------------------------------------------------------------------------------------------
# small C helpers

cdef inline void _put(Buf* b, const char* s, Py_ssize_t n) noexcept:
    if b.n + n <= b.cap:
        memcpy(b.p + b.n, s, n)
    b.n += n   # an overflow shows as n > cap (checked by the caller)


cdef inline void _putb(Buf* b, bytes s) noexcept:
    _put(b, PyBytes_AS_STRING(s), PyBytes_GET_SIZE(s))


cdef inline void _put_int(Buf* b, int64_t v) noexcept:
    # Python's str(int) for the values headers carry (never negative here)
    cdef char tmp[24]
    cdef int i = 24
    cdef bint neg = v < 0
    if neg:
        v = -v
    if v == 0:
        _put(b, b"0", 1)
        return
    while v > 0:
        i -= 1
        tmp[i] = <char>(48 + v % 10)
        v //= 10
    if neg:
        i -= 1
        tmp[i] = b'-'
    _put(b, tmp + i, 24 - i)


cdef inline bint _ieq(const char* a, const char* lower, Py_ssize_t n) noexcept:
    # ASCII case-insensitive compare of a with an already lowercase name
    cdef Py_ssize_t i
    cdef char c
    for i in range(n):
        c = a[i]
        if b'A' <= c <= b'Z':
            c = c + 32
        if c != lower[i]:
            return False
    return True


cdef inline bint _contains(const char* s, Py_ssize_t n, bytes needle) noexcept:
    # bytes.__contains__ for short query strings
    cdef Py_ssize_t m = PyBytes_GET_SIZE(needle)
    cdef const char* q = PyBytes_AS_STRING(needle)
    cdef Py_ssize_t i
    if m == 0:
        return True
    for i in range(n - m + 1):
        if s[i] == q[0] and memcmp(s + i, q, m) == 0:
            return True
    return False


cdef bint is_consumer_header(const char* name, Py_ssize_t n) noexcept:
    if n == 13:
        return _ieq(name, b"x-consumer-id", 13)
    if n == 20:
        return _ieq(name, b"x-consumer-custom-id", 20) or _ieq(name, b"x-anonymous-consumer", 20)
    if n == 19:
        return _ieq(name, b"x-consumer-username", 19)
    if n == 23:
        return _ieq(name, b"x-credential-identifier", 23)
    return False


# -------------------------------------------------------------------------------------------

cdef class KeyRecord:
    def __init__(self, int index, consumer, credential):
        self.index = index
        self.consumer = consumer
        self.credential = credential
        # what key-auth's ctx.authenticate(consumer, cred, str(cred.id) if cred.id else None)
        # records, rendered as the proxy's build_head writes header ops
        from fastgw.plugins.context import Context, ListHeaders

        cred_id = getattr(credential, "id", None)
        ctx = Context(b"GET", b"/", ListHeaders(), "", "http", None, None, 0.0)
        try:
            ctx.authenticate(consumer, credential, str(cred_id) if cred_id else None)
        except Exception:
            self.req_lines = None   # the Python plugin raises there: a 500
        else:
            ops = ctx.request.header_ops or {}
            case = ctx.request.header_case or {}
            for name in ops:
                if not is_consumer_header(name, len(name)):
                    raise ValueError(f"ctx.authenticate sets {name!r}, unknown to native")
            lines = []
            for name, values in ops.items():
                if values is None:
                    continue
                for v in values:
                    lines.append(case.get(name, name) + b": " + v + b"\r\n")
            self.req_lines = b"".join(lines)
        # rate-limiting's _identifier(): consumer -> (consumer or credential).id,
        # credential -> credential.id; str(...).encode() (utf-8), falsy -> the client IP
        ent = consumer or credential
        v = getattr(ent, "id", None) if ent is not None else None
        self.ident_consumer = str(v).encode() if v else None
        v = getattr(credential, "id", None) if credential is not None else None
        self.ident_credential = str(v).encode() if v else None


cdef class KeyIndex:
    def __init__(self, dict keys):
        # keys: the KeyAuth plugin's own index (key str -> (consumer, credential))
        cdef KeyRecord rec
        self.by_bytes = {}
        self.by_str = {}
        self.records = []
        for key, (consumer, cred) in keys.items():
            rec = KeyRecord(len(self.records), consumer, cred)
            self.records.append(rec)
            self.by_str[key] = rec
            try:
                # a header value is decoded as latin-1: only latin-1 keys can match it
                self.by_bytes[key.encode("latin-1")] = rec
            except UnicodeEncodeError:
                pass


def key_index(plugin) -> KeyIndex:
    """The KeyIndex of a KeyAuth instance, built once (instances live as long as a snapshot)."""
    idx = getattr(plugin, "_native_index", None)
    if idx is None:
        idx = KeyIndex(plugin._keys)
        plugin._native_index = idx
    return idx


cdef class _Keys:
    pass


# -------------------------------------------------------------------------------------------

cdef class NativeChain:
    """A route's key-auth / rate-limiting / prometheus chain in C. Build with compile_chain."""

    def __init__(self):
        self.names = []
        self.rl_keys = {}

    def __dealloc__(self):
        if self.pm_consumers != NULL:
            free(self.pm_consumers)
            self.pm_consumers = NULL

    def __repr__(self):
        return f"<NativeChain {self.names}>"

    cdef double wall_now(self) except? -1.0:
        # Python's time.time() (ctx.now), or the injected clock of a test Gateway
        cdef timespec ts
        if self.clock is not None:
            return float(self.clock())
        clock_gettime(CLOCK_REALTIME, &ts)
        return <double>ts.tv_sec + <double>ts.tv_nsec * 1e-9

    def now(self) -> float:
        return self.wall_now()

    # ---------------------------------------------------------------- access
    cdef int access(self, NativeReq* r, const char* head, RequestParser p, uint32_t query_off,
                    uint32_t query_n, bytes client_ip, double now) noexcept:
        """rewrite + access of the chain: 0 = proxy the request (req_lines / resp_lines are
        this request's outputs), else the status of the response to send (exit_headers,
        exit_body)."""
        r.active = True
        r.timed = self.timed
        r.exit = False
        r.consumer = 0
        r.code = 0
        r.kong_ms = -1.0
        r.up_ms = -1.0
        self.req_lines = None
        self.resp_lines = None
        try:
            return self._access(r, head, p, query_off, query_n, client_ip, now)
        except Exception:
            # as Chain._run: a failing plugin is Kong's 500, logged with its traceback
            log.exception("native plugin chain failed in access phase")
            try:
                return self._exit(r, 500, [(b"Content-Type", JSON_CT)], SERVER_ERROR_BODY)
            except Exception:
                return 500

    cdef int _access(self, NativeReq* r, const char* head, RequestParser p, uint32_t query_off,
                     uint32_t query_n, bytes client_ip, double now) except -1:
        cdef int st
        if self.ka:
            st = self._key_auth(r, head, p, query_off, query_n)
            if st:
                return st
        if self.rl:
            st = self._rate_limit(r, client_ip, now)
            if st:
                return st
        return 0

    cdef int _exit(self, NativeReq* r, int status, list headers, bytes body) except -1:
        self.exit_headers = headers
        self.exit_body = body
        self.req_lines = None
        self.resp_lines = None
        # prometheus records an exit with its status and source "kong" (Kong: exits are
        # responses too, whatever else the chain has)
        r.exit = True
        r.code = status
        return status

    cdef int _key_auth(self, NativeReq* r, const char* head, RequestParser p, uint32_t query_off,
                       uint32_t query_n) except -1:
        cdef Py_ssize_t i, nk, ln, qn
        cdef int j, count
        cdef Header* h
        cdef Header* found_h = NULL
        cdef bytes lname
        cdef const char* lp
        cdef const char* qs = head + query_off + 1
        cdef object key_str = None
        cdef KeyRecord rec
        cdef bint have = False
        if not self.ka_preflight and p.method == M_OPTIONS:
            return 0
        nk = len(self.ka_lnames)
        qn = <Py_ssize_t>query_n - 1    # raw query without the '?'
        for i in range(nk):
            if self.ka_header:
                lname = <bytes>self.ka_lnames[i]
                lp = PyBytes_AS_STRING(lname)
                ln = PyBytes_GET_SIZE(lname)
                count = 0
                for j in range(p.n_headers):
                    h = &p.headers[j]
                    if h.name_len == ln and _ieq(head + h.name_off, lp, ln):
                        if count == 0:
                            found_h = h
                        count += 1
                if count > 1:
                    return self._unauthorized(r, self.ka_body_dup)
                if count == 1:
                    have = True
                    break
            if self.ka_query and qn > 0:
                name, qname, qname_enc = <tuple>self.ka_names[i]
                # Request.query is parsed only when the name can be in the query (as the plugin)
                if _contains(qs, qn, qname) or (qname_enc is not None and _contains(qs, qn, qname_enc)):
                    from fastgw.plugins.context import parse_query
                    v = parse_query(PyBytes_FromStringAndSize(qs, qn)).get(name)
                    if isinstance(v, list):
                        return self._unauthorized(r, self.ka_body_dup)
                    if isinstance(v, str):
                        key_str = v
                        have = True
                        break
        if not have:
            return self._unauthorized(r, self.ka_body_none)
        if key_str is None:
            if found_h.value_len == 0:
                return self._unauthorized(r, self.ka_body_none)
            k = self.ka_index.by_bytes.get(PyBytes_FromStringAndSize(
                head + found_h.value_off, found_h.value_len))
        else:
            if not key_str:
                return self._unauthorized(r, self.ka_body_none)
            k = self.ka_index.by_str.get(key_str)
        if k is None:
            return self._unauthorized(r, self.ka_body_invalid)
        rec = <KeyRecord>k
        r.consumer = rec.index + 1
        if rec.req_lines is None:
            # ctx.authenticate raised (a value latin-1 cannot encode) after setting the consumer
            raise UnicodeEncodeError("latin-1", "", 0, 1, "consumer header value")
        self.req_lines = rec.req_lines
        return 0

    cdef int _unauthorized(self, NativeReq* r, bytes body) except -1:
        return self._exit(r, 401, [(b"Content-Type", JSON_CT), (b"WWW-Authenticate", self.ka_challenge)],
                          body)

    cdef _Keys _keys_for(self, bytes ident):
        cdef _Keys k
        cdef int i
        o = self.rl_keys.get(ident)
        if o is not None:
            return <_Keys>o
        import xxhash
        h64 = xxhash.xxh3_64_intdigest
        k = _Keys()
        for i in range(self.nw):
            k.k[i] = h64(ident, self.w[i].seed)
        if len(self.rl_keys) >= RL_KEYS_CAP:
            self.rl_keys.clear()
        self.rl_keys[ident] = k
        return k

    cdef void _bounds(self, int i, int64_t now_s, int64_t* start, int64_t* end) except *:
        cdef NWindow* w = &self.w[i]
        if w.calendar:
            if not (w.cal_start <= now_s < w.cal_end):
                b = self.rl_plugin._bounds(self.w_py[i], now_s)
                w.cal_start = b[0]
                w.cal_end = b[1]
            start[0] = w.cal_start
            end[0] = w.cal_end
            return
        start[0] = now_s - now_s % w.seconds
        end[0] = start[0] + w.seconds

    cdef int _rate_limit(self, NativeReq* r, bytes client_ip, double now) except -1:
        cdef int64_t now_ms = <int64_t>(now * 1000.0)
        cdef int64_t now_s = now_ms // 1000
        cdef int64_t start, end, res, rem, reset, cur
        cdef int64_t counts[NATIVE_MAX_WINDOWS]
        cdef int64_t resets[NATIVE_MAX_WINDOWS]
        cdef int64_t starts[NATIVE_MAX_WINDOWS]
        cdef int idx[NATIVE_MAX_WINDOWS]
        cdef bint counted[NATIVE_MAX_WINDOWS]
        cdef int nu = 0, stop = -1, i, u
        cdef bytes ident = None
        cdef KeyRecord rec
        cdef _Keys keys
        cdef SharedCounters table = self.rl_table
        cdef char lines[LINES_CAP]
        cdef Buf b
        b.p = lines
        b.n = 0
        b.cap = LINES_CAP
        # identifier (the plugin's _identifier)
        if self.rl_by == RL_BY_SERVICE:
            ident = self.rl_service_ident
        elif self.rl_by != RL_BY_IP and r.consumer > 0:
            rec = <KeyRecord>self.ka_index.records[r.consumer - 1]
            ident = rec.ident_consumer if self.rl_by == RL_BY_CONSUMER else rec.ident_credential
        if ident is None:
            ident = client_ip
        keys = self._keys_for(ident)
        if self.rl_one:
            # the plugin's single fixed window fast path (_Window.allowed_headers)
            start = now_s - now_s % self.w[0].seconds
            res = table.hit(keys.k[0], now_ms, start * 1000, (start + self.w[0].seconds) * 1000,
                            self.w[0].count_limit, 1)
            if res >= 0:
                if not self.rl_hide:
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
                    self._set_resp_lines(&b)
                return 0
            if res == RL_FAIL_OPEN:
                self.rl_plugin._log_overflow(table)
                return 0
        # the general path (the plugin's access() after its fast path)
        for i in range(self.nw):
            self._bounds(i, now_s, &start, &end)
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
                self.rl_plugin._log_overflow(table)
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
        return self._finish(r, nu, idx, counts, resets, stop, &b)

    cdef int _finish(self, NativeReq* r, int nu, int* idx, int64_t* counts, int64_t* resets,
                     int stop, Buf* b) except -1:
        # the plugin's _finish(): X-RateLimit-* per window, RateLimit-* of the window with the
        # least remaining (ties: the longer one), Retry-After and the error on a denial
        cdef int u, i, best = -1
        cdef int64_t remaining, best_remaining = 0, reset = 0
        cdef list headers = None
        if not self.rl_hide and nu > 0:
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
            return self._exit(r, self.rl_error_code, headers, self.rl_error_body)
        if b.n:
            self._set_resp_lines(b)
        return 0

    cdef int _set_resp_lines(self, Buf* b) except -1:
        if b.n > b.cap:
            raise OverflowError("rate-limiting response headers too long")
        self.resp_lines = PyBytes_FromStringAndSize(b.p, b.n)
        return 0

    cdef bint strip_response_header(self, const char* name, Py_ssize_t n) noexcept:
        """The upstream's lines the rate-limiting headers replace (header_op set_header)."""
        cdef int i
        if n >= 64 or not (self.strip_lens & (<uint64_t>1 << n)):
            return False
        for i in range(self.n_strip):
            if self.strip_len[i] == n and _ieq(name, PyBytes_AS_STRING(self.strip_blob)
                                               + self.strip_off[i], n):
                return True
        return False

    # ------------------------------------------------------------------- log
    cdef void log(self, NativeReq* r, int64_t bytes_in, int64_t bytes_out,
                  double request_ms) noexcept:
        """prometheus' log phase: one SharedMetrics.record, as Prometheus.log."""
        cdef uint32_t flags
        cdef uint32_t consumer = 0
        cdef int code
        if not self.pm:
            return
        flags = self.pm_flags
        if r.exit:
            flags |= MF_SOURCE_KONG
        if self.pm_per_consumer and 0 < r.consumer <= self.pm_n_consumers:
            consumer = self.pm_consumers[r.consumer - 1]
        code = r.code
        if code < 0 or code >= 1024:
            code = 0
        self.pm_metrics.record(self.pm_service, self.pm_route, consumer, <uint32_t>code, flags,
                               bytes_in if bytes_in > 0 else 0, bytes_out if bytes_out > 0 else 0,
                               request_ms, r.up_ms, r.kong_ms)

    # ------------------------------------------------- Python API (tests, tools)
    def run(self, bytes head not None, bytes client_ip=b"127.0.0.1", now=None):
        """Run access over a complete request head (tests): (status, req_lines, resp_lines,
        exit_headers, exit_body, consumer record index or -1)."""
        cdef RequestParser p = RequestParser()
        cdef NativeReq r
        cdef Py_ssize_t n = p.parse_head(PyBytes_AS_STRING(head), PyBytes_GET_SIZE(head))
        cdef uint32_t qoff, qn
        if n <= 0:
            raise ValueError("not a complete request head")
        qoff = p.target_off + p.path_len
        qn = p.target_off + p.target_len - qoff
        st = self.access(&r, PyBytes_AS_STRING(head), p, qoff, qn, client_ip,
                         self.wall_now() if now is None else now)
        return (st, self.req_lines, self.resp_lines, self.exit_headers if st else None,
                self.exit_body if st else None, r.consumer - 1)


# -------------------------------------------------------------------------------------------
# build (once per snapshot and route)

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


def native_enabled() -> bool:
    """FASTGW_NATIVE_PLUGINS=0 forces the Python chain everywhere (differential tests)."""
    return os.environ.get("FASTGW_NATIVE_PLUGINS", "1") != "0"


def compile_chain(chain, route=None, service=None, *, hash_spec=None, clock=None):
    """A NativeChain for the Python ``chain`` of (route, service) entities, or None when any
    plugin or config is outside the supported subset (module header) or FASTGW_NATIVE_PLUGINS=0.
    ``hash_spec``: the service's consistent-hashing upstream (None without);
    ``clock``: the Gateway's injected clock (tests), None for the wall clock."""
    if chain is None or not native_enabled():
        return None
    reason = unsupported(chain, hash_spec)
    if reason is not None:
        log.debug("route %s: Python plugin chain (%s)", getattr(route, "name", None), reason)
        return None
    try:
        return _build(chain, route, service, clock)
    except (ValueError, TypeError) as e:
        # a Python plugin changed shape in a way this module does not know: stay correct
        log.warning("route %s: Python plugin chain (native build failed: %s)",
                    getattr(route, "name", None), e)
        return None


def unsupported(chain, hash_spec=None):
    """Why ``chain`` cannot run natively (a short reason), or None when it can."""
    from fastgw.plugins.key_auth import KeyAuth
    from fastgw.plugins.prometheus import Prometheus
    from fastgw.plugins.rate_limiting import RateLimiting

    if getattr(chain, "_by_scheme", None) is not None:
        return "plugins limited to a scheme"
    if getattr(chain, "_by_consumer", None) is not None:
        return "consumer-scoped plugins"
    if chain.needs_request_body:
        return "a plugin needs the request body"
    if hash_spec is not None and "consumer" in (getattr(hash_spec, "hash_on", None),
                                                getattr(hash_spec, "hash_fallback", None)):
        return "consistent hashing on the consumer"
    for p in chain.plugins:
        t = type(p)
        c = p.config
        if t is KeyAuth:
            if c.hide_credentials or c.anonymous or c.key_in_body:
                return "key-auth hide_credentials/anonymous/key_in_body"
        elif t is RateLimiting:
            if c.policy != "local" or c.window_type != "fixed" or p._table is None:
                return "rate-limiting policy/window_type"
            if c.limit_by not in ("consumer", "credential", "ip", "service"):
                return "rate-limiting limit_by " + c.limit_by
            if chain.env is not None and chain.env.trusted_networks:
                return "trusted_ips (the client IP comes from X-Forwarded-For)"
            if len(p._windows) > NATIVE_MAX_WINDOWS:
                return "rate-limiting windows"
        elif t is Prometheus:
            pass
        else:
            return "plugin " + str(p.name)
    return None


# What every route's chain of one plugin instance shares (read-only after the build): built
# once per instance, so 100,000 routes under one global plugin hold one copy, not 100,000.
cdef dict _NAMES = {}


cdef list _shared_names(list names):
    return _NAMES.setdefault(tuple(names), names)


cdef tuple _ka_parts(p):
    parts = p.__dict__.get("_native_parts")
    if parts is None:
        parts = p._native_parts = (
            [lname for _, lname, _, _ in p._names],
            [(name, qname, qenc) for name, _, qname, qenc in p._names],
            p._challenge.encode("latin-1"))
    return parts


cdef tuple _rl_parts(p, bint one):
    parts = p.__dict__.get("_native_parts")
    if parts is not None:
        return parts
    w_cap = []
    w_limit = []
    names = []
    for w in p._windows:
        limit = w.limit_str.encode()
        w_limit.append(limit)
        lh = w.limit_header.encode("latin-1")
        rh = w.remaining_header.encode("latin-1")
        w_cap.append((lh + b": " + limit + b"\r\n", rh + b": ", lh, rh))
        names += [lh.lower(), rh.lower()]
    names += [b"ratelimit-limit", b"ratelimit-remaining", b"ratelimit-reset"]
    if one:
        names += [k.lower() for k, _ in p._windows[0].allowed_headers("0", "0")]
    names = list(dict.fromkeys(names))
    parts = p._native_parts = (
        _kept_json({"message": p.config.error_message}), list(p._windows),
        _one_parts(p._windows[0]) if one else None, w_cap, w_limit, names, b"".join(names))
    return parts


cdef NativeChain _build(chain, route, service, clock):
    from fastgw.plugins.key_auth import KeyAuth
    from fastgw.plugins.prometheus import Prometheus, _consumer_label, _route_label, _service_label
    from fastgw.plugins.rate_limiting import RateLimiting

    cdef NativeChain n = NativeChain()
    cdef KeyRecord rec
    cdef int i
    pm = None
    n.clock = clock
    n.names = _shared_names([p.name for p in chain.plugins])
    n.has_header_filter = bool(chain.has_header_filter)
    for p in chain.plugins:
        t = type(p)
        c = p.config
        if t is KeyAuth:
            n.ka = True
            n.ka_header = c.key_in_header
            n.ka_query = c.key_in_query
            n.ka_preflight = c.run_on_preflight
            n.ka_lnames, n.ka_names, n.ka_challenge = _ka_parts(p)
            n.ka_index = key_index(p)
            n.ka_body_none = KA_BODY_NONE
            n.ka_body_dup = KA_BODY_DUP
            n.ka_body_invalid = KA_BODY_INVALID
        elif t is RateLimiting:
            n.rl = True
            n.rl_plugin = p
            n.rl_table = p._table
            n.rl_by = {"consumer": RL_BY_CONSUMER, "credential": RL_BY_CREDENTIAL,
                       "ip": RL_BY_IP, "service": RL_BY_SERVICE}[c.limit_by]
            sid = getattr(service, "id", None) if service is not None else None
            n.rl_service_ident = str(sid).encode() if sid else None
            n.rl_one = p._one is not None
            n.rl_hide = c.hide_client_headers
            n.rl_error_code = c.error_code
            # the counter keys' seeds, by the plugin's own functions (same keys, same table)
            seeds = p._seeds_for(p._scope_prefix(SimpleNamespace(route=route, service=service)))
            n.nw = len(p._windows)
            n.rl_error_body, n.w_py, n.one_parts, n.w_cap, n.w_limit, names, n.strip_blob = \
                _rl_parts(p, n.rl_one)
            for i, w in enumerate(p._windows):
                n.w[i].seconds = w.seconds
                n.w[i].count_limit = w.count_limit
                n.w[i].calendar = w.calendar
                n.w[i].cal_start = 0
                n.w[i].cal_end = 0
                n.w[i].seed = seeds[i]
            if len(names) > NATIVE_MAX_STRIP:
                raise ValueError("rate-limiting sets too many response headers")
            n.n_strip = len(names)
            off = 0
            n.strip_lens = 0
            for i, name in enumerate(names):
                n.strip_off[i] = off
                n.strip_len[i] = len(name)
                n.strip_lens |= (<uint64_t>1) << len(name)
                off += len(name)
        elif t is Prometheus:
            pm = p
            n.pm = p._flags != 0
            n.pm_metrics = p._m
            n.pm_flags = p._flags
            n.pm_service = p._label_id(service, _service_label) if service is not None else 0
            n.pm_route = p._label_id(route, _route_label) if route is not None else 0
            n.pm_per_consumer = c.per_consumer
        else:
            raise TypeError(f"no native implementation of {p.name}")
    if n.pm and n.pm_per_consumer and n.ka:
        n.pm_n_consumers = len(n.ka_index.records)
        n.pm_consumers = <uint32_t*>malloc(max(1, n.pm_n_consumers) * sizeof(uint32_t))
        if n.pm_consumers == NULL:
            raise MemoryError()
        for rec in n.ka_index.records:
            n.pm_consumers[rec.index] = pm._label_id(rec.consumer, _consumer_label) \
                if rec.consumer is not None else 0
    if n.pm and n.pm_service == 0 and service is None:
        n.pm = False   # Kong: no stats without a service
    n.timed = n.pm and (n.pm_flags & MF_LATENCY) != 0
    return n
