# cython: language_level=3
# HTTP/2 server connections (RFC 9113, HPACK RFC 7541) over libnghttp2, sans-IO.
#
# Rules:
# - Bytes in (`receive`), events out (plain tuples), bytes to send (`data_to_send`); no
#   sockets, no clocks. The connection protocol that drives it (and the Exchange each stream
#   feeds) lives elsewhere.
# - Framing, HPACK, stream states, flow control and RFC 9113 8.2/8.3 message checks are
#   nghttp2's (it validates pseudo-headers, forbidden connection-specific fields, content-length
#   against DATA). This module adds the limits below and turns callbacks into events.
# - No Python exception crosses a C callback: it is stored, the callback returns
#   NGHTTP2_ERR_CALLBACK_FAILURE, and receive() re-raises it.
# - Protections, each a named limit with its precedent: concurrent streams, header list size,
#   SETTINGS entries (CVE-2019-9515), queued PING/SETTINGS ACKs (CVE-2019-9512), stream reset
#   rate (rapid reset, CVE-2023-44487), CONTINUATION frames per header block (CVE-2024-27983
#   family); flow-control window violations are nghttp2's FLOW_CONTROL_ERROR.
cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdint cimport int32_t, uint8_t, uint32_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

from fastgw._core.nghttp2 cimport *

# -- limits ----------------------------------------------------------------------------------
#: SETTINGS_MAX_CONCURRENT_STREAMS advertised (nginx http2_max_concurrent_streams 128;
#: h2o 100; Envoy 100 for downstream since 1.14's hardening)
MAX_CONCURRENT_STREAMS = 128
#: SETTINGS_INITIAL_WINDOW_SIZE advertised: RFC 9113 6.9.2's default (nginx: 65536)
INITIAL_WINDOW_SIZE = 65535
#: SETTINGS_MAX_HEADER_LIST_SIZE advertised and enforced by nghttp2 (nginx: 4 x 8 KiB
#: large_client_header_buffers = 32 KiB; Envoy max_request_headers_kb 60)
MAX_HEADER_LIST_SIZE = 32768
#: entries in one SETTINGS frame before it is a flood (nghttp2's default 32, CVE-2019-9515)
MAX_SETTINGS = 32
#: queued PING/SETTINGS ACKs before the peer is cut off (nghttp2 1000, CVE-2019-9512)
MAX_OUTBOUND_ACK = 1000
#: stream resets a client may cause: a burst, then per second (nghttp2 1.57's defaults for
#: rapid reset, CVE-2023-44487; nginx counts 2x concurrent streams per read)
RESET_BURST = 1000
RESET_RATE = 33
#: CONTINUATION frames per header block (nghttp2 1.61's default 8, CVE-2024-27983 family;
#: nginx ends the block at its header buffer size)
MAX_CONTINUATIONS = 8

# -- events (tuples: the kind first) ---------------------------------------------------------
EV_REQUEST = 1      # (EV_REQUEST, stream_id, [(name, value), ...], end_stream)
EV_DATA = 2         # (EV_DATA, stream_id, bytes)
EV_END_STREAM = 3   # (EV_END_STREAM, stream_id): the client finished its request
EV_TRAILERS = 4     # (EV_TRAILERS, stream_id, [(name, value), ...]) (ends the stream too)
EV_RESET = 5        # (EV_RESET, stream_id, error_code): RST_STREAM from the client
EV_CLOSED = 6       # (EV_CLOSED, stream_id, error_code): the stream is gone, either side
EV_GOAWAY = 7       # (EV_GOAWAY, last_stream_id, error_code)
EV_HEADERS_TOO_LARGE = 8  # (EV_HEADERS_TOO_LARGE, stream_id): over max_header_list_size;
                          # the driver answers 431 (as the HTTP/1.1 parser does)

#: RFC 9113 6.5.2: a field's size is its name and value lengths plus 32
FIELD_OVERHEAD = 32

NO_ERROR = NGHTTP2_NO_ERROR
PROTOCOL_ERROR = NGHTTP2_PROTOCOL_ERROR
INTERNAL_ERROR = NGHTTP2_INTERNAL_ERROR
FLOW_CONTROL_ERROR = NGHTTP2_FLOW_CONTROL_ERROR
REFUSED_STREAM = NGHTTP2_REFUSED_STREAM
CANCEL = NGHTTP2_CANCEL
ENHANCE_YOUR_CALM = NGHTTP2_ENHANCE_YOUR_CALM


class H2Error(Exception):
    """The connection cannot go on (bad preface, flood, library error): send what
    data_to_send() still has (a GOAWAY) and close."""

    def __init__(self, int code):
        self.code = code
        super().__init__(nghttp2_strerror(code).decode())


