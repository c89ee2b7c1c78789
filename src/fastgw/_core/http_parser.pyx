# Strict incremental HTTP/1.1 parser (RFC 9112 / RFC 9110) for a proxy.
#
# Algorithm: a line-at-a-time head scanner (memchr for LF, then one table-driven pass per line)
# and a byte state machine for chunked framing that compacts decoded data in place.
#
# Rules (a lenient proxy in front of a strict server is how request smuggling happens, so
# every ambiguity is an error that closes the connection; see the .pxd header for the API):
# 1. Sans-IO: bytes in, offsets out. The C API never raises and never builds Python objects;
#    the Python feed() API is a thin driver over the same cdef methods.
# 2. Linear: parse_head remembers the start of the current line (_scan) and how far it has
#    searched it (_lscan); every byte is looked at a bounded number of times however the
#    input is split.
# 3. Lines end in CRLF, everywhere in the head and in chunked framing. A bare LF or a bare CR
#    is a 400. Up to MAX_LEADING_EMPTY_LINES empty lines before a start line are skipped
#    (RFC 9112 2.2) and counted in start_off.
# 4. Field lines: name = token, ':' right after it (no whitespace before the colon), value
#    bytes = HTAB / SP / VCHAR / obs-text (no NUL, CR, LF, DEL or other CTLs); OWS trimmed.
#    Lines led by SP/HTAB (obs-fold, RFC 9112 5.2) are rejected.
# 5. Framing (RFC 9112 6): Transfer-Encoding with Content-Length -> 400. The only transfer
#    coding accepted is exactly one field whose value is `chunked` (case-insensitive); any
#    other value, `gzip, chunked` included, is 501 (we do not decode or re-frame codings);
#    a syntactically broken value is 400; Transfer-Encoding in HTTP/1.0 is 400.
#    Content-Length: one field, 1*DIGIT, fits int64; duplicates (even equal) and lists -> 400.
#    Chunk sizes: 1-16 hex digits, fits int64, no whitespace; extensions are validated
#    (`;name[=token|quoted-string]`, no BWS) and limited to max_chunk_ext bytes per line.
#    Trailer fields obey rule 4 and count against max_head; they are dropped when decoding.
# 6. Requests: method = token (case-sensitive); target has no SP, CTL, '#', non-ASCII;
#    origin-form, absolute-form (http/https only, no userinfo, non-empty host; its authority
#    is recorded and replaces Host, RFC 9112 3.2.2), authority-form only and always for
#    CONNECT (which never has a body: RFC 9110 9.3.6), asterisk-form only for OPTIONS. Version is exactly `HTTP/D.D`: 1.0 and 1.1 are
#    accepted, other digits are 505, anything else (no version = HTTP/0.9 included) 400.
#    With require_host: HTTP/1.1 needs a Host, and any request with two Host fields or an
#    invalid one (uri-host [":" port], reg-name / IPv4 / [IPv6]) is 400.
# 7. Responses: `HTTP/D.D SP 3DIGIT [SP reason]` (the SP before an empty reason may be
#    missing), status 100-999. Every response error is reported as 502 (error_reason keeps
#    the cause). Body per RFC 9112 6.3: HEAD, 1xx, 204, 304 and 2xx to CONNECT have none;
#    then chunked, Content-Length, else until close (keep_alive is then off).
#    ResponseParser.request_method survives reset(): the caller sets it per request.
# 8. Limits (consts.pxd defaults, public fields): start line > max_start_line -> 414,
#    field line > max_header_line, head > max_head, fields > max_headers -> 431,
#    chunk extensions > max_chunk_ext -> 400.
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdint cimport INT64_MAX, int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memchr, memcmp, memcpy, memmove

from fastgw._core.consts cimport (
    DEFAULT_MAX_CHUNK_EXT,
    DEFAULT_MAX_HEAD,
    DEFAULT_MAX_HEADER_LINE,
    DEFAULT_MAX_HEADERS,
    DEFAULT_MAX_START_LINE,
    HEADERS_CAP,
)

cdef enum:
    # parse phases (_phase)
    PH_START = 0        # expecting (leading empty lines and) the start line
    PH_FIELDS = 1       # start line done, reading field lines
    PH_BODY = 2         # head complete; feed_body() until body_done
    PH_FAILED = 3       # an error was returned; every call returns -1 until reset()

    # RFC 9112 2.2 says a server SHOULD ignore at least one empty line before a request line;
    # clients that add one after a POST body add one, not many. More is garbage -> 400.
    MAX_LEADING_EMPTY_LINES = 4
    # 16 hex digits hold any int64 chunk size; more is an overflow attempt (llhttp: same idea)
    MAX_CHUNK_SIZE_DIGITS = 16

    # chunked states (_cstate)
    CS_SIZE0 = 0        # first hex digit of a chunk-size
    CS_SIZE = 1
    CS_EXT_NAME0 = 2    # after ';'
    CS_EXT_NAME = 3
    CS_EXT_VAL0 = 4     # after '='
    CS_EXT_VAL = 5      # token value
    CS_EXT_QS = 6       # inside a quoted-string
    CS_EXT_QP = 7       # after a backslash in a quoted-string
    CS_EXT_QEND = 8     # after the closing quote
    CS_SIZE_LF = 9      # CR seen at the end of the size line
    CS_DATA = 10
    CS_DATA_CR = 11
    CS_DATA_LF = 12
    CS_TR_START = 13    # start of a trailer line (or the final CRLF)
    CS_TR_NAME = 14
    CS_TR_VAL = 15
    CS_TR_LF = 16
    CS_END_LF = 17      # CR of the final empty line seen
    CS_DONE = 18

    C_CR = 13
    C_LF = 10
    C_SP = 32
    C_HT = 9


# byte classes, filled once at import (RFC 9110 5.6.2 tchar, 5.5 field-vchar, RFC 3986)
cdef uint8_t T_TOKEN[256]      # tchar
cdef uint8_t T_VALUE[256]      # field-value byte: HTAB / SP / VCHAR / obs-text
cdef uint8_t T_TARGET[256]     # request-target byte: VCHAR except '#'
cdef uint8_t T_HOST[256]       # reg-name byte: unreserved / sub-delims / '%'
cdef uint8_t T_HEX[256]        # hex digit value, 0xFF when not a hex digit
cdef uint8_t T_LOWER[256]      # ASCII lowercase
cdef uint8_t T_QDTEXT[256]     # quoted-string qdtext (RFC 9110 5.6.4)


