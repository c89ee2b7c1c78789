# cython: language_level=3
"""Compiled request router with Kong 3.x "traditional_compatible" matching rules.

The routes are compiled OFF the request path into an immutable table (`Router(routes)`), then
`Router.match(method, host, path, headers)` picks the route per request. Sans-IO: bytes in, a
RouteMatch (or None) out; no clocks, no sockets, nothing cached per request.

Rule 1 (what a route matches). A request matches a route when every configured field matches
(fields AND, values OR):
  - hosts: the Host header, lowercased, port split off. "example.com" is exact; "*.example.com"
    means "ends with .example.com"; "example.*" means "starts with example.". A host written with
    a port ("example.com:8080") also requires that port in the Host header (Kong compares the
    listener's port, net.dst.port; this router only sees the Host header, so a Host without a port
    never matches a host:port entry). Without a port in the route the request port is ignored.
  - methods: exact, case-sensitive method token (route methods are uppercased at compile time).
  - headers: name -> values; each named header must be present and its lowercased value must equal
    one of the lowercased values, or, for a value written "~*regex", the regex must be found
    anywhere in it (re.search, case-insensitive, like Kong's lowercase-both-sides). Names are
    ANDed, values ORed. `headers.get(lowercase_name)` gives one value per name.
  - paths: each path is a separate candidate with its own priority. A plain path is a byte prefix
    of the normalized request path ("/foo" also matches "/foobar", like Kong). A path starting
    with "~" is a Python `re` regex matched with re.match, i.e. anchored at the start of the path
    (Kong prefixes "^"; re.match also anchors every alternative of a top-level "|", which is the
    intent of that "^"). "(?<name>" is rewritten to "(?P<name>".

Rule 2 (priority; Kong transform.lua get_priority, compared as a tuple, first difference wins):
  1. match weight, higher first: +1 each for methods, hosts, headers, paths being non-empty;
  2. plain-hosts-only, first: the route has hosts and none of them contains "*" (a route without
     hosts counts as not plain, exactly like Kong 3's priority bit);
  3. header count (number of header names, capped at 255), higher first;
  4. regex path before prefix path (the candidate's own path);
  5. for regex candidates: regex_priority, higher first;
     for prefix candidates: length of the normalized prefix, longer first;
  6. RouteSpec.order, lower first (Kong 3 leaves ties undefined; we use declaration order);
  7. position in the list given to Router(), then the path's index within the route.
  A route without paths is one candidate with kind "none" (sorts after prefix candidates of the
  same weight, since its length is 0).

Rule 3 (path normalization, RFC 3986, applied to the request path and to plain route paths; regex
route paths get steps a and b only, a decoded metacharacter being escaped):
  a. percent-encoded triplets are uppercased ("%3a" -> "%3A");
  b. triplets of unreserved characters (ALPHA DIGIT - . _ ~) are decoded ("%7E" -> "~");
     reserved ones stay encoded, so "%2F" never becomes a path separator;
  c. dot segments are removed (RFC 3986 5.2.4), after decoding, so "%2E%2E" counts as "..".
  Slashes are NOT merged. The normalized path is what is matched and what goes upstream.

Rule 4 (upstream path). postfix = the normalized path after the matched part when strip_path is
set and a path matched (prefix: its length; regex: the whole match), otherwise the path without
its first byte; a postfix of "." or ".." becomes "", a leading "./" or "../" is dropped. With base
= service path ("/" when None):
  v0 (Kong 0.x/2.x/3.x), strip_path true, base ending with "/":
       postfix ""     -> "/" if base == "/", else base if the path ends with "/", else base[:-1]
       postfix "/..." -> base[:-1] + postfix;   otherwise -> base + postfix
  v0, strip_path true, base not ending with "/":
       postfix ""     -> base + "/" if the path is longer than "/" and ends with "/", else base
       postfix "/..." -> base + postfix;        otherwise -> base + "/" + postfix
  v0, strip_path false: base ends with "/": base + path[1:]; else path == "/": base;
       else base + path.
  v1 (Kong 1.x), strip_path true: base + postfix, dropping one "/" when both sides have it;
       strip_path false: base + path[1:].
  (Kong 3 traditional_compatible always uses v0; v1 is kept per route for old configs.)

Rule 5 (captures). Regex matches return the positional groups (a group that did not take part
is "") and the named groups that took part; prefix matches return () and {}.

Performance (Rule 6): candidates live in a C array; entries point to them from three lists,
each in rank order: exact-host buckets (a dict lookup on the lowercased host), wildcard-host
entries, host-agnostic entries. A scan stops at its first match and never looks past the best
rank found in an earlier list. Checks run cheapest first: method bit, port, wildcard host, an
8-byte masked compare + memcmp of the prefix (or of a regex's literal lead), headers, and only
then the regex. Runs of >= ROUTER_MIN_RUN plain-prefix entries of one priority class are
resolved by a binary search per distinct prefix length (longest first) instead of a scan.
Nothing is cached per request. Regexes sharing the same literal lead are still tried one by one
(Python `re`), in priority order.
"""
cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.unicode cimport PyUnicode_DecodeLatin1
from libc.stdint cimport uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memchr, memcmp, memcpy

