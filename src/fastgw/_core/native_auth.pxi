# Authentication kernels of the compiled chain: key-auth and jwt (included by native.pyx).
#
# Both end the same way as their Python plugins: ctx.authenticate(consumer, credential, id),
# rendered into a ConsumerRecord (the upstream header lines and the rate-limiting identifiers) the
# first time a credential authenticates on the route, so a request only picks the record and a
# snapshot with 100k credentials builds no per-credential object up front.

cdef class ConsumerRecord:
    def __init__(self, int index, consumer, credential, identifier):
        self.index = index
        self.pm_label = -1
        self.consumer = consumer
        self.credential = credential
        # what ctx.authenticate(consumer, credential, identifier) records, rendered as the
        # proxy's build_head writes header ops
        from fastgw.plugins.context import Context, ListHeaders

        ctx = Context(b"GET", b"/", ListHeaders(), "", "http", None, None, 0.0)
        try:
            ctx.authenticate(consumer, credential, identifier)
        except Exception:
            self.req_lines = None   # the Python plugin raises there: a 500
        else:
            ops = ctx.request.header_ops or {}
            case = ctx.request.header_case or {}
            for name in ops:
                if not is_consumer_header(name, len(name)):
                    raise ValueError(f"ctx.authenticate sets {name!r}, unknown to native")
            lines = []
            for name, values in ops.items():
                if values is None:
                    continue
                for v in values:
                    lines.append(case.get(name, name) + b": " + v + b"\r\n")
            self.req_lines = b"".join(lines)
        # rate-limiting's identifier: consumer -> (consumer or credential).id,
        # credential -> credential.id; str(...).encode() (utf-8), falsy -> the client IP
        ent = consumer or credential
        v = getattr(ent, "id", None) if ent is not None else None
        self.ident_consumer = str(v).encode() if v else None
        v = getattr(credential, "id", None) if credential is not None else None
        self.ident_credential = str(v).encode() if v else None


cdef class Records:
    """The ConsumerRecords of one route's auth kernel, made on first use."""

    def __init__(self):
        self.items = []
        self.by_cred = {}

    cdef ConsumerRecord get(self, consumer, credential, identifier):
        # keyed by the (consumer, credential) objects, which the record holds (so neither id
        # is reused while it exists): a consumer renamed in place gets a record of its own
        cdef tuple key = (id(consumer), id(credential))
        cdef object o = self.by_cred.get(key)
        cdef ConsumerRecord rec
        if o is not None:
            return <ConsumerRecord>o
        rec = ConsumerRecord(len(self.items), consumer, credential, identifier)
        self.items.append(rec)
        self.by_cred[key] = rec
        return rec


# -------------------------------------------------------------------------------------------

cdef inline object _query_value(const char* qs, Py_ssize_t qn, str name):
    # Request.query.get(name) of the Python plugins (the same parser)
    from fastgw.plugins.context import parse_query
    return parse_query(PyBytes_FromStringAndSize(qs, qn)).get(name)


cdef class KeyAuthKernel:
    """key-auth without anonymous, hide_credentials and key_in_body (plugins/key_auth.py)."""

    def __init__(self, plugin):
        c = plugin.config
        self.header = c.key_in_header
        self.query = c.key_in_query
        self.preflight = c.run_on_preflight
        self.lnames = [lname for _, lname, _, _ in plugin.names]
        self.names = [(name, qname, qenc) for name, _, qname, qenc in plugin.names]
        self.keys = plugin.keys     # the plugin's own index: key str -> (consumer, credential)
        self.records = Records()
        self.challenge = plugin.challenge.encode("latin-1")
        self.body_none = KA_BODY_NONE
        self.body_dup = KA_BODY_DUP
        self.body_invalid = KA_BODY_INVALID

    cdef int access(self, NativeChain c, NativeReq* r, const char* head, RequestParser p,
                    uint32_t query_off, uint32_t query_n) except -1:
        cdef Py_ssize_t i, nk, ln, qn
        cdef int j, count
        cdef Header* h
        cdef Header* found_h = NULL
        cdef bytes lname
        cdef const char* lp
        cdef const char* qs = head + query_off + 1
        cdef object key_str = None
        cdef bint have = False
        if not self.preflight and p.method == M_OPTIONS:
            return 0
        nk = len(self.lnames)
        qn = <Py_ssize_t>query_n - 1    # raw query without the '?'
        for i in range(nk):
            if self.header:
                lname = <bytes>self.lnames[i]
                lp = PyBytes_AS_STRING(lname)
                ln = PyBytes_GET_SIZE(lname)
                count = 0
                for j in range(p.n_headers):
                    h = &p.headers[j]
                    if h.name_len == ln and ieq_lower(head + h.name_off, lp, ln):
                        if count == 0:
                            found_h = h
                        count += 1
                if count > 1:
                    return self.unauthorized(c, r, self.body_dup)
                if count == 1:
                    have = True
                    break
            if self.query and qn > 0:
                name, qname, qname_enc = <tuple>self.names[i]
                # Request.query is parsed only when the name can be in the query (as the plugin):
                # spelled as configured, fully encoded, or behind any percent-escape
                if _contains(qs, qn, qname) or (qname_enc is not None and _contains(qs, qn, qname_enc)) \
                        or _contains(qs, qn, b"%"):
                    v = _query_value(qs, qn, name)
                    if isinstance(v, list):
                        return self.unauthorized(c, r, self.body_dup)
                    if isinstance(v, str):
                        key_str = v
                        have = True
                        break
        if not have:
            return self.unauthorized(c, r, self.body_none)
        if key_str is None:
            if found_h.value_len == 0:
                return self.unauthorized(c, r, self.body_none)
            # Request.get_header: the value as latin-1 text
            k = self.keys.get(PyUnicode_DecodeLatin1(head + found_h.value_off,
                                                     found_h.value_len, NULL))
        else:
            if not key_str:
                return self.unauthorized(c, r, self.body_none)
            k = self.keys.get(key_str)
        if k is None:
            return self.unauthorized(c, r, self.body_invalid)
        consumer, cred = <tuple>k
        cred_id = getattr(cred, "id", None)
        return _authenticated(c, r, self.records.get(consumer, cred,
                                                     str(cred_id) if cred_id else None))

    cdef int unauthorized(self, NativeChain c, NativeReq* r, bytes body) except -1:
        return c.exit(r, 401, [(b"Content-Type", JSON_CT), (b"WWW-Authenticate", self.challenge)],
                      body)