cdef void _init_tables() noexcept:
    cdef int c
    cdef bytes tchar_extra = b"!#$%&'*+-.^_`|~"
    cdef bytes host_extra = b"-._~!$&'()*+,;=%"
    for c in range(256):
        T_LOWER[c] = c + 32 if 65 <= c <= 90 else c
        T_TOKEN[c] = (48 <= c <= 57) or (65 <= c <= 90) or (97 <= c <= 122) or (c in tchar_extra)
        T_VALUE[c] = c == C_HT or (32 <= c <= 126) or c >= 128
        T_TARGET[c] = 33 <= c <= 126 and c != 35
        T_HOST[c] = (48 <= c <= 57) or (65 <= c <= 90) or (97 <= c <= 122) or (c in host_extra)
        T_QDTEXT[c] = c == C_HT or c == C_SP or c == 33 or (35 <= c <= 91) or (93 <= c <= 126) or c >= 128
        if 48 <= c <= 57:
            T_HEX[c] = c - 48
        elif 97 <= c <= 102:
            T_HEX[c] = c - 87
        elif 65 <= c <= 70:
            T_HEX[c] = c - 55
        else:
            T_HEX[c] = 0xFF


_init_tables()


# SWAR (8 bytes per step) pre-checks for the two long byte runs of a head: field values and the
# request target. "Any byte < n" and "any byte == 0" tests are exact for existence
# (Bit Twiddling Hacks, hasless / haszero); a flagged word is re-checked byte by byte.
cdef inline uint64_t _load8(const char* p) noexcept:
    cdef uint64_t w
    memcpy(&w, p, 8)    # one unaligned load
    return w


cdef inline bint _value_word_ok(uint64_t x) noexcept:
    # no byte < 0x20 and none == 0x7F (obs-text >= 0x80 is fine); HTAB is re-checked by the caller
    cdef uint64_t y = x ^ 0x7F7F7F7F7F7F7F7FULL
    return (((x - 0x2020202020202020ULL) & ~x) | ((y - 0x0101010101010101ULL) & ~y)) \
        & 0x8080808080808080ULL == 0


cdef inline bint _target_word_ok(uint64_t x) noexcept:
    # every byte in 0x21..0x7E and none == '#'
    cdef uint64_t y = x ^ 0x7F7F7F7F7F7F7F7FULL
    cdef uint64_t z = x ^ 0x2323232323232323ULL
    return ((((x - 0x2121212121212121ULL) & ~x) | ((y - 0x0101010101010101ULL) & ~y)
             | ((z - 0x0101010101010101ULL) & ~z)) & 0x8080808080808080ULL) | (x & 0x8080808080808080ULL) == 0


cdef inline Py_ssize_t _scan_value(const char* buf, Py_ssize_t p, Py_ssize_t e) noexcept:
    # index of the first byte in [p, e) that is not a field-value byte, or e
    cdef Py_ssize_t stop
    while True:
        while p + 8 <= e and _value_word_ok(_load8(buf + p)):
            p += 8
        stop = p + 8 if p + 8 < e else e
        while p < stop:
            if not T_VALUE[<uint8_t>buf[p]]:
                return p
            p += 1
        if p >= e:
            return e


cdef inline Py_ssize_t _scan_target(const char* buf, Py_ssize_t p, Py_ssize_t e) noexcept:
    # index of the first byte in [p, e) that is not a request-target byte, or e
    while p + 8 <= e and _target_word_ok(_load8(buf + p)):
        p += 8
    while p < e and T_TARGET[<uint8_t>buf[p]]:
        p += 1
    return p


cdef inline bint _ieq(const char* p, const char* lower_lit, Py_ssize_t n) noexcept:
    # case-insensitive compare of p[0:n] with an all-lowercase literal of length n
    cdef Py_ssize_t i
    for i in range(n):
        if T_LOWER[<uint8_t>p[i]] != <uint8_t>lower_lit[i]:
            return False
    return True


cdef inline bint _name_eq(const char* a, const char* b, Py_ssize_t n) noexcept:
    cdef Py_ssize_t i
    for i in range(n):
        if T_LOWER[<uint8_t>a[i]] != T_LOWER[<uint8_t>b[i]]:
            return False
    return True


cdef inline uint8_t _classify(const char* p, Py_ssize_t n) noexcept:
    # HeaderKind of a field name: switch on length and first letter, then one compare
    cdef uint8_t c = T_LOWER[<uint8_t>p[0]]
    if n == 4:
        if c == b'h' and _ieq(p, b"host", 4):
            return H_HOST
        if c == b'd' and _ieq(p, b"date", 4):
            return H_DATE
    elif n == 14:
        if c == b'c' and _ieq(p, b"content-length", 14):
            return H_CONTENT_LENGTH
        if c == b'h' and _ieq(p, b"http2-settings", 14):
            return H_HTTP2_SETTINGS
    elif n == 5:
        if c == b'p' and _ieq(p, b"proxy", 5):
            return H_PROXY
    elif n == 10:
        if c == b'c' and _ieq(p, b"connection", 10):
            return H_CONNECTION
        if c == b'k' and _ieq(p, b"keep-alive", 10):
            return H_KEEP_ALIVE
    elif n == 17:
        if c == b't' and _ieq(p, b"transfer-encoding", 17):
            return H_TRANSFER_ENCODING
        if c == b'x' and _ieq(p, b"x-forwarded-proto", 17):
            return H_X_FORWARDED_PROTO
    elif n == 6:
        if c == b'c' and _ieq(p, b"cookie", 6):
            return H_COOKIE
        if c == b'e' and _ieq(p, b"expect", 6):
            return H_EXPECT
        if c == b's' and _ieq(p, b"server", 6):
            return H_SERVER
    elif n == 7:
        if c == b'u' and _ieq(p, b"upgrade", 7):
            return H_UPGRADE
        if c == b't' and _ieq(p, b"trailer", 7):
            return H_TRAILER
    elif n == 2:
        if c == b't' and _ieq(p, b"te", 2):
            return H_TE
    elif n == 3:
        if c == b'v' and _ieq(p, b"via", 3):
            return H_VIA
    elif n == 9:
        if c == b'x' and _ieq(p, b"x-real-ip", 9):
            return H_X_REAL_IP
    elif n == 15:
        if c == b'x' and _ieq(p, b"x-forwarded-for", 15):
            return H_X_FORWARDED_FOR
    elif n == 16:
        if c == b'x' and _ieq(p, b"x-forwarded-", 12):
            if _ieq(p + 12, b"host", 4):
                return H_X_FORWARDED_HOST
            if _ieq(p + 12, b"port", 4):
                return H_X_FORWARDED_PORT
            if _ieq(p + 12, b"path", 4):
                return H_X_FORWARDED_PATH
        elif c == b'p' and _ieq(p, b"proxy-connection", 16):
            return H_PROXY_CONNECTION
    return H_OTHER


