# The compiled request path: client (downstream) and upstream protocols, connection pools.
from libc.stdint cimport int64_t, uint32_t, uint64_t

from fastgw._core.accesslog cimport AccessLog
from fastgw._core.balancer cimport Balancer
from fastgw._core.traffic cimport TrafficStats
from fastgw._core.http_parser cimport RequestParser, ResponseParser
from fastgw._core.native cimport NativeReq

cdef class ProxyCore
cdef class Upstream


cdef class ServiceRT:
    # a compiled Service: where and how to forward (built by fastgw.config.snapshot)
    cdef public str id
    cdef public str name
    cdef public object balancer       # fastgw._core.balancer.Balancer
    cdef public object health         # passive health reporter or None (no passive checks)
    cdef public object hash_spec      # consistent-hashing spec or None
    cdef public bytes host_header     # upstreams' host_header override, or None
    cdef public double connect_timeout  # seconds
    cdef public double read_timeout
    cdef public double write_timeout
    cdef public int retries
    cdef public object entity         # the config entity (for plugins and logs)


cdef class RouteRT:
    # a compiled Route: the router's match payload
    cdef public str id
    cdef public str name
    cdef public ServiceRT service
    cdef public object chain          # fastgw.plugins.chain.Chain, or None: the zero-cost path
    cdef public object entity
    cdef public object native         # fastgw._core.native.NativeChain (then chain is None)
    cdef public int https_redirect    # 0, or the status for plain-http requests to an
                                      # https-only route (https_redirect_status_code)


cdef class Pool:
    # keep-alive connections to one target (host, port); survives config reloads
    cdef public str host
    cdef public int port
    cdef public bytes host_header     # "host[:port]" as sent in Host
    cdef bytes host_line              # "Host: host[:port]\r\n\r\n": ends a request head
    cdef ProxyCore core
    cdef list idle                    # idle Upstream connections, most recent last
    cdef public int max_idle
    cdef public int max_requests
    cdef public double idle_timeout
    cdef public object handler        # in-process target (callable) or None for sockets
    cdef public object ssl            # SSLContext: TLS to this target (service protocol https)
    cdef Upstream take(self, double now)
    cdef void give(self, Upstream up, double now)


cdef class ProxyCore:
    # one per worker: the current snapshot, settings, counters, the connection set and sweeper
    cdef public object loop
    cdef public object snapshot       # fastgw.config.snapshot.Snapshot (has .router)
    cdef public object router
    cdef public set conns             # live Downstream connections
    cdef public double now            # coarse clock, refreshed by tick()
    cdef public bytes date_header     # "Date: ...\r\n", refreshed by tick()
    cdef public int64_t requests_total
    cdef public int64_t connections_total
    cdef public int64_t active_requests
    cdef public bint draining
    cdef public int listen_port
    cdef public double keepalive_timeout
    cdef public double header_timeout
    cdef public object context_factory  # builds plugin Contexts (fastgw.plugins.context)
    cdef public object pools            # dict "host:port" -> Pool
    cdef public dict limits             # parser limits applied to new connections
    cdef public object drained          # asyncio.Future set when draining and no requests left
    cdef public AccessLog access_log    # None: no access log
    cdef public TrafficStats traffic    # responses by status + latency histogram (dashboard)
    cdef public object tracer           # fastgw.debug.trace.Tracer, or None: no tracing
    cdef public object realip           # fastgw.realip.RealIP when trusted_ips is set
    cdef public int headers             # HDR_* bits: Kong's `headers` setting


cdef class ConnBuffer:
    # the per-connection read buffer both protocols share: uvloop reads straight into it
    # (BufferedProtocol); [rpos, wpos) is received and not yet consumed
    cdef bytearray buf
    cdef char* bufp
    cdef object view            # memoryview of buf, sliced per read
    cdef Py_ssize_t rpos
    cdef Py_ssize_t wpos


