# What a snapshot hands the core (ServiceRT, RouteRT) and the per-worker ProxyCore
# (included by proxy.pyx).
#
# Rules:
# - The core never imports the layers above it: the snapshot builds ServiceRT/RouteRT with
#   typed compiled objects (Balancer, NativeChain, Router) and callables (hash_input); the
#   Gateway hands ProxyCore its context factory and in-process connector.
# - set_snapshot is one reference assignment: exchanges in flight keep the RouteRT they matched.

cdef enum:
    # idle RequestParsers kept per worker for reuse (~5 KiB each); more are freed
    PARSER_POOL_MAX = 256


cdef class ServiceRT:
    def __init__(self, str id, str name, Balancer balancer, *, health=None, hash_spec=None,
                 hash_input=None, bytes host_header=None, double connect_timeout=60.0,
                 double read_timeout=60.0, double write_timeout=60.0, int retries=5,
                 entity=None):
        self.id = id
        self.name = name
        self.balancer = balancer
        self.health = health
        self.hash_spec = hash_spec
        self.hash_input = hash_input
        self.host_header = host_header
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.write_timeout = write_timeout
        self.retries = retries
        self.entity = entity
        self.no_peer = None


cdef class RouteRT:
    def __init__(self, str id, str name, ServiceRT service, chain=None, entity=None,
                 NativeChain native=None, int https_redirect=0, bint request_buffering=True,
                 bint response_buffering=True, bint https_ok=True, frozenset snis=None):
        self.id = id
        self.name = name
        self.service = service
        self.chain = chain
        self.entity = entity
        self.native = native
        self.https_redirect = https_redirect
        self.request_buffering = request_buffering
        self.response_buffering = response_buffering
        self.https_ok = https_ok
        self.snis = snis


cdef class ProxyCore:
    def __init__(self, loop, snapshot=None, *, int listen_port=8000, Limits limits=None,
                 context_factory=None, inprocess_connect=None):
        self.loop = loop
        self.limits = limits if limits is not None else Limits()
        self.conns = set()
        self.now = loop.time()
        self.date_header = b""
        self.requests_total = 0
        self.connections_total = 0
        self.connections_refused = 0
        self.active_requests = 0
        self.draining = False
        self.listen_port = listen_port
        self.keepalive_timeout = self.limits.keepalive_timeout
        self.header_timeout = self.limits.client_header_timeout
        self.body_timeout = self.limits.client_body_timeout
        self.pools = {}
        self.context_factory = context_factory
        self.inprocess_connect = inprocess_connect
        self.drained = None
        self.access_log = None
        self.realip = None
        self.tracer = None
        self.traffic = TrafficStats()
        self.headers = HDR_SERVER | HDR_VIA
        self.parsers = [None] * PARSER_POOL_MAX
        self.nparsers = 0
        self._refresh_date()
        if snapshot is not None:
            self.set_snapshot(snapshot)

    def set_snapshot(self, snapshot):
        self.router = <Router?>snapshot.router
        self.snapshot = snapshot

    def pool(self, str host, int port, ssl=None, verify=False, str hostname=None) -> Pool:
        """The pool of (host, port[, TLS][, hostname]); pools outlive snapshots (keep-alive
        survives a reload). `ssl` is an SSLContext for services with protocol https; `verify`
        is any hashable naming its settings (verification, CAs, client certificate), so
        services with different TLS settings never share a connection; `hostname` (default:
        host) is sent as Host and SNI when host is a resolved address."""
        key = (host, port, ssl is not None, verify, hostname or host)
        p = self.pools.get(key)
        if p is None:
            p = self.pools[key] = Pool(self, host, port,
                                       self.limits.upstream_keepalive_pool_size,
                                       self.limits.upstream_keepalive_max_requests,
                                       self.limits.upstream_keepalive_idle_timeout,
                                       hostname)
            p.ssl = ssl
        return p

    cdef RequestParser take_parser(self):
        cdef RequestParser p
        if self.nparsers > 0:
            self.nparsers -= 1
            p = <RequestParser>self.parsers[self.nparsers]
            self.parsers[self.nparsers] = None
            return p
        return RequestParser(**self.limits.parser_kwargs())

    cdef void give_parser(self, RequestParser p):
        # an idle connection holds no parser (its header array is ~5 KiB)
        if self.nparsers < PARSER_POOL_MAX:
            p.reset()
            self.parsers[self.nparsers] = p
            self.nparsers += 1

    def protocol(self, int local_port=0, bint tls=False):
        """A client protocol; each listener's factory passes its port and TLS flag
        (fastgw.gateway; uvloop's SSL transport calls connection_made after the handshake)."""
        cdef Downstream d = DownstreamProtocol(self)
        d.local_port = local_port or self.listen_port
        d.tls = tls
        return d

    def _refresh_date(self):
        self.date_header = b"Date: " + formatdate(usegmt=True).encode() + b"\r\n"

    def tick(self):
        """Refresh the coarse clock and Date, expire deadlines. Called every ~50 ms."""
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
            if d.ex is None and d.rb.rpos == d.rb.wpos:
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
            "connections_refused": self.connections_refused,
            "requests_total": self.requests_total,
            "requests_active": self.active_requests,
        }