cdef inline int _authenticated(NativeChain c, NativeReq* r, ConsumerRecord rec) except -1:
    r.consumer = rec.index + 1
    if rec.req_lines is None:
        # ctx.authenticate raised (a value latin-1 cannot encode) after setting the consumer
        raise UnicodeEncodeError("latin-1", "", 0, 1, "consumer header value")
    c.req_lines = rec.req_lines
    return 0


# -------------------------------------------------------------------------------------------

cdef inline bint _space(char c) noexcept:
    # Python's \s / str.isspace() over latin-1 text (the Python plugin's view of the value)
    cdef unsigned char ch = <unsigned char>c
    return ch == 0x20 or 0x09 <= ch <= 0x0d or 0x1c <= ch <= 0x1f or ch == 0x85 or ch == 0xa0


cdef object _bearer(const char* v, Py_ssize_t n):
    # plugins/jwt.py bearer_token: "\s*[Bb]earer\s+(.+)" then strip(); None when no token
    cdef Py_ssize_t i = 0, e
    while i < n and _space(v[i]):
        i += 1
    if n - i < 7 or (v[i] != b'B' and v[i] != b'b') or memcmp(v + i + 1, b"earer", 5) != 0 \
            or not _space(v[i + 6]):
        return None
    i += 7
    while i < n and _space(v[i]):
        i += 1
    e = n
    while e > i and _space(v[e - 1]):
        e -= 1
    if e <= i:
        return None
    return PyBytes_FromStringAndSize(v + i, e - i).decode("latin-1")


cdef class JwtKernel:
    """jwt without anonymous and cookie_names (plugins/jwt.py); verification is the plugin's own
    JwtVerifier, shared with its Python path."""

    def __init__(self, plugin):
        c = plugin.config
        self.verifier = plugin.verifier
        self.preflight = c.run_on_preflight
        self.lnames = list(plugin.header_names)
        self.params = list(c.uri_param_names)
        self.markers = list(plugin.query_markers)
        self.challenge = plugin.challenge.encode("latin-1")
        self.challenge_invalid = plugin.challenge_invalid.encode("latin-1")
        self.records = Records()

    cdef int access(self, NativeChain c, NativeReq* r, const char* head, RequestParser p,
                    uint32_t query_off, uint32_t query_n, double now) except -1:
        cdef const char* qs = head + query_off + 1
        cdef Py_ssize_t qn = <Py_ssize_t>query_n - 1
        cdef Py_ssize_t ln
        cdef int j
        cdef Header* h
        cdef bytes lname, marker
        cdef dict found = None
        cdef object token = None
        cdef JwtVerdict verdict
        cdef JwtKey key
        if not self.preflight and p.method == M_OPTIONS:
            return 0
        # Kong's retrieve_tokens: the query parameters, then the headers, deduplicated
        if qn > 0:
            # the query is parsed when a parameter name can be in it: spelled as configured,
            # fully encoded, or behind any percent-escape (as the plugin)
            for marker in self.markers + [b"%"]:
                if _contains(qs, qn, marker):
                    found = {}
                    for name in self.params:
                        v = _query_value(qs, qn, name)
                        if isinstance(v, list):
                            for t in v:
                                if t:
                                    found[t] = None
                        elif v:
                            found[v] = None
                    break
        for lname in self.lnames:
            ln = PyBytes_GET_SIZE(lname)
            for j in range(p.n_headers):
                h = &p.headers[j]
                if h.name_len == ln and ieq_lower(head + h.name_off, PyBytes_AS_STRING(lname), ln):
                    # the first line of that name, as Request.get_header_bytes
                    t = _bearer(head + h.value_off, h.value_len)
                    if t is not None:
                        if found is None:
                            found = {}
                        found[t] = None
                    break
        if not found:
            return self.fail(c, r, self.challenge, _message_body("Unauthorized"))
        if len(found) > 1:
            return self.fail(c, r, self.challenge_invalid, _message_body("Multiple tokens provided"))
        for t in found:
            token = t
        verdict = self.verifier.check(token, now)
        if verdict.errors is not None:
            return self.fail(c, r, self.challenge_invalid, orjson.dumps(verdict.errors))
        if verdict.key is None:
            return self.fail(c, r, self.challenge_invalid, _message_body(verdict.message))
        key = verdict.key
        # Kong's set_consumer: the credential identifier is the jwt secret's key
        return _authenticated(c, r, self.records.get(key.consumer, key.credential,
                                                     key.key or None))

    cdef int fail(self, NativeChain c, NativeReq* r, bytes challenge, bytes body) except -1:
        return c.exit(r, 401, [(b"Content-Type", JSON_CT), (b"WWW-Authenticate", challenge)], body)


cdef inline bytes _message_body(str message):
    return orjson.dumps({"message": message})
