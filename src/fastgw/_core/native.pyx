# The compiled plugin chain (rules in native.pxd): the chain, its build, and the prometheus
# kernel; the authentication kernels are in native_auth.pxi, rate-limiting in
# native_ratelimit.pxi (one compiled module, uvloop's include pattern).
#
# Supported subset (compile_chain returns None for anything else, and the route keeps the
# Python chain):
# - key-auth: key_names from headers (key_in_header) and the query (key_in_query),
#   run_on_preflight, realm. Not: hide_credentials, anonymous, key_in_body, credentials with a
#   ttl.
# - jwt: header_names and uri_param_names, every algorithm and claim check of the verifier
#   (jwt.pyx), run_on_preflight, realm. Not: cookie_names, anonymous.
# - rate-limiting: policy local, window_type fixed (second .. year), limit_by consumer,
#   credential, ip or service, hide_client_headers, error_code/error_message. Not: redis,
#   sliding windows, limit_by header/path, trusted_ips (the client IP would come from
#   X-Forwarded-For).
# - prometheus: every config (the same SharedMetrics.record call as its log phase).
# - the chain itself: at most one authentication plugin, no consumer-scoped variants, no
#   per-scheme variants, no plugin needing the request body, no consistent hashing on the
#   consumer (the proxy has no Context to read it).
#
# Mirrored oddities of the Python path (the Python plugins are the spec, both paths coexist):
# - an exit response (and a gateway error: 502/504/503) is seen by prometheus with its code and
#   source "kong" (the proxy sets both for responses it makes).
cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.unicode cimport PyUnicode_DecodeLatin1
from libc.stdint cimport int64_t, uint32_t, uint64_t
from libc.string cimport memcmp
from posix.time cimport CLOCK_REALTIME, clock_gettime, timespec

from fastgw._core.ascii cimport ieq_lower
from fastgw._core.http_parser cimport Header, M_OPTIONS, RequestParser
from fastgw._core.jwt cimport JwtKey, JwtVerdict, JwtVerifier
from fastgw._core.metrics cimport MF_LATENCY, MF_SOURCE_KONG, SharedMetrics
from fastgw._core.limiter cimport LIMITER_LINES_CAP, Buf, WindowLimiter

import logging
import os
import weakref
from types import SimpleNamespace

import orjson

from fastgw._core import messages as _messages

log = logging.getLogger("fastgw.native")

cdef bytes JSON_CT = b"application/json; charset=utf-8"
cdef bytes _kept_json(obj):
    # orjson.dumps returns bytes over a 4 KiB allocation whatever its length; a body kept for
    # the life of a snapshot (one per route) is copied to its own size
    cdef bytes b = orjson.dumps(obj)
    return PyBytes_FromStringAndSize(PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b))


cdef bytes SERVER_ERROR_BODY = _kept_json({"message": _messages.INTERNAL})
# key-auth's fixed answers, shared by every route (plugins/key_auth.py's wording)
cdef bytes KA_BODY_NONE = _kept_json({"message": "No API key found in request"})
cdef bytes KA_BODY_DUP = _kept_json({"message": "Duplicate API key found"})
cdef bytes KA_BODY_INVALID = _kept_json({"message": "Unauthorized"})


# -------------------------------------------------------------------------------------------
# small C helpers

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
        return ieq_lower(name, b"x-consumer-id", 13)
    if n == 20:
        return ieq_lower(name, b"x-consumer-custom-id", 20) or ieq_lower(name, b"x-anonymous-consumer", 20)
    if n == 19:
        return ieq_lower(name, b"x-consumer-username", 19)
    if n == 23:
        return ieq_lower(name, b"x-credential-identifier", 23)
    return False




include "native_auth.pxi"
include "native_ratelimit.pxi"


# -------------------------------------------------------------------------------------------

cdef class PrometheusKernel:
    """prometheus' log phase: one SharedMetrics.record, as Prometheus.log."""

    def __init__(self, plugin, route, service, Records records):
        from fastgw.plugins.prometheus import route_label, service_label

        self.plugin = plugin
        self.metrics = plugin.metrics
        self.flags = plugin.flags
        self.service = plugin.label_id(service, service_label) if service is not None else 0
        self.route = plugin.label_id(route, route_label) if route is not None else 0
        self.per_consumer = plugin.config.per_consumer and records is not None
        self.records = records

    cdef void log(self, NativeReq* r, int64_t bytes_in, int64_t bytes_out,
                  double request_ms) noexcept:
        cdef uint32_t flags = self.flags
        cdef uint32_t consumer = 0
        cdef ConsumerRecord rec
        cdef int code
        if r.exit:
            flags |= MF_SOURCE_KONG
        if self.per_consumer and r.consumer > 0:
            rec = <ConsumerRecord>self.records.items[r.consumer - 1]
            if rec.pm_label < 0:
                # interned on the consumer's first logged request (then a C read)
                try:
                    from fastgw.plugins.prometheus import consumer_label
                    rec.pm_label = self.plugin.label_id(rec.consumer, consumer_label) \
                        if rec.consumer is not None else 0
                except Exception:
                    log.exception("prometheus: consumer label")
                    rec.pm_label = 0
            consumer = <uint32_t>rec.pm_label
        code = r.code
        if code < 0 or code >= 1024:
            code = 0
        self.metrics.record(self.service, self.route, consumer, <uint32_t>code, flags,
                            bytes_in if bytes_in > 0 else 0, bytes_out if bytes_out > 0 else 0,
                            request_ms, r.up_ms, r.kong_ms)


# -------------------------------------------------------------------------------------------