import re

cdef const char* _HEX = b"0123456789ABCDEF"
cdef int _INT_MAX = 0x7FFFFFFF
cdef tuple _EMPTY = ()


# ---------------------------------------------------------------- byte helpers (no Python)

cdef inline int _hexval(unsigned char c) noexcept nogil:
    if c >= c'0' and c <= c'9':
        return c - c'0'
    if c >= c'a' and c <= c'f':
        return c - c'a' + 10
    if c >= c'A' and c <= c'F':
        return c - c'A' + 10
    return -1


cdef inline bint _unreserved(unsigned char c) noexcept nogil:
    # RFC 3986 2.3
    return ((c >= c'a' and c <= c'z') or (c >= c'A' and c <= c'Z') or (c >= c'0' and c <= c'9')
            or c == c'-' or c == c'.' or c == c'_' or c == c'~')


cdef inline uint64_t _load8(const char* s, Py_ssize_t n) noexcept nogil:
    # first min(n, 8) bytes, zero padded, as a little-endian-independent uint64 (memcpy order)
    cdef uint64_t v = 0
    memcpy(&v, s, n if n < 8 else 8)
    return v


cdef Py_ssize_t _pct_normalize(const unsigned char* s, Py_ssize_t n,
                               unsigned char* out) noexcept nogil:
    # Rule 3 a+b; never grows the input
    cdef Py_ssize_t i = 0, o = 0
    cdef int hi, lo
    cdef unsigned char c, v
    while i < n:
        c = s[i]
        if c == c'%' and i + 2 < n:
            hi = _hexval(s[i + 1])
            lo = _hexval(s[i + 2])
            if hi >= 0 and lo >= 0:
                v = <unsigned char>(hi * 16 + lo)
                if _unreserved(v):
                    out[o] = v
                    o += 1
                else:
                    out[o] = c'%'
                    out[o + 1] = _HEX[hi]
                    out[o + 2] = _HEX[lo]
                    o += 3
                i += 3
                continue
        out[o] = c
        o += 1
        i += 1
    return o


cdef inline Py_ssize_t _pop_segment(unsigned char* out, Py_ssize_t o) noexcept nogil:
    # remove the last segment and its preceding "/" from the output (RFC 3986 5.2.4 C)
    while o > 0 and out[o - 1] != c'/':
        o -= 1
    if o > 0:
        o -= 1
    return o


cdef Py_ssize_t _remove_dots(const unsigned char* s, Py_ssize_t n,
                             unsigned char* out) noexcept nogil:
    # RFC 3986 5.2.4 remove_dot_segments; never grows the input
    cdef Py_ssize_t i = 0, o = 0, rem
    while i < n:
        rem = n - i
        # A: leading "../" or "./"
        if rem >= 3 and s[i] == c'.' and s[i + 1] == c'.' and s[i + 2] == c'/':
            i += 3
            continue
        if rem >= 2 and s[i] == c'.' and s[i + 1] == c'/':
            i += 2
            continue
        if s[i] == c'/' and rem >= 2 and s[i + 1] == c'.':
            # B: "/./" -> "/", final "/." -> "/"
            if rem >= 3 and s[i + 2] == c'/':
                i += 2
                continue
            if rem == 2:
                out[o] = c'/'
                return o + 1
            # C: "/../" -> "/" and drop the last output segment; final "/.." likewise
            if s[i + 2] == c'.':
                if rem >= 4 and s[i + 3] == c'/':
                    o = _pop_segment(out, o)
                    i += 3
                    continue
                if rem == 3:
                    o = _pop_segment(out, o)
                    out[o] = c'/'
                    return o + 1
        # D: the whole rest is "." or ".."
        if (rem == 1 and s[i] == c'.') or (rem == 2 and s[i] == c'.' and s[i + 1] == c'.'):
            return o
        # E: move the first segment (with its leading "/") to the output
        out[o] = s[i]
        o += 1
        i += 1
        while i < n and s[i] != c'/':
            out[o] = s[i]
            o += 1
            i += 1
    return o


cdef inline bint _has_dot_segment(const char* s, Py_ssize_t n) noexcept nogil:
    # a "." or ".." segment: "/." followed by end, "/", or "." + (end or "/")
    cdef const char* q = <const char*>memchr(s, c'.', n)
    cdef Py_ssize_t i
    while q != NULL:
        i = q - s
        if i == 0 or s[i - 1] == c'/':
            if i + 1 == n or s[i + 1] == c'/':
                return True
            if s[i + 1] == c'.' and (i + 2 == n or s[i + 2] == c'/'):
                return True
        if i + 1 >= n:
            break
        q = <const char*>memchr(q + 1, c'.', n - i - 1)
    return False


