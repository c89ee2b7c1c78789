# PCRE2 binding for route regexes (see regex.pyx for the rules).
from libc.stdint cimport uint32_t

cdef extern from "pcre2_8.h":
    ctypedef struct pcre2_code:
        pass
    ctypedef struct pcre2_match_data:
        pass
    ctypedef struct pcre2_match_context:
        pass
    ctypedef struct pcre2_general_context:
        pass
    ctypedef struct pcre2_compile_context:
        pass
    ctypedef unsigned char PCRE2_UCHAR
    ctypedef const unsigned char* PCRE2_SPTR
    ctypedef size_t PCRE2_SIZE

    uint32_t PCRE2_ANCHORED
    uint32_t PCRE2_NO_UTF_CHECK
    uint32_t PCRE2_CASELESS
    uint32_t FASTGW_PCRE2_UTF_OPTIONS   # pcre2_8.h: PCRE2_UTF | PCRE2_MATCH_INVALID_UTF
    uint32_t PCRE2_NEVER_BACKSLASH_C
    uint32_t PCRE2_JIT_COMPLETE
    int PCRE2_ERROR_NOMATCH
    int PCRE2_INFO_CAPTURECOUNT
    int PCRE2_INFO_NAMECOUNT
    int PCRE2_INFO_NAMEENTRYSIZE
    int PCRE2_INFO_NAMETABLE
    PCRE2_SIZE PCRE2_UNSET
    PCRE2_SIZE PCRE2_ZERO_TERMINATED

    pcre2_code* pcre2_compile(PCRE2_SPTR pattern, PCRE2_SIZE length, uint32_t options,
                              int* errorcode, PCRE2_SIZE* erroroffset,
                              pcre2_compile_context* ccontext) nogil
    void pcre2_code_free(pcre2_code* code) nogil
    int pcre2_jit_compile(pcre2_code* code, uint32_t options) nogil
    int pcre2_pattern_info(const pcre2_code* code, uint32_t what, void* where) nogil
    int pcre2_get_error_message(int errorcode, PCRE2_UCHAR* buffer, PCRE2_SIZE bufflen) nogil
    pcre2_match_data* pcre2_match_data_create_from_pattern(const pcre2_code* code,
                                                           pcre2_general_context* gcontext) nogil
    void pcre2_match_data_free(pcre2_match_data* match_data) nogil
    PCRE2_SIZE* pcre2_get_ovector_pointer(pcre2_match_data* match_data) nogil
    pcre2_match_context* pcre2_match_context_create(pcre2_general_context* gcontext) nogil
    void pcre2_match_context_free(pcre2_match_context* mcontext) nogil
    int pcre2_set_match_limit(pcre2_match_context* mcontext, uint32_t value) nogil
    int pcre2_set_depth_limit(pcre2_match_context* mcontext, uint32_t value) nogil
    int pcre2_set_heap_limit(pcre2_match_context* mcontext, uint32_t value) nogil
    int pcre2_match(const pcre2_code* code, PCRE2_SPTR subject, PCRE2_SIZE length,
                    PCRE2_SIZE startoffset, uint32_t options, pcre2_match_data* match_data,
                    pcre2_match_context* mcontext) nogil


cdef enum:
    # Backtracking steps one match may take. PCRE2's own default is 10,000,000 and OpenResty's
    # lua_regex_match_limit inherits it; ModSecurity's SecPcreMatchLimit defaults to 1,000 and
    # the OWASP CRS setup raises it to 100,000 for request data. Route regexes run on every
    # request on the event loop, so the CRS figure: a pattern that needs more is pathological
    # (the ReDoS route "(a+)+$" stops within ~1 ms with JIT) and the route does not match.
    REGEX_MATCH_LIMIT = 100000
    # Nested backtracking depth (PCRE2 default 10,000,000; the interpreter only, JIT has its
    # own stack, 32 KiB by default, whose exhaustion is also a no-match).
    REGEX_DEPTH_LIMIT = 10000
    # Heap the interpreter may use for one match, in KiB (PCRE2 default 20,000,000 KiB).
    REGEX_HEAP_LIMIT_KIB = 1024
    # Distinct compiled patterns kept for reuse between config snapshots (a reload with the
    # same routes compiles nothing); cleared when full. Kong caches compiled route regexes in
    # ngx.re's "o" cache, lua_regex_cache_max_entries = 1024 by default.
    REGEX_CACHE_MAX = 4096


cdef class Regex:
    cdef pcre2_code* code
    cdef pcre2_match_data* md
    cdef PCRE2_SIZE* ov
    cdef readonly str pattern
    cdef readonly bint caseless
    cdef readonly bint jit              # compiled to machine code
    cdef readonly int groups            # number of capture groups
    cdef readonly dict groupindex       # name -> group number
    cdef readonly tuple names           # per group number 1..groups: its name or None

    # >0: match (ov() holds 2 * (groups + 1) offsets); 0: no match; <0: the match limit, depth
    # limit or JIT stack ran out (counts as no match, the caller may log it)
    cdef int exec(self, const char* s, Py_ssize_t n, bint anchored) noexcept
    cdef tuple spans(self)
    cdef tuple texts(self, const char* s)
    cdef dict named_texts(self, const char* s)


cdef Regex compile_regex(str pattern, bint caseless)