cdef inline H2Connection _conn(void *user_data):
    return <H2Connection>user_data


cdef int _fail(H2Connection c, BaseException exc) noexcept:
    if c.error is None:
        c.error = exc
    return NGHTTP2_ERR_CALLBACK_FAILURE


cdef int _on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame,
                           void *user_data) noexcept with gil:
    cdef H2Connection c = _conn(user_data)
    try:
        if frame.hd.type == NGHTTP2_HEADERS:
            c.heads[frame.hd.stream_id] = []
        return 0
    except BaseException as exc:
        return _fail(c, exc)


cdef int _on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                    size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                    void *user_data) noexcept with gil:
    cdef H2Connection c = _conn(user_data)
    cdef int32_t sid = frame.hd.stream_id
    cdef Py_ssize_t size
    try:
        lst = c.heads.get(sid)
        if lst is not None:
            # nghttp2 advertises SETTINGS_MAX_HEADER_LIST_SIZE but does not enforce it on
            # what it receives: counted here, the rest of the block is dropped
            size = <Py_ssize_t>c.head_sizes.get(sid, 0) + <Py_ssize_t>(namelen + valuelen) \
                + FIELD_OVERHEAD
            c.head_sizes[sid] = size
            if size > c.max_header_list:
                c.heads[sid] = None
                return 0
            (<list>lst).append((PyBytes_FromStringAndSize(<const char*>name, namelen),
                                PyBytes_FromStringAndSize(<const char*>value, valuelen)))
        return 0
    except BaseException as exc:
        return _fail(c, exc)


cdef int _on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame,
                        void *user_data) noexcept with gil:
    cdef H2Connection c = _conn(user_data)
    cdef int32_t sid = frame.hd.stream_id
    cdef bint end = (frame.hd.flags & NGHTTP2_FLAG_END_STREAM) != 0
    try:
        if frame.hd.type == NGHTTP2_HEADERS:
            fields = c.heads.pop(sid, [])
            c.head_sizes.pop(sid, None)
            if fields is None:
                c.events.append((EV_HEADERS_TOO_LARGE, sid))
            elif frame.headers.cat == NGHTTP2_HCAT_REQUEST:
                c.events.append((EV_REQUEST, sid, fields, end))
            else:
                c.events.append((EV_TRAILERS, sid, fields))
        elif frame.hd.type == NGHTTP2_DATA:
            if end:
                c.events.append((EV_END_STREAM, sid))
        elif frame.hd.type == NGHTTP2_RST_STREAM:
            c.events.append((EV_RESET, sid, frame.rst_stream.error_code))
        elif frame.hd.type == NGHTTP2_GOAWAY:
            c.events.append((EV_GOAWAY, frame.goaway.last_stream_id,
                             frame.goaway.error_code))
        return 0
    except BaseException as exc:
        return _fail(c, exc)


cdef int _on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                        const uint8_t *data, size_t length, void *user_data) noexcept with gil:
    cdef H2Connection c = _conn(user_data)
    try:
        c.events.append((EV_DATA, stream_id,
                         PyBytes_FromStringAndSize(<const char*>data, length)))
        return 0
    except BaseException as exc:
        return _fail(c, exc)


cdef int _on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                          void *user_data) noexcept with gil:
    cdef H2Connection c = _conn(user_data)
    try:
        c.heads.pop(stream_id, None)
        c.head_sizes.pop(stream_id, None)
        c.out.pop(stream_id, None)
        c.events.append((EV_CLOSED, stream_id, error_code))
        return 0
    except BaseException as exc:
        return _fail(c, exc)


cdef ssize_t _read_body(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
                        size_t length, uint32_t *data_flags, nghttp2_data_source *source,
                        void *user_data) noexcept with gil:
    # nghttp2 asks for up to `length` bytes of the stream's body (flow control allowing)
    cdef H2Connection c = _conn(user_data)
    cdef _OutStream st
    cdef size_t n = 0, take, avail
    cdef bytes chunk
    try:
        st = c.out.get(stream_id)
        if st is None:
            data_flags[0] |= NGHTTP2_DATA_FLAG_EOF
            return 0
        while st.chunks and n < length:
            chunk = <bytes>st.chunks[0]
            avail = <size_t>(PyBytes_GET_SIZE(chunk) - st.offset)
            take = avail if avail <= length - n else length - n
            memcpy(buf + n, PyBytes_AS_STRING(chunk) + st.offset, take)
            n += take
            if take == avail:
                st.chunks.pop(0)
                st.offset = 0
            else:
                st.offset += <Py_ssize_t>take
        if not st.chunks:
            if st.ended:
                data_flags[0] |= NGHTTP2_DATA_FLAG_EOF
                if st.trailers is not None:
                    # RFC 9113 8.1: trailers end the stream, not the last DATA frame
                    data_flags[0] |= NGHTTP2_DATA_FLAG_NO_END_STREAM
                    if _submit_fields(c.session, stream_id, st.trailers, True) != 0:
                        return NGHTTP2_ERR_CALLBACK_FAILURE
            elif n == 0:
                st.deferred = True
                return NGHTTP2_ERR_DEFERRED
        return <ssize_t>n
    except BaseException as exc:
        return _fail(c, exc)