cdef bytes _normalize(bytes path):
    """Rule 3. Returns `path` itself when nothing changes (the common case: no allocation)."""
    cdef const char* s = PyBytes_AS_STRING(path)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(path), m
    if n == 0 or (memchr(s, c'%', n) == NULL and not _has_dot_segment(s, n)):
        return path
    cdef unsigned char* buf = <unsigned char*>malloc(2 * n)
    if buf == NULL:
        raise MemoryError()
    try:
        m = _pct_normalize(<const unsigned char*>s, n, buf)
        m = _remove_dots(buf, m, buf + n)
        if m == n and memcmp(buf + n, s, n) == 0:
            return path
        return PyBytes_FromStringAndSize(<char*>(buf + n), m)
    finally:
        free(buf)


def normalize_path(bytes path not None) -> bytes:
    """Rule 3 normalization of a request path (exposed for the proxy, plugins and tests)."""
    return _normalize(path)


cdef Py_ssize_t _run_lookup(Run* run, const char* p, Py_ssize_t plen) noexcept nogil:
    """Entry offset of the run's winner for path p (longest prefix, then lowest rank), or -1."""
    cdef Py_ssize_t gi, lo, hi, mid
    cdef RunGroup* g
    cdef RunItem* items = run.items
    for gi in range(run.ngroups):
        g = &run.groups[gi]
        if g.len > plen:
            continue
        lo = g.begin
        hi = g.end
        while lo < hi:      # lower bound of p[:len] among items sorted by bytes
            mid = (lo + hi) >> 1
            if memcmp(items[mid].path, p, g.len) < 0:
                lo = mid + 1
            else:
                hi = mid
        if lo < g.end and memcmp(items[lo].path, p, g.len) == 0:
            return items[lo].entry
    return -1


# ---------------------------------------------------------------- compile-time helpers (Python)

def _pure_prefix(tuple cand_row, tuple entry_row):
    # a candidate whose only condition in this list is its plain prefix
    return (cand_row[3] == PK_PREFIX and cand_row[2] == 0 and cand_row[7] == -1
            and entry_row[1] == HK_ANY and entry_row[3] == -1)


_NAMED_GROUP = re.compile(r"\(\?<(?![=!])")
_REGEX_META = frozenset(".^$*+?{}[]\\|()")


def _rewrite_named_groups(str pat) -> str:
    # PCRE "(?<name>" -> Python "(?P<name>", skipping escaped "(" and character classes
    cdef list out = []
    cdef Py_ssize_t i = 0, n = len(pat)
    cdef bint in_class = False
    while i < n:
        ch = pat[i]
        if ch == "\\":
            out.append(pat[i:i + 2])
            i += 2
            continue
        if in_class:
            if ch == "]":
                in_class = False
        elif ch == "[":
            in_class = True
        elif ch == "(" and _NAMED_GROUP.match(pat, i):
            out.append("(?P<")
            i += 3
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _regex_literal_lead(str pat) -> str:
    """The literal text every match of `pat` starts with ("" when unknown): a cheap prefilter."""
    if "|" in pat:
        return ""
    cdef list out = []
    cdef Py_ssize_t i = 0, n = len(pat), step
    while i < n:
        ch = pat[i]
        if ch == "\\":
            if i + 1 < n and not pat[i + 1].isalnum() and pat[i + 1].isascii():
                lit = pat[i + 1]
                step = 2
            else:
                break
        elif ch in _REGEX_META or not ch.isascii():
            break
        else:
            lit = ch
            step = 1
        nxt = pat[i + step] if i + step < n else ""
        if nxt in ("*", "?", "{"):
            break
        out.append(lit)
        i += step
        if nxt == "+":
            break
    return "".join(out)


def _normalize_regex_path(str pat) -> str:
    # Rule 3 a+b for regex route paths: decoded unreserved characters are escaped
    def repl(m):
        v = int(m.group(1), 16)
        ch = chr(v)
        if ch.isascii() and (ch.isalnum() or ch in "-._~"):
            return re.escape(ch)
        return "%" + m.group(1).upper()
    return re.sub(r"%([0-9A-Fa-f]{2})", repl, pat)


def _encode_route_path(str p) -> bytes:
    # route paths are text; characters outside ASCII are matched in their UTF-8 percent-encoding
    cdef bytearray out = bytearray()
    for b in p.encode("utf-8"):
        if b < 0x80 and b > 0x20:
            out.append(b)
        else:
            out += b"%%%02X" % b
    return bytes(out)


