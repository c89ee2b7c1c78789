# The compiled request path: client (downstream) and upstream protocols, exchanges, pools.
# Layout (one compiled module, uvloop's loop.pyx + include pattern): proxy.pyx includes
# proxy_wire.pxi (output assembly, status lines, read buffers), proxy_limits.pxi (Limits),
# proxy_runtime.pxi (ServiceRT, RouteRT, ProxyCore), proxy_pool.pxi (Pool, Upstream),
# proxy_connection.pxi (Downstream: HTTP/1.1 framing), proxy_exchange.pxi (Exchange: states,
# transitions, gateway-made responses), proxy_forward.pxi (route, plugins, upstream head,
# connect), proxy_response.pxi (response head and body to the sink), proxy_views.pxi (views
# the plugins and the hasher read).
cimport cython
from libc.stdint cimport int64_t, uint32_t, uint64_t

from fastgw._core.accesslog cimport AccessLog
from fastgw._core.balancer cimport Balancer
from fastgw._core.traffic cimport TrafficStats
from fastgw._core.http_parser cimport RequestParser, ResponseParser
from fastgw._core.native cimport NativeChain, NativeReq
from fastgw._core.router cimport Router

cdef class ProxyCore
cdef class Upstream
cdef class Exchange


cdef enum:  # ReqState
    # the request side of an Exchange (transitions: proxy_exchange.pxi _RQ_NEXT)
    RQ_HEAD = 1         # head received; its body (if any) waits in the carrier's buffer
    RQ_BUFFERING = 2    # the body is being read whole (plugins that read it)
    RQ_STREAMING = 3    # the body is forwarded to the upstream as it arrives
    RQ_DISCARDING = 4   # answered already: the body is read and dropped
    RQ_COMPLETE = 5     # the whole request was received (or it had no body)
    RQ_TUNNEL = 6       # after 101 Switching Protocols: bytes pass through
    RQ_ABORTED = 7      # broken framing or the client went away: nothing more is read

cdef enum:  # RespState
    # the response side of an Exchange (transitions: proxy_exchange.pxi _RP_NEXT)
    RP_NONE = 1         # nothing decided yet (routing, plugins)
    RP_UPSTREAM = 2     # an upstream is being connected, or the request went out to it
    RP_SENDING = 3      # the head went to the sink; the body follows
    RP_COMPLETE = 4     # the whole response is with the sink
    RP_TUNNEL = 5       # after 101: bytes pass through
    RP_ABORTED = 6      # truncated or unanswerable: the carrier closes

cdef enum:
    KEEP = 0            # Exchange.to(): this side stays as it is


cdef struct RBuf:
    # a read buffer borrowed from the worker's pool while bytes are in flight (proxy_wire.pxi);
    # [rpos, wpos) is received and not yet consumed; p is NULL while none is borrowed
    char* p
    Py_ssize_t rpos
    Py_ssize_t wpos


cdef class Limits:
    # every limit of the proxy, each a named constant in consts.pxd with its precedent
    cdef readonly int max_start_line
    cdef readonly int max_header_line
    cdef readonly int max_head
    cdef readonly int max_headers
    cdef readonly int max_chunk_ext
    cdef readonly int64_t max_buffered_body
    cdef readonly int64_t client_max_body_size
    cdef readonly int upstream_keepalive_pool_size
    cdef readonly int upstream_keepalive_max_requests
    cdef readonly double upstream_keepalive_idle_timeout   # seconds
    cdef readonly double keepalive_timeout                 # seconds
    cdef readonly double client_header_timeout             # seconds
    cdef readonly double client_body_timeout               # seconds
    cdef readonly int worker_connections
    cdef readonly Py_ssize_t max_queued_output
    cdef readonly Py_ssize_t response_buffer_size
    cdef readonly bint underscores_in_headers
    cdef void _set(self, str name, str kind, object v) except *


