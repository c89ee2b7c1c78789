# Strict incremental HTTP/1.1 parser (RFC 9112 / RFC 9110) over caller-owned buffers.
#
# Rules:
# - Sans-IO: bytes in, spans out. No sockets, no clocks, no Python callbacks.
# - The head is parsed from one contiguous buffer that the caller keeps growing: call
#   parse_head(buf, n) again with the same start and a larger n; the parser remembers how far
#   it has scanned, so feeding byte by byte stays linear. Offsets are relative to that start.
# - After a complete head, the body is framed once (body_kind) and fed with feed_body(), which
#   decodes chunked data IN PLACE (compacting the buffer) unless raw_chunks is set.
# - Errors are returned (-1) with error_status (the HTTP status to answer with: 400, 414, 431,
#   501, 505; for responses the proxy answers 502) and error_reason; they always mean
#   "close the connection". The C API never raises.
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t

from fastgw._core.consts cimport HEADERS_CAP

cdef enum HeaderKind:
    # header fields the proxy treats specially, classified once while parsing
    H_OTHER = 0
    H_HOST
    H_CONTENT_LENGTH
    H_TRANSFER_ENCODING
    H_CONNECTION
    H_KEEP_ALIVE
    H_PROXY_CONNECTION
    H_TE
    H_TRAILER
    H_UPGRADE
    H_EXPECT
    H_X_FORWARDED_FOR
    H_X_FORWARDED_PROTO
    H_X_FORWARDED_HOST
    H_X_FORWARDED_PORT
    H_X_FORWARDED_PATH
    H_X_REAL_IP
    H_VIA
    H_COOKIE
    H_DATE
    H_SERVER
    H_PROXY             # never forwarded: httpoxy (CVE-2016-5385), Kong removes it
    H_HTTP2_SETTINGS    # connection-specific (RFC 9113 3.2.1 / RFC 7540): hop-by-hop

cdef enum:
    # Header.flags
    HF_HOP = 1          # hop-by-hop (RFC 9110 7.6.1): Connection, Keep-Alive, Proxy-Connection,
                        # TE, Trailer, Transfer-Encoding, Upgrade, HTTP2-Settings, Proxy, and
                        # every field named in Connection

ctypedef struct Header:
    uint32_t name_off
    uint32_t name_len
    uint32_t value_off  # value without leading/trailing OWS
    uint32_t value_len
    uint8_t kind        # HeaderKind
    uint8_t flags       # HF_*

cdef enum BodyKind:
    BODY_NONE = 0       # no body (or Content-Length: 0)
    BODY_LENGTH = 1     # Content-Length bytes
    BODY_CHUNKED = 2    # Transfer-Encoding: chunked
    BODY_UNTIL_CLOSE = 3  # responses without framing: body ends at connection close

cdef enum Method:
    M_OTHER = 0
    M_GET
    M_HEAD
    M_POST
    M_PUT
    M_DELETE
    M_OPTIONS
    M_PATCH
    M_CONNECT
    M_TRACE


cdef class HttpParser:
    # limits (defaults from consts.pxd; set before the first parse_head)
    cdef public Py_ssize_t max_start_line
    cdef public Py_ssize_t max_header_line
    cdef public Py_ssize_t max_head
    cdef public int max_headers
    cdef public Py_ssize_t max_chunk_ext
    # chunked bodies: False = decode in place (data only); True = keep the raw framing
    cdef public bint raw_chunks

    # result of the last complete head
    cdef Header headers[HEADERS_CAP]
    cdef int n_headers
    cdef int version_minor      # HTTP/1.<minor>, 0 or 1
    cdef int64_t content_length  # -1 when absent
    cdef uint8_t body_kind      # BodyKind
    cdef bint keep_alive        # from version + Connection tokens (close / keep-alive)
    cdef bint upgrade           # Connection: upgrade and an Upgrade field
    cdef int host_index         # index into headers of Host, -1 when absent
    cdef int head_len           # bytes of the last complete head (start line .. CRLFCRLF)

    # body progress
    cdef bint body_done         # the message (incl. trailers) is complete
    cdef int64_t body_remaining  # BODY_LENGTH: bytes left; BODY_CHUNKED: left in current chunk

    # error (valid after a call returned -1)
    cdef int error_status
    cdef str error_reason

    # private scanning / chunk state
    cdef Py_ssize_t _scan
    cdef int _cstate
    cdef Py_ssize_t _cline
    cdef Py_ssize_t _trailer_bytes
    # added by the parser implementation (fastgw/_core/http_parser.pyx)
    cdef uint32_t start_off     # bytes of leading empty lines (CRLF) skipped before the start
                                # line (RFC 9112 2.2); the method/status line starts here
    cdef int _phase             # PH_* in the pyx: start line, fields, body, failed
    cdef Py_ssize_t _lscan      # how far the current (incomplete) line was searched for LF
    cdef bint _is_response
    # Python feed() API state (unused by the C API)
    cdef bytearray _pybuf
    cdef object _pyerror
    cdef bint _pystopped

    cdef void reset(self) noexcept
    cdef Py_ssize_t parse_head(self, const char* buf, Py_ssize_t n) noexcept
    cdef Py_ssize_t feed_body(self, char* buf, Py_ssize_t n, Py_ssize_t* out_len) noexcept
    cdef int feed_eof(self) noexcept
    cdef int set_error(self, int status, str reason) noexcept
    # lazy access for plugins and logs: Python objects only when asked
    cdef list header_list(self, const char* buf)
    cdef object find_header(self, const char* buf, bytes name_lower)
    cdef object find_header_lines(self, const char* buf, bytes name_lower)
    # per-kind hooks (overridden by RequestParser / ResponseParser)
    cdef int _start_line(self, const char* buf, Py_ssize_t s, Py_ssize_t e) noexcept
    cdef int _finish_head(self, const char* buf) noexcept
    cdef int _common_fields(self, const char* buf) noexcept
    cdef int _header_line(self, const char* buf, Py_ssize_t s, Py_ssize_t e) noexcept
    cdef Py_ssize_t _feed_chunked(self, char* buf, Py_ssize_t n, Py_ssize_t* out_len) noexcept
    cdef object _head_event(self, const char* buf)
    cdef bint _stops_connection(self) noexcept


cdef class RequestParser(HttpParser):
    cdef public bint require_host  # reject HTTP/1.1 without exactly one valid Host (proxy rule)
    cdef uint8_t method          # Method
    cdef uint32_t method_len     # method starts at offset 0
    cdef uint32_t target_off
    cdef uint32_t target_len
    cdef uint32_t path_len       # bytes of target before '?' (origin-form), else target_len
    cdef bint expect_continue    # Expect: 100-continue (any other Expect value -> 417 by proxy)
    # added: authority of an absolute-form target (RFC 9112 3.2.2: it replaces Host) or of the
    # authority-form target of CONNECT; authority_len 0 for origin/asterisk form
    cdef uint32_t authority_off
    cdef uint32_t authority_len


cdef class ResponseParser(HttpParser):
    cdef int status
    cdef uint32_t reason_off
    cdef uint32_t reason_len
    cdef uint8_t request_method  # the request's Method: HEAD and CONNECT 2xx have no body
