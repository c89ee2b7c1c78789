# Operating an Exchange: request ids, Kong's response headers, the access log, the error log's
# causes and request traces (included by proxy.pyx).
#
# Rules:
# - Requests that ask for nothing pay a few C field writes: the access record is formatted in C
#   (accesslog.pyx) only when a log is on, a trace is made only for a request carrying
#   X-Fastgw-Trace with a configured key, the real client address is resolved only for peers in
#   trusted_ips.
# - ops_end runs once per exchange, after the log phase (Exchange.end_log), so plugin log lines
#   keep the request id.


cdef bytes ex_request_id(Exchange ex):
    if ex.rid is None:
        ex.rid = new_request_id()
    return ex.rid


cdef void ops_begin(Exchange ex, const char* head, Py_ssize_t head_len):
    # the head was parsed: the clock and the fields the access log and X-Real-IP need
    cdef RequestParser p = ex.req
    cdef ProxyCore core = ex.core
    ex.t0 = mono_ms()
    if ex.peer_trusted:
        ex.real_ip_b = core.realip.resolve(ex.client_ip, HeadCopy(
            PyBytes_FromStringAndSize(head, head_len), p))
    if core.access_log is not None:
        ex.al_method = PyBytes_FromStringAndSize(head + p.start_off, p.method_len)
        ex.al_target = PyBytes_FromStringAndSize(head + p.target_off, p.target_len)
        if not core.access_log.json:   # combined logs them; the JSON record does not
            ex.al_ref = p.find_header(head, b"referer")
            ex.al_ua = p.find_header(head, b"user-agent")


cdef void ops_trace_check(Exchange ex, const char* head, Py_ssize_t head_len, bytes method,
                          bytes host, bytes path):
    # X-Fastgw-Trace: looked up in C; Python runs for traced requests only
    cdef RequestParser p = ex.req
    tk = p.find_header(head, b"x-fastgw-trace")
    if tk is None:
        return
    ex.strip_trace = True
    try:
        tr = ex.core.tracer.start(tk, method, host, path, HeadCopy(
            PyBytes_FromStringAndSize(head, head_len), p))
        if tr is not None:
            tr.request_id = ex_request_id(ex).decode()
        ex.trace = tr
    except Exception:
        log.exception("starting a request trace failed")


cdef void ops_put_kong_headers(Exchange ex, bint proxied):
    # Kong's `headers` (kong/runloop/handler.lua header_filter): latencies in ms
    cdef int mask = ex.core.headers
    if ex.trace is not None:
        putb(b"X-Fastgw-Trace: ")
        putb(ex.trace.header_value())
        putb(b"\r\n")
    if mask == 0:
        return
    if proxied:
        if mask & HDR_UPSTREAM_LATENCY and ex.t_sent > 0:
            putb(b"X-Kong-Upstream-Latency: ")
            put_int(<int64_t>(ex.t_resp - ex.t_sent), 10)
            putb(b"\r\n")
        if mask & HDR_PROXY_LATENCY and ex.t_sent > 0:
            putb(b"X-Kong-Proxy-Latency: ")
            put_int(<int64_t>(ex.t_sent - ex.t0), 10)
            putb(b"\r\n")
        if mask & HDR_UPSTREAM_STATUS and ex.up_status:
            putb(b"X-Kong-Upstream-Status: ")
            put_int(ex.up_status, 10)
            putb(b"\r\n")
        if mask & HDR_VIA:
            putb(b"Via: 1.1 fastgw\r\n")
    else:
        if mask & HDR_RESPONSE_LATENCY and ex.t0 > 0:
            putb(b"X-Kong-Response-Latency: ")
            put_int(<int64_t>(mono_ms() - ex.t0), 10)
            putb(b"\r\n")
        if mask & HDR_SERVER:
            putb(SERVER_LINE)
    if mask & HDR_REQUEST_ID:
        putb(b"X-Kong-Request-Id: ")
        putb(ex_request_id(ex))
        putb(b"\r\n")


cdef void ops_end(Exchange ex):
    # once per exchange: the dashboard's counters, the trace, the access record
    cdef AccessLog al = ex.core.access_log
    cdef double now
    if ex.t0 <= 0:
        return
    now = mono_ms()
    ex.core.traffic.observe(ex.status, now - ex.t0)
    if ex.trace is not None:
        ex.trace.event("done", status=ex.status, total_ms=now - ex.t0, bytes=ex.bytes_out)
        ex.core.tracer.finish(ex.trace)
        ex.trace = None
    if al is not None:
        route = ex.route
        consumer = None
        if ex.ctx is not None:
            c = getattr(ex.ctx, "consumer", None)
            if c is not None:
                consumer = getattr(c, "username", None) or getattr(c, "id", None)
        service = route.service if route is not None else None
        al.record(ex.real_ip_b, ex.al_method, ex.al_target, ex.status, ex.bytes_out,
                  route.name if route is not None else None,
                  service.name if service is not None else None,
                  ex.target.name if ex.target is not None else None, ex.up_status,
                  ex.t_sent - ex.t0 if ex.t_sent > 0 else -1.0,
                  ex.t_resp - ex.t_sent if ex.t_resp > 0 else -1.0,
                  now - ex.t0, ex_request_id(ex), consumer, ex.al_ref, ex.al_ua)
    ex.t0 = 0.0


cdef object ops_failure_cause(int kind, object target, ServiceRT svc, object exc, int tries):
    # the error log's cause line (nginx: "connect() failed (111: Connection refused) while
    # connecting to upstream", "upstream timed out (110) while reading response header")
    name = target.name if target is not None else "?"
    retried = f" (after {tries} retries)" if tries else ""
    if kind == FAIL_CONNECT:
        if exc is not None and type(exc).__name__.startswith("SSL"):
            return f"TLS handshake with {name} failed: {exc}{retried}"
        return f"connect to {name} failed: {exc}{retried}"
    if kind == FAIL_CONNECT_TIMEOUT:
        return f"connect to {name} timed out after {svc.connect_timeout * 1000:.0f} ms{retried}"
    if kind == FAIL_READ_TIMEOUT:
        return f"upstream {name} timed out after {svc.read_timeout * 1000:.0f} ms (read)"
    if kind == FAIL_RESET:
        return f"upstream {name} closed the connection before the response completed"
    return f"upstream {name} sent an invalid response"