cdef class ServiceRT:
    # a compiled Service: where and how to forward (built by fastgw.config.snapshot)
    cdef public str id
    cdef public str name
    cdef public Balancer balancer
    cdef public object health         # passive health reporter or None (no passive checks)
    cdef public object hash_spec      # consistent-hashing spec or None
    cdef public object hash_input     # callable(request view) -> (bytes|None, bytes|None):
                                      # the hash input and a Set-Cookie value (snapshot-made)
    cdef public bytes host_header     # upstreams' host_header override, or None
    cdef public double connect_timeout  # seconds
    cdef public double read_timeout
    cdef public double write_timeout
    cdef public int retries
    cdef public object entity         # the config entity (for plugins and logs)
    cdef public tuple no_peer         # (status, message) when pick() finds no target, or None:
                                      # 503 MSG_NO_PEER (set for hostname services by fastgw.dns)


cdef class RouteRT:
    # a compiled Route: the router's match payload
    cdef public str id
    cdef public str name
    cdef public ServiceRT service
    cdef public object chain          # fastgw.plugins.chain.Chain, or None: the zero-cost path
    cdef public object entity
    cdef public NativeChain native    # the compiled chain (then chain is None), or None
    cdef public int https_redirect    # 0, or the status for plain-http requests to an
                                      # https-only route (https_redirect_status_code)
    cdef public bint request_buffering   # read the whole body before the upstream sees it
    cdef public bint response_buffering  # keep reading the upstream while the client is slow
    cdef public bint https_ok         # protocols has https: the route serves TLS listeners
    cdef public frozenset snis        # route.snis (lowercase, wildcards kept), None: any


cdef class Pool:
    # keep-alive connections to one target (host, port); survives config reloads
    cdef public str host              # where to connect (an IP for DNS-resolved targets)
    cdef public int port
    cdef public str hostname          # the name for Host and TLS SNI (the target's hostname)
    cdef public bytes host_header     # "hostname[:port]" as sent in Host
    cdef bytes host_line              # "Host: hostname[:port]\r\n\r\n": ends a request head
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
    # one per worker: the current snapshot, limits, counters, the connection set and sweeper
    cdef public object loop
    cdef public object snapshot       # fastgw.config.snapshot.Snapshot (balancer_for)
    cdef public Router router
    cdef public Limits limits
    cdef public set conns             # live Downstream connections
    cdef public double now            # coarse clock, refreshed by tick()
    cdef public bytes date_header     # "Date: ...\r\n", refreshed by tick()
    cdef public int64_t requests_total
    cdef public int64_t connections_total
    cdef public int64_t connections_refused
    cdef public int64_t active_requests
    cdef public bint draining
    cdef public int listen_port
    cdef public double keepalive_timeout
    cdef public double header_timeout
    cdef public double body_timeout
    cdef public object context_factory  # builds plugin Contexts (fastgw.plugins.context)
    cdef public object inprocess_connect  # callable(handler, protocol, loop): in-process
                                          # targets (fastgw.inprocess.open_inprocess)
    cdef public object pools            # dict (host, port, tls, verify) -> Pool
    cdef public object drained          # asyncio.Future set when draining and no requests left
    cdef public AccessLog access_log    # None: no access log
    cdef public TrafficStats traffic    # responses by status + latency histogram (dashboard)
    cdef public object tracer           # fastgw.debug.trace.Tracer, or None: no tracing
    cdef public object realip           # fastgw.realip.RealIP when trusted_ips is set
    cdef public int headers             # HDR_* bits: Kong's `headers` setting
    cdef list parsers                   # idle RequestParsers (fixed slots: no list resizing)
    cdef int nparsers
    cdef RequestParser take_parser(self)
    cdef void give_parser(self, RequestParser p)


