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
