# fastgw compiled-core limits (C constants; `from fastgw._core.consts cimport *`).
# Each is the default of a limit that is configurable at run time (fastgw.config Limits);
# precedents in comments; defaults are no looser than nginx's.

cdef enum:
    # Request/status line. nginx: large_client_header_buffers 4 8k -> a request line over
    # 8 KiB is 414; HAProxy: tune.bufsize 16 KiB for the whole head; llhttp: none.
    DEFAULT_MAX_START_LINE = 8192      # bytes -> 414 (responses: 502)
    # One header field line. nginx: 8 KiB per line (large_client_header_buffers).
    DEFAULT_MAX_HEADER_LINE = 8192     # bytes -> 431
    # The whole head incl. CRLFs. nginx: 4 x 8 KiB = 32 KiB; Node/llhttp: 16 KiB
    # (--max-http-header-size); Envoy: max_request_headers_kb = 60 KiB.
    DEFAULT_MAX_HEAD = 32768           # bytes -> 431
    # Header fields per message. Apache LimitRequestFields 100; Envoy max_headers_count 100.
    DEFAULT_MAX_HEADERS = 100          # count -> 431
    # Hard cap of the per-parser header array; max_headers may not exceed it.
    HEADERS_CAP = 256
    # Chunk extension bytes on one chunk-size line. Node caps extensions at 16 KiB in total
    # (CVE-2024-22019); fastgw forwards none of them and allows little.
    DEFAULT_MAX_CHUNK_EXT = 1024       # bytes -> 400
    # Trailer section of a chunked message: counted against max_head like a head.

    # Per-connection read buffer. nginx: client_header_buffer_size 1k grown to 4 x 8k;
    # uvloop reads 256 KB at a time. One buffer holds any legal head plus body data.
    CONN_BUFFER_SIZE = 65536           # bytes

    # -- the proxy's limits (fastgw._core.proxy Limits; names without DEFAULT_ are the
    #    configuration names, e.g. `--limit max_buffered_body=1048576`) --
    # Request bodies read whole before the upstream sees them (plugins that read the body;
    # route request_buffering). nginx client_body_buffer_size 8-16 KiB in memory, then
    # client_body_temp_path; Kong reads the whole body for such plugins. Beyond this size the
    # body spills to a temporary file (request_buffering) or is refused with 413 (plugins).
    DEFAULT_MAX_BUFFERED_BODY = 8388608        # bytes (8 MiB)
    # Largest request body accepted at all. nginx client_max_body_size 1m; Kong sets 0
    # (unlimited) by default: 0 here too (request-size-limiting is the per-route knob).
    DEFAULT_CLIENT_MAX_BODY_SIZE = 0           # bytes, 0 = unlimited -> 413
    # Idle keep-alive connections kept per upstream target. Kong
    # upstream_keepalive_pool_size 512 (nginx `keepalive`).
    DEFAULT_UPSTREAM_KEEPALIVE_POOL_SIZE = 512
    # Requests per upstream keep-alive connection. Kong upstream_keepalive_max_requests 10000
    # (nginx keepalive_requests).
    DEFAULT_UPSTREAM_KEEPALIVE_MAX_REQUESTS = 10000
    # Idle upstream keep-alive connection lifetime. Kong upstream_keepalive_idle_timeout 60 s.
    DEFAULT_UPSTREAM_KEEPALIVE_IDLE_TIMEOUT_MS = 60000
    # Client keep-alive idle time between requests. nginx/Kong keepalive_timeout 60 s
    # (HAProxy timeout http-keep-alive).
    DEFAULT_KEEPALIVE_TIMEOUT_MS = 60000
    # Time to receive a whole request head. nginx client_header_timeout 60 s -> 408
    # (HAProxy timeout http-request).
    DEFAULT_CLIENT_HEADER_TIMEOUT_MS = 60000
    # Longest silence between two reads of a request body. nginx client_body_timeout 60 s -> 408.
    DEFAULT_CLIENT_BODY_TIMEOUT_MS = 60000
    # Client connections per worker; beyond it new connections are closed at once. nginx
    # worker_connections (Kong nginx_events_worker_connections auto = ulimit, 16384 typical).
    DEFAULT_WORKER_CONNECTIONS = 16384
    # Response bytes queued to a client (transport buffer) before the gateway stops reading
    # that client's next pipelined request or the upstream's body. asyncio's high-water mark is
    # 64 KiB; nginx sends one response at a time (proxy_buffers 8 x 4-8 KiB).
    DEFAULT_MAX_QUEUED_OUTPUT = 65536          # bytes
    # Response bytes queued to a slow client before the upstream is paused, on routes with
    # response_buffering (Kong's default): the upstream is freed early. nginx proxy_buffers
    # 8 x 8 KiB in memory plus proxy_max_temp_file_size 1 GiB on disk; fastgw keeps it in
    # memory only, so less. response_buffering false: paused at max_queued_output.
    DEFAULT_RESPONSE_BUFFER_SIZE = 1048576     # bytes (1 MiB)
