# The request side of an Exchange: checks, routing, plugins, the upstream head, connecting
# and streaming the body (included by proxy.pyx; methods of Exchange live in proxy_exchange.pxi
# and here as module functions Cython cannot split a class across files).
#
# Rules:
# - Nothing the parser did not accept is forwarded, and the client's framing is never forwarded
#   verbatim: heads are rewritten (RFC 9110 7.6: hop-by-hop fields dropped, X-Forwarded-*, Via)
#   and bodies re-framed (Content-Length kept, chunked re-chunked).
# - Python is entered a fixed number of times per request: router.match, balancer.pick, the
#   transport writes; plugin code only when the matched route has a chain.
# - Retries only when nothing of the request reached the upstream (connect failed), or when a
#   reused keep-alive connection died before answering an idempotent, replayable request.


cdef inline bint _bad_field_name(const char* name, Py_ssize_t n) noexcept:
    # nginx underscores_in_headers off: such a field is dropped (ignore_invalid_headers)
    return memchr(name, b'_', n) != NULL


cdef void exchange_start(Exchange ex, const char* head, Py_ssize_t head_len):
    cdef RequestParser p = ex.req
    cdef Header* h
    cdef int i
    cdef ProxyCore core = ex.core
    ex.head_p = head
    ex.t_start = core.now
    ex.bytes_in = head_len
    ops_begin(ex, head, head_len)
    ex.rp = RP_NONE
    ex.rq = RQ_COMPLETE if p.body_kind == BODY_NONE else RQ_HEAD
    ex.keep_alive = p.keep_alive and not core.draining
    ex.max_body = -1
    ex.idempotent = p.method in (M_GET, M_HEAD, M_PUT, M_DELETE, M_OPTIONS, M_TRACE)
    # RFC 9110 7.8: the client asks to switch protocols (WebSocket); forwarded as such.
    # Never h2c (RFC 9113 3.1 removed it; a tunnel past routing and plugins: h2c smuggling).
    ex.upgrade_req = p.upgrade and p.method == M_GET and not _upgrade_is_h2c(p, head)
    # RFC 9110 7.6.1: a Connection option must not remove fields the proxy relies on.
    for i in range(p.n_headers):
        h = &p.headers[i]
        if (h.flags & HF_HOP) and (h.kind == H_HOST or h.kind == H_CONTENT_LENGTH):
            ex.send_error(400, MSG_PROTECTED_FIELD, True)
            return
        if h.kind == H_EXPECT and not p.expect_continue:
            ex.send_error(417, MSG_EXPECTATION_FAILED, True)
            return
    if p.method == M_CONNECT:
        ex.send_error(405, MSG_METHOD_NOT_ALLOWED, True)
        return
    cdef int64_t cap = core.limits.client_max_body_size
    if cap > 0 and p.body_kind == BODY_LENGTH and p.content_length > cap:
        # nginx client_max_body_size -> 413 before anything is read
        ex.send_error(413, MSG_BODY_TOO_LARGE, True)
        return
    method = PyBytes_FromStringAndSize(head + p.start_off, p.method_len)
    # the path and query spans; absolute-form carries the authority that replaces Host
    # (RFC 9112 3.2.2)
    ex.path_off = p.target_off
    ex.path_n = p.path_len
    if p.authority_len:
        ex.path_off = p.authority_off + p.authority_len
        ex.path_n = p.target_off + p.target_len - ex.path_off
        for i in range(<int>ex.path_n):
            if head[ex.path_off + i] == b'?':
                ex.path_n = <uint32_t>i
                break
        host = PyBytes_FromStringAndSize(head + p.authority_off, p.authority_len)
    elif p.host_index >= 0:
        h = &p.headers[p.host_index]
        host = PyBytes_FromStringAndSize(head + h.value_off, h.value_len)
    else:
        host = b""
    ex.query_off = ex.path_off + ex.path_n
    ex.query_n = p.target_off + p.target_len - ex.query_off
    path = PyBytes_FromStringAndSize(head + ex.path_off, ex.path_n) if ex.path_n else b"/"
    if core.tracer is not None:
        ops_trace_check(ex, head, head_len, method, host, path)
    try:
        m = core.router.match(method, host, path, ex, ex.sni, ex.local_port)
    except Exception:
        log.exception("router failed")
        m = None
    if m is None:
        ex.send_error(404, MSG_NO_ROUTE, False)
        return
    ex.route = <RouteRT>m.key
    ex._plugin_match = m
    if ex.tls:
        if not ex.route.https_ok:
            # Kong's router does not match an http-only route on TLS (the router itself
            # checked the route's snis against the connection's SNI)
            ex.send_error(404, MSG_NO_ROUTE, False)
            return
    elif ex.route.https_redirect:
        # the route only speaks https and this listener is plain http (Kong: 426, or a
        # redirect when https_redirect_status_code says so)
        ex.https_only(head, host)
        return
    chain = ex.route.chain
    if chain is None and ex.route.service is None:
        ex.send_error(503, MSG_NO_SERVICE, False)
        return
    if chain is None:
        if ex.route.native is not None and ex.run_native(head, head_len):
            return
        ex.req_head = exchange_build_head(ex, head, m, None)
        ex.proceed()
        return
    # plugin path: keep a copy of the head for the plugins, then run rewrite + access
    ex.t_up = core.loop.time()
    head_copy = PyBytes_FromStringAndSize(head, head_len)
    ex._head_copy = head_copy
    ex.body_filter = chain.has_body_filter
    try:
        ex.ctx = core.context_factory(
            ex.route, method, PyBytes_FromStringAndSize(
                PyBytes_AS_STRING(head_copy) + ex.path_off,
                p.target_off + p.target_len - ex.path_off),
            HeadCopy(head_copy, p), ex.client_ip, "https" if ex.tls else "http")
        ex.ctx.route_match = m
        if ex.trace is not None:
            ex.ctx.vars["fastgw.trace"] = ex.trace
    except Exception:
        ex.err_cause = "plugin context failed"   # logged by send_error, with the traceback
        ex.send_error(500, MSG_INTERNAL, ex.rq != RQ_COMPLETE)
        return
    if chain.needs_request_body and ex.rq == RQ_HEAD:
        # read the whole body first: plugins see ctx.request.body (the carrier feeds it)
        if not ex.to(RQ_BUFFERING, KEEP):
            return
        ex.body_buf = bytearray()
        if p.expect_continue:
            ex.sink.send_continue(ex)
        return
    ex.run_access()


