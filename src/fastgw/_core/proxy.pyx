# The compiled request path (DESIGN.md "The request path").
#
# Rules:
# - One Downstream per client connection and one Upstream per upstream connection; both are
#   BufferedProtocols that read into one preallocated buffer each (CONN_BUFFER_SIZE).
# - Per request Python is entered a fixed number of times: router.match, balancer.pick, the
#   transport writes. Plugin code runs only when the matched route has a chain.
# - Nothing the parser did not accept is forwarded, and the client's framing is never forwarded
#   verbatim: heads are rewritten (RFC 9110 7.6: hop-by-hop fields dropped, X-Forwarded-*, Via)
#   and bodies re-framed (Content-Length kept, chunked re-chunked).
# - Retries only when nothing of the request reached the upstream (connect failed), or when a
#   reused keep-alive connection died before answering an idempotent, replayable request.
# - Timeouts are checked by one periodic sweep per worker (ProxyCore.tick) against a coarse
#   clock, instead of one timer per read.
# - Backpressure: a side whose peer's write buffer is above its high-water mark stops reading
#   until the peer drains (pause_writing/resume_writing), so bodies are streamed, never held.
cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.bytearray cimport PyByteArray_AS_STRING
from libc.stdint cimport int64_t, uint32_t, uint64_t
from libc.stdlib cimport malloc, realloc
from libc.string cimport memcpy, memmove

from fastgw._core.balancer cimport Balancer, Target
from fastgw._core.consts cimport CONN_BUFFER_SIZE
from fastgw._core.native cimport NativeChain, is_consumer_header
from fastgw._core.router cimport RouteMatch, Router
from fastgw._core.http_parser cimport (
    BODY_CHUNKED, BODY_LENGTH, BODY_NONE, BODY_UNTIL_CLOSE, H_CONTENT_LENGTH, H_EXPECT, H_HOST,
    H_DATE, H_UPGRADE, H_VIA, H_X_FORWARDED_FOR, H_X_FORWARDED_HOST, H_X_FORWARDED_PATH, H_X_FORWARDED_PORT,
    H_X_FORWARDED_PROTO, H_X_REAL_IP, HF_HOP, Header, HttpParser, M_CONNECT, M_DELETE, M_GET, M_HEAD,
    M_OPTIONS, M_PUT, M_TRACE, RequestParser, ResponseParser,
)

import asyncio
import logging
import os
from email.utils import formatdate

import orjson

log = logging.getLogger("fastgw.proxy")

cdef enum:
    ST_HEAD = 0        # reading a request head (or idle between requests)
    ST_PENDING = 1     # head done: plugins or the upstream connect are in progress
    ST_BODY = 2        # attached to an upstream: request body streaming / response pending
    ST_DISCARD = 3     # answered by the gateway: reading and dropping the request body
    ST_CLOSED = 4
    ST_TUNNEL = 5      # after a 101 (WebSocket, any Upgrade): bytes pass through both ways

    RS_IDLE = 0
    RS_HEAD = 1
    RS_BODY = 2
    RS_TUNNEL = 3

    FAIL_CONNECT = 1          # refused / unreachable: nothing was sent
    FAIL_CONNECT_TIMEOUT = 2
    FAIL_RESET = 3            # connection lost before the response completed
    FAIL_BAD_RESPONSE = 4
    FAIL_READ_TIMEOUT = 5

    # Stop reading from the client when less than this is free in its buffer while the data
    # waits (body before the upstream is connected, pipelined requests).
    READ_PAUSE_FREE = 4096

    # Request bodies buffered for plugins that read them (key-auth key_in_body,
    # request-transformer body rules). nginx keeps client_body_buffer_size (8-16 KiB) in memory
    # and spills to disk; Kong reads the whole body for these plugins. fastgw keeps it in
    # memory up to this size and answers 413 beyond it.
    MAX_BUFFERED_BODY = 8388608       # bytes (8 MiB)

DEF_SERVER = b"fastgw/0.1.0"

# ---------------------------------------------------------------------------------------------
# Output assembly: one growable scratch buffer per process (the event loop is single-threaded
# and every head is turned into a bytes object before anything else can run).

cdef struct Out:
    char* p
    Py_ssize_t n
    Py_ssize_t cap

cdef Out _out
_out.cap = 65536
_out.n = 0
_out.p = <char*>malloc(_out.cap)


cdef int _reserve(Py_ssize_t extra) except -1:
    cdef Py_ssize_t cap = _out.cap
    cdef char* p
    while cap < _out.n + extra:
        cap *= 2
    p = <char*>realloc(_out.p, cap)
    if p == NULL:
        raise MemoryError()
    _out.p = p
    _out.cap = cap
    return 0


cdef inline int put(const char* s, Py_ssize_t n) except -1:
    if _out.n + n > _out.cap:
        _reserve(n)
    memcpy(_out.p + _out.n, s, n)
    _out.n += n
    return 0


cdef inline int putb(bytes b) except -1:
    return put(PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b))


cdef inline int put_int(int64_t v, int base) except -1:
    cdef char tmp[24]
    cdef int i = 24
    cdef const char* digits = b"0123456789abcdef"
    if v == 0:
        return putb(b"0")
    while v > 0:
        i -= 1
        tmp[i] = digits[v % base]
        v //= base
    return put(tmp + i, 24 - i)


cdef inline bytes take():
    cdef bytes b = PyBytes_FromStringAndSize(_out.p, _out.n)
    _out.n = 0
    return b


cdef inline int put_header_line(const char* head, Header* h) except -1:
    put(head + h.name_off, h.name_len)
    putb(b": ")
    put(head + h.value_off, h.value_len)
    return putb(b"\r\n")


cdef bytes chunk_frame(const char* data, Py_ssize_t n):
    _out.n = 0
    put_int(n, 16)
    putb(b"\r\n")
    put(data, n)
    putb(b"\r\n")
    return take()


cdef dict REASONS = {
    200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 408: "Request Timeout", 411: "Length Required",
    413: "Request Entity Too Large", 414: "Request-URI Too Long", 417: "Expectation Failed",
    429: "Too Many Requests", 431: "Request Header Fields Too Large", 500: "Internal Server Error",
    501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable",
    504: "Gateway Timeout", 505: "HTTP Version Not Supported",
}

# Kong's messages for the responses the gateway makes itself.
MSG_NO_ROUTE = "no Route matched with those values"
MSG_BAD_GATEWAY = "An invalid response was received from the upstream server"
MSG_TIMEOUT = "The upstream server is timing out"
MSG_NO_PEER = "failure to get a peer from the ring-balancer"
MSG_INTERNAL = "An unexpected error occurred"


def _request_id() -> str:
    return os.urandom(16).hex()


cdef inline bytes _to_bytes(object v):
    if isinstance(v, bytes):
        return <bytes>v
    return str(v).encode("latin-1")


# ---------------------------------------------------------------------------------------------

cdef class ServiceRT:
    def __init__(self, str id, str name, balancer, *, health=None, hash_spec=None,
                 bytes host_header=None, double connect_timeout=60.0,
                 double read_timeout=60.0, double write_timeout=60.0, int retries=5,
                 entity=None):
        self.id = id
        self.name = name
        self.balancer = balancer
        self.health = health
        self.hash_spec = hash_spec
        self.host_header = host_header
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.write_timeout = write_timeout
        self.retries = retries
        self.entity = entity


cdef class RouteRT:
    def __init__(self, str id, str name, ServiceRT service, chain=None, entity=None,
                 native=None, int https_redirect=0):
        self.id = id
        self.name = name
        self.service = service
        self.chain = chain
        self.entity = entity
        self.native = native
        self.https_redirect = https_redirect