cdef inline uint8_t _method_id(const char* p, Py_ssize_t n) noexcept:
    # methods are case-sensitive (RFC 9110 9.1)
    if n == 3:
        if memcmp(p, b"GET", 3) == 0:
            return M_GET
        if memcmp(p, b"PUT", 3) == 0:
            return M_PUT
    elif n == 4:
        if memcmp(p, b"POST", 4) == 0:
            return M_POST
        if memcmp(p, b"HEAD", 4) == 0:
            return M_HEAD
    elif n == 6:
        if memcmp(p, b"DELETE", 6) == 0:
            return M_DELETE
    elif n == 7:
        if memcmp(p, b"OPTIONS", 7) == 0:
            return M_OPTIONS
        if memcmp(p, b"CONNECT", 7) == 0:
            return M_CONNECT
    elif n == 5:
        if memcmp(p, b"PATCH", 5) == 0:
            return M_PATCH
        if memcmp(p, b"TRACE", 5) == 0:
            return M_TRACE
    return M_OTHER


cdef bint _valid_authority(const char* buf, Py_ssize_t s, Py_ssize_t e, bint port_required,
                           bint host_required) noexcept:
    # uri-host [":" port] (RFC 9110 7.2, RFC 3986 3.2.2): reg-name / IPv4 / "[" IPv6 "]".
    # Ports are 1-5 digits <= 65535 (stricter than *DIGIT: an empty port is rejected).
    cdef Py_ssize_t p = s
    cdef Py_ssize_t q
    cdef uint8_t c
    cdef int port = 0
    if s == e:
        return not (port_required or host_required)
    if buf[p] == b'[':
        q = p + 1
        while q < e and buf[q] != b']':
            c = <uint8_t>buf[q]
            if not (T_HEX[c] != 0xFF or c == b':' or c == b'.'):
                return False
            q += 1
        if q == e or q - p < 3:     # no ']' or "[]" / "[x]"
            return False
        p = q + 1
    else:
        while p < e:
            c = <uint8_t>buf[p]
            if not T_HOST[c]:
                break
            if c == b'%':
                if p + 2 >= e or T_HEX[<uint8_t>buf[p + 1]] == 0xFF or T_HEX[<uint8_t>buf[p + 2]] == 0xFF:
                    return False
                p += 2
            p += 1
        if p == s:
            return False
    if p == e:
        return not port_required
    if buf[p] != b':':
        return False
    p += 1
    if p == e or e - p > 5:
        return False
    while p < e:
        c = <uint8_t>buf[p]
        if not (48 <= c <= 57):
            return False
        port = port * 10 + (c - 48)
        p += 1
    return port <= 65535


# error reasons: module-level constants so set_error never formats (rule 1: no allocation)
cdef str E_BARE_LF = "bare LF (lines must end with CRLF)"
cdef str E_LEADING = "too many empty lines before the start line"
cdef str E_START_LONG = "start line too long"
cdef str E_FIELD_LONG = "header field line too long"
cdef str E_HEAD_LONG = "message head too large"
cdef str E_TOO_MANY = "too many header fields"
cdef str E_FOLD = "obs-fold or whitespace-led field line"
cdef str E_NAME = "invalid header field name"
cdef str E_COLON_WS = "whitespace before the colon of a header field"
cdef str E_NO_COLON = "header field line without a colon"
cdef str E_VALUE = "invalid byte in a header field value (CTL, NUL or bare CR)"
cdef str E_METHOD = "invalid method"
cdef str E_TARGET = "invalid request target"
cdef str E_NO_VERSION = "request line without HTTP version (HTTP/0.9)"
cdef str E_VERSION = "malformed HTTP version"
cdef str E_VERSION_NS = "HTTP version not supported"
cdef str E_STATUS = "malformed status line"
cdef str E_REASON = "invalid byte in the reason phrase"
cdef str E_CL = "invalid Content-Length"
cdef str E_CL_DUP = "duplicate Content-Length"
cdef str E_CL_TE = "Content-Length together with Transfer-Encoding"
cdef str E_TE = "unsupported Transfer-Encoding (only `chunked` is accepted)"
cdef str E_TE_SYNTAX = "malformed Transfer-Encoding"
cdef str E_TE_10 = "Transfer-Encoding in an HTTP/1.0 message"
cdef str E_CONNECTION = "malformed Connection header"
cdef str E_HOST_MISSING = "missing Host header"
cdef str E_HOST_DUP = "duplicate Host header"
cdef str E_HOST = "invalid Host header"
cdef str E_CHUNK_SIZE = "invalid chunk size"
cdef str E_CHUNK_OVERFLOW = "chunk size overflow"
cdef str E_CHUNK_EXT = "invalid chunk extension"
cdef str E_CHUNK_EXT_LONG = "chunk extensions too long"
cdef str E_CHUNK_CRLF = "missing CRLF in chunked framing"
cdef str E_TRAILER = "invalid trailer field"
cdef str E_TRAILER_LONG = "trailer section too large"
cdef str E_EOF_HEAD = "connection closed inside the message head"
cdef str E_EOF_BODY = "connection closed before the end of the body"