cdef class Sink:
    # What an Exchange writes its response to and asks for request bytes from: the carrying
    # connection (HTTP/1.1 Downstream; an HTTP/2 stream implements the same). Heads are
    # assembled in the module's output buffer: begin_head writes the status line, the exchange
    # appends end-to-end fields, end_head adds the framing fields and ends the head.
    cdef void begin_head(self, Exchange ex, int status, const char* reason, Py_ssize_t n)
    cdef void end_head(self, Exchange ex, bint unknown_length)
    cdef void send_body(self, Exchange ex, const char* data, Py_ssize_t n)
    cdef void end_body(self, Exchange ex)
    cdef void start_tunnel(self, Exchange ex)
    cdef void tunnel_write(self, Exchange ex, bytes data)
    cdef void send_continue(self, Exchange ex)
    cdef void flush(self)
    cdef void update_reading(self)
    cdef bint backlogged(self)
    cdef void wake(self)
    cdef void abort(self, Exchange ex)
    cdef void exchange_done(self, Exchange ex)
    cdef Py_ssize_t queued_output(self)


cdef class Downstream(Sink):
    # one client connection speaking HTTP/1.1: frames bytes, owns its exchanges
    cdef ProxyCore core
    cdef readonly object transport
    cdef RBuf rb
    cdef RequestParser parser
    cdef int cstate             # CS_* (proxy_connection.pxi)
    cdef int depth              # process() nesting: exchange_done resumes only at depth 0
    cdef bint reading_paused
    cdef bint writing_paused    # the client's transport is above its high-water mark
    cdef bint resp_chunked      # this response's body is re-chunked for the client
    cdef bint out_pending       # the response head is still in the output buffer
    cdef double deadline        # head / keep-alive deadline (coarse clock)
    cdef double body_deadline   # client_body_timeout while a body is read (coarse clock)
    cdef str client_ip
    cdef bytes client_ip_b
    cdef int local_port         # the listener's port (X-Forwarded-Port)
    cdef bint tls               # accepted on an ssl listener (X-Forwarded-Proto, route checks)
    cdef bytes sni              # TLS: the client's SNI (b"": none sent); None on plain http
    cdef bint peer_trusted      # the peer is in trusted_ips (its real-ip header is believed)
    cdef Exchange ex            # the exchange in progress (HTTP/1.1: one at a time; the
                                # next pipelined request waits in the read buffer)
    cdef void process(self)
    cdef void feed_body(self, Exchange ex)
    cdef void start_exchange(self, Py_ssize_t head_len)
    cdef void write(self, bytes data)
    cdef void update_reading(self)
    cdef void reject(self, int status, str reason)
    cdef void release_buffer(self)
    cdef void forget(self, Exchange ex)
    cdef void close(self)
    cdef void check(self, double now)


