# The compiled plugin chain: a route's plugins as a flat list of compiled kernels, run without
# entering Python per request.
#
# Rules:
# - A kernel is built from a Python plugin instance's PUBLIC attributes (fastgw/plugins/*.py)
#   and holds only what the request path needs. Behaviour that exists in a kernel module of its
#   own (token verification: jwt.pyx; windows, counting, headers: limiter.pyx; metrics:
#   metrics.pxd) is the Python plugin's too, and is called here, never re-implemented.
# - A NativeChain is built (compile_chain) only when EVERY plugin of a route's chain has a kernel
#   for its config; anything else keeps the Python chain. A build that fails for any reason is
#   logged and the route keeps the Python chain: a kernel never fails a config.
# - Per request: C lookups, the shared tables' C-level calls, one bytes per output.
# - The chain object is shared by every request of the route: per-request state lives in the
#   caller's NativeReq and the bytes it copies out right after access(); exit_headers/exit_body
#   are only valid until the next access() (the proxy sends them at once).
from libc.stdint cimport int64_t, uint32_t, uint64_t

from fastgw._core.http_parser cimport RequestParser
from fastgw._core.jwt cimport JwtVerifier
from fastgw._core.limiter cimport LIMITER_MAX_WINDOWS, Buf, WindowLimiter
from fastgw._core.metrics cimport SharedMetrics

cdef enum:
    NATIVE_MAX_WINDOWS = LIMITER_MAX_WINDOWS


ctypedef struct NativeReq:
    # what one exchange of a native route carries (a field of the proxy's Exchange)
    bint active        # the native chain ran: its log phase is due
    bint timed         # prometheus records latencies: the proxy stamps the times
    bint exit          # a plugin answered (prometheus source "kong")
    int consumer       # the auth kernel's record index + 1; 0 = not authenticated
    int code           # status prometheus records; 0 = none (Python: ctx.response unset)
    double kong_ms     # latencies in ms, -1 = not measured (Python: None)
    double up_ms


cdef class ConsumerRecord:
    # one credential of an auth kernel: what ctx.authenticate(consumer, credential, identifier)
    # would do, rendered once
    cdef readonly object consumer
    cdef readonly object credential
    cdef readonly int index
    cdef readonly bytes req_lines       # upstream header lines; None: authenticate raises (500)
    cdef readonly bytes ident_consumer  # rate-limiting identifiers (None: the client IP)
    cdef readonly bytes ident_credential
    cdef int pm_label                   # prometheus' consumer label id; -1: not interned yet


cdef class Records:
    cdef readonly list items            # by index (NativeReq.consumer - 1)
    cdef dict by_cred                   # (id(consumer), id(credential)) -> ConsumerRecord

    cdef ConsumerRecord get(self, consumer, credential, identifier)


cdef class NativeChain


cdef class KeyAuthKernel:
    cdef bint header
    cdef bint query
    cdef bint preflight
    cdef list lnames                    # lowercase header names (bytes), in config order
    cdef list names                     # [(name str, qname bytes, qname_enc bytes | None)]
    cdef readonly dict keys             # the plugin's key str -> (consumer, credential)
    cdef readonly Records records
    cdef bytes challenge
    cdef bytes body_none
    cdef bytes body_dup
    cdef bytes body_invalid

    cdef int access(self, NativeChain c, NativeReq* r, const char* head, RequestParser p,
                    uint32_t query_off, uint32_t query_n) except -1
    cdef int unauthorized(self, NativeChain c, NativeReq* r, bytes body) except -1


cdef class JwtKernel:
    cdef JwtVerifier verifier
    cdef bint preflight
    cdef list lnames                    # lowercase header names searched for a Bearer token
    cdef list params                    # uri_param_names (str)
    cdef list markers                   # raw query substrings that make a parameter possible
    cdef bytes challenge                # no token sent
    cdef bytes challenge_invalid        # a token that fails
    cdef readonly Records records

    cdef int access(self, NativeChain c, NativeReq* r, const char* head, RequestParser p,
                    uint32_t query_off, uint32_t query_n, double now) except -1
    cdef int fail(self, NativeChain c, NativeReq* r, bytes challenge, bytes body) except -1


cdef class _Keys:
    cdef uint64_t k[NATIVE_MAX_WINDOWS]


cdef class RateLimitKernel:
    cdef WindowLimiter limiter          # the plugin's own
    cdef int by                         # RL_BY_* in native_ratelimit.pxi
    cdef bytes service_ident
    cdef int nw
    cdef uint64_t seeds[NATIVE_MAX_WINDOWS]
    cdef dict keys                      # identifier bytes -> _Keys

    cdef _Keys keys_for(self, bytes ident)
    cdef int access(self, NativeChain c, NativeReq* r, bytes client_ip, double now) except -1


cdef class PrometheusKernel:
    cdef SharedMetrics metrics
    cdef uint32_t flags
    cdef uint32_t service
    cdef uint32_t route
    cdef bint per_consumer
    cdef object plugin                  # for its public label_id() (a consumer's first log)
    cdef Records records                # the chain's auth records (None: no auth)

    cdef void log(self, NativeReq* r, int64_t bytes_in, int64_t bytes_out,
                  double request_ms) noexcept


cdef class NativeChain:
    cdef readonly list names            # plugin names, in chain order
    cdef object clock                   # None: the wall clock; else a callable (FakeClock)
    cdef readonly bint timed            # prometheus records latencies (the proxy times them)
    cdef Records records                # the auth kernel's (None: no auth plugin)
    cdef KeyAuthKernel ka
    cdef JwtKernel jwt
    cdef RateLimitKernel rl
    cdef PrometheusKernel pm
    # outputs of the last access()
    cdef readonly list exit_headers
    cdef readonly bytes exit_body
    cdef readonly bytes req_lines       # None: nothing to add/strip upstream
    cdef readonly bytes resp_lines      # None: nothing to add/strip on the response

    cdef double wall_now(self) except? -1.0
    cdef int access(self, NativeReq* r, const char* head, RequestParser p, uint32_t query_off,
                    uint32_t query_n, bytes client_ip, double now) noexcept
    cdef int _access(self, NativeReq* r, const char* head, RequestParser p, uint32_t query_off,
                     uint32_t query_n, bytes client_ip, double now) except -1
    cdef int exit(self, NativeReq* r, int status, list headers, bytes body) except -1
    cdef bint strip_response_header(self, const char* name, Py_ssize_t n) noexcept
    cdef void log(self, NativeReq* r, int64_t bytes_in, int64_t bytes_out,
                  double request_ms) noexcept


# True for the request headers ctx.authenticate replaces (x-consumer-id, x-consumer-custom-id,
# x-consumer-username, x-credential-identifier, x-anonymous-consumer): the proxy drops the
# client's lines of these names when a native chain authenticated the request.
cdef bint is_consumer_header(const char* name, Py_ssize_t n) noexcept
