# Plugin phases around an Exchange: the Python chain (fastgw.plugins.chain, through the
# Context the Gateway's factory builds) and the compiled NativeChain (included by proxy.pyx).
#
# Rules:
# - A plugin failure is Kong's 500 {"message":"An unexpected error occurred"} plus a logged
#   traceback; in the log phase it is only logged.
# - Async phases resume through Exchange._access_done / _exit_done, which drop out when the
#   exchange ended meanwhile.


cdef void exchange_run_access(Exchange ex):
    chain = ex.route.chain
    if ex.trace is not None:
        chain = ex.core.tracer.chain_for(chain)   # a traced twin, never the shared one
    tok = REQUEST_ID.set(ex_request_id(ex))
    try:
        result = chain.run_access(ex.ctx)
        if result is not None and hasattr(result, "__await__"):
            fut = asyncio.ensure_future(result)   # the task keeps REQUEST_ID (its context)
            fut.add_done_callback(ex._access_done)
            return
    except Exception:
        ex.err_cause = "plugin access phase failed"   # logged by send_error, with the traceback
        ex.send_error(500, MSG_INTERNAL, ex.rq != RQ_COMPLETE)
        return
    finally:
        REQUEST_ID.reset(tok)
    ex.after_access(result)


cdef void exchange_after_access(Exchange ex, result):
    if result is not None:
        ex.send_plugin_response(result)
        return
    ctx = ex.ctx
    mbs = ctx.max_body_size
    ex.max_body = mbs if mbs is not None else -1
    if ex.fixed_body is not None and ex.max_body >= 0 and len(ex.fixed_body) > ex.max_body:
        ex.send_error(413, MSG_BODY_TOO_LARGE, True)
        return
    override = ctx.request.body_override
    if override is not None:
        ex.fixed_body = _to_bytes(override)
    ctx.proxy_latency = (ex.core.loop.time() - ex.t_up) * 1000.0
    if ex.route.service is None:
        # a route without a service: its plugins ran and none answered (kong/init.lua)
        ex.send_error(503, MSG_NO_SERVICE, ex.rq != RQ_COMPLETE)
        return
    try:
        ex.req_head = ex.build_head(PyBytes_AS_STRING(ex._head_copy), ex._plugin_match, ctx)
    except Exception:
        ex.err_cause = "building the upstream request failed"   # logged with the traceback
        ex.send_error(500, MSG_INTERNAL, True)
        return
    ex.proceed()


cdef void exchange_send_plugin_response(Exchange ex, result):
    # Kong runs header_filter (CORS, correlation-id, ...) on responses plugins make
    if ex.ctx is not None:
        tok = REQUEST_ID.set(ex_request_id(ex))
        try:
            final = ex.route.chain.run_exit(ex.ctx, result)
        except Exception:
            log.exception("plugin header_filter failed on an exit response")
            final = result
        finally:
            REQUEST_ID.reset(tok)
        if final is not None and hasattr(final, "__await__"):
            fut = asyncio.ensure_future(final)
            fut.add_done_callback(ex._exit_done)
            return
        result = final
    ex.write_plugin_response(result)


cdef void exchange_write_plugin_response(Exchange ex, result):
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
    if result.status == 500 and body == KONG_500:
        # a plugin failed (the chain logged its traceback with the request id); the body
        # stays the chain's, as the compiled chain answers the same failure
        log.error("500 %s: a plugin failed (traceback logged above) [request_id %s]",
                  MSG_INTERNAL, ex_request_id(ex).decode())
    ex.send_response(result.status, headers, body, ex.rq != RQ_COMPLETE)


cdef bint exchange_run_native(Exchange ex, const char* head, Py_ssize_t head_len):
    # the compiled plugin chain (fastgw._core.native): True when a plugin answered
    cdef NativeChain nat = ex.route.native
    cdef double t0 = 0.0
    cdef int status
    try:
        now = nat.wall_now()
    except Exception:
        log.exception("plugin clock failed")
        now = 0.0
    if nat.timed:
        t0 = ex.core.loop.time()
    status = nat.access(&ex.nat, head, ex.req, ex.query_off, ex.query_n, ex.client_ip_b, now)
    if ex.trace is not None:
        # the compiled chain runs as one step: no per-plugin entries
        ex.trace.event("plugins", compiled=True, answered=status if status else None)
    if status:
        ex.send_response(status, nat.exit_headers, nat.exit_body, ex.rq != RQ_COMPLETE)
        return True
    ex.nat_req = nat.req_lines
    ex.nat_resp = nat.resp_lines
    if ex.nat.timed:
        ex.nat.kong_ms = (ex.core.loop.time() - t0) * 1000.0
    return False


cdef void exchange_run_log(Exchange ex):
    ctx = ex.ctx
    try:
        now = ex.core.loop.time()
        ctx.bytes_in = ex.bytes_in
        ctx.bytes_out = ex.bytes_out
        ctx.upstream_status = ex.status
        ctx.tries = ex.tries
        ctx.request_latency = (now - ex.t_start) * 1000.0
        ctx.upstream_target = ex.target.name if ex.target is not None else None
        ctx.upstream_uri = ex.upstream_uri()
        if ctx.response is None:
            # an exit without header_filter plugins, or a gateway error (502/504): the log
            # phase still sees the status it was answered with
            ctx.set_response(ex.status, _NO_HEADERS, "exit")
        tok = REQUEST_ID.set(ex_request_id(ex))
        try:
            res = ex.route.chain.run_log(ctx)
            if res is not None and hasattr(res, "__await__"):
                asyncio.ensure_future(res)
        finally:
            REQUEST_ID.reset(tok)
    except Exception:
        log.exception("plugin log phase failed")


cdef void exchange_compute_hash(Exchange ex):
    # consistent hashing: the snapshot's hash_input reads the request through a view
    cdef ServiceRT svc = ex.route.service
    cdef bytes data
    try:
        data, cookie = svc.hash_input(_HashView(ex))
    except Exception:
        log.exception("hash input failed")
        data, cookie = None, None
    if data is not None:
        ex.hash_value = xxh64(<const unsigned char*>PyBytes_AS_STRING(data),
                              PyBytes_GET_SIZE(data), 0)
        ex.has_hash = True
    if cookie is not None:
        ex.set_cookie = _to_bytes(cookie)