def _split_host_port(str h):
    # "example.com:8080" -> ("example.com", 8080); "[::1]:80" -> ("[::1]", 80); no port -> -1
    if h.startswith("["):
        end = h.find("]")
        if end >= 0 and h[end + 1:end + 2] == ":" and h[end + 2:].isdigit():
            return h[:end + 1], int(h[end + 2:])
        return h, -1
    colon = h.rfind(":")
    if colon >= 0 and h[colon + 1:].isdigit() and h.count(":") == 1:
        return h[:colon], int(h[colon + 1:])
    return h, -1


def _ascii_bytes(str s, key, str field) -> bytes:
    try:
        return s.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError(f"route {key!r}: {field}: {s!r} is not a latin-1 string") from None


# ---------------------------------------------------------------- public classes

cdef class RouteSpec:
    """One route as the router sees it (built by the config compile step)."""

    def __init__(self, key, hosts=None, paths=None, methods=None, headers=None,
                 int regex_priority=0, bint strip_path=True, bint preserve_host=False,
                 str path_handling="v0", service_path=None, int order=0):
        self.key = key
        self.hosts = list(hosts) if hosts else []
        self.paths = list(paths) if paths else []
        self.methods = list(methods) if methods else []
        self.headers = {k: list(v) for k, v in headers.items()} if headers else {}
        self.regex_priority = regex_priority
        self.strip_path = strip_path
        self.preserve_host = preserve_host
        self.path_handling = path_handling
        self.service_path = service_path
        self.order = order

    def __repr__(self):
        return (f"RouteSpec({self.key!r}, hosts={self.hosts!r}, paths={self.paths!r}, "
                f"methods={self.methods!r}, headers={self.headers!r}, "
                f"regex_priority={self.regex_priority}, strip_path={self.strip_path}, "
                f"preserve_host={self.preserve_host}, path_handling={self.path_handling!r}, "
                f"service_path={self.service_path!r}, order={self.order})")


@cython.freelist(32)
cdef class RouteMatch:
    """The result of Router.match: which route, and the path to send upstream."""

    def __repr__(self):
        return (f"RouteMatch(key={self.key!r}, upstream_path={self.upstream_path!r}, "
                f"preserve_host={self.preserve_host}, captures={self.captures!r}, "
                f"named_captures={self.named_captures!r})")


cdef class _Route:
    pass


cdef class _Bucket:
    pass


