# cython: language_level=3
"""Route regexes on PCRE2, JIT-compiled, with match limits.

Why PCRE2 (and not Python's `re`, nor RE2):
  - Python's `re` backtracks without a bound and runs on the event loop: one route such as
    "~/redos/(a+)+$" and a 33-byte path froze every client for seconds.
  - PCRE2 is the dialect Kong's route regexes are written in (ngx.re: the traditional router
    and the schema's dry run, kong/db/schema/typedefs.lua validate_path_with_regexes), so
    "(?<name>...)", lookarounds and backreferences keep working without a rewriter. RE2 (and
    the Rust `regex` crate Kong's ATC router uses) refuse lookarounds and backreferences; the
    match limits below bound what they would otherwise cost.
  - Matching is a C call on the path's bytes: no str object per request, captures only built
    when a route with groups wins.

Rules:
  1. A pattern is compiled once (a small cache keeps it across snapshots), with PCRE2_UTF |
     PCRE2_MATCH_INVALID_UTF (subjects are bytes that may not be UTF-8: an invalid sequence just
     does not match a character; pcre2_8.h for PCRE2 < 10.34) and PCRE2_NEVER_BACKSLASH_C, then
     JIT-compiled when the platform supports it (the interpreter otherwise, same limits).
  2. Every match runs under REGEX_MATCH_LIMIT / REGEX_DEPTH_LIMIT / REGEX_HEAP_LIMIT_KIB (see
     regex.pxd). Running out of any of them, or of the JIT stack, is "no match", reported as a
     negative result so the caller can count or log it; it is never an exception.
  3. A pattern PCRE2 refuses raises RegexError (a ValueError) with PCRE2's message and offset.
  4. Captured text is decoded latin-1 (one character per byte, so plugins that encode it back
     with latin-1 get the request's bytes exactly). A group that did not take part is "" in
     `texts` and absent from `named_texts`.
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.unicode cimport PyUnicode_DecodeLatin1
from libc.stdint cimport uint32_t
from libc.string cimport memcpy


class RegexError(ValueError):
    """A pattern PCRE2 refuses: `message` is PCRE2's text, `offset` where it stopped."""

    def __init__(self, str message, int offset):
        super().__init__(f"{message} at offset {offset}")
        self.message = message
        self.offset = offset


cdef pcre2_match_context* _mctx = pcre2_match_context_create(NULL)
if _mctx == NULL:
    raise MemoryError()
pcre2_set_match_limit(_mctx, REGEX_MATCH_LIMIT)
pcre2_set_depth_limit(_mctx, REGEX_DEPTH_LIMIT)
pcre2_set_heap_limit(_mctx, REGEX_HEAP_LIMIT_KIB)

cdef dict _cache = {}


cdef str _error_text(int code):
    cdef PCRE2_UCHAR buf[256]
    cdef int n = pcre2_get_error_message(code, buf, sizeof(buf))
    if n < 0:
        return f"PCRE2 error {code}"
    return (<char*>buf)[:n].decode("utf-8", "replace")


