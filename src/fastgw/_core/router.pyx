# cython: language_level=3
"""Compiled request router with Kong 3.x "traditional_compatible" matching rules.

The routes are compiled OFF the request path into an immutable table (`Router(routes)`), then
`Router.match(method, host, path, headers, sni)` picks the route per request. Sans-IO: bytes in,
a RouteMatch (or None) out; no clocks, no sockets, nothing cached per request.

Rule 0 (validation: the one place route fields are checked). `route_errors(spec)` returns every
problem of a RouteSpec as (field, message) with Kong's schema messages
(kong/db/schema/typedefs.lua, entities/routes.lua); config/model.py reports them with the
route's path, Router() raises RouteError on the first. Plain paths must already be in Kong's
normal form (Rule 3), as Kong's schema demands ("non-normalized path, consider use ...").

Rule 1 (what a route matches). A request matches a route when every configured field matches
(fields AND, values OR):
  - hosts: the Host header, lowercased, port split off. "example.com" is exact; "*.example.com"
    means "ends with .example.com"; "example.*" means "starts with example.". A host written with
    a port ("example.com:8080") also requires that port: the Host header's, or when it has none
    the port the request came in on (`match(port=)`; Kong fields.lua net.dst.port falls back to
    the server port). Without a port in the route the request port is ignored.
  - methods: exact, case-sensitive method token.
  - headers: name -> values. Route header names are lowercased with "_" read as "-" (Kong's
    router names the field http.headers.<lower name, "-" -> "_">, and nginx finds a request
    header by that name). `headers.get(name)` returns the request's value, or a list of values
    when the header came on several lines; the route matches when ANY line, lowercased, equals
    one of the lowercased values, or, for a value written "~*regex", contains a match of the
    regex (PCRE2, caseless, unanchored). Names are ANDed, values ORed (Kong transform.lua:
    `any(lower(http.headers.x)) == v`).
  - snis: only for requests that came over TLS (`sni` is not None); plain-http requests ignore
    them (transform.lua: `net.protocol != "https" || tls.sni == ...`). "*.x" / "x.*" wildcards.
  - paths: each path is a separate candidate with its own priority. A plain path is a byte prefix
    of the normalized request path ("/foo" also matches "/foobar", like Kong). A path starting
    with "~" is a PCRE2 regex (fastgw._core.regex: JIT, match limits) matched anchored at the
    start of the path (Kong's traditional router passes the "a" flag; traditional_compatible
    prefixes "^"). Kong's syntax, named groups "(?<name>...)" included, is taken as it is.

Rule 2 (priority; Kong transform.lua get_priority, compared as a tuple, first difference wins):
  1. match weight, higher first: +1 each for methods, hosts, headers, paths, snis non-empty;
  2. plain-hosts-only first: the route has hosts and none of them contains "*";
  3. header count (number of header names, capped at 255), higher first;
  4. regex path before prefix path (the candidate's own path);
  5. regex candidates: regex_priority, higher first; prefix candidates: prefix length, longer
     first;
  6. route id, HIGHER first: the ATC router keeps its matchers in a BTreeMap keyed by
     (priority, uuid) and tries them in reverse (atc-router src/router.rs `matchers.iter().rev()`);
  7. position in the list given to Router(), then the path's index within the route.
  A route without paths is one candidate with kind "none" (sorts after prefix candidates of the
  same weight, since its length is 0).

Rule 3 (path normalization): the request path is normalized as Kong does (fastgw._core.uri
Rule 1: percent-decoding of everything but reserved characters, dot segments removed, "//"
merged). The normalized path is what is matched; what goes upstream is built from it (Rule 4)
and escaped again (uri Rule 2), as Kong's runloop does.

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
  `prefix` is the matched part when strip_path is set, a path matched and it is not "/" (Kong
  handler.lua: X-Forwarded-Prefix = match_t.prefix), escaped; otherwise None.

Rule 5 (captures). Regex matches return the positional groups (a group that did not take part
is "") and the named groups that took part, decoded latin-1; prefix matches return () and {}.
A regex that runs out of its match limit does not match (the count is in `regex_limit_hits`).

Performance (Rule 6): candidates live in a C array; entries point to them from three lists,
each in rank order: exact-host buckets (a dict lookup on the lowercased host), wildcard-host
entries, host-agnostic entries. A scan stops at its first match and never looks past the best
rank found in an earlier list. Checks run cheapest first: method bit, port, wildcard host, an
8-byte masked compare + memcmp of the prefix (or of a regex's literal lead), snis, headers, and
only then the regex. Runs of >= ROUTER_MIN_RUN plain-prefix entries of one priority class are
resolved by a binary search per distinct prefix length (longest first) instead of a scan.
"""
cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdint cimport int64_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memchr, memcmp, memcpy

