# cython: language_level=3
"""Request path normalization and escaping, byte for byte as Kong 3.x (kong/tools/uri.lua).

Rule 1 (normalize; what the router matches; Kong `normalize(uri, true)` in
kong/router/utils.lua strip_uri_args):
  a. every percent-encoded triplet is decoded unless it encodes an RFC 3986 reserved character
     (! * ' ( ) ; : @ & = + $ , / ? % # [ ]), which stays encoded with its hex uppercased:
     unreserved characters and "others" (space, quotes, bytes >= 0x80, ...) are decoded, so
     "%2F" never becomes a path separator and "%25" never decodes twice;
  b. dot segments are removed (RFC 3986 5.2.4), after decoding, so "%2E%2E" counts as "..";
  c. runs of "/" are merged into one.
  The result may hold any byte (decoding "others" is Kong's choice): it is only ever matched,
  and Rule 2 encodes it again before it goes upstream.

Rule 2 (escape; what goes upstream; Kong runloop/handler.lua `escape(match_t.upstream_uri)`):
  every byte outside ! # $ & ' ( ) * + , / : ; = ? @ [ ] A-Z a-z 0-9 - _ . ~ % is written as
  "%XX" (uppercase hex). "%" itself is kept, so the reserved triplets Rule 1 left stay as they are.

Both return their argument itself when nothing changes (the common case: no allocation).
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdlib cimport free, malloc
from libc.string cimport memchr, memcmp, memcpy

cdef const char* _HEX = b"0123456789ABCDEF"

# Rule 1a: the reserved set (kong/tools/uri.lua RESERVED_CHARS)
cdef bint _RESERVED[256]
# Rule 2: bytes sent as they are (kong/tools/uri.lua ESCAPE_PATTERN, matched case-insensitively)
cdef bint _KEEP[256]


cdef void _init_tables() noexcept:
    cdef int c
    for c in range(256):
        _RESERVED[c] = False
        _KEEP[c] = ((c >= c'a' and c <= c'z') or (c >= c'A' and c <= c'Z')
                    or (c >= c'0' and c <= c'9'))
    for c in b"!*'();:@&=+$,/?%#[]":
        _RESERVED[c] = True
    for c in b"!#$&'()*+,/:;=?@[]-_.~%":
        _KEEP[c] = True


_init_tables()


cdef inline int _hexval(unsigned char c) noexcept nogil:
    if c >= c'0' and c <= c'9':
        return c - c'0'
    if c >= c'a' and c <= c'f':
        return c - c'a' + 10
    if c >= c'A' and c <= c'F':
        return c - c'A' + 10
    return -1


cdef Py_ssize_t _pct_decode(const unsigned char* s, Py_ssize_t n,
                            unsigned char* out) noexcept nogil:
    # Rule 1a; never grows the input
    cdef Py_ssize_t i = 0, o = 0
    cdef int hi, lo, v
    while i < n:
        if s[i] == c'%' and i + 2 < n:
            hi = _hexval(s[i + 1])
            lo = _hexval(s[i + 2])
            if hi >= 0 and lo >= 0:
                v = hi * 16 + lo
                if _RESERVED[v]:
                    out[o] = c'%'
                    out[o + 1] = _HEX[hi]
                    out[o + 2] = _HEX[lo]
                    o += 3
                else:
                    out[o] = <unsigned char>v
                    o += 1
                i += 3
                continue
        out[o] = s[i]
        o += 1
        i += 1
    return o


cdef inline Py_ssize_t _pop_segment(unsigned char* out, Py_ssize_t o) noexcept nogil:
    # drop the last output segment with its leading "/" (RFC 3986 5.2.4 C)
    while o > 0 and out[o - 1] != c'/':
        o -= 1
    if o > 0:
        o -= 1
    return o


cdef Py_ssize_t _remove_dots(const unsigned char* s, Py_ssize_t n,
                             unsigned char* out) noexcept nogil:
    # Rule 1b+c, in the order kong/tools/uri.lua normalize tests its cases; never grows
    cdef Py_ssize_t i = 0, o = 0, rem
    while i < n:
        rem = n - i
        if rem >= 3 and s[i] == c'.' and s[i + 1] == c'.' and s[i + 2] == c'/':
            i += 3                                      # "../"
            continue
        if rem >= 2 and s[i] == c'.' and s[i + 1] == c'/':
            i += 2                                      # "./"
            continue
        if s[i] == c'/' and rem >= 2 and s[i + 1] == c'.':
            if rem >= 3 and s[i + 2] == c'/':
                i += 2                                  # "/./" -> "/"
                continue
            if rem == 2:                                # final "/." -> "/"
                out[o] = c'/'
                return o + 1
            if s[i + 2] == c'.':
                if rem >= 4 and s[i + 3] == c'/':       # "/../" -> "/", pop a segment
                    o = _pop_segment(out, o)
                    i += 3
                    continue
                if rem == 3:                            # final "/.." -> "/", pop a segment
                    o = _pop_segment(out, o)
                    out[o] = c'/'
                    return o + 1
        if (rem == 1 and s[i] == c'.') or (rem == 2 and s[i] == c'.' and s[i + 1] == c'.'):
            return o
        if rem >= 2 and s[i] == c'/' and s[i + 1] == c'/':
            i += 1                                      # "//" -> "/"
            continue
        out[o] = s[i]                                   # move one segment to the output
        o += 1
        i += 1
        while i < n and s[i] != c'/':
            out[o] = s[i]
            o += 1
            i += 1
    return o


cdef inline bint _needs_dots(const char* s, Py_ssize_t n) noexcept nogil:
    # Kong's own shortcut: no "." and no "//" means Rule 1b+c change nothing
    if memchr(s, c'.', n) != NULL:
        return True
    cdef const char* q = <const char*>memchr(s, c'/', n)
    while q != NULL and q + 1 < s + n:
        if q[1] == c'/':
            return True
        q = <const char*>memchr(q + 1, c'/', n - (q + 1 - s))
    return False


cdef bytes normalize(bytes path):
    """Rule 1."""
    cdef const char* s = PyBytes_AS_STRING(path)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(path), m
    cdef bint pct = memchr(s, c'%', n) != NULL
    if n == 0 or (n == 1 and s[0] == c'/') or (not pct and not _needs_dots(s, n)):
        return path
    cdef unsigned char* buf = <unsigned char*>malloc(2 * n)
    if buf == NULL:
        raise MemoryError()
    try:
        if pct:
            m = _pct_decode(<const unsigned char*>s, n, buf)
        else:
            m = n
            memcpy(buf, s, n)
        m = _remove_dots(buf, m, buf + n)
        if m == n and memcmp(buf + n, s, n) == 0:
            return path
        return PyBytes_FromStringAndSize(<char*>(buf + n), m)
    finally:
        free(buf)


cdef bint needs_escape(const char* s, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        if not _KEEP[<unsigned char>s[i]]:
            return True
    return False


cdef bytes escape(bytes path):
    """Rule 2."""
    cdef const char* s = PyBytes_AS_STRING(path)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(path), i, extra = 0
    cdef unsigned char c
    for i in range(n):
        if not _KEEP[<unsigned char>s[i]]:
            extra += 2
    if extra == 0:
        return path
    cdef bytes out = PyBytes_FromStringAndSize(NULL, n + extra)
    cdef char* o = PyBytes_AS_STRING(out)
    cdef Py_ssize_t j = 0
    for i in range(n):
        c = <unsigned char>s[i]
        if _KEEP[c]:
            o[j] = <char>c
            j += 1
        else:
            o[j] = c'%'
            o[j + 1] = _HEX[c >> 4]
            o[j + 2] = _HEX[c & 15]
            j += 3
    return out


def normalize_path(bytes path not None) -> bytes:
    """Rule 1 (for the proxy, plugins and tests)."""
    return normalize(path)


def escape_path(bytes path not None) -> bytes:
    """Rule 2 (for the proxy, plugins and tests)."""
    return escape(path)
