# The client connection: HTTP/1.1 framing (included by proxy.pyx).
#
# Rules:
# - Downstream only frames bytes: it parses heads, decodes request bodies (RequestParser) and
#   hands each request to an Exchange; it writes what exchanges give it, framed for HTTP/1.1
#   (status line, Content-Length / chunked, Connection). It is the exchanges' Sink.
# - One exchange at a time: a pipelined request waits in the read buffer until the previous
#   response is complete and the client's transport is below its high-water mark (nginx reads
#   the next request only when the previous response is sent). Gateway-made responses count.
# - The read buffer is borrowed from the worker's pool and given back whenever the connection
#   is idle between requests (proxy_wire.pxi); an idle keep-alive connection holds none.
# - Reading stops while the buffer is nearly full or the upstream cannot take more body
#   (update_reading); it never stops for any other reason.

cdef enum:
    CS_OPEN = 0
    CS_CLOSED = 1

    # Stop reading from the client when less than this is free in its buffer while the data
    # waits (body before the upstream is connected, pipelined requests).
    READ_PAUSE_FREE = 4096


cdef class Sink:
    """The interface an Exchange's carrier implements (see proxy.pxd)."""

    cdef void begin_head(self, Exchange ex, int status, const char* reason, Py_ssize_t n):
        raise NotImplementedError

    cdef void end_head(self, Exchange ex, bint unknown_length):
        raise NotImplementedError

    cdef void send_body(self, Exchange ex, const char* data, Py_ssize_t n):
        raise NotImplementedError

    cdef void end_body(self, Exchange ex):
        raise NotImplementedError

    cdef void start_tunnel(self, Exchange ex):
        raise NotImplementedError

    cdef void tunnel_write(self, Exchange ex, bytes data):
        raise NotImplementedError

    cdef void send_continue(self, Exchange ex):
        raise NotImplementedError

    cdef void flush(self):
        pass

    cdef void update_reading(self):
        pass

    cdef bint backlogged(self):
        return False

    cdef void wake(self):
        pass

    cdef void abort(self, Exchange ex):
        raise NotImplementedError

    cdef void exchange_done(self, Exchange ex):
        raise NotImplementedError

    cdef Py_ssize_t queued_output(self):
        return 0