cdef bint _upgrade_is_h2c(RequestParser p, const char* head) noexcept:
    # any "h2c" token in Upgrade (RFC 9110 7.8: a list, case-insensitive): the whole upgrade
    # is refused, so a backend can never pick h2c
    cdef Header* h
    cdef int i
    cdef Py_ssize_t j, s, e
    cdef const char* v
    for i in range(p.n_headers):
        h = &p.headers[i]
        if h.kind != H_UPGRADE:
            continue
        v = head + h.value_off
        j = 0
        while j <= h.value_len:
            s = j
            while j < h.value_len and v[j] != b',':
                j += 1
            e = j
            while s < e and (v[s] == b' ' or v[s] == b'\t'):
                s += 1
            while e > s and (v[e - 1] == b' ' or v[e - 1] == b'\t'):
                e -= 1
            if e - s == 3 and (v[s] | 0x20) == b'h' and v[s + 1] == b'2' \
                    and (v[s + 2] | 0x20) == b'c':
                return True
            j += 1
    return False


cdef bint _te_trailers(RequestParser p, const char* head) noexcept:
    # a "trailers" member in any TE line (RFC 9110 10.1.4: a list, case-insensitive)
    cdef Header* h
    cdef int i
    cdef Py_ssize_t j, s, e
    cdef const char* v
    for i in range(p.n_headers):
        h = &p.headers[i]
        if h.kind != H_TE:
            continue
        v = head + h.value_off
        j = 0
        while j <= h.value_len:
            s = j
            while j < h.value_len and v[j] != b',':
                j += 1
            e = j
            while s < e and (v[s] == b' ' or v[s] == b'\t'):
                s += 1
            while e > s and (v[e - 1] == b' ' or v[e - 1] == b'\t' or v[e - 1] == b';'):
                e -= 1
            if e - s >= 8 and strncasecmp(v + s, b"trailers", 8) == 0 and \
                    (e - s == 8 or v[s + 8] == b';' or v[s + 8] == b' '):
                return True
            j += 1
    return False