cdef int _submit_fields(nghttp2_session *session, int32_t stream_id, list fields,
                        bint trailers, nghttp2_data_provider *prd=NULL) except? -1:
    # nghttp2 copies names and values at submit time (no NO_COPY flags): the bytes only
    # need to live through this call
    cdef Py_ssize_t n = len(fields), i
    cdef nghttp2_nv *nva = <nghttp2_nv*>malloc(sizeof(nghttp2_nv) * (n if n else 1))
    cdef bytes name, value
    cdef int rv
    if nva == NULL:
        raise MemoryError()
    try:
        for i in range(n):
            name, value = fields[i]
            nva[i].name = <uint8_t*>PyBytes_AS_STRING(name)
            nva[i].namelen = <size_t>PyBytes_GET_SIZE(name)
            nva[i].value = <uint8_t*>PyBytes_AS_STRING(value)
            nva[i].valuelen = <size_t>PyBytes_GET_SIZE(value)
            nva[i].flags = NGHTTP2_NV_FLAG_NONE
        if trailers:
            rv = nghttp2_submit_trailer(session, stream_id, nva, <size_t>n)
        else:
            rv = nghttp2_submit_response(session, stream_id, nva, <size_t>n, prd)
    finally:
        free(nva)
    return rv


@cython.final
cdef class _OutStream:
    def __cinit__(self):
        self.chunks = []
        self.offset = 0
        self.ended = False
        self.trailers = None
        self.deferred = False