cdef class Downstream(Sink):
    def __init__(self, ProxyCore core):
        self.core = core
        self.cstate = CS_OPEN
        self.client_ip = "127.0.0.1"

    def __dealloc__(self):
        rbuf_give_back(&self.rb)

    # -- asyncio protocol -------------------------------------------------------------------
    def connection_made(self, transport):
        cdef ProxyCore core = self.core
        self.transport = transport
        peer = transport.get_extra_info("peername")
        if peer:
            self.client_ip = peer[0]
        self.client_ip_b = self.client_ip.encode()
        if self.local_port == 0:
            self.local_port = core.listen_port
        # trusted_ips: only a trusted peer's real-ip header is read, per request (realip)
        self.peer_trusted = core.realip is not None and core.realip.trusted(self.client_ip)
        if self.tls:
            sslobj = transport.get_extra_info("ssl_object")
            name = getattr(sslobj, SNI_ATTR, None) if sslobj is not None else None
            self.sni = name.encode("ascii", "replace") if name else b""
        core.connections_total += 1
        if len(core.conns) >= core.limits.worker_connections:
            # nginx worker_connections: beyond it a new connection is closed unanswered
            core.connections_refused += 1
            self.cstate = CS_CLOSED
            transport.close()
            return
        core.conns.add(self)
        transport.set_write_buffer_limits(core.limits.max_queued_output)
        self.deadline = core.now + core.header_timeout
        if core.draining:
            self.close()

    def get_buffer(self, Py_ssize_t sizehint):
        return rbuf_view(&self.rb)

    def buffer_updated(self, Py_ssize_t nbytes):
        if self.cstate == CS_CLOSED:
            return
        if self.ex is None and self.rb.rpos == self.rb.wpos:
            self.deadline = self.core.now + self.core.header_timeout
        self.rb.wpos += nbytes
        self.body_deadline = self.core.now + self.core.body_timeout
        self.process()

    def eof_received(self):
        cdef Exchange ex = self.ex
        if ex is None or ex.rq == RQ_TUNNEL:
            return False
        if ex.rq == RQ_COMPLETE:
            # the client finished sending: let the response complete, then close
            ex.keep_alive = False
            return True
        # half-close mid-upload: the request can never complete (nginx: "client prematurely
        # closed connection", 499, the upstream closed at once); mid-discard: already answered
        return False

    def connection_lost(self, exc):
        cdef Exchange ex = self.ex
        self.cstate = CS_CLOSED
        self.core.conns.discard(self)
        if ex is not None:
            self.forget(ex)
            ex.abandon(499)
        self.transport = None
        self.release_buffer()
        self.core._check_drained()

    def pause_writing(self):
        cdef Exchange ex = self.ex
        self.writing_paused = True
        if ex is not None and ex.up is not None and not ex.up.reading_paused \
                and not (ex.route is not None and ex.route.response_buffering):
            # response_buffering routes keep reading up to response_buffer_size
            # (Exchange.on_response_data pauses then)
            ex.up.reading_paused = True
            ex.up.transport.pause_reading()

    def resume_writing(self):
        cdef Exchange ex = self.ex
        self.writing_paused = False
        if ex is not None and ex.up is not None and ex.up.reading_paused:
            ex.up.reading_paused = False
            ex.up_deadline = self.core.now + ex.route.service.read_timeout
            ex.up.transport.resume_reading()
        self.wake()

    @property
    def exchange(self):
        """The exchange in progress, or None (tests, debugging)."""
        return self.ex

    @property
    def holds_buffer(self) -> bool:
        """Whether a read buffer is borrowed right now (idle connections hold none)."""
        return self.rb.p != NULL

    # -- framing ------------------------------------------------------------------------------
    cdef void process(self):
        cdef Exchange ex
        cdef Py_ssize_t r
        cdef int rq
        self.depth += 1
        while self.cstate == CS_OPEN:
            ex = self.ex
            if ex is None:
                if self.rb.rpos == self.rb.wpos:
                    self.release_buffer()
                    break
                if self.writing_paused:
                    break   # the previous response is still queued: the next one waits
                if self.parser is None:
                    self.parser = self.core.take_parser()
                r = self.parser.parse_head(self.rb.p + self.rb.rpos, self.rb.wpos - self.rb.rpos)
                if r == 0:
                    break
                if r < 0:
                    self.reject(self.parser.error_status,
                                self.parser.error_reason or MSG_BAD_REQUEST)
                    break
                self.start_exchange(r)
                continue
            rq = ex.rq
            if rq == RQ_TUNNEL:
                if self.rb.rpos < self.rb.wpos and ex.up is not None:
                    ex.up.transport.write(PyBytes_FromStringAndSize(
                        self.rb.p + self.rb.rpos, self.rb.wpos - self.rb.rpos))
                self.rb.rpos = self.rb.wpos = 0
                break
            if (rq == RQ_STREAMING and ex.up is not None) or rq == RQ_BUFFERING \
                    or rq == RQ_DISCARDING:
                if self.rb.rpos == self.rb.wpos:
                    break
                self.feed_body(ex)
                if self.ex is ex and ex.rq == rq:
                    break
                continue
            break
        self.depth -= 1
        self.update_reading()

    cdef void feed_body(self, Exchange ex):
        # decode the request body's framing; the exchange gets the payload bytes
        cdef Py_ssize_t c, out_len
        cdef char* data
        cdef int rq = ex.rq
        while self.rb.rpos < self.rb.wpos and self.ex is ex and ex.rq == rq:
            data = self.rb.p + self.rb.rpos
            c = self.parser.feed_body(data, self.rb.wpos - self.rb.rpos, &out_len)
            if c < 0:
                ex.request_broken()
                return
            self.rb.rpos += c
            ex.bytes_in += c
            if out_len > 0:
                ex.request_data(data, out_len)
            if self.parser.body_done:
                if self.ex is ex and ex.rq == rq:
                    ex.request_end()
                return
            if c == 0:
                break
        if self.rb.rpos == self.rb.wpos:
            self.rb.rpos = self.rb.wpos = 0

    cdef void start_exchange(self, Py_ssize_t head_len):
        cdef ProxyCore core = self.core
        cdef const char* head = self.rb.p + self.rb.rpos
        cdef Exchange ex = Exchange.__new__(Exchange)
        self.rb.rpos += head_len
        ex.core = core
        ex.sink = self
        ex.req = self.parser
        ex.client_ip = self.client_ip
        ex.client_ip_b = self.client_ip_b
        ex.local_port = self.local_port
        ex.tls = self.tls
        ex.sni = self.sni
        ex.peer_trusted = self.peer_trusted
        ex.real_ip_b = self.client_ip_b
        self.ex = ex
        core.requests_total += 1
        core.active_requests += 1
        ex.start(head, head_len)

    cdef void reject(self, int status, str reason):
        # a head the parser refused, or one that timed out: answered, then the connection closes
        cdef Exchange ex = Exchange.__new__(Exchange)
        if self.parser is None:
            self.parser = self.core.take_parser()
        ex.core = self.core
        ex.sink = self
        ex.req = self.parser
        ex.client_ip = self.client_ip
        ex.client_ip_b = self.client_ip_b
        ex.real_ip_b = self.client_ip_b
        ex.local_port = self.local_port
        ex.rq = RQ_ABORTED
        ex.rp = RP_NONE
        ex.t_start = self.core.now
        ex.t0 = mono_ms()   # logged like any exchange (access log, dashboard counters)
        self.rb.rpos = self.rb.wpos
        self.ex = ex
        self.core.requests_total += 1
        self.core.active_requests += 1
        ex.send_error(status, reason, True)

    cdef void update_reading(self):
        cdef Exchange ex = self.ex
        cdef bint want_pause
        if self.transport is None:
            return
        want_pause = (ex is not None and ex.up is not None and ex.up.writing_paused) or \
            (self.rb.wpos - self.rb.rpos > CONN_BUFFER_SIZE - READ_PAUSE_FREE) or \
            (ex is None and self.writing_paused)
        if want_pause and not self.reading_paused:
            self.reading_paused = True
            self.transport.pause_reading()
        elif not want_pause and self.reading_paused:
            self.reading_paused = False
            self.body_deadline = self.core.now + self.core.body_timeout
            self.transport.resume_reading()

    cdef void release_buffer(self):
        # idle between requests: the read buffer and the parser go back to their pools
        if self.rb.rpos == self.rb.wpos:
            rbuf_give_back(&self.rb)
            if self.parser is not None and self.ex is None:
                self.core.give_parser(self.parser)
                self.parser = None

    cdef void forget(self, Exchange ex):
        # the exchange leaves this connection; a parser that plugins read (HeadCopy) goes
        # with it, never back to the pool
        self.ex = None
        self.core.active_requests -= 1
        if ex._head_copy is not None:
            self.parser = None

    # -- Sink: HTTP/1.1 output ------------------------------------------------------------------
    cdef void begin_head(self, Exchange ex, int status, const char* reason, Py_ssize_t n):
        _out.n = 0
        if reason == NULL:
            putb(status_line(status))
        else:
            putb(b"HTTP/1.1 ")
            put_int(status, 10)
            putb(b" ")
            put(reason, n)
            putb(b"\r\n")

    cdef void end_head(self, Exchange ex, bint unknown_length):
        cdef RequestParser p = ex.req
        self.resp_chunked = False
        if unknown_length:
            # RFC 9112 6.1: an HTTP/1.0 client cannot take chunked; the body ends at close
            if p.version_minor >= 1:
                self.resp_chunked = True
                putb(b"Transfer-Encoding: chunked\r\n")
            else:
                ex.must_close = True
        if not ex.keep_alive or ex.must_close or self.core.draining:
            ex.must_close = True
            putb(b"Connection: close\r\n")
        elif p.version_minor == 0:
            putb(b"Connection: keep-alive\r\n")
        putb(b"\r\n")
        # the head stays in _out: body bytes of the same read join it and flush() writes once
        # (one write, one syscall per small response)
        self.out_pending = True

    cdef void send_body(self, Exchange ex, const char* data, Py_ssize_t n):
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

    cdef void end_body(self, Exchange ex):
        if self.resp_chunked:
            if self.out_pending:
                putb(b"0\r\n\r\n")
            else:
                self.write(b"0\r\n\r\n")
        self.flush()

    cdef void start_tunnel(self, Exchange ex):
        putb(b"Connection: upgrade\r\n\r\n")
        self.out_pending = True
        self.flush()

    cdef void tunnel_write(self, Exchange ex, bytes data):
        self.write(data)

    cdef void send_continue(self, Exchange ex):
        # nginx answers 100 Continue itself when it starts reading the body, and only when
        # the client has not started sending it
        if self.rb.rpos == self.rb.wpos:
            self.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    cdef void flush(self):
        if self.out_pending:
            self.out_pending = False
            self.write(take())

    cdef void write(self, bytes data):
        if self.transport is not None:
            if self.ex is not None:
                self.ex.bytes_out += PyBytes_GET_SIZE(data)
            self.transport.write(data)

    cdef bint backlogged(self):
        return self.writing_paused

    cdef void wake(self):
        if self.depth == 0 and self.cstate == CS_OPEN:
            self.process()

    cdef void abort(self, Exchange ex):
        self.close()

    cdef void exchange_done(self, Exchange ex):
        if ex is not self.ex:
            return
        self.forget(ex)
        if self.cstate == CS_CLOSED:
            return
        if ex.must_close or not ex.keep_alive or ex.rq != RQ_COMPLETE or self.core.draining:
            self.close()
            return
        if self.parser is not None and self.rb.rpos < self.rb.wpos:
            self.parser.reset()   # a pipelined head is next (else give_parser resets it)
        self.deadline = self.core.now + self.core.keepalive_timeout
        self.wake()

    cdef Py_ssize_t queued_output(self):
        return self.transport.get_write_buffer_size() if self.transport is not None else 0

    cdef void close(self):
        cdef Exchange ex = self.ex
        cdef bint truncated
        if self.transport is None or self.cstate == CS_CLOSED:
            return
        self.cstate = CS_CLOSED
        truncated = ex is not None and ex.rp == RP_SENDING and ex.up is not None
        if ex is not None:
            # the request ends with the connection (truncated response, broken body): counted
            # and logged here, once (connection_lost then finds no exchange)
            self.forget(ex)
            ex.abandon(0)
        if truncated:
            self.transport.abort()   # truncated response: no clean end
        else:
            self.transport.close()

    cdef void check(self, double now):
        cdef Exchange ex = self.ex
        if ex is None:
            if now > self.deadline:
                if self.rb.rpos < self.rb.wpos:
                    self.reject(408, MSG_REQUEST_TIMEOUT)
                else:
                    self.close()
            return
        if (ex.rq == RQ_DISCARDING or ex.rq == RQ_BUFFERING
                or (ex.rq == RQ_STREAMING and not (ex.up is not None and ex.up.writing_paused))) \
                and now > self.body_deadline:
            # nginx client_body_timeout: the client went silent mid-body
            ex.body_timed_out()
            return
        ex.check(now)


class DownstreamProtocol(Downstream, asyncio.BufferedProtocol):
    """Downstream as an asyncio.BufferedProtocol (the stock asyncio loop checks isinstance;
    uvloop only needs get_buffer)."""
    __slots__ = ()
