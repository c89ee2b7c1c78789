# The compiled plugin chain: key-auth + rate-limiting (local) + prometheus without entering
# Python per request (issue 6's "<= 10% with plugins" target).
#
# Rules:
# - The Python plugins (fastgw/plugins/key_auth.py, rate_limiting.py, prometheus.py) are the
#   spec. A NativeChain is built (compile_chain) only when EVERY plugin of a route's chain is one
#   of these with a config in the supported subset; anything else keeps the Python chain.
# - Everything is precomputed from the Python plugin instances at snapshot build: the key index,
#   the upstream consumer header lines, the rate-limit seeds and header names, the metric label
#   ids. Per request: C lookups, the shared tables' C-level calls, one bytes per output.
# - The chain object is shared by every request of the route: per-request state lives in the
#   caller's NativeReq and the bytes it copies out right after access(); exit_headers/exit_body
#   are only valid until the next access() (the proxy sends them at once).
from libc.stdint cimport int64_t, uint32_t, uint64_t

from fastgw._core.http_parser cimport RequestParser
from fastgw._core.metrics cimport SharedMetrics
from fastgw._core.ratelimit cimport SharedCounters

cdef enum:
    NATIVE_MAX_WINDOWS = 6      # second .. year
    NATIVE_MAX_STRIP = 16       # response header names a rate-limiting instance sets


ctypedef struct NativeReq:
    # what one exchange of a native route carries (a field of the proxy's Exchange)
    bint active        # the native chain ran: its log phase is due
    bint timed         # prometheus records latencies: the proxy stamps the times
    bint exit          # a plugin answered (prometheus source "kong")
    int consumer       # key-auth record index + 1; 0 = not authenticated
    int code           # status prometheus records; 0 = none (Python: ctx.response unset)
    double kong_ms     # latencies in ms, -1 = not measured (Python: None)
    double up_ms


cdef class KeyRecord:
    # one key-auth credential: what ctx.authenticate(consumer, credential, id) would do
    cdef readonly object consumer
    cdef readonly object credential
    cdef readonly int index
    cdef readonly bytes req_lines       # upstream header lines; None: authenticate raises (500)
    cdef readonly bytes ident_consumer  # rate-limiting identifiers (None: the client IP)
    cdef readonly bytes ident_credential


cdef class KeyIndex:
    # the credentials of one key-auth plugin instance (shared by every chain that has it)
    cdef readonly dict by_bytes         # key (latin-1 bytes) -> KeyRecord: header keys
    cdef readonly dict by_str           # key str -> KeyRecord: query keys (percent-decoded)
    cdef readonly list records


ctypedef struct Buf:
    # bounded output assembly on the stack (n > cap after an overflow)
    char* p
    Py_ssize_t n
    Py_ssize_t cap


cdef class _Keys:
    cdef uint64_t k[NATIVE_MAX_WINDOWS]


ctypedef struct NWindow:
    int64_t seconds
    int64_t count_limit
    bint calendar
    int64_t cal_start      # cached [start, end) of the current month/year (seconds)
    int64_t cal_end
    uint64_t seed


cdef class NativeChain:
    cdef readonly list names            # plugin names, in chain order
    cdef object clock                   # None: the wall clock; else a callable (FakeClock)
    cdef bint has_header_filter         # Python run_exit sets ctx.response only then
    cdef readonly bint timed            # prometheus records latencies (the proxy times them)
    # key-auth
    cdef bint ka
    cdef bint ka_header
    cdef bint ka_query
    cdef bint ka_preflight
    cdef list ka_lnames                 # lowercase header names (bytes), in config order
    cdef list ka_names                  # [(name str, qname bytes, qname_enc bytes | None)]
    cdef KeyIndex ka_index
    cdef bytes ka_challenge
    cdef bytes ka_body_none
    cdef bytes ka_body_dup
    cdef bytes ka_body_invalid
    # rate-limiting
    cdef bint rl
    cdef object rl_plugin
    cdef SharedCounters rl_table
    cdef int rl_by                      # RL_BY_* in native.pyx
    cdef bytes rl_service_ident
    cdef bint rl_one                    # the plugin's single-fixed-window fast path
    cdef bint rl_hide
    cdef int rl_error_code
    cdef bytes rl_error_body
    cdef int nw
    cdef NWindow w[NATIVE_MAX_WINDOWS]
    cdef list w_py                      # the plugin's _Window objects
    cdef tuple one_parts                # the fast path's header lines around R, R, T
    cdef list w_cap                     # the same with the plugin's capitalized names
    cdef list w_limit                   # per window: the limit as bytes (Lua's tostring)
    cdef dict rl_keys                   # identifier bytes -> _Keys
    cdef bytes strip_blob               # lowercase response header names rate-limiting sets
    cdef int n_strip
    cdef Py_ssize_t strip_off[NATIVE_MAX_STRIP]
    cdef Py_ssize_t strip_len[NATIVE_MAX_STRIP]
    cdef uint64_t strip_lens            # bit n set: some name has length n (fast reject)
    # prometheus
    cdef bint pm
    cdef SharedMetrics pm_metrics
    cdef uint32_t pm_flags
    cdef uint32_t pm_service
    cdef uint32_t pm_route
    cdef bint pm_per_consumer
    cdef uint32_t* pm_consumers         # label id per key-auth record index (malloc'd)
    cdef Py_ssize_t pm_n_consumers
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
    cdef int _key_auth(self, NativeReq* r, const char* head, RequestParser p, uint32_t query_off,
                       uint32_t query_n) except -1
    cdef int _unauthorized(self, NativeReq* r, bytes body) except -1
    cdef _Keys _keys_for(self, bytes ident)
    cdef void _bounds(self, int i, int64_t now_s, int64_t* start, int64_t* end) except *
    cdef int _rate_limit(self, NativeReq* r, bytes client_ip, double now) except -1
    cdef int _finish(self, NativeReq* r, int nu, int* idx, int64_t* counts, int64_t* resets,
                     int stop, Buf* b) except -1
    cdef int _set_resp_lines(self, Buf* b) except -1
    cdef int _exit(self, NativeReq* r, int status, list headers, bytes body) except -1
    cdef bint strip_response_header(self, const char* name, Py_ssize_t n) noexcept
    cdef void log(self, NativeReq* r, int64_t bytes_in, int64_t bytes_out,
                  double request_ms) noexcept


# True for the request headers ctx.authenticate replaces (x-consumer-id, x-consumer-custom-id,
# x-consumer-username, x-credential-identifier, x-anonymous-consumer): the proxy drops the
# client's lines of these names when a native chain authenticated the request.
cdef bint is_consumer_header(const char* name, Py_ssize_t n) noexcept