cdef bytes exchange_build_head(Exchange ex, const char* head, m, ctx):
    """The request head for the upstream (RFC 9110 7.6)."""
    cdef RequestParser p = ex.req
    cdef Header* h
    cdef int i
    cdef int xff = -1
    cdef dict ops = None
    cdef bytes upath = m.upstream_path
    cdef bytes method_o = None, path_o = None, query_o = None
    cdef bint underscores = ex.core.limits.underscores_in_headers
    cdef bint rid_up = (ex.core.headers & HDR_UPSTREAM_REQUEST_ID) != 0
    if ctx is not None:
        req = ctx.request
        ops = req.header_ops or None
        method_o = req.method_override
        path_o = req.path_override
        query_o = req.query_override
        if ctx.upstream_override is not None:
            ex._upstream_override = ctx.upstream_override
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
    elif ex.query_n:
        put(head + ex.query_off, ex.query_n)
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
        if not underscores and k == H_OTHER and _bad_field_name(head + h.name_off, h.name_len):
            continue
        if h.name_len == 18 and strncasecmp(head + h.name_off, b"x-forwarded-prefix", 18) == 0:
            continue    # set by the proxy from the route match, below (Kong handler.lua)
        if ops is not None and PyBytes_FromStringAndSize(
                head + h.name_off, h.name_len).lower() in ops:
            continue
        if ex.nat_req is not None and is_consumer_header(head + h.name_off, h.name_len):
            continue
        if ex.strip_trace and h.name_len == 14 and \
                strncasecmp(head + h.name_off, b"x-fastgw-trace", 14) == 0:
            continue   # the trace key (possibly the admin token) never goes upstream
        if rid_up and h.name_len == 17 and \
                strncasecmp(head + h.name_off, b"x-kong-request-id", 17) == 0:
            continue   # replaced by ours (Kong: set_header, headers_upstream)
        put_header_line(head, h)
    if ex.nat_req is not None:
        putb(ex.nat_req)   # key-auth's consumer headers (ctx.authenticate's ops)
    if ops is not None:
        case = ctx.request.header_case or {}
        for name, values in ops.items():
            if values is None or name == b"host" or name == b"content-length" \
                    or name == b"transfer-encoding":
                continue
            name = case.get(name, name)
            for v in values:
                put_field(name, v)
    if _te_trailers(p, head):
        # TE is hop-by-hop, but a client that accepts trailers says so to the upstream too
        # (Kong keeps "te: trailers", spec 05-proxy/03-upstream_headers)
        putb(b"TE: trailers\r\n")
    if ex.upgrade_req:
        # Upgrade and Connection are hop-by-hop: a proxy that tunnels sends its own
        for i in range(p.n_headers):
            h = &p.headers[i]
            if h.kind == H_UPGRADE:
                putb(b"Upgrade: ")
                put(head + h.value_off, h.value_len)
                putb(b"\r\nConnection: upgrade\r\n")
                break
    # framing: re-framed, never the client's verbatim
    ex.req_chunked = False
    if ex.fixed_body is not None:
        putb(b"Content-Length: ")
        put_int(PyBytes_GET_SIZE(ex.fixed_body), 10)
        putb(b"\r\n")
    elif p.body_kind == BODY_LENGTH:
        putb(b"Content-Length: ")
        put_int(p.content_length, 10)
        putb(b"\r\n")
    elif p.body_kind == BODY_CHUNKED:
        putb(b"Transfer-Encoding: chunked\r\n")
        ex.req_chunked = True
    # forwarding fields (Kong: X-Forwarded-For appended; the others set by the proxy)
    putb(b"X-Forwarded-For: ")
    if xff >= 0:
        for i in range(xff, p.n_headers):
            h = &p.headers[i]
            if h.kind == H_X_FORWARDED_FOR and not (h.flags & HF_HOP):
                put(head + h.value_off, h.value_len)
                putb(b", ")
    putb(ex.client_ip_b)
    putb(b"\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: " if ex.tls else
         b"\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: ")
    if p.host_index >= 0:
        h = &p.headers[p.host_index]
        put(head + h.value_off, host_len(head + h.value_off, h.value_len))
    putb(b"\r\nX-Forwarded-Port: ")
    put_int(ex.local_port, 10)
    putb(b"\r\nX-Forwarded-Path: ")
    if ex.path_n:
        put(head + ex.path_off, ex.path_n)
    else:
        putb(b"/")
    if m.prefix is not None:
        putb(b"\r\nX-Forwarded-Prefix: ")
        putb(m.prefix)
    putb(b"\r\nX-Real-IP: ")
    putb(ex.real_ip_b)   # the client behind trusted proxies (Kong: $remote_addr)
    putb(b"\r\nVia: 1.1 fastgw\r\n")
    if rid_up:
        putb(b"X-Kong-Request-Id: ")
        putb(ex_request_id(ex))
        putb(b"\r\n")
    # Host last: when it is the target's "host[:port]" (Kong, preserve_host false) it is
    # only known after the balancer picked, so attach() appends it with the final CRLF.
    host_o = ops.get(b"host") if ops is not None else None
    ex.host_pending = False
    if host_o:
        putb(b"Host: ")
        putb(_to_bytes(host_o[0]))
        putb(b"\r\n\r\n")
    elif m.preserve_host and p.host_index >= 0:
        h = &p.headers[p.host_index]
        putb(b"Host: ")
        put(head + h.value_off, h.value_len)
        putb(b"\r\n\r\n")
    elif ex.route.service.host_header is not None:
        putb(b"Host: ")
        putb(ex.route.service.host_header)
        putb(b"\r\n\r\n")
    else:
        ex.host_pending = True
    return take()