cdef class Pool:
    # Kong defaults: upstream_keepalive_pool_size 512, upstream_keepalive_max_requests 10000,
    # upstream_keepalive_idle_timeout 60 s (nginx: keepalive, keepalive_requests, keepalive_timeout).
    def __init__(self, ProxyCore core, str host, int port, int max_idle=512,
                 int max_requests=10000, double idle_timeout=60.0):
        self.core = core
        self.host = host
        self.port = port
        self.host_header = (host if port in (80, 443) else f"{host}:{port}").encode("idna")
        self.host_line = b"Host: " + self.host_header + b"\r\n\r\n"
        self.idle = []
        self.max_idle = max_idle
        self.max_requests = max_requests
        self.idle_timeout = idle_timeout
        self.handler = None
        self.ssl = None

    def __call__(self):
        # protocol factory for loop.create_connection
        return UpstreamProtocol(self.core, self)

    cdef Upstream take(self, double now):
        cdef Upstream up
        while self.idle:
            up = <Upstream>self.idle.pop()
            if up.closed or now - up.idle_since > self.idle_timeout:
                up.transport.close()
                continue
            return up
        return None

    cdef void give(self, Upstream up, double now):
        if len(self.idle) >= self.max_idle:
            up.transport.close()
            return
        up.idle_since = now
        self.idle.append(up)

    def sweep(self, double now):
        cdef Upstream up
        keep = []
        for up in self.idle:
            if up.closed:
                continue
            if now - up.idle_since > self.idle_timeout:
                up.transport.close()
            else:
                keep.append(up)
        self.idle = keep

    @property
    def idle_count(self) -> int:
        return len(self.idle)

    def close_idle(self):
        cdef Upstream up
        for up in self.idle:
            up.transport.close()
        self.idle = []


cdef class ProxyCore:
    def __init__(self, loop, snapshot=None, *, int listen_port=8000,
                 double keepalive_timeout=60.0, double header_timeout=60.0,
                 dict limits=None):
        # Kong: keepalive_timeout 60 s, client_header_timeout 60 s (nginx).
        self.loop = loop
        self.conns = set()
        self.now = loop.time()
        self.date_header = b""
        self.requests_total = 0
        self.connections_total = 0
        self.active_requests = 0
        self.draining = False
        self.listen_port = listen_port
        self.keepalive_timeout = keepalive_timeout
        self.header_timeout = header_timeout
        self.pools = {}
        self.limits = limits or {}
        self.context_factory = None
        self.drained = None
        self._refresh_date()
        if snapshot is not None:
            self.set_snapshot(snapshot)

    def set_snapshot(self, snapshot):
        # One reference assignment: requests in flight keep the RouteRT they matched.
        self.router = snapshot.router
        self.snapshot = snapshot

    def pool(self, str host, int port, ssl=None, bint verify=False) -> Pool:
        """The pool of (host, port[, TLS]); pools outlive snapshots (keep-alive survives a
        reload). `ssl` is an SSLContext for services with protocol https."""
        key = (host, port, ssl is not None, verify)
        p = self.pools.get(key)
        if p is None:
            p = self.pools[key] = Pool(self, host, port)
            p.ssl = ssl
        return p

    def protocol(self):
        return DownstreamProtocol(self)

    def _refresh_date(self):
        self.date_header = b"Date: " + formatdate(usegmt=True).encode() + b"\r\n"

    def tick(self):
        """Refresh the coarse clock and Date, expire deadlines. Called every ~100 ms."""
        cdef Downstream d
        cdef double now = self.loop.time()
        cdef bint new_second = <int64_t>now != <int64_t>self.now
        self.now = now
        if new_second:
            self._refresh_date()
            for p in self.pools.values():
                p.sweep(now)
        for d in list(self.conns):
            d.check(now)

    def start_draining(self):
        """Graceful shutdown: idle connections close now, busy ones after their response."""
        cdef Downstream d
        self.draining = True
        if self.drained is None:
            self.drained = self.loop.create_future()
        for d in list(self.conns):
            if d.state == ST_HEAD and d.rpos == d.wpos:
                d.close()
        self._check_drained()
        return self.drained

    def _check_drained(self):
        if self.draining and not self.conns and self.drained is not None \
                and not self.drained.done():
            self.drained.set_result(None)

    def close_pools(self):
        for p in self.pools.values():
            p.close_idle()

    def stats(self) -> dict:
        return {
            "connections_active": len(self.conns),
            "connections_total": self.connections_total,
            "requests_total": self.requests_total,
            "requests_active": self.active_requests,
        }


# ---------------------------------------------------------------------------------------------

cdef class HeadCopy:
    """Request or response head kept for plugins: a copy of the head bytes plus the parser's
    spans, read lazily (HeaderSource protocol of fastgw.plugins.context)."""
    cdef bytes head
    cdef HttpParser parser

    def __init__(self, bytes head, HttpParser parser):
        self.head = head
        self.parser = parser

    def get(self, bytes name_lower):
        return self.parser.find_header(PyBytes_AS_STRING(self.head), name_lower)

    def get_all(self, bytes name_lower):
        return [v for n, v in self.items() if n.lower() == name_lower]

    def items(self):
        return self.parser.header_list(PyBytes_AS_STRING(self.head))


cdef class _NoHeaders:
    """An empty HeaderSource (responses the gateway made itself)."""

    def get(self, bytes name_lower):
        return None

    def get_all(self, bytes name_lower):
        return []

    def items(self):
        return []


cdef _NoHeaders _NO_HEADERS = _NoHeaders()


cdef class ConnBuffer:
    def __cinit__(self):
        self.buf = bytearray(CONN_BUFFER_SIZE)
        self.bufp = PyByteArray_AS_STRING(self.buf)
        self.view = memoryview(self.buf)
        self.rpos = 0
        self.wpos = 0

    def get_buffer(self, Py_ssize_t sizehint):
        # compact when little room is left behind unconsumed bytes (a partial head, a
        # pipelined request, body bytes waiting for the upstream)
        if self.rpos == self.wpos:
            self.rpos = self.wpos = 0
        elif self.rpos > 0 and CONN_BUFFER_SIZE - self.wpos < READ_PAUSE_FREE:
            memmove(self.bufp, self.bufp + self.rpos, self.wpos - self.rpos)
            self.wpos -= self.rpos
            self.rpos = 0
        return self.view[self.wpos:]