cdef class Downstream(ConnBuffer):
    cdef ProxyCore core
    cdef object transport
    cdef RequestParser parser
    cdef int state
    cdef bint reading_paused
    cdef bint keep_alive
    cdef bint upgrade_req       # Connection: upgrade + Upgrade on a GET (WebSocket)
    cdef bint in_exchange       # a request is counted in ProxyCore.active_requests
    cdef bint req_done          # request body fully read from the client
    cdef bint resp_started      # response head written to the client
    cdef bint resp_chunked      # re-chunking the response body for the client
    cdef bint out_pending       # the response head is still in the scratch buffer (unwritten)
    cdef bint close_after
    cdef double deadline        # head/keep-alive/send deadline (coarse clock)
    cdef str client_ip
    cdef bytes client_ip_b
    cdef bytes real_ip_b        # the client behind trusted proxies (X-Real-IP, access log)
    cdef bint peer_trusted      # the peer is in trusted_ips (its real-ip header is believed)
    # current exchange
    cdef RouteRT route
    cdef object ctx             # plugin Context or None
    cdef bytes req_head         # rewritten head to send upstream (kept for a retry)
    cdef bint req_chunked       # sending the request body chunked upstream
    cdef uint64_t hash_value
    cdef bint has_hash
    cdef object target          # balancer Target
    cdef Upstream up
    cdef object connect_task
    cdef int tries
    cdef bint req_sent          # something of this request reached an upstream socket
    cdef bint idempotent
    cdef bint replayable
    cdef double t_start
    cdef double up_deadline
    cdef int status
    cdef int64_t bytes_in
    cdef int64_t bytes_out
    cdef bytes set_cookie       # consistent-hashing cookie to set on the response
    cdef uint32_t path_off      # request path span in the head (origin- or absolute-form)
    cdef uint32_t path_n
    cdef uint32_t query_off     # "?query" span (with the '?'), query_n 0 when absent
    cdef uint32_t query_n
    cdef double t_up            # plugin path: loop time at head / upstream send (latencies)
    cdef int64_t max_body       # ctx.max_body_size, -1 = none
    cdef int64_t body_sent
    cdef bint buffering         # reading the whole request body for the plugins
    cdef bytearray body_buf
    cdef bytes fixed_body       # a buffered (or plugin-replaced) body, sent with Content-Length
    cdef bint body_filter       # the chain has body_filter phases: response re-chunked
    cdef bint host_pending      # req_head still lacks Host (the target's) and the final CRLF
    cdef object _plugin_match   # RouteMatch kept while plugins run
    cdef bytes _head_copy       # the request head, copied for plugins
    cdef object _upstream_override  # canary: upstream chosen by a plugin
    cdef NativeReq nat          # the route's NativeChain: this exchange's state
    cdef bytes nat_req          # its upstream header lines (None: none, nothing stripped)
    cdef bytes nat_resp         # its response header lines (None: none, nothing stripped)
    # operating: request id, fine-clock latencies (ms), access log fields
    cdef bytes rid              # X-Kong-Request-Id, made on first use
    cdef double t0              # head parsed
    cdef double t_sent          # request head written upstream
    cdef double t_resp          # response head received
    cdef int up_status
    cdef int64_t out0           # bytes_out at the start of the exchange
    cdef bytes al_method        # access log fields captured from the head (log on only)
    cdef bytes al_target
    cdef bytes al_ref
    cdef bytes al_ua
    cdef object err_cause       # why the gateway answers 5xx itself (error log)
    cdef object trace           # fastgw.debug.trace.Trace of a traced request, else None
    cdef bint strip_trace       # the request carries X-Fastgw-Trace: not forwarded upstream

    cdef void process(self)
    cdef void update_reading(self)
    cdef void on_head(self, Py_ssize_t head_len)
    cdef void buffer_body(self)
    cdef void run_access(self)
    cdef void after_access(self, result)
    cdef bint run_native(self, const char* head, Py_ssize_t head_len)
    cdef void native_log(self)
    cdef void send_plugin_response(self, result)
    cdef void write_plugin_response(self, result)
    cdef object upstream_uri(self)
    cdef void https_only(self, const char* head, bytes host)
    cdef bytes build_head(self, const char* head, m, ctx)
    cdef void proceed(self, object result)
    cdef void compute_hash(self)
    cdef Balancer current_balancer(self)
    cdef void connect(self)
    cdef void attach(self, Upstream up)
    cdef void pump_request_body(self)
    cdef void upstream_failed_client_body(self)
    cdef void target_finished(self)
    cdef void on_response_head(self, Upstream up)
    cdef void on_response_data(self, char* data, Py_ssize_t n)
    cdef void flush(self)
    cdef void on_upgrade(self, Upstream up, Py_ssize_t head_len)
    cdef void filtered_data(self, bytes chunk, bint eof)
    cdef void on_response_done(self, Upstream up)
    cdef void upstream_failed(self, Upstream up, int kind)
    cdef void finish_exchange(self)
    cdef void run_log(self)
    cdef void send_error(self, int status, str message, bint close)
    cdef void send_response(self, int status, list headers, bytes body, bint close)
    cdef void write(self, bytes data)
    cdef void close(self)
    cdef void check(self, double now)
    cdef bytes request_id(self)
    cdef void log_access(self)
    cdef void record_access(self, AccessLog al, double now)
    cdef void start_trace(self, bytes key, bytes method, bytes host, bytes path,
                          const char* head, Py_ssize_t head_len)
    cdef void put_kong_headers(self, bint proxied)


cdef class Upstream(ConnBuffer):
    cdef ProxyCore core
    cdef Pool pool
    cdef object transport
    cdef ResponseParser parser
    cdef Downstream client
    cdef int state
    cdef bint reused
    cdef bint got_bytes
    cdef bint closed
    cdef bint reading_paused
    cdef bint writing_paused
    cdef int requests
    cdef double idle_since
    cdef void process(self)
    cdef void release(self, bint reusable)