from fastgw._core.regex cimport Regex, compile_regex
from fastgw._core.uri cimport escape, normalize

from fastgw._core.regex import RegexError
from fastgw._core.uri import normalize_path  # re-exported: the router's Rule 3

include "router_check.pxi"

cdef int _INT_MAX = 0x7FFFFFFF
cdef tuple _EMPTY = ()


cdef inline uint64_t _load8(const char* s, Py_ssize_t n) noexcept nogil:
    # first min(n, 8) bytes, zero padded, as a uint64 in memory order
    cdef uint64_t v = 0
    memcpy(&v, s, n if n < 8 else 8)
    return v


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


def _pure_prefix(tuple cand_row, tuple entry_row):
    # a candidate whose only condition in this list is its plain prefix
    return (cand_row[3] == PK_PREFIX and cand_row[2] == 0 and cand_row[7] == -1
            and cand_row[9] == -1 and entry_row[1] == HK_ANY and entry_row[3] == -1)


# ---------------------------------------------------------------- public classes

cdef class RouteSpec:
    """One route as the router sees it (built by the config compile step)."""

    def __init__(self, key, hosts=None, paths=None, methods=None, headers=None,
                 int64_t regex_priority=0, bint strip_path=True, bint preserve_host=False,
                 str path_handling="v0", service_path=None, id=None, snis=None):
        self.key = key
        self.id = str(id) if id is not None else ""
        self.hosts = list(hosts) if hosts else []
        self.paths = list(paths) if paths else []
        self.methods = list(methods) if methods else []
        self.headers = {k: list(v) for k, v in headers.items()} if headers else {}
        self.snis = list(snis) if snis else []
        self.regex_priority = regex_priority
        self.strip_path = strip_path
        self.preserve_host = preserve_host
        self.path_handling = path_handling
        self.service_path = service_path

    def __repr__(self):
        return (f"RouteSpec({self.key!r}, hosts={self.hosts!r}, paths={self.paths!r}, "
                f"methods={self.methods!r}, headers={self.headers!r}, snis={self.snis!r}, "
                f"regex_priority={self.regex_priority}, strip_path={self.strip_path}, "
                f"preserve_host={self.preserve_host}, path_handling={self.path_handling!r}, "
                f"service_path={self.service_path!r}, id={self.id!r})")


