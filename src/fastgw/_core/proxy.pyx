# The compiled request path (DESIGN.md "The request path"): one module, split by idea into
# included files (uvloop's loop.pyx + include pattern); the layout is listed in proxy.pxd.
#
# Rules:
# - One Downstream per client connection (HTTP/1.1 framing), one Exchange per request, one
#   Upstream per upstream connection. Protocols read into pooled buffers (proxy_wire.pxi).
# - Per request Python is entered a fixed number of times: router.match, balancer.pick, the
#   transport writes. Plugin code runs only when the matched route has a chain.
# - The core imports nothing above it: what the layers above provide (plugin contexts,
#   in-process targets, hash inputs) is handed in by the snapshot and the Gateway.
# - Timeouts are checked by one periodic sweep per worker (ProxyCore.tick) against a coarse
#   clock, instead of one timer per read; they measure a peer's silence, never the gateway's
#   own backpressure.
# - Backpressure: a side whose peer's write buffer is above its high-water mark stops reading
#   until the peer drains (pause_writing/resume_writing), so bodies are streamed, never held.
cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.buffer cimport PyBUF_WRITE
from cpython.memoryview cimport PyMemoryView_FromMemory
from libc.stdint cimport int64_t, uint32_t, uint64_t
from libc.stdlib cimport malloc, realloc
from libc.string cimport memchr, memcpy, memmove
from posix.strings cimport strncasecmp
from posix.mman cimport MAP_ANONYMOUS, MAP_FAILED, MAP_PRIVATE, PROT_READ, PROT_WRITE, mmap, munmap

from fastgw._core.accesslog cimport (
    AccessLog, HDR_PROXY_LATENCY, HDR_REQUEST_ID, HDR_RESPONSE_LATENCY, HDR_SERVER,
    HDR_UPSTREAM_LATENCY, HDR_UPSTREAM_REQUEST_ID, HDR_UPSTREAM_STATUS, HDR_VIA, mono_ms,
    new_request_id,
)
from fastgw._core.balancer cimport Balancer, Target
from fastgw._core.traffic cimport TrafficStats
from fastgw._core.consts cimport (
    CONN_BUFFER_SIZE, DEFAULT_CLIENT_BODY_TIMEOUT_MS, DEFAULT_CLIENT_HEADER_TIMEOUT_MS,
    DEFAULT_CLIENT_MAX_BODY_SIZE, DEFAULT_KEEPALIVE_TIMEOUT_MS, DEFAULT_MAX_BUFFERED_BODY,
    DEFAULT_MAX_CHUNK_EXT, DEFAULT_MAX_HEAD, DEFAULT_MAX_HEADER_LINE, DEFAULT_MAX_HEADERS,
    DEFAULT_MAX_QUEUED_OUTPUT, DEFAULT_MAX_START_LINE, DEFAULT_RESPONSE_BUFFER_SIZE, DEFAULT_UPSTREAM_KEEPALIVE_IDLE_TIMEOUT_MS,
    DEFAULT_UPSTREAM_KEEPALIVE_MAX_REQUESTS, DEFAULT_UPSTREAM_KEEPALIVE_POOL_SIZE,
    DEFAULT_WORKER_CONNECTIONS, HEADERS_CAP,
)
from fastgw._core.hashing cimport xxh64
from fastgw._core.native cimport NativeChain, is_consumer_header
from fastgw._core.router cimport Router
from fastgw._core.http_parser cimport (
    BODY_CHUNKED, BODY_LENGTH, BODY_NONE, BODY_UNTIL_CLOSE, H_CONTENT_LENGTH, H_DATE, H_EXPECT,
    H_HOST, H_OTHER, H_TE, H_UPGRADE, H_X_FORWARDED_FOR, H_X_FORWARDED_HOST, H_X_FORWARDED_PATH,
    H_X_FORWARDED_PORT, H_X_FORWARDED_PROTO, H_X_REAL_IP, HF_HOP, Header, HttpParser, M_CONNECT,
    M_DELETE, M_GET, M_HEAD, M_OPTIONS, M_PUT, M_TRACE, RequestParser, ResponseParser,
)

import asyncio
import logging
import os
import sys
import tempfile
from email.utils import formatdate

import orjson

from fastgw._core import messages as _msg
from fastgw._core.accesslog import REQUEST_ID, RequestIdFilter

log = logging.getLogger("fastgw.proxy")
# plugin failures are logged by the chain (fastgw.plugins): name the request there too
logging.getLogger("fastgw.plugins").addFilter(RequestIdFilter())

# Kong's messages for the responses the gateway makes itself (fastgw._core.messages)
MSG_NO_ROUTE = _msg.NO_ROUTE
MSG_NO_SERVICE = _msg.NO_SERVICE
MSG_BAD_GATEWAY = _msg.BAD_GATEWAY
MSG_TIMEOUT = _msg.UPSTREAM_TIMEOUT
MSG_NO_PEER = _msg.NO_PEER
MSG_INTERNAL = _msg.INTERNAL

#: where fastgw.tls's sni_callback leaves the client's SNI on the SSLObject (a server-side
#: SSLObject does not expose the server_name the client sent); Downstream reads it once
SNI_ATTR = "fastgw_sni"
cdef str MSG_BAD_REQUEST = _msg.BAD_REQUEST
cdef str MSG_REQUEST_TIMEOUT = _msg.REQUEST_TIMEOUT
cdef str MSG_BODY_TOO_LARGE = _msg.BODY_TOO_LARGE
cdef str MSG_METHOD_NOT_ALLOWED = _msg.METHOD_NOT_ALLOWED
cdef str MSG_EXPECTATION_FAILED = _msg.EXPECTATION_FAILED
cdef str MSG_USE_HTTPS = _msg.USE_HTTPS
cdef str MSG_BAD_BODY_FRAMING = _msg.BAD_BODY_FRAMING
cdef str MSG_PROTECTED_FIELD = _msg.PROTECTED_FIELD
cdef bytes SERVER_LINE = f"Server: {_msg.SERVER}\r\n".encode()
# the body of the chain's 500 for a failed plugin (fastgw.plugins.chain._server_error)
cdef bytes KONG_500 = orjson.dumps({"message": MSG_INTERNAL})

include "proxy_wire.pxi"
include "proxy_limits.pxi"
include "proxy_runtime.pxi"
include "proxy_pool.pxi"
include "proxy_connection.pxi"
include "proxy_exchange.pxi"
include "proxy_forward.pxi"
include "proxy_plugins.pxi"
include "proxy_response.pxi"
include "proxy_views.pxi"
include "proxy_ops.pxi"