cdef class Regex:
    """One compiled pattern. Use compile_regex() (cached) rather than the constructor."""

    def __cinit__(self):
        self.code = NULL
        self.md = NULL
        self.ov = NULL

    def __dealloc__(self):
        if self.md != NULL:
            pcre2_match_data_free(self.md)
        if self.code != NULL:
            pcre2_code_free(self.code)

    def __init__(self, str pattern not None, bint caseless=False):
        if self.code != NULL:
            raise TypeError("a Regex is immutable")
        cdef bytes pb = pattern.encode("utf-8", "surrogatepass")
        cdef int err = 0
        cdef PCRE2_SIZE erroff = 0
        cdef uint32_t opts = FASTGW_PCRE2_UTF_OPTIONS | PCRE2_NEVER_BACKSLASH_C
        if caseless:
            opts |= PCRE2_CASELESS
        self.code = pcre2_compile(<PCRE2_SPTR>PyBytes_AS_STRING(pb), PyBytes_GET_SIZE(pb),
                                  opts, &err, &erroff, NULL)
        if self.code == NULL:
            raise RegexError(_error_text(err), <int>erroff)
        self.pattern = pattern
        self.caseless = caseless
        self.jit = pcre2_jit_compile(self.code, PCRE2_JIT_COMPLETE) == 0
        cdef uint32_t ngroups = 0, namecount = 0, entrysize = 0
        cdef PCRE2_SPTR table = NULL
        pcre2_pattern_info(self.code, PCRE2_INFO_CAPTURECOUNT, &ngroups)
        pcre2_pattern_info(self.code, PCRE2_INFO_NAMECOUNT, &namecount)
        pcre2_pattern_info(self.code, PCRE2_INFO_NAMEENTRYSIZE, &entrysize)
        pcre2_pattern_info(self.code, PCRE2_INFO_NAMETABLE, &table)
        self.groups = <int>ngroups
        self.groupindex = {}
        names = [None] * self.groups
        cdef uint32_t i, num
        cdef const unsigned char* entry
        for i in range(namecount):
            # each entry: the group number in two bytes (big-endian), then the name, NUL ended
            entry = table + i * entrysize
            num = (entry[0] << 8) | entry[1]
            name = (<const char*>(entry + 2)).decode("utf-8", "replace")
            self.groupindex[name] = <int>num
            names[num - 1] = name
        self.names = tuple(names)
        self.md = pcre2_match_data_create_from_pattern(self.code, NULL)
        if self.md == NULL:
            raise MemoryError()
        self.ov = pcre2_get_ovector_pointer(self.md)

    def __repr__(self):
        return f"Regex({self.pattern!r}, caseless={self.caseless})"

    cdef int exec(self, const char* s, Py_ssize_t n, bint anchored) noexcept:
        cdef int rc = pcre2_match(self.code, <PCRE2_SPTR>s, <PCRE2_SIZE>n, 0,
                                  PCRE2_ANCHORED if anchored else 0, self.md, _mctx)
        if rc > 0:
            return rc
        if rc == PCRE2_ERROR_NOMATCH:
            return 0
        return rc if rc < 0 else 1      # rc == 0: the ovector was too small (cannot happen)

    cdef tuple spans(self):
        # (start, end) of the whole match and of each group; (-1, -1) for an unset group
        cdef list out = []
        cdef int i
        for i in range(self.groups + 1):
            if self.ov[2 * i] == PCRE2_UNSET:
                out.append((-1, -1))
            else:
                out.append((<Py_ssize_t>self.ov[2 * i], <Py_ssize_t>self.ov[2 * i + 1]))
        return tuple(out)

    cdef tuple texts(self, const char* s):
        cdef list out = []
        cdef int i
        cdef PCRE2_SIZE a, b
        for i in range(1, self.groups + 1):
            a = self.ov[2 * i]
            b = self.ov[2 * i + 1]
            if a == PCRE2_UNSET:
                out.append("")
            else:
                out.append(PyUnicode_DecodeLatin1(s + a, <Py_ssize_t>(b - a), NULL))
        return tuple(out)

    cdef dict named_texts(self, const char* s):
        cdef dict out = {}
        cdef PCRE2_SIZE a
        for name, num in self.groupindex.items():
            a = self.ov[2 * <int>num]
            if a != PCRE2_UNSET:
                out[name] = PyUnicode_DecodeLatin1(
                    s + a, <Py_ssize_t>(self.ov[2 * <int>num + 1] - a), NULL)
        return out

    def search(self, data, bint anchored=False):
        """Spans ((start, end) for the match, then per group) or None; bytes or str (UTF-8).
        A match that runs out of its limits is None, like no match (Rule 2)."""
        cdef bytes b = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
        if self.exec(PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b), anchored) <= 0:
            return None
        return self.spans()

    def status(self, bytes data not None, bint anchored=False) -> int:
        """The raw result of one match (Regex.exec): > 0 match, 0 no match, < 0 PCRE2 error
        (-47 match limit, -53 depth limit, -46 JIT stack, -63 heap limit)."""
        return self.exec(PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data), anchored)


cdef Regex compile_regex(str pattern, bint caseless):
    """Rule 1: compiled once, kept while the cache has room."""
    key = (pattern, caseless)
    cdef Regex rx = <Regex>_cache.get(key)
    if rx is not None:
        return rx
    rx = Regex(pattern, caseless)
    if len(_cache) >= REGEX_CACHE_MAX:
        _cache.clear()
    _cache[key] = rx
    return rx


def compile(str pattern not None, bint caseless=False) -> Regex:
    """compile_regex for Python callers (config validation, plugins, tests)."""
    return compile_regex(pattern, caseless)


MATCH_LIMIT = REGEX_MATCH_LIMIT