@cython.final
cdef class Exchange:
    # one request and its response, whatever protocol carries them
    cdef ProxyCore core
    cdef Sink sink
    cdef RequestParser req      # the request head's spans (the carrier parsed it)
    cdef int rq                 # ReqState
    cdef int rp                 # RespState
    cdef const char* head_p     # the request head while start() runs synchronously
    cdef bytes _head_copy       # the request head, copied for plugins (async phases)
    cdef bint keep_alive        # the client may send another request after this one
    cdef bint must_close        # the carrier closes after this response
    cdef bint upgrade_req       # Connection: upgrade + Upgrade on a GET (WebSocket)
    cdef bint idempotent
    cdef bint replayable
    cdef bint has_hash
    cdef bint req_chunked       # sending the request body chunked upstream
    cdef bint host_pending      # req_head still lacks Host (the target's) and the final CRLF
    cdef bint body_filter       # the chain has body_filter phases: response re-chunked
    cdef bint ended             # finished or abandoned: logged, counted, gone from its sink
    cdef str client_ip
    cdef bytes client_ip_b
    cdef int local_port         # the carrier's listener port
    cdef bint tls               # the carrier is TLS
    cdef bytes sni              # the carrier's SNI (Router.match), None on plain http
    cdef RouteRT route
    cdef object ctx             # plugin Context or None
    cdef bytes req_head         # rewritten head to send upstream (kept for a retry)
    cdef uint64_t hash_value
    cdef object target          # balancer Target
    cdef Upstream up
    cdef object connect_task
    cdef int tries
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
    cdef bytearray body_buf
    cdef int64_t body_len       # request body bytes buffered (memory or spill file)
    cdef object spill           # temporary file of a buffered body beyond max_buffered_body
    cdef bytes fixed_body       # a buffered (or plugin-replaced) body, sent with Content-Length
    cdef object _plugin_match   # RouteMatch kept while plugins run
    cdef object _upstream_override  # canary: upstream chosen by a plugin
    cdef NativeReq nat          # the route's NativeChain: this exchange's state
    cdef bytes nat_req          # its upstream header lines (None: none, nothing stripped)
    cdef bytes nat_resp         # its response header lines (None: none, nothing stripped)
    # operating (proxy_ops.pxi): request id, fine-clock times (ms), access log fields
    cdef bint peer_trusted      # the carrier's peer is in trusted_ips
    cdef bytes real_ip_b        # the client behind trusted proxies (X-Real-IP, access log)
    cdef bytes rid              # X-Kong-Request-Id, made on first use
    cdef double t0              # head parsed (0: not logged yet / already logged)
    cdef double t_sent          # request head written upstream
    cdef double t_resp          # response head received
    cdef int up_status
    cdef bytes al_method        # access log fields captured from the head (log on only)
    cdef bytes al_target
    cdef bytes al_ref
    cdef bytes al_ua
    cdef object err_cause       # why the gateway answers 5xx itself (error log)
    cdef object trace           # fastgw.debug.trace.Trace of a traced request, else None
    cdef bint strip_trace       # the request carries X-Fastgw-Trace: not forwarded upstream

    cdef bint to(self, int rq, int rp)
    cdef void illegal(self, int rq, int rp)
    cdef void start(self, const char* head, Py_ssize_t head_len)
    cdef void request_data(self, char* data, Py_ssize_t n)
    cdef void request_end(self)
    cdef void request_broken(self)
    cdef void abandon(self, int log_status)
    cdef void body_timed_out(self)
    cdef void buffer_data(self, char* data, Py_ssize_t n)
    cdef void forward_data(self, char* data, Py_ssize_t n)
    cdef void run_access(self)
    cdef void after_access(self, result)
    cdef bint run_native(self, const char* head, Py_ssize_t head_len)
    cdef void native_log(self)
    cdef void send_plugin_response(self, result)
    cdef void write_plugin_response(self, result)
    cdef object upstream_uri(self)
    cdef void https_only(self, const char* head, bytes host)
    cdef bytes build_head(self, const char* head, m, ctx)
    cdef void proceed(self)
    cdef void go_upstream(self)
    cdef void buffered(self)
    cdef void pump_spill(self)
    cdef void compute_hash(self)
    cdef Balancer current_balancer(self)
    cdef void connect(self)
    cdef void attach(self, Upstream up)
    cdef void detach(self, bint reusable)
    cdef void target_finished(self)
    cdef void on_response_head(self, Upstream up)
    cdef void on_response_data(self, char* data, Py_ssize_t n)
    cdef void on_upgrade(self, Upstream up, Py_ssize_t head_len)
    cdef void filtered_data(self, bytes chunk, bint eof)
    cdef void on_response_done(self, Upstream up)
    cdef void upstream_failed(self, Upstream up, int kind)
    cdef void finish(self)
    cdef void run_log(self)
    cdef void end_log(self)
    cdef void write_response(self, int status, list headers, bytes body)
    cdef void send_error(self, int status, str message, bint close)
    cdef void send_response(self, int status, list headers, bytes body, bint close)
    cdef void check(self, double now)


cdef class Upstream:
    cdef ProxyCore core
    cdef Pool pool
    cdef object transport
    cdef RBuf rb
    cdef ResponseParser parser
    cdef Exchange ex            # the exchange it serves, None while idle in its pool
    cdef int state              # US_* (proxy_pool.pxi)
    cdef bint reused
    cdef bint got_bytes
    cdef bint closed
    cdef bint reading_paused    # paused by the gateway (client backpressure), not silence
    cdef bint writing_paused
    cdef int requests
    cdef double idle_since
    cdef void process(self)
    cdef void release(self, bint reusable)
