# Output assembly, status lines and read buffers (included by proxy.pyx).
#
# Rules:
# - One growable scratch buffer per process (`_out`): the event loop is single-threaded and
#   every head is turned into a bytes object before anything else can run.
# - Status lines are precomputed once ("HTTP/1.1 200 OK\r\n" for every code 100..599), never
#   encoded per response (uvicorn's STATUS_LINE table).
# - Read buffers are borrowed from a per-process pool while bytes are in flight and given back
#   when a connection is idle, so idle connections hold none (nginx frees an idle keep-alive
#   connection's buffers).

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


cdef inline int put_field(object name, object value) except -1:
    putb(_to_bytes(name))
    putb(b": ")
    putb(_to_bytes(value))
    return putb(b"\r\n")


cdef bytes chunk_frame(const char* data, Py_ssize_t n):
    _out.n = 0
    put_int(n, 16)
    putb(b"\r\n")
    put(data, n)
    putb(b"\r\n")
    return take()


cdef inline bytes _to_bytes(object v):
    if isinstance(v, bytes):
        return <bytes>v
    return str(v).encode("latin-1")


# -- status lines --------------------------------------------------------------------------------
# nginx's reason phrases where they differ from RFC 9110's (Kong answers through nginx)
cdef dict _NGINX_REASONS = {
    413: "Request Entity Too Large", 414: "Request-URI Too Long",
}

cdef list _STATUS_LINES = []    # index status - 100 -> b"HTTP/1.1 <code> <reason>\r\n"


cdef void _build_status_lines():
    from http import HTTPStatus
    cdef int code
    for code in range(100, 600):
        try:
            reason = _NGINX_REASONS.get(code) or HTTPStatus(code).phrase
        except ValueError:
            reason = "Unknown"
        _STATUS_LINES.append(f"HTTP/1.1 {code} {reason}\r\n".encode("latin-1"))


_build_status_lines()


cdef inline bytes status_line(int status):
    if 100 <= status < 600:
        return <bytes>_STATUS_LINES[status - 100]
    return b"HTTP/1.1 500 Internal Server Error\r\n"


cdef inline bytes status_reason(int status):
    # the reason phrase alone (an HTTP/2 carrier has none; HTTP/1.1 writes the whole line)
    cdef bytes line = status_line(status)
    return line[13:PyBytes_GET_SIZE(line) - 2]


# -- host:port spans (the C twin of fastgw._core.hostport for bytes on the request path) ---------

cdef inline Py_ssize_t host_len(const char* v, Py_ssize_t n):
    # the host part of a Host value: without ":port" (IPv6 literals keep their brackets)
    cdef Py_ssize_t i = n - 1
    while i >= 0:
        if v[i] == b':':
            return i
        if v[i] == b']' or v[i] < b'0' or v[i] > b'9':
            return n
        i -= 1
    return n


# -- pooled read buffers -------------------------------------------------------------------------

cdef enum:
    # Blocks kept for reuse after their connections went idle (64 x 64 KiB = 4 MiB at most);
    # more are unmapped, so RSS returns towards baseline after a burst. nginx keeps none: it
    # frees an idle keep-alive connection's buffers.
    RBUF_POOL_MAX = 64

cdef char* _rbuf_free[RBUF_POOL_MAX]
cdef int _rbuf_nfree = 0


cdef inline int rbuf_borrow(RBuf* b) except -1:
    global _rbuf_nfree
    cdef void* mem
    if b.p != NULL:
        return 0
    if _rbuf_nfree > 0:
        _rbuf_nfree -= 1
        b.p = _rbuf_free[_rbuf_nfree]
    else:
        # mmap, not malloc: an unmapped block leaves RSS at once (heap blocks may not)
        mem = mmap(NULL, CONN_BUFFER_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0)
        if mem == MAP_FAILED:
            raise MemoryError()
        b.p = <char*>mem
    b.rpos = b.wpos = 0
    return 0


cdef inline void rbuf_give_back(RBuf* b) noexcept:
    # only when nothing unconsumed is in it
    global _rbuf_nfree
    if b.p == NULL:
        return
    if _rbuf_nfree < RBUF_POOL_MAX:
        _rbuf_free[_rbuf_nfree] = b.p
        _rbuf_nfree += 1
    else:
        munmap(b.p, CONN_BUFFER_SIZE)
    b.p = NULL
    b.rpos = b.wpos = 0


cdef object rbuf_view(RBuf* b):
    # the free tail for the next read; compacted when little room is left behind unconsumed
    # bytes (a partial head, a pipelined request, body bytes waiting for the upstream)
    rbuf_borrow(b)
    if b.rpos == b.wpos:
        b.rpos = b.wpos = 0
    elif b.rpos > 0 and CONN_BUFFER_SIZE - b.wpos < READ_PAUSE_FREE:
        memmove(b.p, b.p + b.rpos, b.wpos - b.rpos)
        b.wpos -= b.rpos
        b.rpos = 0
    return PyMemoryView_FromMemory(b.p + b.wpos, CONN_BUFFER_SIZE - b.wpos, PyBUF_WRITE)


def rbuf_pool_stats() -> dict:
    """Read buffers parked in the pool (tests, memory figures)."""
    return {"free": _rbuf_nfree, "block_size": CONN_BUFFER_SIZE}