@cython.freelist(32)
cdef class RouteMatch:
    """The result of Router.match: which route, and the path to send upstream."""

    def __repr__(self):
        return (f"RouteMatch(key={self.key!r}, upstream_path={self.upstream_path!r}, "
                f"prefix={self.prefix!r}, preserve_host={self.preserve_host}, "
                f"captures={self.captures!r}, named_captures={self.named_captures!r})")


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
        self.regex_limit_hits = 0

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
        self._headers = []
        self._snis = []
        self._keep = []
        self._exact = {}
        method_bits = {}
        cand_rows = []     # (sortkey, route_idx, methods, kind, path_bytes, lead_bytes, regex_idx,
                           #  headers_idx, path_text, snis_idx)
        host_rows = []     # per route: list of (kind, host_bytes, port)

        for pos, spec in enumerate(routes):
            key = spec.key
            errs = route_errors(spec)
            if errs:
                raise RouteError(key, errs[0][0], errs[0][1])
            r = _Route.__new__(_Route)
            r.key = key
            r.strip_path = spec.strip_path
            r.preserve_host = spec.preserve_host
            r.v1 = spec.path_handling == "v1"
            sp = spec.service_path
            r.base = escape(sp.encode("utf-8")) if sp else b"/"
            route_idx = len(self._routes)
            self._routes.append(r)

            # methods -> bit set
            mask = 0
            for m in spec.methods:
                mb = m.encode("latin-1")
                if mb not in method_bits:
                    if len(method_bits) >= ROUTER_MAX_METHODS:
                        raise RouteError(key, ("methods",), f"more than {ROUTER_MAX_METHODS} "
                                                            "distinct methods in the config")
                    bit = len(method_bits)
                    method_bits[mb] = bit
                    self._keep.append(mb)
                    self._meth_name[bit] = PyBytes_AS_STRING(mb)
                    self._meth_len[bit] = PyBytes_GET_SIZE(mb)
                    self._nmeth = bit + 1
                mask |= (<uint64_t>1) << <int>method_bits[mb]

            host_rows.append(_host_rows(spec.hosts))
            plain_only = bool(spec.hosts) and not any("*" in h for h in spec.hosts)

            sni_idx = -1
            if spec.snis:
                sni_idx = len(self._snis)
                self._snis.append(tuple((kind, hb) for kind, hb, _ in _host_rows(
                    [h[:len(h) - 1] if len(h) > 1 and h.endswith(".") else h
                     for h in spec.snis])))

            hdr_idx = -1
            if spec.headers:
                conds = []
                for name, values in spec.headers.items():
                    exact = set()
                    rxs = []
                    for v in values:
                        if v.startswith("~*"):
                            rxs.append(compile_regex(v[2:], True))
                        else:
                            exact.add(v.encode("latin-1").lower())  # ASCII lowercasing
                    conds.append((header_field(name), frozenset(exact), tuple(rxs)))
                hdr_idx = len(self._headers)
                self._headers.append(tuple(conds))

            weight = ((1 if spec.methods else 0) + (1 if spec.hosts else 0)
                      + (1 if spec.headers else 0) + (1 if spec.paths else 0)
                      + (1 if spec.snis else 0))
            hcount = min(len(spec.headers), ROUTER_MAX_HEADER_COUNT)
            base_key = (-weight, 0 if plain_only else 1, -hcount)
            tie = (_desc(spec.id), pos)

            if not spec.paths:
                cand_rows.append(((base_key + (1, 0) + tie + (0,)), route_idx, mask,
                                  PK_NONE, None, None, -1, hdr_idx, None, sni_idx))
            for j, p in enumerate(spec.paths):
                if p.startswith("~"):
                    rx = compile_regex(p[1:], False)
                    lead = _regex_literal_lead(p[1:]).encode("ascii")
                    rx_idx = len(self._regexes)
                    self._regexes.append(rx)
                    cand_rows.append(((base_key + (0, -spec.regex_priority) + tie + (j,)),
                                      route_idx, mask, PK_REGEX, None, lead, rx_idx, hdr_idx, p,
                                      sni_idx))
                else:
                    pb = p.encode("utf-8")
                    cand_rows.append(((base_key + (1, -len(pb)) + tie + (j,)),
                                      route_idx, mask, PK_PREFIX, pb, None, -1, hdr_idx, p,
                                      sni_idx))

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
            c.headers = row[7]
            c.snis = row[9]
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
        cdef Regex rx
        cdef bytes lv
        if headers is None:
            return False
        for name, exact, rxs in conds:
            v = headers.get(name)
            if v is None:
                return False
            # Rule 1: one value, or one per line when the header came on several lines
            for line in ((v,) if isinstance(v, bytes) else v):
                lv = line.lower()
                if lv in exact:
                    break
                for rx in rxs:
                    if rx.exec(PyBytes_AS_STRING(lv), PyBytes_GET_SIZE(lv), False) > 0:
                        break
                else:
                    continue
                break
            else:
                return False
        return True

    cdef bint _sni_match(self, int idx, bytes sni) except -1:
        cdef const char* s
        cdef Py_ssize_t n
        if sni is None:
            return True         # plain http: Kong does not consider snis (Rule 1)
        sni = sni.lower()
        s = PyBytes_AS_STRING(sni)
        n = PyBytes_GET_SIZE(sni)
        for kind, hb in <tuple>self._snis[idx]:
            if kind == HK_ANY:
                if hb == sni:
                    return True
            elif kind == HK_SUFFIX:
                if n >= len(hb) and memcmp(s + n - len(hb), PyBytes_AS_STRING(hb), len(hb)) == 0:
                    return True
            elif n >= len(hb) and memcmp(s, PyBytes_AS_STRING(hb), len(hb)) == 0:
                return True
        return False

    cpdef RouteMatch match(self, bytes method, bytes host, bytes path, object headers,
                           bytes sni=None, int port=-1):
        """The best route for a request, or None (see the module docstring for the rules).
        `sni`: None for a plain-http request, the TLS server name (b"" without one) otherwise.
        `port`: the port the request came in on, used when the Host header has none."""
        cdef bytes npath = normalize(path) if path is not None else b"/"
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
        cdef int hport = -1
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
                hport = 0
                for i in range(<int>(k + 1), <int>hlen):
                    if h[i] < c'0' or h[i] > c'9':
                        hport = -1
                        break
                    hport = hport * 10 + (h[i] - c'0')
                port = hport    # Kong fields.lua net.dst.port: the Host's port first
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
        cdef Regex best_rx = None
        cdef Regex rx
        cdef int rc
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
                        best_rx = None
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
                if c.snis >= 0 and not self._sni_match(c.snis, sni):
                    continue
                if c.headers >= 0 and not self._headers_match(c.headers, headers):
                    continue
                rx = None
                if c.path_kind == PK_REGEX:
                    rx = <Regex>self._regexes[c.regex]
                    rc = rx.exec(p, plen, True)
                    if rc <= 0:
                        if rc < 0:
                            self.regex_limit_hits += 1
                        continue
                best = c
                best_rank = c.rank
                best_rx = rx
                break
        if best == NULL:
            return None
        return self._build(best, npath, best_rx)

    cdef RouteMatch _build(self, Cand* c, bytes npath, Regex rx):
        # rx: the regex that matched (its match data still holds this request's offsets)
        cdef _Route r = <_Route>self._routes[c.route]
        cdef RouteMatch rm = RouteMatch.__new__(RouteMatch)
        cdef const char* p = PyBytes_AS_STRING(npath)
        cdef Py_ssize_t plen = PyBytes_GET_SIZE(npath)
        rm.key = r.key
        rm.path = npath
        rm.preserve_host = r.preserve_host
        if rx is not None and rx.groups:
            rm.captures = rx.texts(p)
            rm.named_captures = rx.named_texts(p) if rx.groupindex else {}
        else:
            rm.captures = _EMPTY
            rm.named_captures = {}

        cdef const char* b = PyBytes_AS_STRING(r.base)
        cdef Py_ssize_t blen = PyBytes_GET_SIZE(r.base)
        # postfix (Rule 4) as a slice [pf, pf + pflen) of the normalized path
        cdef Py_ssize_t matched
        if r.strip_path and c.path_kind == PK_PREFIX:
            matched = c.path_len
        elif r.strip_path and c.path_kind == PK_REGEX:
            matched = rx.ov[1]
        else:
            matched = 1 if plen > 0 else 0
        # Rule 4: X-Forwarded-Prefix
        if r.strip_path and c.path_kind != PK_NONE and not (matched == 1 and p[0] == c'/'):
            rm.prefix = escape(PyBytes_FromStringAndSize(p, matched))
        else:
            rm.prefix = None
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
            rm.upstream_path = escape(npath)
            return rm
        cdef bytes out = PyBytes_FromStringAndSize(NULL, total)
        cdef char* o = PyBytes_AS_STRING(out)
        memcpy(o, b, alen)
        if slash:
            o[alen] = c'/'
        memcpy(o + alen + slash, tail, tlen)
        rm.upstream_path = escape(out)
        return rm
