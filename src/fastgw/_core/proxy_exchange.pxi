# The Exchange: one request and its response (included by proxy.pyx).
#
# Rules (h11 _state.py style):
# 1. Everything that changes an exchange's request-side state (rq) or response-side state (rp)
#    goes through Exchange.to(), which checks it against _RQ_NEXT / _RP_NEXT. An illegal
#    transition is a bug: it is logged with both states and answered (500 when nothing was
#    sent yet, else the carrier closes), never ignored.
# 2. An Exchange does not know its carrier's protocol: it writes through its Sink (begin_head /
#    fields / end_head, send_body, end_body) and gets decoded request body bytes from it
#    (request_data, request_end, request_broken).
# 3. It ends exactly once: finish() (both sides done) or abandon() (the carrier closes first);
#    either logs it and `ended` is then set; late callbacks (connects, async plugin phases)
#    check `ended` and drop out.
# 4. Born from a freelist per request; nothing is reset between requests (a new object).
#
# Diagram (request side | response side):
#   RQ_HEAD --> RQ_BUFFERING --> RQ_COMPLETE --> RQ_TUNNEL
#      |  \-----> RQ_STREAMING ------^   ^
#      |  \-----> RQ_DISCARDING ---------/          any --> RQ_ABORTED
#      \---------------------------------> RQ_COMPLETE (no body)
#   RP_NONE --> RP_UPSTREAM (--> RP_UPSTREAM: retry) --> RP_SENDING --> RP_COMPLETE
#      \------------------------------------> RP_COMPLETE (gateway-made response)
#                  RP_UPSTREAM --> RP_TUNNEL;             any --> RP_ABORTED
#   finish() when rq == RQ_COMPLETE (or the carrier will close) and rp == RP_COMPLETE.

cdef inline unsigned int _bit(int s) noexcept:
    return (<unsigned int>1) << s

cdef unsigned int[8] _RQ_NEXT
_RQ_NEXT[0] = 0
_RQ_NEXT[RQ_HEAD] = _bit(RQ_BUFFERING) | _bit(RQ_STREAMING) | _bit(RQ_DISCARDING) \
    | _bit(RQ_COMPLETE) | _bit(RQ_ABORTED)
_RQ_NEXT[RQ_BUFFERING] = _bit(RQ_COMPLETE) | _bit(RQ_DISCARDING) | _bit(RQ_ABORTED)
_RQ_NEXT[RQ_STREAMING] = _bit(RQ_COMPLETE) | _bit(RQ_DISCARDING) | _bit(RQ_ABORTED)
_RQ_NEXT[RQ_DISCARDING] = _bit(RQ_COMPLETE) | _bit(RQ_ABORTED)
_RQ_NEXT[RQ_COMPLETE] = _bit(RQ_TUNNEL) | _bit(RQ_ABORTED)
_RQ_NEXT[RQ_TUNNEL] = _bit(RQ_ABORTED)
_RQ_NEXT[RQ_ABORTED] = 0

cdef unsigned int[7] _RP_NEXT
_RP_NEXT[0] = 0
_RP_NEXT[RP_NONE] = _bit(RP_UPSTREAM) | _bit(RP_SENDING) | _bit(RP_COMPLETE) | _bit(RP_ABORTED)
_RP_NEXT[RP_UPSTREAM] = _bit(RP_UPSTREAM) | _bit(RP_SENDING) | _bit(RP_COMPLETE) \
    | _bit(RP_TUNNEL) | _bit(RP_ABORTED)
_RP_NEXT[RP_SENDING] = _bit(RP_COMPLETE) | _bit(RP_ABORTED)
_RP_NEXT[RP_COMPLETE] = _bit(RP_ABORTED)
_RP_NEXT[RP_TUNNEL] = _bit(RP_ABORTED)
_RP_NEXT[RP_ABORTED] = 0

_RQ_NAMES = ("-", "HEAD", "BUFFERING", "STREAMING", "DISCARDING", "COMPLETE", "TUNNEL",
             "ABORTED")