class HttpParseError(ValueError):
    """A malformed or ambiguous message. `status` is what to answer with (responses: 502);
    the connection must be closed."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(status, reason)
        self.status = status
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.status} {self.reason}"


class _Event:
    __slots__ = ()

    def __eq__(self, other):
        return type(self) is type(other) and all(
            getattr(self, k) == getattr(other, k) for k in self.__slots__)

    def __repr__(self):
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__slots__)
        return f"{type(self).__name__}({args})"


class Request(_Event):
    __slots__ = ("method", "target", "version", "headers", "keep_alive", "expect_continue",
                 "upgrade", "body_kind", "content_length")

    def __init__(self, method, target, version, headers, keep_alive, expect_continue, upgrade,
                 body_kind, content_length):
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.keep_alive = keep_alive
        self.expect_continue = expect_continue
        self.upgrade = upgrade
        self.body_kind = body_kind
        self.content_length = content_length


class Response(_Event):
    __slots__ = ("status", "reason", "version", "headers", "keep_alive", "body_kind",
                 "content_length", "upgrade")

    def __init__(self, status, reason, version, headers, keep_alive, body_kind, content_length,
                 upgrade=False):
        self.upgrade = upgrade
        self.status = status
        self.reason = reason
        self.version = version
        self.headers = headers
        self.keep_alive = keep_alive
        self.body_kind = body_kind
        self.content_length = content_length


class Data(_Event):
    __slots__ = ("data",)

    def __init__(self, data):
        self.data = data


class EndOfMessage(_Event):
    __slots__ = ()


# Python-visible constants mirroring the C enums
BODY_NONE_ = BODY_NONE
BODY_LENGTH_ = BODY_LENGTH
BODY_CHUNKED_ = BODY_CHUNKED
BODY_UNTIL_CLOSE_ = BODY_UNTIL_CLOSE


cdef class HttpParser:
    def __cinit__(self):
        self.max_start_line = DEFAULT_MAX_START_LINE
        self.max_header_line = DEFAULT_MAX_HEADER_LINE
        self.max_head = DEFAULT_MAX_HEAD
        self.max_headers = DEFAULT_MAX_HEADERS
        self.max_chunk_ext = DEFAULT_MAX_CHUNK_EXT
        self.raw_chunks = False
        self._pybuf = bytearray()
        self._pyerror = None
        self._pystopped = False
        self.reset()

    def __init__(self, *, max_start_line=DEFAULT_MAX_START_LINE,
                 max_header_line=DEFAULT_MAX_HEADER_LINE, max_head=DEFAULT_MAX_HEAD,
                 max_headers=DEFAULT_MAX_HEADERS, max_chunk_ext=DEFAULT_MAX_CHUNK_EXT,
                 raw_chunks=False):
        if not 0 <= max_headers <= HEADERS_CAP:
            raise ValueError(f"max_headers must be within 0..{HEADERS_CAP}")
        self.max_start_line = max_start_line
        self.max_header_line = max_header_line
        self.max_head = max_head
        self.max_headers = max_headers
        self.max_chunk_ext = max_chunk_ext
        self.raw_chunks = raw_chunks

    # ---------------------------------------------------------------- C API

    cdef void reset(self) noexcept:
        self.n_headers = 0
        self.version_minor = 1
        self.content_length = -1
        self.body_kind = BODY_NONE
        self.keep_alive = False
        self.upgrade = False
        self.host_index = -1
        self.head_len = 0
        self.body_done = False
        self.body_remaining = 0
        self.error_status = 0
        self.error_reason = None
        self._scan = 0
        self._lscan = 0
        self._cstate = CS_SIZE0
        self._cline = 0
        self._trailer_bytes = 0
        self.start_off = 0
        self._phase = PH_START

    cdef int set_error(self, int status, str reason) noexcept:
        # a response we cannot parse is the upstream's fault: the proxy answers 502
        self.error_status = 502 if self._is_response else status
        self.error_reason = reason
        self._phase = PH_FAILED
        return -1

    cdef Py_ssize_t parse_head(self, const char* buf, Py_ssize_t n) noexcept:
        cdef Py_ssize_t ls, e, le, p
        cdef const char* nl
        if self._phase >= PH_BODY:
            return -1 if self._phase == PH_FAILED else self.head_len
        ls = self._scan
        while True:
            p = self._lscan if self._lscan > ls else ls
            nl = <const char*>memchr(buf + p, C_LF, n - p) if n > p else NULL
            if nl == NULL:
                self._lscan = n
                if self._phase == PH_START:
                    if n - ls > self.max_start_line + 1:
                        return self.set_error(414, E_START_LONG)
                elif n - ls > self.max_header_line + 1:
                    return self.set_error(431, E_FIELD_LONG)
                if n > self.max_head:
                    return self.set_error(431, E_HEAD_LONG)
                return 0
            e = nl - buf
            if e == ls or buf[e - 1] != b'\r':
                return self.set_error(400, E_BARE_LF)
            if e + 1 > self.max_head:
                return self.set_error(431, E_HEAD_LONG)
            le = e - 1
            if self._phase == PH_START:
                if le == ls:
                    # empty line before the start line (RFC 9112 2.2)
                    if self.start_off >= 2 * MAX_LEADING_EMPTY_LINES:
                        return self.set_error(400, E_LEADING)
                    self.start_off = <uint32_t>(e + 1)
                elif le - ls > self.max_start_line:
                    return self.set_error(414, E_START_LONG)
                else:
                    if self._start_line(buf, ls, le) < 0:
                        return -1
                    self._phase = PH_FIELDS
            elif le == ls:
                # the empty line: head complete
                self.head_len = <int>(e + 1)
                self._scan = e + 1
                self._lscan = e + 1
                if self._finish_head(buf) < 0:
                    return -1
                self._phase = PH_BODY
                self.body_done = self.body_kind == BODY_NONE
                if self.body_kind == BODY_LENGTH:
                    self.body_remaining = self.content_length
                return e + 1
            else:
                if le - ls > self.max_header_line:
                    return self.set_error(431, E_FIELD_LONG)
                if self._header_line(buf, ls, le) < 0:
                    return -1
            ls = e + 1
            self._scan = ls
            self._lscan = ls

    cdef int _header_line(self, const char* buf, Py_ssize_t s, Py_ssize_t e) noexcept:
        cdef Py_ssize_t p = s
        cdef Py_ssize_t vs, ve
        cdef uint8_t c = <uint8_t>buf[s]
        cdef Header* h
        if c == C_SP or c == C_HT:
            return self.set_error(400, E_FOLD)
        while p < e and T_TOKEN[<uint8_t>buf[p]]:
            p += 1
        if p == e:
            return self.set_error(400, E_NO_COLON)
        if buf[p] != b':':
            c = <uint8_t>buf[p]
            if c == C_SP or c == C_HT:
                return self.set_error(400, E_COLON_WS)
            return self.set_error(400, E_NAME)
        if p == s:
            return self.set_error(400, E_NAME)
        if self.n_headers >= self.max_headers or self.n_headers >= HEADERS_CAP:
            return self.set_error(431, E_TOO_MANY)
        h = &self.headers[self.n_headers]
        h.name_off = <uint32_t>s
        h.name_len = <uint32_t>(p - s)
        p += 1
        while p < e and (buf[p] == b' ' or buf[p] == b'\t'):
            p += 1
        vs = p
        p = _scan_value(buf, p, e)
        if p != e:
            return self.set_error(400, E_VALUE)
        ve = e
        while ve > vs and (buf[ve - 1] == b' ' or buf[ve - 1] == b'\t'):
            ve -= 1
        h.value_off = <uint32_t>vs
        h.value_len = <uint32_t>(ve - vs)
        h.kind = _classify(buf + s, <Py_ssize_t>h.name_len)
        h.flags = HF_HOP if (h.kind == H_CONNECTION or h.kind == H_KEEP_ALIVE
                             or h.kind == H_PROXY_CONNECTION or h.kind == H_TE
                             or h.kind == H_TRAILER or h.kind == H_TRANSFER_ENCODING
                             or h.kind == H_UPGRADE or h.kind == H_PROXY
                             or h.kind == H_HTTP2_SETTINGS) else 0
        self.n_headers += 1
        return 0

    cdef int _start_line(self, const char* buf, Py_ssize_t s, Py_ssize_t e) noexcept:
        return self.set_error(500, E_STATUS)     # abstract: HttpParser itself parses nothing

    cdef int _finish_head(self, const char* buf) noexcept:
        return self._common_fields(buf)

    cdef int _common_fields(self, const char* buf) noexcept:
        # Content-Length, Transfer-Encoding, Connection (RFC 9112 6, 9.6; RFC 9110 7.6.1)
        cdef int i, j
        cdef int cl_count = 0
        cdef int te_count = 0
        cdef int te_index = -1
        cdef bint conn_close = False
        cdef bint conn_ka = False
        cdef bint conn_upgrade = False
        cdef bint has_upgrade = False
        cdef Header* h
        cdef const char* v
        cdef Py_ssize_t k, n, ts
        cdef int64_t cl = 0
        cdef uint8_t c
        for i in range(self.n_headers):
            h = &self.headers[i]
            if h.kind == H_OTHER:
                continue
            v = buf + h.value_off
            n = h.value_len
            if h.kind == H_CONTENT_LENGTH:
                cl_count += 1
                if cl_count > 1:
                    return self.set_error(400, E_CL_DUP)
                if n == 0:
                    return self.set_error(400, E_CL)
                cl = 0
                for k in range(n):
                    c = <uint8_t>v[k]
                    if not (48 <= c <= 57):
                        return self.set_error(400, E_CL)
                    if cl > (INT64_MAX - (c - 48)) // 10:
                        return self.set_error(400, E_CL)
                    cl = cl * 10 + (c - 48)
                self.content_length = cl
            elif h.kind == H_TRANSFER_ENCODING:
                te_count += 1
                te_index = i
            elif h.kind == H_UPGRADE:
                has_upgrade = True
            elif h.kind == H_CONNECTION:
                # 1#connection-option, empty list elements allowed (RFC 9110 5.6.1)
                k = 0
                while k <= n:
                    while k < n and (v[k] == b' ' or v[k] == b'\t'):
                        k += 1
                    ts = k
                    while k < n and T_TOKEN[<uint8_t>v[k]]:
                        k += 1
                    if k > ts:
                        if k - ts == 5 and _ieq(v + ts, b"close", 5):
                            conn_close = True
                        elif k - ts == 10 and _ieq(v + ts, b"keep-alive", 10):
                            conn_ka = True
                        elif k - ts == 7 and _ieq(v + ts, b"upgrade", 7):
                            conn_upgrade = True
                        # every field named by a Connection option is hop-by-hop
                        for j in range(self.n_headers):
                            if (self.headers[j].name_len == k - ts
                                    and _name_eq(buf + self.headers[j].name_off, v + ts, k - ts)):
                                self.headers[j].flags |= HF_HOP
                    while k < n and (v[k] == b' ' or v[k] == b'\t'):
                        k += 1
                    if k < n and v[k] != b',':
                        return self.set_error(400, E_CONNECTION)
                    k += 1
        if te_count:
            if cl_count:
                return self.set_error(400, E_CL_TE)
            if self.version_minor == 0:
                return self.set_error(400, E_TE_10)
            h = &self.headers[te_index]
            v = buf + h.value_off
            n = h.value_len
            if n == 0:
                return self.set_error(400, E_TE_SYNTAX)
            if te_count > 1 or n != 7 or not _ieq(v, b"chunked", 7):
                # syntax first: a list of tokens (with parameters) is 501, junk is 400
                for k in range(n):
                    c = <uint8_t>v[k]
                    if not (T_TOKEN[c] or c == b',' or c == b' ' or c == b'\t' or c == b';'
                            or c == b'=' or c == b'"'):
                        return self.set_error(400, E_TE_SYNTAX)
                return self.set_error(501, E_TE)
            self.body_kind = BODY_CHUNKED
        elif cl_count:
            self.body_kind = BODY_LENGTH if self.content_length > 0 else BODY_NONE
        if conn_close:
            self.keep_alive = False
        elif self.version_minor == 1:
            self.keep_alive = True
        else:
            self.keep_alive = conn_ka
        # RFC 9110 7.8: Upgrade in an HTTP/1.0 message is ignored
        self.upgrade = conn_upgrade and has_upgrade and self.version_minor == 1
        return 0

    cdef Py_ssize_t feed_body(self, char* buf, Py_ssize_t n, Py_ssize_t* out_len) noexcept:
        cdef Py_ssize_t k
        out_len[0] = 0
        if self._phase != PH_BODY:
            return -1 if self._phase == PH_FAILED else 0
        if self.body_done:
            return 0
        if self.body_kind == BODY_LENGTH:
            k = n if n < self.body_remaining else <Py_ssize_t>self.body_remaining
            self.body_remaining -= k
            if self.body_remaining == 0:
                self.body_done = True
            out_len[0] = k
            return k
        if self.body_kind == BODY_UNTIL_CLOSE:
            out_len[0] = n
            return n
        return self._feed_chunked(buf, n, out_len)

    cdef Py_ssize_t _feed_chunked(self, char* buf, Py_ssize_t n, Py_ssize_t* out_len) noexcept:
        # RFC 9112 7.1. State lives in locals and is stored back on every exit.
        cdef Py_ssize_t i = 0
        cdef Py_ssize_t o = 0
        cdef Py_ssize_t k
        cdef int st = self._cstate
        cdef int64_t rem = self.body_remaining
        cdef Py_ssize_t cline = self._cline
        cdef Py_ssize_t tbytes = self._trailer_bytes
        cdef bint raw = self.raw_chunks
        cdef uint8_t c, v
        cdef int status = 400
        cdef str reason = None
        while i < n:
            if st == CS_DATA:
                k = n - i
                if k > rem:
                    k = <Py_ssize_t>rem
                if not raw and o != i:
                    memmove(buf + o, buf + i, k)
                o += k
                i += k
                rem -= k
                if rem == 0:
                    st = CS_DATA_CR
                continue
            c = <uint8_t>buf[i]
            i += 1
            if st == CS_SIZE:
                v = T_HEX[c]
                if v != 0xFF:
                    cline += 1
                    if cline > MAX_CHUNK_SIZE_DIGITS or rem > (INT64_MAX >> 4):
                        reason = E_CHUNK_OVERFLOW
                        break
                    rem = (rem << 4) | v
                elif c == C_CR:
                    st = CS_SIZE_LF
                elif c == b';':
                    st = CS_EXT_NAME0
                    cline = 1
                else:
                    reason = E_CHUNK_SIZE
                    break
            elif st == CS_DATA_CR:
                if c != C_CR:
                    reason = E_CHUNK_CRLF
                    break
                st = CS_DATA_LF
            elif st == CS_DATA_LF:
                if c != C_LF:
                    reason = E_CHUNK_CRLF
                    break
                st = CS_SIZE0
            elif st == CS_SIZE0:
                v = T_HEX[c]
                if v == 0xFF:
                    reason = E_CHUNK_SIZE
                    break
                rem = v
                cline = 1
                st = CS_SIZE
            elif st == CS_SIZE_LF:
                if c != C_LF:
                    reason = E_CHUNK_CRLF
                    break
                st = CS_DATA if rem else CS_TR_START
            elif st <= CS_EXT_QEND:
                # chunk extensions: ; name [ = token / quoted-string ] (no BWS)
                if c != C_CR:
                    cline += 1
                    if cline > self.max_chunk_ext:
                        reason = E_CHUNK_EXT_LONG
                        break
                if st == CS_EXT_NAME0:
                    if not T_TOKEN[c]:
                        reason = E_CHUNK_EXT
                        break
                    st = CS_EXT_NAME
                elif st == CS_EXT_NAME or st == CS_EXT_VAL or st == CS_EXT_QEND:
                    if (st != CS_EXT_QEND) and T_TOKEN[c]:
                        pass
                    elif c == b';':
                        st = CS_EXT_NAME0
                    elif c == C_CR:
                        st = CS_SIZE_LF
                    elif c == b'=' and st == CS_EXT_NAME:
                        st = CS_EXT_VAL0
                    else:
                        reason = E_CHUNK_EXT
                        break
                elif st == CS_EXT_VAL0:
                    if c == b'"':
                        st = CS_EXT_QS
                    elif T_TOKEN[c]:
                        st = CS_EXT_VAL
                    else:
                        reason = E_CHUNK_EXT
                        break
                elif st == CS_EXT_QS:
                    if c == b'"':
                        st = CS_EXT_QEND
                    elif c == b'\\':
                        st = CS_EXT_QP
                    elif not T_QDTEXT[c]:
                        reason = E_CHUNK_EXT
                        break
                else:   # CS_EXT_QP: quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
                    if not T_VALUE[c]:
                        reason = E_CHUNK_EXT
                        break
                    st = CS_EXT_QS
            else:
                # trailer section: field lines like a head, counted against max_head
                tbytes += 1
                if tbytes > self.max_head:
                    status = 431
                    reason = E_TRAILER_LONG
                    break
                if st == CS_TR_VAL:
                    cline += 1
                    if T_VALUE[c]:
                        if cline > self.max_header_line:
                            status = 431
                            reason = E_TRAILER_LONG
                            break
                    elif c == C_CR:
                        st = CS_TR_LF
                    else:
                        reason = E_TRAILER
                        break
                elif st == CS_TR_START:
                    if c == C_CR:
                        st = CS_END_LF
                    elif T_TOKEN[c]:
                        st = CS_TR_NAME
                        cline = 1
                    else:
                        reason = E_TRAILER
                        break
                elif st == CS_TR_NAME:
                    cline += 1
                    if c == b':':
                        st = CS_TR_VAL
                    elif not T_TOKEN[c] or cline > self.max_header_line:
                        reason = E_TRAILER
                        break
                elif st == CS_TR_LF:
                    if c != C_LF:
                        reason = E_CHUNK_CRLF
                        break
                    st = CS_TR_START
                elif st == CS_END_LF:
                    if c != C_LF:
                        reason = E_CHUNK_CRLF
                        break
                    st = CS_DONE
                    self.body_done = True
                    break
        self._cstate = st
        self.body_remaining = rem
        self._cline = cline
        self._trailer_bytes = tbytes
        if reason is not None:
            return self.set_error(status, reason)
        out_len[0] = i if raw else o
        return i

    cdef int feed_eof(self) noexcept:
        if self._phase == PH_FAILED:
            return -1
        if self._phase == PH_START:
            # nothing but (possibly) empty lines received: a clean close between messages
            if self._lscan <= self._scan:
                return 0
            return self.set_error(400, E_EOF_HEAD)
        if self._phase == PH_FIELDS:
            return self.set_error(400, E_EOF_HEAD)
        if self.body_done:
            return 0
        if self.body_kind == BODY_UNTIL_CLOSE:
            self.body_done = True
            return 0
        return self.set_error(400, E_EOF_BODY)

    cdef list header_list(self, const char* buf):
        cdef list out = []
        cdef int i
        cdef Header* h
        for i in range(self.n_headers):
            h = &self.headers[i]
            out.append((PyBytes_FromStringAndSize(buf + h.name_off, h.name_len),
                        PyBytes_FromStringAndSize(buf + h.value_off, h.value_len)))
        return out

    cdef object find_header(self, const char* buf, bytes name_lower):
        cdef int i
        cdef Header* h
        cdef Py_ssize_t n = PyBytes_GET_SIZE(name_lower)
        cdef const char* name = PyBytes_AS_STRING(name_lower)
        for i in range(self.n_headers):
            h = &self.headers[i]
            if h.name_len == n and _ieq(buf + h.name_off, name, n):
                return PyBytes_FromStringAndSize(buf + h.value_off, h.value_len)
        return None

    cdef object find_header_lines(self, const char* buf, bytes name_lower):
        # like find_header, but a header sent on several lines gives the list of its values
        # (the router matches any of them, as Kong's `any(http.headers.x)`)
        cdef int i
        cdef Header* h
        cdef Py_ssize_t n = PyBytes_GET_SIZE(name_lower)
        cdef const char* name = PyBytes_AS_STRING(name_lower)
        cdef object first = None
        cdef list lines = None
        for i in range(self.n_headers):
            h = &self.headers[i]
            if h.name_len == n and _ieq(buf + h.name_off, name, n):
                v = PyBytes_FromStringAndSize(buf + h.value_off, h.value_len)
                if first is None:
                    first = v
                elif lines is None:
                    lines = [first, v]
                else:
                    lines.append(v)
        return lines if lines is not None else first

    # ---------------------------------------------------------------- Python API

    cdef object _head_event(self, const char* buf):
        return None

    cdef bint _stops_connection(self) noexcept:
        # after this message no further HTTP/1.1 message can follow on the connection
        return not self.keep_alive or self.upgrade

    def feed(self, data) -> list:
        """Append bytes; return the events completed so far (Request/Response, Data,
        EndOfMessage). Raises HttpParseError; after an error every call raises it again."""
        cdef list events = []
        cdef bytearray b = self._pybuf
        cdef Py_ssize_t pos = 0
        cdef Py_ssize_t size, r, out
        cdef char* p
        if self._pyerror is not None:
            raise self._pyerror
        if self._pystopped:
            b.extend(data)
            return events
        b.extend(data)
        try:
            while not self._pystopped:
                size = PyByteArray_GET_SIZE(b)
                p = PyByteArray_AS_STRING(b)
                if self._phase < PH_BODY:
                    if pos == size:
                        break
                    r = self.parse_head(p + pos, size - pos)
                    if r < 0:
                        self._raise()
                    if r == 0:
                        break
                    events.append(self._head_event(p + pos))
                    pos += r
                elif not self.body_done:
                    r = self.feed_body(p + pos, size - pos, &out)
                    if r < 0:
                        self._raise()
                    if out:
                        events.append(Data(PyBytes_FromStringAndSize(p + pos, out)))
                    pos += r
                    if not self.body_done:
                        break
                else:
                    events.append(EndOfMessage())
                    self._pystopped = self._stops_connection()
                    self.reset()
        finally:
            if pos:
                del b[:pos]
        return events

    def __getattr__(self, name):
        # The C API's `cdef int feed_eof()` (the .pxd contract) and the Python API's
        # `feed_eof() -> list` share a name; a def cannot override a cdef method, so the
        # Python name is resolved here (only reached when normal attribute lookup fails).
        if name == "feed_eof":
            return self._py_feed_eof
        raise AttributeError(name)

    def _py_feed_eof(self) -> list:
        """The peer closed the connection: the events that completes, or HttpParseError."""
        cdef list events = []
        if self._pyerror is not None:
            raise self._pyerror
        if self._pystopped:
            return events
        if self.feed_eof() < 0:
            self._raise()
        if self._phase == PH_BODY and self.body_done:
            events.append(EndOfMessage())
            self.reset()
        self._pystopped = True
        return events

    @property
    def trailing_data(self) -> bytes:
        """Bytes received after a message that ends HTTP on this connection (close, upgrade,
        CONNECT): they belong to another protocol or are to be ignored."""
        return bytes(self._pybuf) if self._pystopped else b""

    def _raise(self):
        self._pyerror = HttpParseError(self.error_status, self.error_reason)
        raise self._pyerror


cdef class RequestParser(HttpParser):
    def __cinit__(self):
        self.require_host = True

    def __init__(self, *, require_host=True, **limits):
        HttpParser.__init__(self, **limits)
        self.require_host = require_host

    cdef void reset(self) noexcept:
        HttpParser.reset(self)
        self.method = M_OTHER
        self.method_len = 0
        self.target_off = 0
        self.target_len = 0
        self.path_len = 0
        self.expect_continue = False
        self.authority_off = 0
        self.authority_len = 0

    cdef int _start_line(self, const char* buf, Py_ssize_t s, Py_ssize_t e) noexcept:
        # request-line = method SP request-target SP HTTP-version (RFC 9112 3)
        cdef Py_ssize_t p = s
        cdef Py_ssize_t ts, te, q, a
        cdef const char* qm
        cdef uint8_t c0
        cdef int major, minor
        while p < e and T_TOKEN[<uint8_t>buf[p]]:
            p += 1
        if p == s or p == e or buf[p] != b' ':
            return self.set_error(400, E_METHOD if p < e or p == s else E_NO_VERSION)
        self.method_len = <uint32_t>(p - s)
        self.method = _method_id(buf + s, p - s)
        p += 1
        ts = p
        p = _scan_target(buf, p, e)
        if p == ts:
            return self.set_error(400, E_TARGET)
        if p == e:
            return self.set_error(400, E_NO_VERSION)
        if buf[p] != b' ':
            return self.set_error(400, E_TARGET)
        te = p
        p += 1
        # HTTP-version = "HTTP" "/" DIGIT "." DIGIT, case-sensitive (RFC 9112 2.3)
        if (e - p != 8 or memcmp(buf + p, b"HTTP/", 5) != 0 or not (48 <= <uint8_t>buf[p + 5] <= 57)
                or buf[p + 6] != b'.' or not (48 <= <uint8_t>buf[p + 7] <= 57)):
            return self.set_error(400, E_VERSION)
        major = buf[p + 5] - 48
        minor = buf[p + 7] - 48
        if major != 1 or minor > 1:
            return self.set_error(505, E_VERSION_NS)
        self.version_minor = minor
        self.target_off = <uint32_t>ts
        self.target_len = <uint32_t>(te - ts)
        self.path_len = self.target_len
        c0 = <uint8_t>buf[ts]
        if self.method == M_CONNECT:
            # authority-form, and only it (RFC 9112 3.2.3)
            if not _valid_authority(buf, ts, te, True, True):
                return self.set_error(400, E_TARGET)
            self.authority_off = self.target_off
            self.authority_len = self.target_len
        elif c0 == b'/':
            qm = <const char*>memchr(buf + ts, 63, te - ts)  # 63 = '?'
            if qm != NULL:
                self.path_len = <uint32_t>(qm - (buf + ts))
        elif c0 == b'*':
            if te - ts != 1 or self.method != M_OPTIONS:
                return self.set_error(400, E_TARGET)
        else:
            # absolute-form: "http" / "https" "://" authority path-abempty [ "?" query ]
            if te - ts > 7 and _ieq(buf + ts, b"http://", 7):
                a = ts + 7
            elif te - ts > 8 and _ieq(buf + ts, b"https://", 8):
                a = ts + 8
            else:
                return self.set_error(400, E_TARGET)
            q = a
            while q < te and buf[q] != b'/' and buf[q] != b'?':
                q += 1
            # userinfo ('@') is deprecated and a phishing vector (RFC 9110 4.2.4): reject
            if memchr(buf + a, 64, q - a) != NULL or not _valid_authority(buf, a, q, False, True):
                return self.set_error(400, E_TARGET)
            self.authority_off = <uint32_t>a
            self.authority_len = <uint32_t>(q - a)
        return 0

    cdef int _finish_head(self, const char* buf) noexcept:
        cdef int i
        cdef int host_count = 0
        cdef Header* h
        if self._common_fields(buf) < 0:
            return -1
        for i in range(self.n_headers):
            h = &self.headers[i]
            if h.kind == H_HOST:
                host_count += 1
                if self.host_index < 0:
                    self.host_index = i
            elif h.kind == H_EXPECT and self.version_minor == 1 and not self.expect_continue:
                # RFC 9110 10.1.1: a server ignores 100-continue from HTTP/1.0
                self.expect_continue = h.value_len == 12 and _ieq(buf + h.value_off, b"100-continue", 12)
        if self.method == M_CONNECT:
            # RFC 9110 9.3.6: a CONNECT request has no content; what follows the head is the
            # tunnel (framing fields were still validated above)
            self.body_kind = BODY_NONE
        if self.require_host:
            # RFC 9112 3.2: 400 for HTTP/1.1 without Host, any request with several Host
            # fields or an invalid one
            if host_count > 1:
                return self.set_error(400, E_HOST_DUP)
            if host_count == 0:
                if self.version_minor == 1:
                    return self.set_error(400, E_HOST_MISSING)
            else:
                h = &self.headers[self.host_index]
                if not _valid_authority(buf, h.value_off, h.value_off + h.value_len, False, False):
                    return self.set_error(400, E_HOST)
        return 0

    cdef object _head_event(self, const char* buf):
        return Request(
            PyBytes_FromStringAndSize(buf + self.start_off, self.method_len),
            PyBytes_FromStringAndSize(buf + self.target_off, self.target_len),
            (1, self.version_minor),
            self.header_list(buf),
            bool(self.keep_alive),
            bool(self.expect_continue),
            bool(self.upgrade),
            self.body_kind,
            self.content_length,
        )

    cdef bint _stops_connection(self) noexcept:
        return not self.keep_alive or self.upgrade or self.method == M_CONNECT


cdef class ResponseParser(HttpParser):
    def __cinit__(self):
        self._is_response = True
        self.request_method = M_GET

    def __init__(self, **limits):
        HttpParser.__init__(self, **limits)

    cdef void reset(self) noexcept:
        HttpParser.reset(self)
        self.status = 0
        self.reason_off = 0
        self.reason_len = 0
        # request_method is kept: it belongs to the exchange, set by the caller per request

    def set_request_method(self, method: bytes) -> None:
        """The method of the request this response answers (HEAD, CONNECT change framing)."""
        self.request_method = _method_id(method, len(method))

    cdef int _start_line(self, const char* buf, Py_ssize_t s, Py_ssize_t e) noexcept:
        # status-line = HTTP-version SP status-code SP [ reason-phrase ] (RFC 9112 4)
        cdef Py_ssize_t p
        cdef int major, minor
        if (e - s < 12 or memcmp(buf + s, b"HTTP/", 5) != 0 or not (48 <= <uint8_t>buf[s + 5] <= 57)
                or buf[s + 6] != b'.' or not (48 <= <uint8_t>buf[s + 7] <= 57) or buf[s + 8] != b' '):
            return self.set_error(502, E_STATUS)
        major = buf[s + 5] - 48
        minor = buf[s + 7] - 48
        if major != 1 or minor > 1:
            return self.set_error(505, E_VERSION_NS)
        self.version_minor = minor
        if not (49 <= <uint8_t>buf[s + 9] <= 57 and 48 <= <uint8_t>buf[s + 10] <= 57
                and 48 <= <uint8_t>buf[s + 11] <= 57):
            return self.set_error(502, E_STATUS)
        self.status = (buf[s + 9] - 48) * 100 + (buf[s + 10] - 48) * 10 + (buf[s + 11] - 48)
        p = s + 12
        if p < e:
            if buf[p] != b' ':
                return self.set_error(502, E_STATUS)
            p += 1
        self.reason_off = <uint32_t>p
        self.reason_len = <uint32_t>(e - p)
        while p < e and T_VALUE[<uint8_t>buf[p]]:
            p += 1
        if p != e:
            return self.set_error(502, E_REASON)
        return 0

    cdef int _finish_head(self, const char* buf) noexcept:
        cdef int i
        if self._common_fields(buf) < 0:
            return -1
        for i in range(self.n_headers):
            if self.headers[i].kind == H_HOST:
                self.host_index = i
                break
        # RFC 9112 6.3: responses without content whatever their fields say
        if (self.request_method == M_HEAD or self.status < 200 or self.status == 204
                or self.status == 304
                or (self.request_method == M_CONNECT and self.status < 300)):
            self.body_kind = BODY_NONE
        elif self.body_kind == BODY_NONE and self.content_length < 0:
            self.body_kind = BODY_UNTIL_CLOSE
            self.keep_alive = False
        return 0

    cdef object _head_event(self, const char* buf):
        return Response(
            self.status,
            PyBytes_FromStringAndSize(buf + self.reason_off, self.reason_len),
            (1, self.version_minor),
            self.header_list(buf),
            bool(self.keep_alive),
            self.body_kind,
            self.content_length,
            bool(self.upgrade),
        )

    cdef bint _stops_connection(self) noexcept:
        if self.status < 200 and self.status != 101:
            return False        # 1xx interim: the final response follows
        return (not self.keep_alive or self.upgrade or self.status == 101
                or (self.request_method == M_CONNECT and self.status < 300))


def _bench_parse(bytes data, Py_ssize_t n, bint response=False):
    """Benchmark driver for the C API path the proxy uses: n times, copy `data` into a scratch
    buffer (standing in for the socket read) and parse every message in it with
    parse_head / feed_body / reset. Returns the number of messages parsed; the caller times it
    (the parser module reads no clock)."""
    cdef HttpParser parser = ResponseParser() if response else RequestParser(require_host=False)
    cdef Py_ssize_t size = PyBytes_GET_SIZE(data)
    cdef char* scratch = <char*>malloc(size + 1)
    cdef Py_ssize_t it, pos, r, out
    cdef Py_ssize_t messages = 0
    if scratch == NULL:
        raise MemoryError()
    try:
        for it in range(n):
            memcpy(scratch, PyBytes_AS_STRING(data), size)
            pos = 0
            while pos < size:
                parser.reset()
                r = parser.parse_head(scratch + pos, size - pos)
                if r <= 0:
                    raise HttpParseError(parser.error_status, parser.error_reason or "incomplete")
                pos += r
                if not parser.body_done:
                    r = parser.feed_body(scratch + pos, size - pos, &out)
                    if r < 0 or not parser.body_done:
                        raise HttpParseError(parser.error_status, parser.error_reason or "incomplete")
                    pos += r
                messages += 1
    finally:
        free(scratch)
    return messages


def _probe_request(bytes data, bytes find=b"host", bint require_host=False):
    """Test hook: parse one request head from `data` with the C API and return the C-level
    results the proxy reads (spans, kinds, flags), so tests can check them without cimport."""
    cdef RequestParser p = RequestParser(require_host=require_host)
    cdef const char* buf = PyBytes_AS_STRING(data)
    cdef Py_ssize_t r = p.parse_head(buf, PyBytes_GET_SIZE(data))
    cdef int i
    if r <= 0:
        return r, p.error_status, p.error_reason
    return {
        "head_len": r,
        "start_off": p.start_off,
        "method_id": p.method,
        "method": data[p.start_off:p.start_off + p.method_len],
        "path": data[p.target_off:p.target_off + p.path_len],
        "authority": data[p.authority_off:p.authority_off + p.authority_len],
        "kinds": [p.headers[i].kind for i in range(p.n_headers)],
        "hop": [bool(p.headers[i].flags & HF_HOP) for i in range(p.n_headers)],
        "host_index": p.host_index,
        "find": p.find_header(buf, find),
        "headers": p.header_list(buf),
    }