@cython.final
cdef class H2Connection:
    """One server-side HTTP/2 connection. Starts by queueing the server's SETTINGS."""

    def __cinit__(self, *, int max_concurrent_streams=MAX_CONCURRENT_STREAMS,
                  int initial_window_size=INITIAL_WINDOW_SIZE,
                  int max_header_list_size=MAX_HEADER_LIST_SIZE,
                  bint manual_flow_control=False):
        cdef nghttp2_session_callbacks *cbs = NULL
        cdef nghttp2_option *opt = NULL
        cdef nghttp2_settings_entry iv[4]
        cdef int rv
        self.session = NULL
        self.events = []
        self.heads = {}
        self.head_sizes = {}
        self.max_header_list = max_header_list_size
        self.out = {}
        self.error = None
        self.manual_flow = manual_flow_control
        if nghttp2_session_callbacks_new(&cbs) != 0 or nghttp2_option_new(&opt) != 0:
            if cbs != NULL:
                nghttp2_session_callbacks_del(cbs)
            raise MemoryError()
        nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, _on_begin_headers)
        nghttp2_session_callbacks_set_on_header_callback(cbs, _on_header)
        nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, _on_frame_recv)
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, _on_data_chunk)
        nghttp2_session_callbacks_set_on_stream_close_callback(cbs, _on_stream_close)
        nghttp2_option_set_no_auto_window_update(opt, manual_flow_control)
        nghttp2_option_set_max_settings(opt, MAX_SETTINGS)
        nghttp2_option_set_max_outbound_ack(opt, MAX_OUTBOUND_ACK)
        nghttp2_option_set_stream_reset_rate_limit(opt, RESET_BURST, RESET_RATE)
        nghttp2_option_set_max_continuations(opt, MAX_CONTINUATIONS)
        # the session keeps a borrowed pointer to self: self owns the session and deletes
        # it in __dealloc__, so the pointer never outlives the object
        rv = nghttp2_session_server_new2(&self.session, cbs, <void*>self, opt)
        nghttp2_session_callbacks_del(cbs)
        nghttp2_option_del(opt)
        if rv != 0:
            raise H2Error(rv)
        iv[0].settings_id = NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS
        iv[0].value = <uint32_t>max_concurrent_streams
        iv[1].settings_id = NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE
        iv[1].value = <uint32_t>initial_window_size
        iv[2].settings_id = NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE
        iv[2].value = <uint32_t>max_header_list_size
        iv[3].settings_id = NGHTTP2_SETTINGS_ENABLE_PUSH   # RFC 9113 6.5.2: servers send 0
        iv[3].value = 0
        rv = nghttp2_submit_settings(self.session, NGHTTP2_FLAG_NONE, iv, 4)
        if rv != 0:
            raise H2Error(rv)

    def __dealloc__(self):
        if self.session != NULL:
            nghttp2_session_del(self.session)
            self.session = NULL

    def receive(self, data) -> list:
        """Feed bytes from the client; returns the events they completed (see EV_*)."""
        cdef const unsigned char[:] view = data
        cdef ssize_t rv
        self.events = []
        rv = nghttp2_session_mem_recv(self.session, &view[0] if len(view) else NULL,
                                      <size_t>len(view))
        if self.error is not None:
            exc, self.error = self.error, None
            raise exc
        if rv < 0:
            raise H2Error(<int>rv)
        return self.events

    def data_to_send(self) -> bytes:
        """Every frame nghttp2 has ready (SETTINGS, ACKs, responses, WINDOW_UPDATEs...)."""
        cdef const uint8_t *p
        cdef ssize_t n
        out = []
        while True:
            n = nghttp2_session_mem_send(self.session, &p)
            if self.error is not None:
                exc, self.error = self.error, None
                raise exc
            if n < 0:
                raise H2Error(<int>n)
            if n == 0:
                break
            out.append(PyBytes_FromStringAndSize(<const char*>p, n))
        return b"".join(out)

    cdef int _submit_response(self, int stream_id, int status, list headers,
                              bint end_stream) except -1:
        cdef nghttp2_data_provider prd
        cdef int rv
        fields = [(b":status", str(status).encode())]
        fields.extend(headers)
        if end_stream:
            rv = _submit_fields(self.session, stream_id, fields, False, NULL)
        else:
            self.out[stream_id] = _OutStream()
            prd.source.ptr = NULL
            prd.read_callback = _read_body
            rv = _submit_fields(self.session, stream_id, fields, False, &prd)
        if rv != 0:
            self.out.pop(stream_id, None)
            raise H2Error(rv)
        return 0

    def send_response(self, int stream_id, int status, list headers, bint end_stream=False):
        """Response head (`headers`: [(lowercase name, value)], no pseudo-headers)."""
        self._submit_response(stream_id, status, headers, end_stream)

    def send_data(self, int stream_id, bytes data, bint end_stream=False):
        """Queue body bytes; they leave as the peer's flow-control window allows."""
        cdef _OutStream st = self.out.get(stream_id)
        if st is None or st.ended:
            raise ValueError(f"stream {stream_id} has no open response body")
        if data:
            st.chunks.append(data)
        st.ended = end_stream
        if st.deferred:
            st.deferred = False
            nghttp2_session_resume_data(self.session, stream_id)

    def send_trailers(self, int stream_id, list headers):
        """End the body with trailer fields (gRPC's grpc-status and grpc-message)."""
        cdef _OutStream st = self.out.get(stream_id)
        if st is None or st.ended:
            raise ValueError(f"stream {stream_id} has no open response body")
        st.trailers = headers
        st.ended = True
        if st.deferred:
            st.deferred = False
            nghttp2_session_resume_data(self.session, stream_id)

    def reset(self, int stream_id, int error_code=NGHTTP2_CANCEL):
        cdef int rv = nghttp2_submit_rst_stream(self.session, NGHTTP2_FLAG_NONE, stream_id,
                                                <uint32_t>error_code)
        if rv != 0:
            raise H2Error(rv)

    def goaway(self, int error_code=NGHTTP2_NO_ERROR):
        """GOAWAY naming the last stream processed (RFC 9113 6.8)."""
        cdef int rv = nghttp2_submit_goaway(
            self.session, NGHTTP2_FLAG_NONE,
            nghttp2_session_get_last_proc_stream_id(self.session), <uint32_t>error_code,
            NULL, 0)
        if rv != 0:
            raise H2Error(rv)

    def consume(self, int stream_id, Py_ssize_t n):
        """Manual flow control: the caller processed `n` body bytes of the stream; nghttp2
        reopens the windows (WINDOW_UPDATE) by that much."""
        cdef int rv
        if not self.manual_flow:
            raise ValueError("consume() needs manual_flow_control=True")
        rv = nghttp2_session_consume(self.session, stream_id, <size_t>n)
        if rv != 0:
            raise H2Error(rv)

    @property
    def want_read(self) -> bool:
        return nghttp2_session_want_read(self.session) != 0

    @property
    def want_write(self) -> bool:
        return nghttp2_session_want_write(self.session) != 0
