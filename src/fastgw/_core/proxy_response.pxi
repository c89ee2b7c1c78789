# The response side of an Exchange: the upstream's head and body, re-framed for the client
# through the Sink (included by proxy.pyx).
#
# Rules:
# - The upstream's hop-by-hop fields are dropped (RFC 9110 7.6.1) and its framing is replaced:
#   the Sink frames the body for its protocol (HTTP/1.1: Content-Length, chunked, or close).
# - Date is added when the upstream sent none (RFC 9110 6.6.1; nginx does the same).
# - A body filter may change the length: the body then goes out with unknown length.


cdef void exchange_on_response_head(Exchange ex, Upstream up):
    cdef ResponseParser rp = up.parser
    cdef RequestParser p = ex.req
    cdef const char* head = up.rb.p + up.rb.rpos
    cdef Header* h
    cdef int i
    cdef dict ops = None
    cdef bint has_date = False
    cdef bint unknown_length
    cdef bint reframe
    cdef Sink sink = ex.sink
    ex.status = rp.status
    ex.up_status = rp.status
    ex.t_resp = mono_ms()
    if ex.trace is not None:
        ex.trace.event("response_head", status=rp.status, upstream_ms=ex.t_resp - ex.t_sent)
    ex.up_deadline = ex.core.now + ex.route.service.read_timeout
    svc = ex.route.service
    if svc.health is not None:
        try:
            svc.health.report_http_status(ex.target, rp.status, ex.core.now)
        except Exception:
            log.exception("passive health report failed")
    status_o = None
    if ex.nat.active:
        ex.nat.code = rp.status
        if ex.nat.timed:
            ex.nat.up_ms = (ex.core.loop.time() - ex.t_up) * 1000.0
    if ex.ctx is not None:
        ex.ctx.set_response(rp.status, HeadCopy(
            PyBytes_FromStringAndSize(head, rp.head_len), rp))
        tok = REQUEST_ID.set(ex_request_id(ex))
        try:
            hf = ex.route.chain.run_header_filter(ex.ctx)
        except Exception:
            log.exception("plugin header_filter failed")
            hf = None
        finally:
            REQUEST_ID.reset(tok)
        if hf is not None:
            if hasattr(hf, "__await__"):
                # the head is streamed now: an async header_filter cannot hold it back
                log.error("async header_filter phases are not supported; ignored")
                asyncio.ensure_future(hf)
            else:
                # a failed header_filter answers instead of the upstream (Kong: 500)
                ex.detach(False)
                ex.send_plugin_response(hf)
                return
        ex.ctx.upstream_latency = (ex.core.loop.time() - ex.t_up) * 1000.0
        resp = ex.ctx.response
        ops = resp.header_ops or None
        status_o = resp.status_override
    if not ex.to(KEEP, RP_SENDING):
        return
    # a body filter may change the length: re-framed, unless every body filter only
    # observes the body (proxy-cache): then the upstream's Content-Length stands
    reframe = ex.body_filter and not ex.route.chain.body_filter_keeps_length
    unknown_length = rp.body_kind == BODY_CHUNKED or rp.body_kind == BODY_UNTIL_CLOSE \
        or (reframe and rp.body_kind == BODY_LENGTH)
    if ex.rq != RQ_COMPLETE and p.expect_continue:
        # the client may still be waiting to send: the connection cannot be reused
        ex.must_close = True
    if status_o is not None:
        sink.begin_head(ex, status_o, NULL, 0)
    else:
        sink.begin_head(ex, rp.status, head + rp.reason_off, rp.reason_len)
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
        if ex.nat_resp is not None and ex.route.native.strip_response_header(
                head + h.name_off, h.name_len):
            continue
        put_header_line(head, h)
    if ex.nat_resp is not None:
        putb(ex.nat_resp)   # rate-limiting's headers (its header_filter's ops)
    if ops is not None:
        case = ex.ctx.response.header_case or {}
        for name, values in ops.items():
            if values is None:
                continue
            name = case.get(name, name)
            for v in values:
                put_field(name, v)
    if not has_date:
        putb(ex.core.date_header)
    if ex.set_cookie is not None:
        putb(b"Set-Cookie: ")
        putb(ex.set_cookie)
        putb(b"\r\n")
    if rp.body_kind == BODY_LENGTH and not reframe:
        putb(b"Content-Length: ")
        put_int(rp.content_length, 10)
        putb(b"\r\n")
    ops_put_kong_headers(ex, True)
    sink.end_head(ex, unknown_length)


cdef void exchange_on_upgrade(Exchange ex, Upstream up, Py_ssize_t head_len):
    """101 Switching Protocols: forward the head, then both connections become a tunnel
    (RFC 9110 7.8; nginx proxy_pass with Upgrade/Connection set). Neither goes back to a
    pool; the tunnel ends when either side closes."""
    cdef ResponseParser rp = up.parser
    cdef const char* head = up.rb.p + up.rb.rpos
    cdef Header* h
    cdef int i
    if not ex.to(RQ_TUNNEL, RP_TUNNEL):
        return
    ex.status = 101
    ex.keep_alive = False
    ex.sink.begin_head(ex, 101, head + rp.reason_off, rp.reason_len)
    for i in range(rp.n_headers):
        h = &rp.headers[i]
        if h.kind == H_UPGRADE:
            putb(b"Upgrade: ")
            put(head + h.value_off, h.value_len)
            putb(b"\r\n")
        elif not (h.flags & HF_HOP):
            put_header_line(head, h)
    ops_put_kong_headers(ex, True)
    ex.sink.start_tunnel(ex)
    up.rb.rpos += head_len
    up.state = US_TUNNEL
    # bytes that came right behind the heads belong to the new protocol
    up.process()
    ex.sink.wake()


cdef void exchange_filtered_data(Exchange ex, bytes chunk, bint eof):
    cdef bytes out
    try:
        out = ex.route.chain.run_body_filter(ex.ctx, chunk, eof)
    except Exception:
        log.exception("plugin body_filter failed")
        out = chunk
    if not out:
        return
    ex.sink.send_body(ex, PyBytes_AS_STRING(out), PyBytes_GET_SIZE(out))


cdef void exchange_on_response_done(Exchange ex, Upstream up):
    if ex.body_filter:
        ex.filtered_data(b"", True)
    ex.sink.end_body(ex)
    if not ex.to(KEEP, RP_COMPLETE):
        return
    # reusable only when both messages completed cleanly on that connection (a spilled body
    # still being pumped was not completely sent)
    ex.detach(up.parser.keep_alive and ex.rq == RQ_COMPLETE and ex.spill is None
              and up.rb.rpos == up.rb.wpos)
    ex.finish()