_RP_NAMES = ("-", "NONE", "UPSTREAM", "SENDING", "COMPLETE", "TUNNEL", "ABORTED")


@cython.freelist(64)
@cython.final
cdef class Exchange:

    # -- states ---------------------------------------------------------------------------------
    cdef bint to(self, int rq, int rp):
        """The one transition function: KEEP leaves a side as it is."""
        if (rq != KEEP and not (_RQ_NEXT[self.rq] & _bit(rq))) or \
                (rp != KEEP and not (_RP_NEXT[self.rp] & _bit(rp))):
            self.illegal(rq, rp)
            return False
        if rq != KEEP:
            self.rq = rq
        if rp != KEEP:
            self.rp = rp
        return True

    cdef void illegal(self, int rq, int rp):
        log.error("illegal exchange transition: request %s -> %s, response %s -> %s (%s)",
                  _RQ_NAMES[self.rq], _RQ_NAMES[rq] if rq else "same",
                  _RP_NAMES[self.rp], _RP_NAMES[rp] if rp else "same",
                  self.route.name if self.route is not None else "no route")
        if self.ended:
            return
        if self.rp == RP_NONE or self.rp == RP_UPSTREAM:
            # nothing reached the client: answer 500 and close
            self.detach(False)
            self.status = 500
            self.rq = RQ_ABORTED
            self.rp = RP_COMPLETE
            self.must_close = True
            self.write_response(500, [(b"Content-Type", b"application/json; charset=utf-8")],
                                orjson.dumps({"message": MSG_INTERNAL,
                                              "request_id": ex_request_id(self).decode()}))
            self.finish()
        else:
            self.sink.abort(self)

    def state(self) -> tuple:
        """(request side, response side) names (tests, debugging)."""
        return _RQ_NAMES[self.rq], _RP_NAMES[self.rp]

    def transition(self, str rq, str rp) -> bool:
        """Exchange.to() by state names ("" keeps a side): for tests and debugging; an
        illegal one is handled exactly as on the request path."""
        return self.to(_RQ_NAMES.index(rq) if rq else KEEP, _RP_NAMES.index(rp) if rp else KEEP)

    # HeaderSource for the router's header conditions (valid only while start() runs)
    def get(self, bytes name_lower):
        # a header sent on several lines gives the list of its values
        return self.req.find_header_lines(self.head_p, name_lower)

    # -- request body, from the carrier ---------------------------------------------------------
    cdef void request_data(self, char* data, Py_ssize_t n):
        if self.rq == RQ_STREAMING:
            self.forward_data(data, n)
        elif self.rq == RQ_BUFFERING:
            self.buffer_data(data, n)
        # RQ_DISCARDING: dropped

    cdef void request_end(self):
        cdef int rq = self.rq
        if not self.to(RQ_COMPLETE, KEEP):
            return
        if rq == RQ_BUFFERING:
            if self.req_head is not None:
                self.buffered()       # request buffering: the upstream gets it whole now
                return
            self.fixed_body = bytes(self.body_buf)
            self.body_buf = None
            self.ctx.request.body = self.fixed_body
            self.run_access()
        elif rq == RQ_STREAMING:
            if self.req_chunked and self.up is not None:
                self.up.transport.write(b"0\r\n\r\n")
        elif rq == RQ_DISCARDING and self.rp == RP_COMPLETE:
            self.finish()

    cdef void request_broken(self):
        # the client's body framing broke: nothing sane can follow on either side
        if self.rq == RQ_DISCARDING:
            self.sink.abort(self)
        elif self.rq == RQ_BUFFERING:
            self.send_error(400, self.req.error_reason or MSG_BAD_REQUEST, True)
        else:
            self.detach(False)
            if self.rp == RP_SENDING:
                self.sink.abort(self)
            else:
                self.send_error(400, MSG_BAD_BODY_FRAMING, True)

    cdef void body_timed_out(self):
        # nginx client_body_timeout -> 408 (or a plain close once the response has begun)
        self.detach(False)
        if self.rp == RP_SENDING or self.rp == RP_COMPLETE:
            self.sink.abort(self)
        else:
            self.send_error(408, MSG_REQUEST_TIMEOUT, True)

    cdef void buffer_data(self, char* data, Py_ssize_t n):
        cdef Limits lim = self.core.limits
        self.body_len += n
        if (lim.client_max_body_size > 0 and self.body_len > lim.client_max_body_size) \
                or (self.max_body >= 0 and self.body_len > self.max_body):
            # client_max_body_size, or request-size-limiting (ctx.max_body_size)
            self.send_error(413, MSG_BODY_TOO_LARGE, True)
            return
        if self.spill is not None:
            self.spill.write(PyBytes_FromStringAndSize(data, n))
            return
        if self.body_len > lim.max_buffered_body:
            if self.req_head is None:
                # plugins read the body as bytes: it must fit in memory
                self.send_error(413, MSG_BODY_TOO_LARGE, True)
                return
            # request buffering beyond memory: a temporary file (nginx client_body_temp_path)
            self.spill = tempfile.TemporaryFile(prefix="fastgw-body-")
            self.spill.write(self.body_buf)
            self.body_buf = None
            self.spill.write(PyBytes_FromStringAndSize(data, n))
            return
        self.body_buf += PyBytes_FromStringAndSize(data, n)

    # -- the end ----------------------------------------------------------------------------------
    cdef void finish(self):
        if self.ended:
            return
        self.ended = True
        if self.spill is not None:
            self.spill.close()
            self.spill = None
        self.end_log()
        self.sink.exchange_done(self)

    cdef void abandon(self, int log_status):
        """The carrier closes with this exchange unfinished (client gone, truncation)."""
        if self.ended:
            return
        self.ended = True
        self.detach(False)
        if self.spill is not None:
            self.spill.close()
            self.spill = None
        if log_status and self.rp != RP_TUNNEL:
            self.status = log_status
        self.rq = RQ_ABORTED
        self.rp = RP_ABORTED
        self.end_log()

    cdef void end_log(self):
        if self.ctx is not None:
            self.run_log()
        elif self.nat.active:
            self.native_log()
        self.nat.active = False
        ops_end(self)   # after the log phase: its lines keep the request id

    cdef void detach(self, bint reusable):
        # the upstream connection is done with this exchange
        cdef Upstream up = self.up
        if up is None:
            return
        self.up = None
        up.release(reusable)
        if self.target is not None:
            self.target_finished()

    cdef void target_finished(self):
        self.current_balancer().on_finish(<Target>self.target,
                                          (self.core.now - self.t_start) * 1000.0, self.core.now)

    # -- responses made by the gateway ------------------------------------------------------------
    cdef void send_error(self, int status, str message, bint close):
        rid = ex_request_id(self).decode()
        if status >= 500 or self.err_cause is not None:
            # the error log line operators grep for: same request id as the body and header
            log.error("%d %s: %s [request_id %s]", status, message,
                      self.err_cause or "no cause recorded", rid,
                      exc_info=sys.exc_info()[0] is not None)
        body = orjson.dumps({"message": message, "request_id": rid})
        self.send_response(status, [(b"Content-Type", b"application/json; charset=utf-8")],
                           body, close)

    cdef void send_response(self, int status, list headers, bytes body, bint close):
        cdef int rq = KEEP
        if self.ended:
            return
        if self.rp == RP_SENDING or self.rp == RP_TUNNEL:
            # mid-response: the client must see the truncation, never a false "complete"
            self.sink.abort(self)
            return
        close = close or not self.keep_alive or self.core.draining
        if self.rq == RQ_HEAD or self.rq == RQ_BUFFERING or self.rq == RQ_STREAMING:
            # the rest of the body: dropped after the answer, or never read (connection closes)
            rq = RQ_ABORTED if close else RQ_DISCARDING
        if not self.to(rq, RP_COMPLETE):
            return
        self.status = status
        if self.nat.active:
            # a response the gateway makes (exit, 502/504): prometheus records it as "kong"
            self.nat.code = status
            self.nat.exit = True
        if close:
            self.must_close = True
        self.write_response(status, headers, body)
        if self.rq != RQ_DISCARDING:
            self.finish()

    cdef void write_response(self, int status, list headers, bytes body):
        cdef Sink sink = self.sink
        sink.begin_head(self, status, NULL, 0)
        putb(self.core.date_header)
        for name, value in headers:
            put_field(name, value)
        if status < 200 or status == 204 or status == 304:
            # RFC 9110 8.6: no Content-Length (and no content) on 1xx/204; 304 has no content
            body = b""
        else:
            putb(b"Content-Length: ")
            put_int(len(body), 10)
            putb(b"\r\n")
        ops_put_kong_headers(self, False)
        sink.end_head(self, False)
        if self.req.method != M_HEAD and PyBytes_GET_SIZE(body):
            sink.send_body(self, PyBytes_AS_STRING(body), PyBytes_GET_SIZE(body))
        sink.end_body(self)

    # -- timeouts (the worker's sweep, through the carrier) ---------------------------------------
    cdef void check(self, double now):
        cdef Upstream up = self.up
        if self.connect_task is not None:
            if self.rp == RP_UPSTREAM and now > self.up_deadline:
                self.connect_task.cancel()
        elif up is not None and (self.rp == RP_UPSTREAM or self.rp == RP_SENDING):
            if up.reading_paused:
                # the gateway paused the upstream (the client reads slowly): not its silence
                self.up_deadline = now + self.route.service.read_timeout
            elif now > self.up_deadline:
                self.upstream_failed(up, FAIL_READ_TIMEOUT)

    # -- the request side (proxy_forward.pxi, proxy_plugins.pxi) ----------------------------------
    cdef void start(self, const char* head, Py_ssize_t head_len):
        exchange_start(self, head, head_len)

    cdef bytes build_head(self, const char* head, m, ctx):
        return exchange_build_head(self, head, m, ctx)

    cdef void proceed(self):
        if self.route.service.hash_input is not None:
            self.compute_hash()
        if self.req.expect_continue and self.rq == RQ_HEAD:
            self.sink.send_continue(self)
        if self.route.request_buffering and self.rq == RQ_HEAD:
            # Kong request_buffering (nginx proxy_request_buffering on): the whole body is
            # read and its framing validated before anything goes upstream
            if self.to(RQ_BUFFERING, KEEP):
                self.body_buf = bytearray()
            return
        self.go_upstream()

    cdef void go_upstream(self):
        self.replayable = self.rq == RQ_COMPLETE and (self.req.body_kind == BODY_NONE
                                                      or self.fixed_body is not None
                                                      or self.spill is not None)
        exchange_connect(self)

    cdef void buffered(self):
        # the body is complete: sent with Content-Length (a chunked request is re-framed)
        if self.spill is None:
            self.fixed_body = bytes(self.body_buf)
            self.body_buf = None
        if self.req_chunked:
            self.req_chunked = False
            self.req_head = self.req_head.replace(
                b"\r\nTransfer-Encoding: chunked\r\n",
                b"\r\nContent-Length: " + str(self.body_len).encode() + b"\r\n", 1)
        self.go_upstream()

    cdef void pump_spill(self):
        # a spilled body goes out at the upstream's pace (its transport's backpressure)
        cdef Upstream up = self.up
        while up is not None and self.spill is not None and not up.writing_paused:
            chunk = self.spill.read(CONN_BUFFER_SIZE)
            if not chunk:
                self.spill.close()
                self.spill = None
                break
            up.transport.write(chunk)
            self.up_deadline = self.core.now + self.route.service.write_timeout

    cdef void compute_hash(self):
        exchange_compute_hash(self)

    cdef Balancer current_balancer(self):
        if self._upstream_override is not None:
            b = self.core.snapshot.balancer_for(self._upstream_override)
            if b is not None:
                return <Balancer?>b
        return self.route.service.balancer

    cdef void connect(self):
        exchange_connect(self)

    def _connected(self, fut):
        cdef Upstream up
        self.connect_task = None
        if self.ended or self.rp != RP_UPSTREAM:
            # the client went away meanwhile: keep the connection for someone else
            if not fut.cancelled() and fut.exception() is None:
                up = <Upstream>fut.result()[1]
                up.pool.give(up, self.core.now)
            return
        if fut.cancelled():
            self.upstream_failed(None, FAIL_CONNECT_TIMEOUT)
            return
        if fut.exception() is not None:
            self.err_cause = fut.exception()
            self.upstream_failed(None, FAIL_CONNECT)
            return
        self.attach(<Upstream>fut.result()[1])
        self.sink.wake()

    cdef void attach(self, Upstream up):
        exchange_attach(self, up)

    cdef void forward_data(self, char* data, Py_ssize_t n):
        exchange_forward_data(self, data, n)

    cdef void https_only(self, const char* head, bytes host):
        exchange_https_only(self, head, host)

    cdef void run_access(self):
        exchange_run_access(self)

    def _access_done(self, fut):
        if self.ended:
            return
        try:
            result = fut.result()
        except Exception:
            self.err_cause = "plugin access phase failed"   # logged by send_error, with the traceback
            self.send_error(500, MSG_INTERNAL, self.rq != RQ_COMPLETE)
            return
        self.after_access(result)
        self.sink.wake()

    cdef void after_access(self, result):
        exchange_after_access(self, result)

    cdef void send_plugin_response(self, result):
        exchange_send_plugin_response(self, result)

    def _exit_done(self, fut):
        if self.ended:
            return
        try:
            result = fut.result()
        except Exception:
            self.err_cause = "plugin header_filter failed on an exit response"
            self.send_error(500, MSG_INTERNAL, True)
            return
        self.write_plugin_response(result)
        self.sink.wake()

    cdef void write_plugin_response(self, result):
        exchange_write_plugin_response(self, result)

    cdef bint run_native(self, const char* head, Py_ssize_t head_len):
        return exchange_run_native(self, head, head_len)

    cdef void native_log(self):
        self.route.native.log(&self.nat, self.bytes_in, self.bytes_out,
                              (self.core.loop.time() - self.t_start) * 1000.0
                              if self.nat.timed else -1.0)

    cdef void run_log(self):
        exchange_run_log(self)

    cdef object upstream_uri(self):
        # the request line's target as sent upstream
        req = self.req_head
        if req is None:
            return None
        sp = req.find(b" ")
        return req[sp + 1:req.find(b" ", sp + 1)].decode("latin-1")

    # -- the response side (proxy_response.pxi) -------------------------------------------------
    cdef void on_response_head(self, Upstream up):
        exchange_on_response_head(self, up)

    cdef void on_response_data(self, char* data, Py_ssize_t n):
        if self.body_filter:
            self.filtered_data(PyBytes_FromStringAndSize(data, n), False)
            return
        self.sink.send_body(self, data, n)
        self.up_deadline = self.core.now + self.route.service.read_timeout
        if self.sink.backlogged() and self.up is not None and not self.up.reading_paused \
                and self.sink.queued_output() > self.core.limits.response_buffer_size:
            self.up.reading_paused = True
            self.up.transport.pause_reading()

    cdef void on_upgrade(self, Upstream up, Py_ssize_t head_len):
        exchange_on_upgrade(self, up, head_len)

    cdef void filtered_data(self, bytes chunk, bint eof):
        exchange_filtered_data(self, chunk, eof)

    cdef void on_response_done(self, Upstream up):
        exchange_on_response_done(self, up)

    cdef void upstream_failed(self, Upstream up, int kind):
        exchange_upstream_failed(self, up, kind)