cdef void exchange_connect(Exchange ex):
    cdef ServiceRT svc = ex.route.service
    cdef ProxyCore core = ex.core
    cdef Pool pool
    cdef Upstream up
    cdef Balancer balancer = ex.current_balancer()
    cdef Target t = balancer.pick(ex.hash_value if ex.has_hash else 0,
                                  <Target>ex.target if ex.tries > 0 else None)
    if ex.trace is not None:
        ex.trace.event("balancer", algorithm=type(balancer).__name__,
                       hash_on=getattr(svc.hash_spec, "hash_on", None),
                       hash=ex.hash_value if ex.has_hash else None,
                       target=t.name if t is not None else None,
                       healthy=t.healthy if t is not None else None, attempt=ex.tries)
    if t is None:
        if svc.no_peer is not None and ex._upstream_override is None:
            # a hostname service whose name resolves to nothing (fastgw.dns: Kong's 503/500)
            ex.send_error(svc.no_peer[0], svc.no_peer[1], ex.rq != RQ_COMPLETE)
        else:
            ex.send_error(503, MSG_NO_PEER, ex.rq != RQ_COMPLETE)
        return
    if not ex.to(KEEP, RP_UPSTREAM):
        return
    ex.target = t
    pool = <Pool>t.pool
    up = pool.take(core.now)
    if up is not None:
        exchange_attach(ex, up)
        return
    if pool.handler is not None:
        # in-process target: the same Upstream protocol over a memory transport (the Gateway
        # hands the connector in), so timeouts, retries, health and plugins apply unchanged
        if core.inprocess_connect is None:
            log.error("in-process target %s but no in-process connector", pool.host)
            ex.send_error(500, MSG_INTERNAL, ex.rq != RQ_COMPLETE)
            return
        up = <Upstream>pool()
        core.inprocess_connect(pool.handler, up, core.loop)
        ex.attach(up)
        return
    ex.up_deadline = core.now + svc.connect_timeout
    if pool.ssl is None:
        coro = core.loop.create_connection(pool, pool.host, pool.port)
    else:
        # TLS to the upstream (service protocol https); SNI is the target host
        coro = core.loop.create_connection(pool, pool.host, pool.port, ssl=pool.ssl,
                                           server_hostname=pool.hostname)
    ex.connect_task = core.loop.create_task(coro)
    ex.connect_task.add_done_callback(ex._connected)


