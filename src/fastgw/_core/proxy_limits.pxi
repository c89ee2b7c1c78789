# Limits: every bound of the proxy in one object (included by proxy.pyx).
#
# Rules:
# - Each default is a named constant in consts.pxd with its precedent (nginx, HAProxy, Envoy,
#   llhttp); this class only carries the values a Gateway runs with.
# - Built once per Gateway (Gateway(limits=...), the CLI's --limit NAME=VALUE through
#   fastgw.limits); an unknown name or a value out of range is a ValueError naming the limit.
# - Timeouts are configured in milliseconds (Kong's unit for service timeouts) and stored in
#   seconds (the loop's clock).

# name -> (kind, minimum, maximum, default); kind "int", "ms" (milliseconds) or "bool"
LIMITS = {
    "max_start_line": ("int", 16, 1 << 20, DEFAULT_MAX_START_LINE),
    "max_header_line": ("int", 16, 1 << 20, DEFAULT_MAX_HEADER_LINE),
    "max_head": ("int", 64, CONN_BUFFER_SIZE - READ_PAUSE_FREE, DEFAULT_MAX_HEAD),
    "max_headers": ("int", 1, HEADERS_CAP, DEFAULT_MAX_HEADERS),
    "max_chunk_ext": ("int", 0, 1 << 20, DEFAULT_MAX_CHUNK_EXT),
    "max_buffered_body": ("int", 0, 1 << 40, DEFAULT_MAX_BUFFERED_BODY),
    "client_max_body_size": ("int", 0, 1 << 50, DEFAULT_CLIENT_MAX_BODY_SIZE),
    "upstream_keepalive_pool_size": ("int", 0, 1 << 20, DEFAULT_UPSTREAM_KEEPALIVE_POOL_SIZE),
    "upstream_keepalive_max_requests": ("int", 1, 1 << 30,
                                        DEFAULT_UPSTREAM_KEEPALIVE_MAX_REQUESTS),
    "upstream_keepalive_idle_timeout": ("ms", 1, 1 << 31,
                                        DEFAULT_UPSTREAM_KEEPALIVE_IDLE_TIMEOUT_MS),
    "keepalive_timeout": ("ms", 1, 1 << 31, DEFAULT_KEEPALIVE_TIMEOUT_MS),
    "client_header_timeout": ("ms", 1, 1 << 31, DEFAULT_CLIENT_HEADER_TIMEOUT_MS),
    "client_body_timeout": ("ms", 1, 1 << 31, DEFAULT_CLIENT_BODY_TIMEOUT_MS),
    "worker_connections": ("int", 1, 1 << 24, DEFAULT_WORKER_CONNECTIONS),
    "max_queued_output": ("int", 1024, 1 << 30, DEFAULT_MAX_QUEUED_OUTPUT),
    "response_buffer_size": ("int", 0, 1 << 34, DEFAULT_RESPONSE_BUFFER_SIZE),
    # nginx underscores_in_headers off: names with "_" are dropped (backends that fold "_"
    # into "-" would otherwise see a different request)
    "underscores_in_headers": ("bool", 0, 1, 0),
}


cdef class Limits:
    """The proxy's limits: ``Limits(max_head=16384, client_body_timeout=30000)``; names and
    defaults in ``LIMITS`` (timeouts in milliseconds)."""

    def __init__(self, **values):
        unknown = sorted(set(values) - set(LIMITS))
        if unknown:
            raise ValueError(f"unknown limit {unknown[0]!r} (known: {', '.join(LIMITS)})")
        for name, (kind, lo, hi, default) in LIMITS.items():
            v = values.get(name, default)
            if kind == "bool":
                if not isinstance(v, (bool, int)) or v not in (0, 1):
                    raise ValueError(f"limit {name}: expected true or false, got {v!r}")
            elif isinstance(v, bool) or not isinstance(v, int):
                raise ValueError(f"limit {name}: expected an integer, got {v!r}")
            elif not lo <= v <= hi:
                raise ValueError(f"limit {name}: {v} is outside {lo}..{hi}")
            self._set(name, kind, v)

    cdef void _set(self, str name, str kind, object v) except *:
        cdef double s = v / 1000.0 if kind == "ms" else 0.0
        if name == "max_start_line": self.max_start_line = v
        elif name == "max_header_line": self.max_header_line = v
        elif name == "max_head": self.max_head = v
        elif name == "max_headers": self.max_headers = v
        elif name == "max_chunk_ext": self.max_chunk_ext = v
        elif name == "max_buffered_body": self.max_buffered_body = v
        elif name == "client_max_body_size": self.client_max_body_size = v
        elif name == "upstream_keepalive_pool_size": self.upstream_keepalive_pool_size = v
        elif name == "upstream_keepalive_max_requests": self.upstream_keepalive_max_requests = v
        elif name == "upstream_keepalive_idle_timeout": self.upstream_keepalive_idle_timeout = s
        elif name == "keepalive_timeout": self.keepalive_timeout = s
        elif name == "client_header_timeout": self.client_header_timeout = s
        elif name == "client_body_timeout": self.client_body_timeout = s
        elif name == "worker_connections": self.worker_connections = v
        elif name == "max_queued_output": self.max_queued_output = v
        elif name == "response_buffer_size": self.response_buffer_size = v
        elif name == "underscores_in_headers": self.underscores_in_headers = v

    def parser_kwargs(self) -> dict:
        """The RequestParser limits."""
        return {"max_start_line": self.max_start_line, "max_header_line": self.max_header_line,
                "max_head": self.max_head, "max_headers": self.max_headers,
                "max_chunk_ext": self.max_chunk_ext}

    def as_dict(self) -> dict:
        """Configured values under their names (timeouts in milliseconds)."""
        out = {}
        for name, (kind, _, _, _) in LIMITS.items():
            v = getattr(self, name)
            out[name] = round(v * 1000) if kind == "ms" else (bool(v) if kind == "bool" else v)
        return out

    def __repr__(self):
        return f"Limits({self.as_dict()})"
