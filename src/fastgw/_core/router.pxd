# Compiled request router (Kong 3.x "traditional_compatible" rules). See router.pyx for the rules.
#
# Layout: the routes are compiled once into a flat C array of candidates (one per route path),
# ranked by Kong's priority, plus three entry lists that point into it:
#   exact-host buckets (dict lowercase host -> _Bucket), wildcard-host entries, host-agnostic
#   entries. Each list is sorted by candidate rank, so a scan stops at the first match and never
#   looks past the best rank already found in an earlier list.
from libc.stdint cimport int64_t, uint64_t

from fastgw._core.regex cimport Regex

cdef enum:
    ROUTER_MAX_METHODS = 64     # distinct method names across a config (one bit each in a uint64)
    ROUTER_MAX_HEADER_COUNT = 255  # Kong caps the header count used for sorting at 255
    ROUTER_MIN_RUN = 8          # shorter runs of plain prefixes are scanned (cheaper than search)

cdef enum PathKind:
    PK_NONE = 0                 # route has no paths: any path matches
    PK_PREFIX = 1               # plain prefix (byte compare, not segment-aware, like Kong)
    PK_REGEX = 2                # "~" regex, anchored at the start of the path

cdef enum HostKind:
    HK_ANY = 0                  # host-agnostic entry, or exact host already selected by bucket
    HK_SUFFIX = 1               # "*.example.com": host ends with ".example.com"
    HK_PREFIX = 2               # "example.*": host starts with "example."

ctypedef struct Cand:
    int rank                    # position in the global priority order (0 = tried first)
    int route                   # index into Router._routes
    uint64_t methods            # bit set of allowed methods; 0 = any method
    int path_kind               # PathKind
    const char* path            # PK_PREFIX: the normalized prefix; PK_REGEX: its literal lead
    Py_ssize_t path_len
    uint64_t head               # first <= 8 bytes of `path` (little-endian load), prefilter
    uint64_t head_mask          # mask of the bytes of `head` that are part of `path`
    int regex                   # index into Router._regexes (PK_REGEX), else -1
    int headers                 # index into Router._headers, -1 = no header conditions
    int snis                    # index into Router._snis, -1 = no sni conditions

ctypedef struct Entry:
    Cand* cand
    int port                    # required Host port, -1 = any
    int host_kind               # HostKind
    const char* host            # wildcard remainder (".example.com" / "example.")
    Py_ssize_t host_len
    int run                     # index into Router._runs when a Run starts here, else -1

# A run: consecutive entries of one list (so consecutive ranks there) that are all plain
# prefixes with no other condition and the same weight/plain-host/header-count class. Inside a
# run the winner is the longest matching prefix (ties: lowest rank), so it is found by a binary
# search per distinct prefix length instead of a scan.
ctypedef struct RunItem:
    const char* path
    Py_ssize_t len
    Py_ssize_t entry            # offset of the entry in its list

ctypedef struct RunGroup:
    Py_ssize_t len              # prefix length of this group (groups: longest first)
    Py_ssize_t begin            # items[begin:end], sorted by (bytes, rank)
    Py_ssize_t end

ctypedef struct Run:
    Py_ssize_t end              # offset one past the run's last entry in its list
    RunItem* items
    RunGroup* groups
    Py_ssize_t ngroups


cdef class RouteSpec:
    cdef readonly object key
    cdef readonly str id                # tie-break between equal priorities (Rule 2.6)
    cdef readonly list hosts
    cdef readonly list paths
    cdef readonly list methods
    cdef readonly dict headers
    cdef readonly list snis
    cdef readonly int64_t regex_priority   # Kong allows any integer up to 2^53
    cdef readonly bint strip_path
    cdef readonly bint preserve_host
    cdef readonly str path_handling
    cdef readonly object service_path


cdef class RouteMatch:
    cdef readonly object key
    cdef readonly bytes upstream_path   # on-the-wire path for the upstream request (no query)
    cdef readonly bytes path            # the normalized request path that was matched
    cdef readonly bytes prefix          # X-Forwarded-Prefix (Rule 4), or None
    cdef readonly bint preserve_host
    cdef readonly tuple captures        # positional regex captures, () for prefix matches
    cdef readonly dict named_captures   # named regex captures, {} for prefix matches


cdef class _Route:
    # per-route data needed after a match (one per RouteSpec)
    cdef object key
    cdef bint strip_path
    cdef bint preserve_host
    cdef bint v1                        # path_handling == "v1"
    cdef bytes base                     # service path ("/" when None)


cdef class _Bucket:
    # the entries of one exact host: a slice of Router._entries
    cdef Entry* items
    cdef Py_ssize_t n


cdef class Router:
    cdef Cand* _cands
    cdef Py_ssize_t _ncands
    cdef Entry* _entries                # arena for all entry lists
    cdef Py_ssize_t _nentries
    cdef Entry* _wild
    cdef Py_ssize_t _nwild
    cdef Entry* _any
    cdef Py_ssize_t _nany
    cdef dict _exact                    # bytes (lowercase host, no port) -> _Bucket
    cdef bint _need_host                # some route has hosts
    cdef list _routes                   # _Route per RouteSpec, in input order
    cdef list _regexes                  # Regex per PK_REGEX candidate
    cdef Run* _runs
    cdef Py_ssize_t _nruns
    cdef RunItem* _run_items
    cdef RunGroup* _run_groups
    cdef list _headers                  # per header-bearing route: tuple of (name, values, regexes)
    cdef list _snis                     # per sni-bearing route: tuple of (HostKind, bytes)
    cdef readonly Py_ssize_t regex_limit_hits   # regex matches stopped by their match limit
    cdef list _keep                     # bytes objects the C arrays point into
    cdef list _order                    # (key, path) per candidate in rank order (introspection)
    cdef int _nmeth
    cdef const char* _meth_name[ROUTER_MAX_METHODS]
    cdef Py_ssize_t _meth_len[ROUTER_MAX_METHODS]

    cpdef RouteMatch match(self, bytes method, bytes host, bytes path, object headers,
                           bytes sni=*, int port=*)
    cdef bint _headers_match(self, int idx, object headers) except -1
    cdef bint _sni_match(self, int idx, bytes sni) except -1
    cdef RouteMatch _build(self, Cand* c, bytes npath, Regex rx)