cdef class Downstream(ConnBuffer):
    def __init__(self, ProxyCore core):
        self.core = core
        self.parser = RequestParser(**core.limits)
        self.state = ST_HEAD
        self.client_ip = "127.0.0.1"

    # -- asyncio protocol -------------------------------------------------------------------
    def connection_made(self, transport):
        self.transport = transport
        peer = transport.get_extra_info("peername")
        if peer:
            self.client_ip = peer[0]
        self.client_ip_b = self.client_ip.encode()
        self.core.conns.add(self)
        self.core.connections_total += 1
        self.deadline = self.core.now + self.core.header_timeout
        if self.core.draining:
            self.close()

    def buffer_updated(self, Py_ssize_t nbytes):
        if self.state == ST_CLOSED:
            return
        if self.state == ST_HEAD and self.rpos == self.wpos:
            self.deadline = self.core.now + self.core.header_timeout
        self.wpos += nbytes
        self.bytes_in += nbytes
        self.process()

    def eof_received(self):
        if self.state == ST_BODY and not self.req_done:
            return True   # half-close mid-upload: keep the connection to send the response
        if self.state in (ST_BODY, ST_PENDING):
            # client finished sending; let the response complete, then close
            self.keep_alive = False
            return True
        return False

    def connection_lost(self, exc):
        cdef Upstream up = self.up
        prev = self.state
        self.state = ST_CLOSED
        self.core.conns.discard(self)
        if up is not None:
            # the response was not read to the end: the connection cannot be reused
            self.up = None
            if self.target is not None:
                self.target_finished()
            up.release(False)
        if self.in_exchange:
            # the client went away mid-exchange (or the proxy closed it: truncation, errors)
            self.in_exchange = False
            self.core.active_requests -= 1
            if self.ctx is not None:
                if prev != ST_TUNNEL:
                    self.status = 499
                self.run_log()
            elif self.nat.active:
                self.native_log()
        self.transport = None
        self.core._check_drained()

    def pause_writing(self):
        if self.up is not None and not self.up.reading_paused:
            self.up.reading_paused = True
            self.up.transport.pause_reading()

    def resume_writing(self):
        if self.up is not None and self.up.reading_paused:
            self.up.reading_paused = False
            self.up.transport.resume_reading()

    # HeaderSource for the router's header conditions (valid only during match)
    def get(self, bytes name_lower):
        return self.parser.find_header(self.bufp + self.rpos, name_lower)

    # -- request path -----------------------------------------------------------------------
    cdef void process(self):
        cdef Py_ssize_t r, out_len, c
        while True:
            if self.state == ST_HEAD:
                if self.rpos == self.wpos:
                    self.rpos = self.wpos = 0
                    break
                r = self.parser.parse_head(self.bufp + self.rpos, self.wpos - self.rpos)
                if r == 0:
                    break
                if r < 0:
                    self.core.requests_total += 1
                    self.core.active_requests += 1
                    self.in_exchange = True
                    self.state = ST_PENDING
                    self.send_error(self.parser.error_status, self.parser.error_reason
                                    or "Bad request", True)
                    return
                self.on_head(r)
            elif self.state == ST_BODY:
                if not self.req_done and self.rpos < self.wpos:
                    self.pump_request_body()
                break
            elif self.state == ST_PENDING and self.buffering:
                self.buffer_body()
                break
            elif self.state == ST_TUNNEL:
                if self.rpos < self.wpos and self.up is not None:
                    self.up.transport.write(PyBytes_FromStringAndSize(
                        self.bufp + self.rpos, self.wpos - self.rpos))
                self.rpos = self.wpos = 0
                break
            elif self.state == ST_DISCARD:
                c = self.parser.feed_body(self.bufp + self.rpos, self.wpos - self.rpos, &out_len)
                if c < 0:
                    self.close()
                    return
                self.rpos += c
                if self.parser.body_done:
                    self.req_done = True
                    self.finish_exchange()
                else:
                    break
            else:
                break
        self.update_reading()

    cdef void update_reading(self):
        if self.transport is None:
            return
        cdef bint want_pause = (self.up is not None and self.up.writing_paused) or \
            (self.wpos - self.rpos > CONN_BUFFER_SIZE - READ_PAUSE_FREE)
        if want_pause and not self.reading_paused:
            self.reading_paused = True
            self.transport.pause_reading()
        elif not want_pause and self.reading_paused:
            self.reading_paused = False
            self.transport.resume_reading()

    cdef void on_head(self, Py_ssize_t head_len):
        cdef RequestParser p = self.parser
        cdef const char* head = self.bufp + self.rpos
        cdef Header* h
        cdef int i
        cdef ProxyCore core = self.core
        core.requests_total += 1
        core.active_requests += 1
        self.in_exchange = True
        self.state = ST_PENDING
        self.t_start = core.now
        self.keep_alive = p.keep_alive and not core.draining
        self.req_done = p.body_kind == BODY_NONE
        self.tries = 0
        self.req_sent = False
        self.resp_started = False
        self.close_after = False
        self.status = 0
        self.target = None
        self.ctx = None
        self.has_hash = False
        self.set_cookie = None
        self.max_body = -1
        self.body_sent = 0
        self.fixed_body = None
        self.buffering = False
        self.body_filter = False
        self.nat.active = False
        self.nat.timed = False
        self.nat_req = None
        self.nat_resp = None
        self.idempotent = p.method in (M_GET, M_HEAD, M_PUT, M_DELETE, M_OPTIONS, M_TRACE)
        # RFC 9110 7.8: the client asks to switch protocols (WebSocket); forwarded as such
        self.upgrade_req = p.upgrade and p.method == M_GET
        # RFC 9110 7.6.1: a Connection option must not remove fields the proxy relies on.
        for i in range(p.n_headers):
            h = &p.headers[i]
            if (h.flags & HF_HOP) and (h.kind == H_HOST or h.kind == H_CONTENT_LENGTH):
                self.rpos += head_len
                self.send_error(400, "Bad request: Connection names a protected field", True)
                return
            if h.kind == H_EXPECT and not p.expect_continue:
                self.rpos += head_len
                self.send_error(417, "Expectation Failed", True)
                return
        if p.method == M_CONNECT:
            self.rpos += head_len
            self.send_error(405, "Method not allowed", True)
            return
        method = PyBytes_FromStringAndSize(head + p.start_off, p.method_len)
        # the path and query spans; absolute-form carries the authority that replaces Host
        # (RFC 9112 3.2.2)
        self.path_off = p.target_off
        self.path_n = p.path_len
        if p.authority_len:
            self.path_off = p.authority_off + p.authority_len
            self.path_n = p.target_off + p.target_len - self.path_off
            for i in range(<int>self.path_n):
                if head[self.path_off + i] == b'?':
                    self.path_n = <uint32_t>i
                    break
            host = PyBytes_FromStringAndSize(head + p.authority_off, p.authority_len)
        elif p.host_index >= 0:
            h = &p.headers[p.host_index]
            host = PyBytes_FromStringAndSize(head + h.value_off, h.value_len)
        else:
            host = b""
        self.query_off = self.path_off + self.path_n
        self.query_n = p.target_off + p.target_len - self.query_off
        path = PyBytes_FromStringAndSize(head + self.path_off, self.path_n) \
            if self.path_n else b"/"
        try:
            m = (<Router>core.router).match(method, host, path, self)
        except Exception:
            log.exception("router failed")
            m = None
        if m is None:
            self.rpos += head_len
            self.send_error(404, MSG_NO_ROUTE, False)
            return
        self.route = <RouteRT>m.key
        self._plugin_match = m
        if self.route.https_redirect:
            # the route only speaks https and this listener is plain http (Kong: 426, or a
            # redirect when https_redirect_status_code says so)
            self.rpos += head_len
            self.https_only(head, host)
            return
        chain = self.route.chain
        if chain is None:
            if self.route.native is not None and self.run_native(head, head_len):
                return
            self.req_head = self.build_head(head, m, None)
            self.rpos += head_len
            self.proceed(None)
            return
        # plugin path: keep a copy of the head for the plugins, then run rewrite + access
        self.t_up = core.loop.time()
        head_copy = PyBytes_FromStringAndSize(head, head_len)
        self.rpos += head_len
        self._head_copy = head_copy
        self.fixed_body = None
        self.body_filter = chain.has_body_filter
        try:
            self.ctx = core.context_factory(
                self.route, method, PyBytes_FromStringAndSize(
                    PyBytes_AS_STRING(head_copy) + self.path_off,
                    p.target_off + p.target_len - self.path_off),
                HeadCopy(head_copy, p), self.client_ip)
        except Exception:
            log.exception("plugin context failed")
            self.send_error(500, MSG_INTERNAL, not self.req_done)
            return
        self.ctx.route_match = m   # the router's captures (Kong's kong.request.get_uri_captures)
        if chain.needs_request_body and not self.req_done:
            # read the whole body first: plugins see ctx.request.body
            self.buffering = True
            self.body_buf = bytearray()
            if p.expect_continue and self.rpos == self.wpos:
                self.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.buffer_body()
            return
        self.run_access()

    cdef void buffer_body(self):
        cdef Py_ssize_t c, out_len
        while self.rpos < self.wpos and not self.req_done:
            c = self.parser.feed_body(self.bufp + self.rpos, self.wpos - self.rpos, &out_len)
            if c < 0:
                self.buffering = False
                self.send_error(400, self.parser.error_reason or "Bad request", True)
                return
            if out_len:
                if len(self.body_buf) + out_len > MAX_BUFFERED_BODY:
                    self.buffering = False
                    self.rpos += c
                    self.send_error(413, "Request size limit exceeded", True)
                    return
                self.body_buf += PyBytes_FromStringAndSize(self.bufp + self.rpos, out_len)
            self.rpos += c
            if self.parser.body_done:
                self.req_done = True
        if self.rpos == self.wpos:
            self.rpos = self.wpos = 0
        if self.req_done:
            self.buffering = False
            self.fixed_body = bytes(self.body_buf)
            self.body_buf = None
            self.ctx.request.body = self.fixed_body
            self.run_access()

    cdef void run_access(self):
        try:
            result = self.route.chain.run_access(self.ctx)
        except Exception:
            log.exception("plugin access phase failed")
            self.send_error(500, MSG_INTERNAL, not self.req_done)
            return
        if result is not None and hasattr(result, "__await__"):
            fut = asyncio.ensure_future(result)
            fut.add_done_callback(self._access_done)
            return
        self.after_access(result)

    def _access_done(self, fut):
        if self.state == ST_CLOSED:
            return
        try:
            result = fut.result()
        except Exception:
            log.exception("plugin access phase failed")
            self.send_error(500, MSG_INTERNAL, not self.req_done)
            return
        self.after_access(result)
        self.process()

    cdef bint run_native(self, const char* head, Py_ssize_t head_len):
        # the compiled plugin chain (fastgw._core.native): True when a plugin answered
        cdef NativeChain nat = <NativeChain>self.route.native
        cdef double t0 = 0.0
        cdef int status
        try:
            now = nat.wall_now()
        except Exception:
            log.exception("plugin clock failed")
            now = 0.0
        if nat.timed:
            t0 = self.core.loop.time()
        status = nat.access(&self.nat, head, self.parser, self.query_off, self.query_n,
                            self.client_ip_b, now)
        if status:
            self.rpos += head_len
            self.send_response(status, nat.exit_headers, nat.exit_body, not self.req_done)
            return True
        self.nat_req = nat.req_lines
        self.nat_resp = nat.resp_lines
        if self.nat.timed:
            self.nat.kong_ms = (self.core.loop.time() - t0) * 1000.0
        return False

    cdef void native_log(self):
        (<NativeChain>self.route.native).log(
            &self.nat, self.bytes_in, self.bytes_out,
            (self.core.loop.time() - self.t_start) * 1000.0 if self.nat.timed else -1.0)

    cdef void after_access(self, result):
        if result is not None:
            self.send_plugin_response(result)
            return
        mbs = self.ctx.max_body_size
        self.max_body = mbs if mbs is not None else -1
        if self.fixed_body is not None and self.max_body >= 0 \
                and len(self.fixed_body) > self.max_body:
            self.send_error(413, "Request size limit exceeded", True)
            return
        override = self.ctx.request.body_override
        if override is not None:
            self.fixed_body = _to_bytes(override)
        self.ctx.proxy_latency = (self.core.loop.time() - self.t_up) * 1000.0
        try:
            self.req_head = self.build_head(PyBytes_AS_STRING(self._head_copy),
                                            self._plugin_match, self.ctx)
        except Exception:
            log.exception("building the upstream request failed")
            self.send_error(500, MSG_INTERNAL, True)
            return
        self.proceed(None)

    cdef void send_plugin_response(self, result):
        # Kong runs header_filter (CORS, correlation-id, ...) on responses plugins make
        if self.ctx is not None:
            try:
                final = self.route.chain.run_exit(self.ctx, result)
            except Exception:
                log.exception("plugin header_filter failed on an exit response")
                final = result
            if final is not None and hasattr(final, "__await__"):
                fut = asyncio.ensure_future(final)
                fut.add_done_callback(self._exit_done)
                return
            result = final
        self.write_plugin_response(result)

    def _exit_done(self, fut):
        if self.state == ST_CLOSED:
            return
        try:
            result = fut.result()
        except Exception:
            log.exception("plugin header_filter failed on an exit response")
            self.send_error(500, MSG_INTERNAL, True)
            return
        self.write_plugin_response(result)
        self.process()

    cdef void write_plugin_response(self, result):
        headers = list(result.headers.items()) if isinstance(result.headers, dict) \
            else list(result.headers or [])
        body = result.body
        if body is None:
            body = b""
        elif isinstance(body, (dict, list)):
            body = orjson.dumps(body)
            if not any(k.lower() == "content-type" for k, _ in headers):
                headers.append(("Content-Type", "application/json; charset=utf-8"))
        elif isinstance(body, str):
            body = body.encode()
        self.send_response(result.status, headers, body, not self.req_done)

    cdef bytes build_head(self, const char* head, m, ctx):
        """The request head for the upstream (RFC 9110 7.6)."""
        cdef RequestParser p = self.parser
        cdef Header* h
        cdef int i
        cdef int xff = -1
        cdef dict ops = None
        cdef bytes upath = m.upstream_path
        cdef bytes method_o = None, path_o = None, query_o = None
        if ctx is not None:
            req = ctx.request
            ops = req.header_ops or None
            method_o = req.method_override
            path_o = req.path_override
            query_o = req.query_override
            if ctx.upstream_override is not None:
                self._upstream_override = ctx.upstream_override
        _out.n = 0
        # request line
        if method_o is not None:
            putb(method_o)
        else:
            put(head + p.start_off, p.method_len)
        putb(b" ")
        putb(path_o if path_o is not None else upath)
        if query_o is not None:
            if PyBytes_GET_SIZE(query_o):
                putb(b"?")
                putb(query_o)
        elif self.query_n:
            put(head + self.query_off, self.query_n)
        putb(b" HTTP/1.1\r\n")
        # end-to-end fields, in order
        for i in range(p.n_headers):
            h = &p.headers[i]
            if h.flags & HF_HOP:
                continue
            k = h.kind
            if k == H_HOST or k == H_CONTENT_LENGTH or k == H_EXPECT or k == H_X_REAL_IP \
                    or k == H_X_FORWARDED_PROTO or k == H_X_FORWARDED_HOST \
                    or k == H_X_FORWARDED_PORT or k == H_X_FORWARDED_PATH:
                continue
            if k == H_X_FORWARDED_FOR:
                # the client's lines are folded into one list, ours appended, below
                # (RFC 9110 5.3): here only remember where the first one is
                if xff < 0 and (ops is None or b"x-forwarded-for" not in ops):
                    xff = i
                continue
            if ops is not None and PyBytes_FromStringAndSize(
                    head + h.name_off, h.name_len).lower() in ops:
                continue
            if self.nat_req is not None and is_consumer_header(head + h.name_off, h.name_len):
                continue
            put_header_line(head, h)
        if self.nat_req is not None:
            putb(self.nat_req)   # key-auth's consumer headers (ctx.authenticate's ops)
        if ops is not None:
            case = ctx.request.header_case or {}
            for name, values in ops.items():
                if values is None or name == b"host" or name == b"content-length" \
                        or name == b"transfer-encoding":
                    continue
                name = case.get(name, name)
                for v in values:
                    putb(_to_bytes(name))
                    putb(b": ")
                    putb(_to_bytes(v))
                    putb(b"\r\n")
        if self.upgrade_req:
            # Upgrade and Connection are hop-by-hop: a proxy that tunnels sends its own
            for i in range(p.n_headers):
                h = &p.headers[i]
                if h.kind == H_UPGRADE:
                    putb(b"Upgrade: ")
                    put(head + h.value_off, h.value_len)
                    putb(b"\r\nConnection: upgrade\r\n")
                    break
        # framing: re-framed, never the client's verbatim
        if self.fixed_body is not None:
            putb(b"Content-Length: ")
            put_int(PyBytes_GET_SIZE(self.fixed_body), 10)
            putb(b"\r\n")
            self.req_chunked = False
        elif p.body_kind == BODY_LENGTH:
            putb(b"Content-Length: ")
            put_int(p.content_length, 10)
            putb(b"\r\n")
            self.req_chunked = False
        elif p.body_kind == BODY_CHUNKED:
            putb(b"Transfer-Encoding: chunked\r\n")
            self.req_chunked = True
        else:
            self.req_chunked = False
        # forwarding fields (Kong: X-Forwarded-For appended; the others set by the proxy)
        putb(b"X-Forwarded-For: ")
        if xff >= 0:
            for i in range(xff, p.n_headers):
                h = &p.headers[i]
                if h.kind == H_X_FORWARDED_FOR and not (h.flags & HF_HOP):
                    put(head + h.value_off, h.value_len)
                    putb(b", ")
        putb(self.client_ip_b)
        putb(b"\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: ")
        if p.host_index >= 0:
            h = &p.headers[p.host_index]
            put(head + h.value_off, _host_len(head + h.value_off, h.value_len))
        putb(b"\r\nX-Forwarded-Port: ")
        put_int(self.core.listen_port, 10)
        putb(b"\r\nX-Forwarded-Path: ")
        if self.path_n:
            put(head + self.path_off, self.path_n)
        else:
            putb(b"/")
        putb(b"\r\nX-Real-IP: ")
        putb(self.client_ip_b)
        putb(b"\r\nVia: 1.1 fastgw\r\n")
        # Host last: when it is the target's "host[:port]" (Kong, preserve_host false) it is
        # only known after the balancer picked, so attach() appends it with the final CRLF.
        host_o = ops.get(b"host") if ops is not None else None
        self.host_pending = False
        if host_o:
            putb(b"Host: ")
            putb(_to_bytes(host_o[0]))
            putb(b"\r\n\r\n")
        elif m.preserve_host and p.host_index >= 0:
            h = &p.headers[p.host_index]
            putb(b"Host: ")
            put(head + h.value_off, h.value_len)
            putb(b"\r\n\r\n")
        elif self.route.service.host_header is not None:
            putb(b"Host: ")
            putb(self.route.service.host_header)
            putb(b"\r\n\r\n")
        else:
            self.host_pending = True
        return take()

    cdef void proceed(self, object unused):
        cdef RequestParser p = self.parser
        cdef ServiceRT svc = self.route.service
        if svc.hash_spec is not None:
            self.compute_hash()
        if p.expect_continue and not self.req_done and self.rpos == self.wpos:
            # nginx answers 100 Continue itself when it starts reading the body
            self.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        self.replayable = self.req_done and (self.parser.body_kind == BODY_NONE
                                             or self.fixed_body is not None)
        self.connect()

    cdef void compute_hash(self):
        from fastgw._core.hashing import xxh64
        from fastgw.balancing import cookie_header, hash_input
        spec = self.route.service.hash_spec
        try:
            data, cookie = hash_input(spec, _HashView(self))
        except Exception:
            log.exception("hash input failed")
            data, cookie = None, None
        if data is not None:
            self.hash_value = xxh64(data)
            self.has_hash = True
        if cookie is not None:
            self.set_cookie = _to_bytes(cookie_header(spec, cookie))

    cdef Balancer current_balancer(self):
        if self._upstream_override is not None:
            b = self.core.snapshot.balancer_for(self._upstream_override)
            if b is not None:
                return <Balancer>b
        return <Balancer>self.route.service.balancer

    cdef void connect(self):
        cdef ServiceRT svc = self.route.service
        cdef Pool pool
        cdef Upstream up
        cdef Balancer balancer = self.current_balancer()
        cdef Target t = balancer.pick(self.hash_value if self.has_hash else 0,
                                      <Target>self.target if self.tries > 0 else None)
        if t is None:
            self.send_error(503, MSG_NO_PEER, not self.req_done)
            return
        self.target = t
        pool = <Pool>t.pool
        up = pool.take(self.core.now)
        if up is not None:
            self.attach(up)
            return
        if pool.handler is not None:
            # in-process target: the same Upstream protocol over a memory transport
            # (fastgw.inprocess), so timeouts, retries, health and plugins apply unchanged
            from fastgw.inprocess import open_inprocess
            up = <Upstream>pool()
            open_inprocess(pool.handler, up, self.core.loop)
            self.attach(up)
            return
        self.state = ST_PENDING
        self.up_deadline = self.core.now + svc.connect_timeout
        if pool.ssl is None:
            coro = self.core.loop.create_connection(pool, pool.host, pool.port)
        else:
            # TLS to the upstream (service protocol https); SNI is the target host
            coro = self.core.loop.create_connection(pool, pool.host, pool.port, ssl=pool.ssl,
                                                    server_hostname=pool.host)
        self.connect_task = self.core.loop.create_task(coro)
        self.connect_task.add_done_callback(self._connected)

    def _connected(self, fut):
        cdef Upstream up
        self.connect_task = None
        if fut.cancelled():
            if self.state == ST_PENDING:
                self.upstream_failed(None, FAIL_CONNECT_TIMEOUT)
            return
        exc = fut.exception()
        if exc is not None:
            if self.state == ST_PENDING:
                self.upstream_failed(None, FAIL_CONNECT)
            return
        up = <Upstream>fut.result()[1]
        if self.state != ST_PENDING:   # the client went away meanwhile: keep the connection
            up.pool.give(up, self.core.now)
            return
        self.attach(up)
        self.process()

    cdef void attach(self, Upstream up):
        cdef bytes req = self.req_head
        self.up = up
        self.state = ST_BODY
        up.client = self
        up.state = RS_HEAD
        up.got_bytes = False
        up.requests += 1
        up.parser.reset()
        up.parser.request_method = self.parser.method
        if self.host_pending:
            req = req + up.pool.host_line
        if self.fixed_body is not None:
            req = req + self.fixed_body
        up.transport.write(req)
        self.req_sent = True
        if self.ctx is not None or self.nat.timed:
            self.t_up = self.core.loop.time()
        self.current_balancer().on_start(<Target>self.target)
        self.up_deadline = self.core.now + self.route.service.read_timeout
        if not self.req_done:
            self.pump_request_body()

    cdef void pump_request_body(self):
        cdef Py_ssize_t c, out_len
        cdef Upstream up = self.up
        if up is None:
            return
        while self.rpos < self.wpos and not self.req_done:
            c = self.parser.feed_body(self.bufp + self.rpos, self.wpos - self.rpos, &out_len)
            if c < 0:
                # the client's framing broke mid-body: nothing sane can follow on either side
                self.upstream_failed_client_body()
                return
            if out_len > 0:
                self.body_sent += out_len
                if self.max_body >= 0 and self.body_sent > self.max_body:
                    # request-size-limiting on a streamed (chunked) body
                    self.rpos += c
                    self.up = None
                    up.release(False)
                    self.target_finished()
                    self.send_error(413, "Request size limit exceeded", True)
                    return
                if self.req_chunked:
                    up.transport.write(chunk_frame(self.bufp + self.rpos, out_len))
                else:
                    up.transport.write(PyBytes_FromStringAndSize(self.bufp + self.rpos, out_len))
                self.up_deadline = self.core.now + self.route.service.write_timeout
            self.rpos += c
            if self.parser.body_done:
                self.req_done = True
                if self.req_chunked:
                    up.transport.write(b"0\r\n\r\n")
        if self.rpos == self.wpos:
            self.rpos = self.wpos = 0

    cdef void upstream_failed_client_body(self):
        cdef Upstream up = self.up
        self.up = None
        if up is not None:
            up.release(False)
        if self.target is not None:
            self.target_finished()
        if self.resp_started:
            self.close()
        else:
            self.send_error(400, "Bad request: invalid request body framing", True)

    cdef void target_finished(self):
        self.current_balancer().on_finish(<Target>self.target,
                                          (self.core.now - self.t_start) * 1000.0, self.core.now)

    # -- response path ----------------------------------------------------------------------
    cdef void on_response_head(self, Upstream up):
        cdef ResponseParser rp = up.parser
        cdef RequestParser p = self.parser
        cdef const char* head = up.bufp + up.rpos
        cdef Header* h
        cdef int i
        cdef dict ops = None
        self.status = rp.status
        self.up_deadline = self.core.now + self.route.service.read_timeout
        svc = self.route.service
        if svc.health is not None:
            try:
                svc.health.report_http_status(self.target, rp.status, self.core.now)
            except Exception:
                log.exception("passive health report failed")
        status_o = None
        if self.nat.active:
            self.nat.code = rp.status
            if self.nat.timed:
                self.nat.up_ms = (self.core.loop.time() - self.t_up) * 1000.0
        if self.ctx is not None:
            self.ctx.set_response(rp.status, HeadCopy(
                PyBytes_FromStringAndSize(head, rp.head_len), rp))
            try:
                hf = self.route.chain.run_header_filter(self.ctx)
            except Exception:
                log.exception("plugin header_filter failed")
                hf = None
            if hf is not None:
                if hasattr(hf, "__await__"):
                    # the head is streamed now: an async header_filter cannot hold it back
                    log.error("async header_filter phases are not supported; ignored")
                    asyncio.ensure_future(hf)
                else:
                    # a failed header_filter answers instead of the upstream (Kong: 500)
                    self.up = None
                    up.release(False)
                    self.target_finished()
                    self.send_plugin_response(hf)
                    return
            self.ctx.upstream_latency = (self.core.loop.time() - self.t_up) * 1000.0
            resp = self.ctx.response
            ops = resp.header_ops or None
            status_o = resp.status_override
        # client framing; body filters that only observe (proxy-cache) keep the length
        cdef bint reframe = self.body_filter and not self.route.chain.body_filter_keeps_length
        self.resp_chunked = False
        if reframe and rp.body_kind == BODY_LENGTH:
            # a body filter may change the length: the body goes out chunked (or until close)
            if p.version_minor >= 1:
                self.resp_chunked = True
            else:
                self.close_after = True
        elif rp.body_kind == BODY_CHUNKED or rp.body_kind == BODY_UNTIL_CLOSE:
            if p.version_minor >= 1:
                self.resp_chunked = True
            else:
                self.close_after = True
        if not self.req_done and p.expect_continue:
            self.close_after = True
        _out.n = 0
        putb(b"HTTP/1.1 ")
        if status_o is not None:
            put_int(status_o, 10)
            putb(b" ")
            putb(REASONS.get(status_o, "Unknown").encode())
        else:
            put_int(rp.status, 10)
            putb(b" ")
            put(head + rp.reason_off, rp.reason_len)
        putb(b"\r\n")
        cdef bint has_date = False
        for i in range(rp.n_headers):
            h = &rp.headers[i]
            if h.flags & HF_HOP:
                continue
            if h.kind == H_DATE:
                has_date = True
            elif h.kind == H_CONTENT_LENGTH and rp.body_kind != BODY_NONE:
                continue   # re-added below from the parsed framing
            if ops is not None and PyBytes_FromStringAndSize(
                    head + h.name_off, h.name_len).lower() in ops:
                continue
            if self.nat_resp is not None and (<NativeChain>self.route.native) \
                    .strip_response_header(head + h.name_off, h.name_len):
                continue
            put_header_line(head, h)
        if self.nat_resp is not None:
            putb(self.nat_resp)   # rate-limiting's headers (its header_filter's ops)
        if ops is not None:
            case = self.ctx.response.header_case or {}
            for name, values in ops.items():
                if values is None:
                    continue
                name = case.get(name, name)
                for v in values:
                    putb(_to_bytes(name))
                    putb(b": ")
                    putb(_to_bytes(v))
                    putb(b"\r\n")
        if not has_date:
            # RFC 9110 6.6.1: an origin with a clock sends Date; nginx adds it when missing
            putb(self.core.date_header)
        if self.set_cookie is not None:
            putb(b"Set-Cookie: ")
            putb(self.set_cookie)
            putb(b"\r\n")
        if rp.body_kind == BODY_LENGTH and not reframe:
            putb(b"Content-Length: ")
            put_int(rp.content_length, 10)
            putb(b"\r\n")
        elif self.resp_chunked:
            putb(b"Transfer-Encoding: chunked\r\n")
        putb(b"Via: 1.1 fastgw\r\n")
        if not self.keep_alive or self.close_after or self.core.draining:
            self.close_after = True
            putb(b"Connection: close\r\n")
        elif p.version_minor == 0:
            putb(b"Connection: keep-alive\r\n")
        putb(b"\r\n")
        self.resp_started = True
        # the head stays in _out: body bytes of the same read join it and Upstream.process
        # flushes once (one write, one syscall per small response)
        self.out_pending = True

    cdef void on_upgrade(self, Upstream up, Py_ssize_t head_len):
        """101 Switching Protocols: forward the head, then both connections become a tunnel
        (RFC 9110 7.8; nginx proxy_pass with Upgrade/Connection set). Neither goes back to a
        pool; the tunnel ends when either side closes."""
        cdef ResponseParser rp = up.parser
        cdef const char* head = up.bufp + up.rpos
        cdef Header* h
        cdef int i
        self.status = 101
        self.keep_alive = False
        _out.n = 0
        putb(b"HTTP/1.1 101 ")
        put(head + rp.reason_off, rp.reason_len)
        putb(b"\r\n")
        for i in range(rp.n_headers):
            h = &rp.headers[i]
            if h.kind == H_UPGRADE:
                putb(b"Upgrade: ")
                put(head + h.value_off, h.value_len)
                putb(b"\r\n")
            elif not (h.flags & HF_HOP):
                put_header_line(head, h)
        putb(b"Connection: upgrade\r\nVia: 1.1 fastgw\r\n\r\n")
        self.resp_started = True
        self.write(take())
        up.rpos += head_len
        up.state = RS_TUNNEL
        self.state = ST_TUNNEL
        # bytes that came right behind the heads belong to the new protocol
        up.process()
        self.process()

    cdef void flush(self):
        if self.out_pending:
            self.out_pending = False
            self.write(take())

    cdef void on_response_data(self, char* data, Py_ssize_t n):
        if self.body_filter:
            self.filtered_data(PyBytes_FromStringAndSize(data, n), False)
            return
        if self.out_pending:
            if self.resp_chunked:
                put_int(n, 16)
                putb(b"\r\n")
                put(data, n)
                putb(b"\r\n")
            else:
                put(data, n)
        elif self.resp_chunked:
            self.write(chunk_frame(data, n))
        else:
            self.write(PyBytes_FromStringAndSize(data, n))
        self.up_deadline = self.core.now + self.route.service.read_timeout

    cdef void filtered_data(self, bytes chunk, bint eof):
        try:
            out = self.route.chain.run_body_filter(self.ctx, chunk, eof)
        except Exception:
            log.exception("plugin body_filter failed")
            out = chunk
        if not out:
            return
        self.flush()
        if self.resp_chunked:
            self.write(chunk_frame(PyBytes_AS_STRING(out), PyBytes_GET_SIZE(out)))
        else:
            self.write(out)

    cdef void on_response_done(self, Upstream up):
        if self.body_filter:
            self.filtered_data(b"", True)
        if self.resp_chunked:
            if self.out_pending:
                putb(b"0\r\n\r\n")
            else:
                self.write(b"0\r\n\r\n")
        self.flush()
        # reusable only when both messages completed cleanly on that connection
        up.release(up.parser.keep_alive and self.req_done and up.rpos == up.wpos)
        self.up = None
        self.target_finished()
        self.finish_exchange()
        if self.state == ST_HEAD:
            self.process()

    cdef void upstream_failed(self, Upstream up, int kind):
        cdef ServiceRT svc = self.route.service
        cdef bint reused = up is not None and up.reused and not up.got_bytes
        if up is not None:
            self.up = None
            up.release(False)
        if self.target is not None and (up is not None):
            self.target_finished()
        if svc.health is not None and self.target is not None:
            try:
                if kind == FAIL_CONNECT_TIMEOUT or kind == FAIL_READ_TIMEOUT:
                    svc.health.report_timeout(self.target, self.core.now)
                elif kind != FAIL_BAD_RESPONSE:
                    svc.health.report_tcp_failure(self.target, self.core.now)
                else:
                    svc.health.report_http_status(self.target, 502, self.core.now)
            except Exception:
                log.exception("passive health report failed")
        if self.resp_started:
            # mid-response: the client must see the truncation, never a false "complete"
            self.close()
            return
        if self.tries < svc.retries and (
                kind == FAIL_CONNECT or kind == FAIL_CONNECT_TIMEOUT
                or (kind == FAIL_RESET and reused and self.idempotent and self.replayable)):
            self.tries += 1
            self.connect()
            return
        if kind == FAIL_CONNECT_TIMEOUT or kind == FAIL_READ_TIMEOUT:
            self.send_error(504, MSG_TIMEOUT, not self.req_done)
        else:
            self.send_error(502, MSG_BAD_GATEWAY, not self.req_done)

    cdef void finish_exchange(self):
        if self.ctx is not None:
            self.run_log()
        elif self.nat.active:
            self.native_log()
        self.nat.active = False
        if self.in_exchange:
            self.in_exchange = False
            self.core.active_requests -= 1
        self.route = None
        self.req_head = None
        self._head_copy = None
        self._plugin_match = None
        self._upstream_override = None
        self.ctx = None
        self.target = None
        if self.state == ST_CLOSED:
            return
        if not self.keep_alive or self.close_after or not self.req_done or self.core.draining:
            self.state = ST_HEAD   # the exchange is over and counted: close() must not count it
            self.close()
            return
        self.state = ST_HEAD
        self.resp_started = False   # an error for the next (pipelined) head must be answered
        self.parser.reset()
        self.deadline = self.core.now + self.core.keepalive_timeout

    cdef void run_log(self):
        ctx = self.ctx
        try:
            now = self.core.loop.time()
            ctx.bytes_in = self.bytes_in
            ctx.bytes_out = self.bytes_out
            ctx.upstream_status = self.status
            ctx.tries = self.tries
            ctx.request_latency = (now - self.t_start) * 1000.0
            ctx.upstream_target = self.target.name if self.target is not None else None
            ctx.upstream_uri = self.upstream_uri()
            if ctx.response is None:
                # an exit without header_filter plugins, or a gateway error (502/504): the log
                # phase still sees the status it was answered with
                ctx.set_response(self.status, _NO_HEADERS, "exit")
            res = self.route.chain.run_log(ctx)
            if res is not None and hasattr(res, "__await__"):
                asyncio.ensure_future(res)
        except Exception:
            log.exception("plugin log phase failed")

    cdef void https_only(self, const char* head, bytes host):
        cdef int code = self.route.https_redirect
        cdef RequestParser p = self.parser
        if code == 426:
            body = orjson.dumps({"message": "Please use HTTPS protocol"})
            self.send_response(426, [(b"Content-Type", b"application/json; charset=utf-8"),
                                     (b"Connection", b"Upgrade"),
                                     (b"Upgrade", b"TLS/1.2, HTTP/1.1")], body,
                               not self.req_done)
            return
        hostname = host[:_host_len(PyBytes_AS_STRING(host), PyBytes_GET_SIZE(host))]
        location = b"https://" + hostname + PyBytes_FromStringAndSize(
            head + self.path_off, p.target_off + p.target_len - self.path_off)
        self.send_response(code, [(b"Location", location)], b"", not self.req_done)

    cdef object upstream_uri(self):
        # the request line's target as sent upstream
        req = self.req_head
        if req is None:
            return None
        sp = req.find(b" ")
        return req[sp + 1:req.find(b" ", sp + 1)].decode("latin-1")

    # -- responses made by the gateway ------------------------------------------------------
    cdef void send_error(self, int status, str message, bint close):
        body = orjson.dumps({"message": message, "request_id": _request_id()})
        self.send_response(status, [(b"Content-Type", b"application/json; charset=utf-8")],
                           body, close)

    cdef void send_response(self, int status, list headers, bytes body, bint close):
        if self.state == ST_CLOSED or self.transport is None:
            return
        if self.resp_started:
            self.close()
            return
        self.status = status
        if self.nat.active:
            # a response the gateway makes (exit, 502/504): prometheus records it as "kong"
            self.nat.code = status
            self.nat.exit = True
        close = close or not self.keep_alive or self.core.draining
        if not self.req_done and not close:
            # answer now, then read and drop the rest of the request body
            self.state = ST_DISCARD
        _out.n = 0
        putb(b"HTTP/1.1 ")
        put_int(status, 10)
        putb(b" ")
        putb(REASONS.get(status, "Unknown").encode())
        putb(b"\r\n")
        putb(self.core.date_header)
        for name, value in headers:
            putb(_to_bytes(name))
            putb(b": ")
            putb(_to_bytes(value))
            putb(b"\r\n")
        if status < 200 or status == 204 or status == 304:
            # RFC 9110 8.6: no Content-Length (and no content) on 1xx/204; 304 has no content
            body = b""
        else:
            putb(b"Content-Length: ")
            put_int(len(body), 10)
            putb(b"\r\n")
        putb(b"Server: fastgw/0.1.0\r\n")
        if close:
            putb(b"Connection: close\r\n")
        putb(b"\r\n")
        if self.parser.method != M_HEAD:
            putb(body)
        self.resp_started = True
        self.write(take())
        if close:
            self.close_after = True
            self.keep_alive = False
        if self.state == ST_DISCARD:
            return
        self.finish_exchange()

    cdef void write(self, bytes data):
        if self.transport is not None:
            self.bytes_out += PyBytes_GET_SIZE(data)
            self.transport.write(data)

    cdef void close(self):
        if self.transport is not None and self.state != ST_CLOSED:
            if self.in_exchange:
                # the request ends with the connection (truncated response, broken body):
                # count and log it here, once (connection_lost then sees in_exchange False)
                self.in_exchange = False
                self.core.active_requests -= 1
                if self.ctx is not None:
                    self.run_log()
                elif self.nat.active:
                    self.native_log()
            self.state = ST_CLOSED
            if self.resp_started and self.up is not None:
                self.transport.abort()   # truncated response: no clean end
            else:
                self.transport.close()

    cdef void check(self, double now):
        cdef ServiceRT svc
        if self.state == ST_HEAD:
            if now > self.deadline:
                if self.rpos < self.wpos:
                    self.core.requests_total += 1
                    self.core.active_requests += 1
                    self.in_exchange = True
                    self.state = ST_PENDING
                    self.send_error(408, "Request timeout", True)
                else:
                    self.close()
        elif self.state == ST_PENDING and self.connect_task is not None:
            if now > self.up_deadline:
                self.connect_task.cancel()
        elif self.state == ST_BODY and self.up is not None:
            if now > self.up_deadline:
                self.upstream_failed(self.up, FAIL_READ_TIMEOUT)