cdef void exchange_attach(Exchange ex, Upstream up):
    cdef bytes req = ex.req_head
    ex.up = up
    up.ex = ex
    up.state = US_HEAD
    up.got_bytes = False
    up.requests += 1
    up.parser.reset()
    up.parser.request_method = ex.req.method
    if ex.host_pending:
        req = req + up.pool.host_line
    if ex.fixed_body is not None:
        req = req + ex.fixed_body
    up.transport.write(req)
    ex.t_sent = mono_ms()
    if ex.trace is not None:
        ex.trace.event("sent", target=ex.target.name, reused=up.reused,
                       proxy_ms=ex.t_sent - ex.t0)
    if ex.spill is not None:
        ex.spill.seek(0)          # from the start (a retry sends it again)
        ex.pump_spill()
    if ex.ctx is not None or ex.nat.timed:
        ex.t_up = ex.core.loop.time()
    ex.current_balancer().on_start(<Target>ex.target)
    ex.up_deadline = ex.core.now + ex.route.service.read_timeout
    if ex.rq == RQ_HEAD:
        # the body waits in the carrier's buffer: stream it now
        if ex.to(RQ_STREAMING, KEEP):
            ex.sink.wake()


cdef void exchange_forward_data(Exchange ex, char* data, Py_ssize_t n):
    cdef Upstream up = ex.up
    if up is None:
        return
    ex.body_sent += n
    if (ex.max_body >= 0 and ex.body_sent > ex.max_body) or \
            (ex.core.limits.client_max_body_size > 0
             and ex.body_sent > ex.core.limits.client_max_body_size):
        # request-size-limiting / client_max_body_size on a streamed (chunked) body
        ex.detach(False)
        ex.send_error(413, MSG_BODY_TOO_LARGE, True)
        return
    if ex.req_chunked:
        up.transport.write(chunk_frame(data, n))
    else:
        up.transport.write(PyBytes_FromStringAndSize(data, n))
    ex.up_deadline = ex.core.now + ex.route.service.write_timeout


cdef void exchange_upstream_failed(Exchange ex, Upstream up, int kind):
    cdef ServiceRT svc = ex.route.service
    cdef bint reused = up is not None and up.reused and not up.got_bytes
    if up is not None:
        if up is ex.up:
            ex.detach(False)
        else:
            up.release(False)
    if svc.health is not None and ex.target is not None:
        try:
            if kind == FAIL_CONNECT_TIMEOUT or kind == FAIL_READ_TIMEOUT:
                svc.health.report_timeout(ex.target, ex.core.now)
            elif kind != FAIL_BAD_RESPONSE:
                svc.health.report_tcp_failure(ex.target, ex.core.now)
            else:
                svc.health.report_http_status(ex.target, 502, ex.core.now)
        except Exception:
            log.exception("passive health report failed")
    if ex.rp == RP_SENDING:
        # mid-response: the client must see the truncation, never a false "complete"
        ex.sink.abort(ex)
        return
    if ex.tries < svc.retries and (
            kind == FAIL_CONNECT or kind == FAIL_CONNECT_TIMEOUT
            or (kind == FAIL_RESET and reused and ex.idempotent and ex.replayable)):
        if ex.trace is not None:
            ex.trace.event("retry", attempt=ex.tries + 1, cause=str(ops_failure_cause(
                kind, ex.target, svc, ex.err_cause, 0)))
        ex.tries += 1
        ex.connect()
        return
    ex.err_cause = ops_failure_cause(kind, ex.target, svc, ex.err_cause, ex.tries)
    if ex.trace is not None:
        ex.trace.event("upstream_failed", cause=str(ex.err_cause))
    if kind == FAIL_CONNECT_TIMEOUT or kind == FAIL_READ_TIMEOUT:
        ex.send_error(504, MSG_TIMEOUT, ex.rq != RQ_COMPLETE)
    else:
        ex.send_error(502, MSG_BAD_GATEWAY, ex.rq != RQ_COMPLETE)


cdef void exchange_https_only(Exchange ex, const char* head, bytes host):
    cdef int code = ex.route.https_redirect
    cdef RequestParser p = ex.req
    if code == 426:
        body = orjson.dumps({"message": MSG_USE_HTTPS})
        ex.send_response(426, [(b"Content-Type", b"application/json; charset=utf-8"),
                               (b"Connection", b"Upgrade"),
                               (b"Upgrade", b"TLS/1.2, HTTP/1.1")], body,
                         ex.rq != RQ_COMPLETE)
        return
    hostname = host[:host_len(PyBytes_AS_STRING(host), PyBytes_GET_SIZE(host))]
    location = b"https://" + hostname + PyBytes_FromStringAndSize(
        head + ex.path_off, p.target_off + p.target_len - ex.path_off)
    ex.send_response(code, [(b"Location", location)], b"", ex.rq != RQ_COMPLETE)