cdef class NativeChain:
    """A route's plugin chain as compiled kernels. Build with compile_chain."""

    def __init__(self):
        self.names = []

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
                return self.exit(r, 500, [(b"Content-Type", JSON_CT)], SERVER_ERROR_BODY)
            except Exception:
                return 500

    cdef int _access(self, NativeReq* r, const char* head, RequestParser p, uint32_t query_off,
                     uint32_t query_n, bytes client_ip, double now) except -1:
        # Kong's priorities: jwt 1450, key-auth 1250, rate-limiting 910 (prometheus: log only)
        cdef int st
        if self.jwt is not None:
            st = self.jwt.access(self, r, head, p, query_off, query_n, now)
            if st:
                return st
        if self.ka is not None:
            st = self.ka.access(self, r, head, p, query_off, query_n)
            if st:
                return st
        if self.rl is not None:
            st = self.rl.access(self, r, client_ip, now)
            if st:
                return st
        return 0

    cdef int exit(self, NativeReq* r, int status, list headers, bytes body) except -1:
        self.exit_headers = headers
        self.exit_body = body
        self.req_lines = None
        self.resp_lines = None
        # prometheus records an exit with its status and source "kong" (Kong: exits are
        # responses too, whatever else the chain has)
        r.exit = True
        r.code = status
        return status

    cdef bint strip_response_header(self, const char* name, Py_ssize_t n) noexcept:
        """The upstream's lines the chain's response headers replace."""
        return self.rl is not None and self.rl.limiter.strip(name, n)

    cdef void log(self, NativeReq* r, int64_t bytes_in, int64_t bytes_out,
                  double request_ms) noexcept:
        if self.pm is not None:
            self.pm.log(r, bytes_in, bytes_out, request_ms)

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
    except Exception:
        # a kernel that cannot mirror its plugin's config never fails the config: the route
        # keeps the Python chain, which is the spec
        log.exception("route %s: Python plugin chain (native build failed)",
                      getattr(route, "name", None))
        return None


def unsupported(chain, hash_spec=None):
    """Why ``chain`` cannot run natively (a short reason), or None when it can."""
    from fastgw.plugins.jwt import Jwt
    from fastgw.plugins.key_auth import KeyAuth
    from fastgw.plugins.prometheus import Prometheus
    from fastgw.plugins.rate_limiting import RateLimiting

    if chain.scheme_scoped:
        return "plugins limited to a scheme"
    if chain.consumer_scoped:
        return "consumer-scoped plugins"
    if chain.needs_request_body:
        return "a plugin needs the request body"
    if hash_spec is not None and "consumer" in (getattr(hash_spec, "hash_on", None),
                                                getattr(hash_spec, "hash_fallback", None)):
        return "consistent hashing on the consumer"
    auth = 0
    for p in chain.plugins:
        t = type(p)
        c = p.config
        if t is KeyAuth:
            auth += 1
            if c.hide_credentials or c.anonymous or c.key_in_body:
                return "key-auth hide_credentials/anonymous/key_in_body"
            if p.expiry:
                return "key-auth credentials with a ttl"
        elif t is Jwt:
            auth += 1
            if c.anonymous or c.cookie_names:
                return "jwt anonymous/cookie_names"
        elif t is RateLimiting:
            if c.policy != "local" or c.window_type != "fixed":
                return "rate-limiting policy/window_type"
            if c.limit_by not in ("consumer", "credential", "ip", "service"):
                return "rate-limiting limit_by " + c.limit_by
            if chain.env is not None and chain.env.trusted_networks:
                return "trusted_ips (the client IP comes from X-Forwarded-For)"
        elif t is Prometheus:
            pass
        else:
            return "plugin " + str(p.name)
    if auth > 1:
        return "more than one authentication plugin"
    return None


# What every route's chain of one plugin instance shares (read-only after the build): made
# once per instance, so 100,000 routes under one global plugin hold one copy, not 100,000.
# The authentication kernels do not depend on the route; they live as long as their plugin.
cdef dict _NAMES = {}
_AUTH_KERNELS = weakref.WeakKeyDictionary()


cdef list _shared_names(list names):
    return _NAMES.setdefault(tuple(names), names)


cdef object _auth_kernel(p, factory):
    k = _AUTH_KERNELS.get(p)
    if k is None:
        k = _AUTH_KERNELS[p] = factory(p)
    return k


cdef NativeChain _build(chain, route, service, clock):
    from fastgw.plugins.jwt import Jwt
    from fastgw.plugins.key_auth import KeyAuth
    from fastgw.plugins.prometheus import Prometheus
    from fastgw.plugins.rate_limiting import RateLimiting

    cdef NativeChain n = NativeChain()
    pm = None
    n.clock = clock
    n.names = _shared_names([p.name for p in chain.plugins])
    for p in chain.plugins:
        t = type(p)
        if t is KeyAuth:
            n.ka = <KeyAuthKernel>_auth_kernel(p, KeyAuthKernel)
            n.records = n.ka.records
        elif t is Jwt:
            n.jwt = <JwtKernel>_auth_kernel(p, JwtKernel)
            n.records = n.jwt.records
        elif t is RateLimiting:
            n.rl = RateLimitKernel(p, route, service)
        elif t is Prometheus:
            pm = p
        else:
            raise TypeError(f"no native implementation of {p.name}")
    # Kong: no stats without a service; a config that counts nothing has no log phase
    if pm is not None and pm.flags != 0 and service is not None:
        n.pm = PrometheusKernel(pm, route, service, n.records)
    n.timed = n.pm is not None and (n.pm.flags & MF_LATENCY) != 0
    return n