cdef inline Py_ssize_t _host_len(const char* v, Py_ssize_t n):
    # the host part of a Host value: without ":port" (IPv6 literals keep their brackets)
    cdef Py_ssize_t i = n - 1
    while i >= 0:
        if v[i] == b':':
            return i
        if v[i] == b']' or v[i] < b'0' or v[i] > b'9':
            return n
        i -= 1
    return n


cdef class _HashView:
    """The request as hash_input() reads it (fastgw.balancing.HashRequest)."""
    cdef Downstream d

    def __init__(self, Downstream d):
        self.d = d

    @property
    def client_ip(self):
        return self.d.client_ip

    @property
    def consumer_id(self):
        ctx = self.d.ctx
        consumer = getattr(ctx, "consumer", None) if ctx is not None else None
        return getattr(consumer, "id", None)

    cdef const char* head(self):
        # the head stays in the client buffer on the plugin-free path (hashing runs before
        # anything else is read); plugins work on a copy
        if self.d._head_copy is not None:
            return PyBytes_AS_STRING(self.d._head_copy)
        return self.d.bufp + self.d.rpos - self.d.parser.head_len

    def get_header(self, str name):
        v = self.d.parser.find_header(self.head(), name.lower().encode())
        return v.decode("latin-1") if v is not None else None

    def get_cookie(self, str name):
        raw = self.get_header("cookie")
        if not raw:
            return None
        for part in raw.split(";"):
            k, _, v = part.strip().partition("=")
            if k == name:
                return v
        return None

    @property
    def path(self):
        return PyBytes_FromStringAndSize(self.head() + self.d.path_off,
                                         self.d.path_n).decode("latin-1")

    def get_query_arg(self, str name):
        from urllib.parse import parse_qs
        if self.d.query_n < 2:
            return None
        q = PyBytes_FromStringAndSize(self.head() + self.d.query_off + 1, self.d.query_n - 1)
        v = parse_qs(q.decode("latin-1")).get(name)
        return v[0] if v else None

    def get_uri_capture(self, str name):
        m = self.d._plugin_match
        if m is None:
            return None
        v = m.named_captures.get(name)
        if v is None and name.isdigit() and 0 < int(name) <= len(m.captures):
            v = m.captures[int(name) - 1]
        return v


