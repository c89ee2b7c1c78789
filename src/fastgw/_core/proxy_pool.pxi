# Upstream connections and their keep-alive pools (included by proxy.pyx).
#
# Rules:
# - An Upstream serves one Exchange at a time (`ex`); idle in its Pool it serves none, holds no
#   read buffer, and any byte it receives is a protocol violation (closed).
# - It frames the response (ResponseParser) and hands the Exchange decoded body bytes; the
#   Exchange decides what reaches the client.
# - reading_paused means the gateway paused it (the client reads slowly): that time is not the
#   upstream's silence, so read_timeout does not run meanwhile.

cdef enum:
    US_IDLE = 0        # in a pool, or between responses
    US_HEAD = 1        # waiting for / parsing a response head
    US_BODY = 2        # response body
    US_TUNNEL = 3      # after 101

    FAIL_CONNECT = 1          # refused / unreachable: nothing was sent
    FAIL_CONNECT_TIMEOUT = 2
    FAIL_RESET = 3            # connection lost before the response completed
    FAIL_BAD_RESPONSE = 4
    FAIL_READ_TIMEOUT = 5
    FAIL_CLIENT_GONE = 6      # the client closed mid-request (nginx 499 "client prematurely
                              # closed connection"): the upstream is dropped at once


cdef class Pool:
    def __init__(self, ProxyCore core, str host, int port,
                 int max_idle=DEFAULT_UPSTREAM_KEEPALIVE_POOL_SIZE,
                 int max_requests=DEFAULT_UPSTREAM_KEEPALIVE_MAX_REQUESTS,
                 double idle_timeout=DEFAULT_UPSTREAM_KEEPALIVE_IDLE_TIMEOUT_MS / 1000.0,
                 str hostname=None):
        self.core = core
        self.host = host
        self.port = port
        self.hostname = hostname = hostname or host
        self.host_header = (hostname if port in (80, 443) else f"{hostname}:{port}").encode("idna")
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


cdef class Upstream:
    def __init__(self, ProxyCore core, Pool pool):
        self.core = core
        self.pool = pool
        self.parser = ResponseParser()
        self.state = US_IDLE

    def __dealloc__(self):
        rbuf_give_back(&self.rb)

    def connection_made(self, transport):
        self.transport = transport

    def get_buffer(self, Py_ssize_t sizehint):
        return rbuf_view(&self.rb)

    def buffer_updated(self, Py_ssize_t nbytes):
        self.rb.wpos += nbytes
        self.got_bytes = True
        if self.ex is None:
            # bytes on an idle keep-alive connection: protocol violation, drop it
            self.closed = True
            rbuf_give_back(&self.rb)
            self.transport.close()
            return
        self.process()

    def eof_received(self):
        return False

    def connection_lost(self, exc):
        cdef Exchange ex = self.ex
        self.closed = True
        if ex is None:
            rbuf_give_back(&self.rb)
            return
        if self.state == US_TUNNEL:
            # the tunnel ends with either side: close the client after what was written
            self.ex = None
            ex.up = None
            ex.sink.abort(ex)
            return
        if self.state == US_BODY and self.parser.body_kind == BODY_UNTIL_CLOSE \
                and self.parser.feed_eof() == 0:
            self.state = US_IDLE
            exchange_on_response_done(ex, self)
            return
        ex.upstream_failed(self, FAIL_RESET)

    def pause_writing(self):
        self.writing_paused = True
        if self.ex is not None:
            self.ex.sink.update_reading()

    def resume_writing(self):
        self.writing_paused = False
        if self.ex is not None:
            if self.ex.spill is not None:
                self.ex.pump_spill()
            self.ex.sink.update_reading()
            self.ex.sink.wake()

    cdef void process(self):
        cdef Py_ssize_t r, c, out_len
        cdef Exchange ex = self.ex
        cdef Sink sink
        if ex is None:
            return
        sink = ex.sink
        while self.ex is ex:
            if self.state == US_HEAD:
                r = self.parser.parse_head(self.rb.p + self.rb.rpos, self.rb.wpos - self.rb.rpos)
                if r == 0:
                    break
                if r < 0:
                    ex.upstream_failed(self, FAIL_BAD_RESPONSE)
                    return
                if self.parser.status < 200:
                    if self.parser.status == 101:
                        if not ex.upgrade_req:
                            ex.upstream_failed(self, FAIL_BAD_RESPONSE)
                            return
                        ex.on_upgrade(self, r)
                        return
                    self.rb.rpos += r   # interim response (100 Continue): not forwarded
                    self.parser.reset()
                    continue
                exchange_on_response_head(ex, self)
                self.rb.rpos += r
                if self.ex is not ex:
                    return      # a header_filter answered instead
                self.state = US_BODY
                if self.parser.body_kind == BODY_NONE:
                    self.state = US_IDLE
                    exchange_on_response_done(ex, self)
                    return
            elif self.state == US_TUNNEL:
                if self.rb.rpos < self.rb.wpos:
                    sink.tunnel_write(ex, PyBytes_FromStringAndSize(
                        self.rb.p + self.rb.rpos, self.rb.wpos - self.rb.rpos))
                    self.rb.rpos = self.rb.wpos
                break
            elif self.state == US_BODY:
                if self.rb.rpos == self.rb.wpos:
                    break
                c = self.parser.feed_body(self.rb.p + self.rb.rpos, self.rb.wpos - self.rb.rpos,
                                          &out_len)
                if c < 0:
                    sink.flush()
                    ex.upstream_failed(self, FAIL_BAD_RESPONSE)
                    return
                if out_len > 0:
                    ex.on_response_data(self.rb.p + self.rb.rpos, out_len)
                self.rb.rpos += c
                if self.parser.body_done:
                    self.state = US_IDLE
                    exchange_on_response_done(ex, self)
                    return
            else:
                break
        sink.flush()
        if self.rb.rpos == self.rb.wpos:
            self.rb.rpos = self.rb.wpos = 0

    cdef void release(self, bint reusable):
        self.ex = None
        self.state = US_IDLE
        if self.reading_paused:
            self.reading_paused = False
            if not self.closed:
                self.transport.resume_reading()
        if reusable and not self.closed and self.requests < self.pool.max_requests \
                and self.rb.rpos == self.rb.wpos:
            self.reused = True
            rbuf_give_back(&self.rb)
            self.pool.give(self, self.core.now)
        elif not self.closed:
            self.closed = True
            rbuf_give_back(&self.rb)
            self.transport.close()


class UpstreamProtocol(Upstream, asyncio.BufferedProtocol):
    __slots__ = ()