cdef class Router:
    """Immutable compiled routing table; build off the request path, share read-only."""

    def __cinit__(self):
        self._cands = NULL
        self._entries = NULL
        self._runs = NULL
        self._run_items = NULL
        self._run_groups = NULL
        self._nruns = 0
        self._ncands = 0
        self._nentries = 0
        self._nmeth = 0

    def __dealloc__(self):
        free(self._cands)
        free(self._entries)
        free(self._runs)
        free(self._run_items)
        free(self._run_groups)

    def __init__(self, routes):
        if self._routes is not None:
            raise TypeError("a Router is immutable: build a new one")
        cdef RouteSpec spec
        cdef _Route r
        cdef _Bucket bucket
        cdef Cand* c
        cdef Entry* e
        cdef Py_ssize_t i, j, pos, start
        cdef int bit
        cdef uint64_t mask

        self._routes = []
        self._regexes = []
        patterns = []
        self._headers = []
        self._keep = []
        self._exact = {}
        method_bits = {}
        cand_rows = []     # (sortkey, route_idx, methods, kind, path_bytes, lead_bytes, regex_idx,
                           #  headers_idx, path_text)
        host_rows = []     # per route: list of (kind, host_bytes, port)

        for pos, spec in enumerate(routes):
            key = spec.key
            if not (spec.hosts or spec.paths or spec.methods or spec.headers):
                raise ValueError(f"route {key!r}: needs at least one of hosts, paths, methods, "
                                 f"headers")
            if spec.path_handling not in ("v0", "v1"):
                raise ValueError(f"route {key!r}: path_handling: must be 'v0' or 'v1', got "
                                 f"{spec.path_handling!r}")
            r = _Route.__new__(_Route)
            r.key = key
            r.strip_path = spec.strip_path
            r.preserve_host = spec.preserve_host
            r.v1 = spec.path_handling == "v1"
            sp = spec.service_path
            if sp is None or sp == "":
                r.base = b"/"
            else:
                if not isinstance(sp, str) or not sp.startswith("/"):
                    raise ValueError(f"route {key!r}: service_path: must start with '/', got "
                                     f"{sp!r}")
                r.base = _encode_route_path(sp)
            route_idx = len(self._routes)
            self._routes.append(r)

            # methods -> bit set
            mask = 0
            for m in spec.methods:
                mb = _ascii_bytes(str(m).upper(), key, "methods")
                if mb not in method_bits:
                    if len(method_bits) >= ROUTER_MAX_METHODS:
                        raise ValueError(f"route {key!r}: methods: more than "
                                         f"{ROUTER_MAX_METHODS} distinct methods in the config")
                    bit = len(method_bits)
                    method_bits[mb] = bit
                    self._keep.append(mb)
                    self._meth_name[bit] = PyBytes_AS_STRING(mb)
                    self._meth_len[bit] = PyBytes_GET_SIZE(mb)
                    self._nmeth = bit + 1
                mask |= (<uint64_t>1) << <int>method_bits[mb]

            # hosts
            hosts = []
            plain_only = bool(spec.hosts)
            for j, h in enumerate(spec.hosts):
                field = f"hosts[{j}]"
                hp, port = _split_host_port(str(h).strip().lower())
                if port > 65535:
                    raise ValueError(f"route {key!r}: {field}: bad port in {h!r}")
                if hp.count("*") > 1 or ("*" in hp and not (hp.startswith("*.")
                                                           or hp.endswith(".*"))):
                    raise ValueError(f"route {key!r}: {field}: a wildcard must be the whole "
                                     f"leftmost or rightmost label, got {h!r}")
                if not hp:
                    raise ValueError(f"route {key!r}: {field}: empty host")
                if hp.startswith("*"):
                    plain_only = False
                    hosts.append((HK_SUFFIX, _ascii_bytes(hp[1:], key, field), port))
                elif hp.endswith("*"):
                    plain_only = False
                    hosts.append((HK_PREFIX, _ascii_bytes(hp[:len(hp) - 1], key, field), port))
                else:
                    hosts.append((HK_ANY, _ascii_bytes(hp, key, field), port))
            host_rows.append(hosts)

            # headers
            hdr_idx = -1
            if spec.headers:
                conds = []
                for name, values in spec.headers.items():
                    nb = _ascii_bytes(str(name).lower(), key, f"headers.{name}")
                    exact = set()
                    rxs = []
                    if not values:
                        raise ValueError(f"route {key!r}: headers.{name}: needs at least one "
                                         f"value")
                    for j, v in enumerate(values):
                        field = f"headers.{name}[{j}]"
                        v = str(v)
                        if v.startswith("~*"):
                            try:
                                rxs.append(re.compile(_rewrite_named_groups(v[2:]),
                                                      re.IGNORECASE))
                            except re.error as err:
                                raise ValueError(f"route {key!r}: {field}: invalid regex "
                                                 f"{v[2:]!r}: {err}") from None
                        else:
                            exact.add(_ascii_bytes(v.lower(), key, field))
                    conds.append((nb, frozenset(exact), tuple(rxs)))
                hdr_idx = len(self._headers)
                self._headers.append(tuple(conds))

            weight = ((1 if spec.methods else 0) + (1 if spec.hosts else 0)
                      + (1 if spec.headers else 0) + (1 if spec.paths else 0))
            hcount = min(len(spec.headers), ROUTER_MAX_HEADER_COUNT)
            base_key = (-weight, 0 if plain_only else 1, -hcount)

            if not spec.paths:
                cand_rows.append(((base_key + (1, 0, spec.order, pos, 0)), route_idx, mask,
                                  PK_NONE, None, None, -1, hdr_idx, None))
            for j, p in enumerate(spec.paths):
                field = f"paths[{j}]"
                if not isinstance(p, str) or not p:
                    raise ValueError(f"route {key!r}: {field}: must be a non-empty string")
                if p.startswith("~"):
                    pat = _rewrite_named_groups(_normalize_regex_path(p[1:]))
                    try:
                        rx = re.compile(pat)
                    except re.error as err:
                        raise ValueError(f"route {key!r}: {field}: invalid regex {p[1:]!r}: "
                                         f"{err}") from None
                    lead = _regex_literal_lead(pat).encode("ascii")
                    rx_idx = len(self._regexes)
                    self._regexes.append(rx.match)
                    patterns.append(rx)
                    cand_rows.append(((base_key + (0, -spec.regex_priority, spec.order, pos, j)),
                                      route_idx, mask, PK_REGEX, None, lead, rx_idx, hdr_idx, p))
                else:
                    if not p.startswith("/"):
                        raise ValueError(f"route {key!r}: {field}: a plain path must start "
                                         f"with '/', got {p!r}")
                    pb = _normalize(_encode_route_path(p))
                    cand_rows.append(((base_key + (1, -len(pb), spec.order, pos, j)),
                                      route_idx, mask, PK_PREFIX, pb, None, -1, hdr_idx, p))

        cand_rows.sort(key=lambda row: row[0])
        self._ncands = len(cand_rows)
        self._cands = <Cand*>malloc(max(1, self._ncands) * sizeof(Cand))
        if self._cands == NULL:
            raise MemoryError()
        self._order = []
        exact_lists = {}
        wild_rows = []
        any_rows = []
        for i, row in enumerate(cand_rows):
            c = &self._cands[i]
            c.rank = <int>i
            c.route = <int>row[1]
            c.methods = row[2]
            c.path_kind = row[3]
            c.regex = row[6]
            c.ngroups = patterns[c.regex].groups if c.regex >= 0 else 0
            c.named = bool(patterns[c.regex].groupindex) if c.regex >= 0 else False
            c.headers = row[7]
            pb = row[4] if row[3] == PK_PREFIX else row[5]
            if pb is None:
                pb = b""
            self._keep.append(pb)
            c.path = PyBytes_AS_STRING(pb)
            c.path_len = PyBytes_GET_SIZE(pb)
            c.head = _load8(c.path, c.path_len)
            c.head_mask = _load8(b"\xff\xff\xff\xff\xff\xff\xff\xff",
                                 c.path_len if c.path_len < 8 else 8)
            r = self._routes[c.route]
            self._order.append((r.key, row[8]))
            hosts = host_rows[c.route]
            if not hosts:
                any_rows.append((i, HK_ANY, b"", -1))
            for kind, hb, port in hosts:
                if kind == HK_ANY:
                    exact_lists.setdefault(hb, []).append((i, HK_ANY, b"", port))
                else:
                    wild_rows.append((i, kind, hb, port))

        # one arena: [wild][any][bucket 1][bucket 2]...; each list already in rank order
        self._nentries = len(wild_rows) + len(any_rows) + sum(len(v) for v in exact_lists.values())
        self._entries = <Entry*>malloc(max(1, self._nentries) * sizeof(Entry))
        if self._entries == NULL:
            raise MemoryError()
        cdef Py_ssize_t at = 0
        groups = [(0, None, wild_rows), (1, None, any_rows)]
        groups += [(2, hb, rows) for hb, rows in exact_lists.items()]
        runs = []          # (entry offset of the run's first entry, run end offset, items)
        for which, hb, rows in groups:
            start = at
            for ci, kind, hpat, port in rows:
                e = &self._entries[at]
                e.cand = &self._cands[<Py_ssize_t>ci]
                e.port = <int>port
                e.host_kind = <int>kind
                e.run = -1
                self._keep.append(hpat)
                e.host = PyBytes_AS_STRING(hpat)
                e.host_len = PyBytes_GET_SIZE(hpat)
                at += 1
            # runs of plain-prefix-only entries of one priority class (see router.pxd: Run)
            i = 0
            while i < len(rows):
                j = i
                while j < len(rows) and _pure_prefix(cand_rows[rows[j][0]], rows[j]) and (
                        cand_rows[rows[j][0]][0][:3] == cand_rows[rows[i][0]][0][:3]):
                    j += 1
                if j - i >= ROUTER_MIN_RUN:
                    items = [(cand_rows[rows[k][0]][4], k, rows[k][0]) for k in range(i, j)]
                    runs.append((start + i, j, items))
                    i = j
                else:
                    i += 1
            if which == 0:
                self._wild = self._entries + start
                self._nwild = at - start
            elif which == 1:
                self._any = self._entries + start
                self._nany = at - start
            else:
                bucket = _Bucket.__new__(_Bucket)
                bucket.items = self._entries + start
                bucket.n = at - start
                self._exact[hb] = bucket
        self._need_host = bool(self._exact) or self._nwild > 0
        self._build_runs(runs)

    def _build_runs(self, list runs):
        cdef Py_ssize_t nitems = sum(len(r[2]) for r in runs), ni = 0, ng = 0, ri
        cdef Run* run
        cdef RunItem* it
        cdef RunGroup* g
        ngroups = sum(len({len(pb) for pb, _, _ in r[2]}) for r in runs)
        self._nruns = len(runs)
        self._runs = <Run*>malloc(max(1, self._nruns) * sizeof(Run))
        self._run_items = <RunItem*>malloc(max(1, nitems) * sizeof(RunItem))
        self._run_groups = <RunGroup*>malloc(max(1, ngroups) * sizeof(RunGroup))
        if self._runs == NULL or self._run_items == NULL or self._run_groups == NULL:
            raise MemoryError()
        for ri, (first, end, items) in enumerate(runs):
            run = &self._runs[ri]
            self._entries[<Py_ssize_t>first].run = <int>ri
            run.end = end
            run.items = self._run_items + ni
            run.groups = self._run_groups + ng
            run.ngroups = 0
            # longest first; inside a length, by bytes for the binary search, then by rank
            items = sorted(items, key=lambda t: (-len(t[0]), t[0], t[2]))
            for pb, off, _ in items:
                it = &self._run_items[ni]
                it.path = PyBytes_AS_STRING(pb)
                it.len = PyBytes_GET_SIZE(pb)
                it.entry = off
                if run.ngroups == 0 or run.groups[run.ngroups - 1].len != it.len:
                    g = &run.groups[run.ngroups]
                    g.len = it.len
                    g.begin = ni - (run.items - self._run_items)
                    run.ngroups += 1
                    ng += 1
                ni += 1
                run.groups[run.ngroups - 1].end = ni - (run.items - self._run_items)

    def runs(self):
        """[(number of entries, distinct prefix lengths)] per prefix run (for tests)."""
        return [(self._runs[i].groups[self._runs[i].ngroups - 1].end, self._runs[i].ngroups)
                for i in range(self._nruns)]

    def __len__(self):
        return len(self._routes)

    def priority_order(self):
        """[(route key, path or None)] in the order candidates are tried (for tests, debugging)."""
        return list(self._order)

    cdef bint _headers_match(self, int idx, object headers) except -1:
        cdef tuple conds = <tuple>self._headers[idx]
        if headers is None:
            return False
        for name, exact, rxs in conds:
            v = headers.get(name)
            if v is None:
                return False
            lv = v.lower()
            if lv in exact:
                continue
            if rxs:
                sv = lv.decode("latin-1")
                for rx in rxs:
                    if rx.search(sv) is not None:
                        break
                else:
                    return False
                continue
            return False
        return True

    cpdef RouteMatch match(self, bytes method, bytes host, bytes path, object headers):
        """The best route for a request, or None. See the module docstring for the rules."""
        cdef bytes npath = _normalize(path) if path is not None else b"/"
        cdef const char* p = PyBytes_AS_STRING(npath)
        cdef Py_ssize_t plen = PyBytes_GET_SIZE(npath)
        cdef uint64_t phead = _load8(p, plen)
        cdef uint64_t mbit = 0
        cdef int i
        cdef const char* ms
        cdef Py_ssize_t ml

        if self._nmeth and method is not None:
            ms = PyBytes_AS_STRING(method)
            ml = PyBytes_GET_SIZE(method)
            for i in range(self._nmeth):
                if self._meth_len[i] == ml and memcmp(self._meth_name[i], ms, ml) == 0:
                    mbit = (<uint64_t>1) << i
                    break

        # Host: split the port, lowercase (only copying when needed)
        cdef const char* h = NULL
        cdef Py_ssize_t hlen = 0, k
        cdef int port = -1
        cdef bint upper = False
        cdef const char* close
        cdef bytes hkey = None
        cdef _Bucket bucket = None
        if self._need_host and host is not None and PyBytes_GET_SIZE(host) > 0:
            h = PyBytes_AS_STRING(host)
            hlen = PyBytes_GET_SIZE(host)
            if h[0] == c'[':
                close = <const char*>memchr(h, c']', hlen)
                k = (close - h + 1) if close != NULL else hlen
            else:
                close = <const char*>memchr(h, c':', hlen)
                k = (close - h) if close != NULL else hlen
            if k < hlen and h[k] == c':' and k + 1 < hlen and hlen - k - 1 <= 5:
                port = 0
                for i in range(<int>(k + 1), <int>hlen):
                    if h[i] < c'0' or h[i] > c'9':
                        port = -1
                        break
                    port = port * 10 + (h[i] - c'0')
            hlen = k
            for i in range(<int>hlen):
                if h[i] >= c'A' and h[i] <= c'Z':
                    upper = True
                    break
            if upper:
                hkey = PyBytes_FromStringAndSize(h, hlen).lower()
                h = PyBytes_AS_STRING(hkey)
            elif hlen == PyBytes_GET_SIZE(host):
                hkey = host
            else:
                hkey = PyBytes_FromStringAndSize(h, hlen)
            bucket = <_Bucket>self._exact.get(hkey)

        # Scan the three rank-ordered lists; each stops at its first match or at the best rank.
        cdef Entry* lists[3]
        cdef Py_ssize_t counts[3]
        cdef int nl = 0, li
        cdef Py_ssize_t ei
        cdef Entry* e
        cdef Cand* c
        cdef Cand* best = NULL
        cdef int best_rank = _INT_MAX
        cdef object best_m = None
        cdef object spath = None
        cdef object m
        if bucket is not None:
            lists[nl] = bucket.items
            counts[nl] = bucket.n
            nl += 1
        if h != NULL and self._nwild:
            lists[nl] = self._wild
            counts[nl] = self._nwild
            nl += 1
        if self._nany:
            lists[nl] = self._any
            counts[nl] = self._nany
            nl += 1
        cdef Py_ssize_t found
        cdef Entry* en
        for li in range(nl):
            e = lists[li]
            ei = 0
            while ei < counts[li]:
                c = e[ei].cand
                if c.rank >= best_rank:
                    break
                if e[ei].run >= 0:
                    found = _run_lookup(&self._runs[e[ei].run], p, plen)
                    if found < 0:
                        ei = self._runs[e[ei].run].end
                        continue
                    c = e[found].cand
                    if c.rank < best_rank:
                        best = c
                        best_rank = c.rank
                        best_m = None
                    break
                en = &e[ei]
                ei += 1
                if c.methods and not (c.methods & mbit):
                    continue
                if en.port >= 0 and en.port != port:
                    continue
                if en.host_kind == HK_SUFFIX:
                    if hlen < en.host_len or memcmp(h + hlen - en.host_len, en.host,
                                                    en.host_len) != 0:
                        continue
                elif en.host_kind == HK_PREFIX:
                    if hlen < en.host_len or memcmp(h, en.host, en.host_len) != 0:
                        continue
                if c.path_kind != PK_NONE:
                    # prefix, or the literal lead of a regex: masked 8-byte compare, then memcmp
                    if plen < c.path_len or (phead & c.head_mask) != c.head:
                        continue
                    if c.path_len > 8 and memcmp(p + 8, c.path + 8, c.path_len - 8) != 0:
                        continue
                if c.headers >= 0 and not self._headers_match(c.headers, headers):
                    continue
                m = None
                if c.path_kind == PK_REGEX:
                    if spath is None:
                        spath = PyUnicode_DecodeLatin1(p, plen, NULL)
                    m = self._regexes[c.regex](spath)
                    if m is None:
                        continue
                best = c
                best_rank = c.rank
                best_m = m
                break
        if best == NULL:
            return None
        return self._build(best, npath, best_m)

    cdef RouteMatch _build(self, Cand* c, bytes npath, object m):
        cdef _Route r = <_Route>self._routes[c.route]
        cdef RouteMatch rm = RouteMatch.__new__(RouteMatch)
        rm.key = r.key
        rm.path = npath
        rm.preserve_host = r.preserve_host
        if m is not None:
            if c.ngroups:
                rm.captures = m.groups("")
                if c.named:
                    named = m.groupdict()
                    if None in named.values():
                        named = {k: v for k, v in named.items() if v is not None}
                    rm.named_captures = named
                else:
                    rm.named_captures = {}
            else:
                rm.captures = _EMPTY
                rm.named_captures = {}
        else:
            rm.captures = _EMPTY
            rm.named_captures = {}

        cdef const char* p = PyBytes_AS_STRING(npath)
        cdef Py_ssize_t plen = PyBytes_GET_SIZE(npath)
        cdef const char* b = PyBytes_AS_STRING(r.base)
        cdef Py_ssize_t blen = PyBytes_GET_SIZE(r.base)
        # postfix (Rule 4) as a slice [pf, pf + pflen) of the normalized path
        cdef Py_ssize_t matched
        if r.strip_path and c.path_kind == PK_PREFIX:
            matched = c.path_len
        elif r.strip_path and c.path_kind == PK_REGEX:
            matched = m.end()
        else:
            matched = 1 if plen > 0 else 0
        cdef const char* pf = p + matched
        cdef Py_ssize_t pflen = plen - matched
        if (pflen == 1 and pf[0] == c'.') or (pflen == 2 and pf[0] == c'.' and pf[1] == c'.'):
            pflen = 0
        elif pflen >= 2 and pf[0] == c'.' and pf[1] == c'/':
            pf += 2
            pflen -= 2
        elif pflen >= 3 and pf[0] == c'.' and pf[1] == c'.' and pf[2] == c'/':
            pf += 3
            pflen -= 3

        # result = base[:alen] + ("/" if slash) + tail[:tlen]
        cdef Py_ssize_t alen = blen
        cdef bint slash = False
        cdef const char* tail = pf
        cdef Py_ssize_t tlen = pflen
        cdef bint base_slash = blen > 0 and b[blen - 1] == c'/'
        cdef bint req_slash = plen > 0 and p[plen - 1] == c'/'
        if r.v1:
            if r.strip_path:
                if base_slash and pflen > 0 and pf[0] == c'/':
                    alen = blen - 1
            else:
                tail = p + 1 if plen > 0 else p
                tlen = plen - 1 if plen > 0 else 0
        elif r.strip_path:
            if pflen == 0:
                if base_slash:
                    if not (blen == 1 or req_slash):
                        alen = blen - 1
                elif plen > 1 and req_slash:
                    slash = True
            elif pf[0] == c'/':
                if base_slash:
                    alen = blen - 1
            elif not base_slash:
                slash = True
        elif base_slash:
            tail = p + 1 if plen > 0 else p
            tlen = plen - 1 if plen > 0 else 0
        elif plen == 1 and p[0] == c'/':
            tlen = 0
        else:
            tail = p
            tlen = plen

        cdef Py_ssize_t total = alen + slash + tlen
        # the common "/" service with an unchanged path: reuse the request's bytes object
        if (total == plen and memcmp(b, p, alen) == 0 and (not slash or p[alen] == c'/')
                and memcmp(tail, p + alen + slash, tlen) == 0):
            rm.upstream_path = npath
            return rm
        cdef bytes out = PyBytes_FromStringAndSize(NULL, total)
        cdef char* o = PyBytes_AS_STRING(out)
        memcpy(o, b, alen)
        if slash:
            o[alen] = c'/'
        memcpy(o + alen + slash, tail, tlen)
        rm.upstream_path = out
        return rm