cdef class Upstream(ConnBuffer):
    def __init__(self, ProxyCore core, Pool pool):
        self.core = core
        self.pool = pool
        self.parser = ResponseParser()
        self.state = RS_IDLE

    def connection_made(self, transport):
        self.transport = transport

    def buffer_updated(self, Py_ssize_t nbytes):
        self.wpos += nbytes
        self.got_bytes = True
        if self.client is None:
            # bytes on an idle keep-alive connection: protocol violation, drop it
            self.closed = True
            self.transport.close()
            return
        self.process()

    def eof_received(self):
        return False

    def connection_lost(self, exc):
        cdef Downstream c = self.client
        self.closed = True
        if c is None:
            return
        if self.state == RS_TUNNEL:
            # the tunnel ends with either side: close the client after what was written
            self.client = None
            c.up = None
            c.close()
            return
        if self.state == RS_BODY and self.parser.body_kind == BODY_UNTIL_CLOSE \
                and self.parser.feed_eof() == 0:
            self.state = RS_IDLE
            c.on_response_done(self)
            return
        c.upstream_failed(self, FAIL_RESET)

    def pause_writing(self):
        self.writing_paused = True
        if self.client is not None:
            self.client.update_reading()

    def resume_writing(self):
        self.writing_paused = False
        if self.client is not None:
            self.client.update_reading()
            self.client.process()

    cdef void process(self):
        cdef Py_ssize_t r, c, out_len
        cdef Downstream client = self.client
        while client is not None and self.client is client:
            if self.state == RS_HEAD:
                r = self.parser.parse_head(self.bufp + self.rpos, self.wpos - self.rpos)
                if r == 0:
                    break
                if r < 0:
                    client.upstream_failed(self, FAIL_BAD_RESPONSE)
                    return
                if self.parser.status < 200:
                    if self.parser.status == 101:
                        if not client.upgrade_req:
                            client.upstream_failed(self, FAIL_BAD_RESPONSE)
                            return
                        client.on_upgrade(self, r)
                        return
                    self.rpos += r   # interim response (100 Continue): not forwarded
                    self.parser.reset()
                    continue
                client.on_response_head(self)
                self.rpos += r
                self.state = RS_BODY
                if self.parser.body_kind == BODY_NONE:
                    self.state = RS_IDLE
                    client.on_response_done(self)
                    return
            elif self.state == RS_TUNNEL:
                if self.rpos < self.wpos:
                    client.write(PyBytes_FromStringAndSize(self.bufp + self.rpos,
                                                           self.wpos - self.rpos))
                    self.rpos = self.wpos
                break
            elif self.state == RS_BODY:
                if self.rpos == self.wpos:
                    break
                c = self.parser.feed_body(self.bufp + self.rpos, self.wpos - self.rpos, &out_len)
                if c < 0:
                    client.flush()
                    client.upstream_failed(self, FAIL_BAD_RESPONSE)
                    return
                if out_len > 0:
                    client.on_response_data(self.bufp + self.rpos, out_len)
                self.rpos += c
                if self.parser.body_done:
                    self.state = RS_IDLE
                    client.on_response_done(self)
                    return
            else:
                break
        if client is not None:
            client.flush()
        if self.rpos == self.wpos:
            self.rpos = self.wpos = 0

    cdef void release(self, bint reusable):
        self.client = None
        self.state = RS_IDLE
        if self.reading_paused:
            self.reading_paused = False
            if not self.closed:
                self.transport.resume_reading()
        if reusable and not self.closed and self.requests < self.pool.max_requests:
            self.reused = True
            self.rpos = self.wpos = 0
            self.pool.give(self, self.core.now)
        elif not self.closed:
            self.closed = True
            self.transport.close()


class DownstreamProtocol(Downstream, asyncio.BufferedProtocol):
    """Downstream as an asyncio.BufferedProtocol (the stock asyncio loop checks isinstance;
    uvloop only needs get_buffer)."""
    __slots__ = ()


class UpstreamProtocol(Upstream, asyncio.BufferedProtocol):
    __slots__ = ()


