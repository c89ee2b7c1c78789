# Read-only views of a request or response for Python code: plugins (HeaderSource of
# fastgw.plugins.context) and the consistent-hashing input (included by proxy.pyx).

cdef class HeadCopy:
    """Request or response head kept for plugins: a copy of the head bytes plus the parser's
    spans, read lazily (HeaderSource protocol of fastgw.plugins.context)."""
    cdef bytes head
    cdef HttpParser parser

    def __init__(self, bytes head, HttpParser parser):
        self.head = head
        self.parser = parser

    def get(self, bytes name_lower):
        return self.parser.find_header(PyBytes_AS_STRING(self.head), name_lower)

    def get_all(self, bytes name_lower):
        return [v for n, v in self.items() if n.lower() == name_lower]

    def items(self):
        return self.parser.header_list(PyBytes_AS_STRING(self.head))


cdef class _NoHeaders:
    """An empty HeaderSource (responses the gateway made itself)."""

    def get(self, bytes name_lower):
        return None

    def get_all(self, bytes name_lower):
        return []

    def items(self):
        return []


cdef _NoHeaders _NO_HEADERS = _NoHeaders()


cdef class _HashView:
    """The request as the snapshot's hash_input reads it (fastgw.balancing.HashRequest)."""
    cdef Exchange ex

    def __init__(self, Exchange ex):
        self.ex = ex

    @property
    def client_ip(self):
        return self.ex.client_ip

    @property
    def consumer_id(self):
        ctx = self.ex.ctx
        consumer = getattr(ctx, "consumer", None) if ctx is not None else None
        return getattr(consumer, "id", None)

    cdef const char* head(self):
        # the head stays in the carrier's buffer on the plugin-free path (hashing runs before
        # anything else is read); plugins work on a copy
        if self.ex._head_copy is not None:
            return PyBytes_AS_STRING(self.ex._head_copy)
        return self.ex.head_p

    def get_header(self, str name):
        v = self.ex.req.find_header(self.head(), name.lower().encode())
        return v.decode("latin-1") if v is not None else None

    def get_cookie(self, str name):
        raw = self.get_header("cookie")
        if not raw:
            return None
        for part in raw.split(";"):
            k, _, v = part.strip().partition("=")
            if k == name:
                return v
        return None

    @property
    def path(self):
        return PyBytes_FromStringAndSize(self.head() + self.ex.path_off,
                                         self.ex.path_n).decode("latin-1")

    def get_query_arg(self, str name):
        from urllib.parse import parse_qs
        if self.ex.query_n < 2:
            return None
        q = PyBytes_FromStringAndSize(self.head() + self.ex.query_off + 1, self.ex.query_n - 1)
        v = parse_qs(q.decode("latin-1")).get(name)
        return v[0] if v else None

    def get_uri_capture(self, str name):
        m = self.ex._plugin_match
        if m is None:
            return None
        v = m.named_captures.get(name)
        if v is None and name.isdigit() and 0 < int(name) <= len(m.captures):
            v = m.captures[int(name) - 1]
        return v
