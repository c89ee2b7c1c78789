"""The compiled request path: client/upstream protocols, exchanges, pools, the per-worker core."""
import asyncio
from typing import Any, Callable

LIMITS: dict[str, tuple[str, int, int, int]]

class Limits:
    max_start_line: int
    max_header_line: int
    max_head: int
    max_headers: int
    max_chunk_ext: int
    max_buffered_body: int
    client_max_body_size: int
    upstream_keepalive_pool_size: int
    upstream_keepalive_max_requests: int
    upstream_keepalive_idle_timeout: float
    keepalive_timeout: float
    client_header_timeout: float
    client_body_timeout: float
    worker_connections: int
    max_queued_output: int
    response_buffer_size: int
    underscores_in_headers: bool
    def __init__(self, **values: int | bool) -> None: ...
    def parser_kwargs(self) -> dict[str, int]: ...
    def as_dict(self) -> dict[str, int | bool]: ...

def rbuf_pool_stats() -> dict[str, int]: ...

SNI_ATTR: str

class ServiceRT:
    id: str
    name: str
    balancer: Any
    health: Any
    hash_spec: Any
    hash_input: Callable[[Any], tuple[bytes | None, bytes | str | None]] | None
    host_header: bytes | None
    connect_timeout: float
    read_timeout: float
    write_timeout: float
    retries: int
    entity: Any
    no_peer: tuple[int, str] | None
    def __init__(self, id: str, name: str, balancer: Any, *, health: Any = None,
                 hash_spec: Any = None, hash_input: Any = None, host_header: bytes | None = None,
                 connect_timeout: float = 60.0, read_timeout: float = 60.0,
                 write_timeout: float = 60.0, retries: int = 5, entity: Any = None) -> None: ...

class RouteRT:
    id: str
    name: str
    service: ServiceRT
    chain: Any
    entity: Any
    native: Any
    https_redirect: int
    request_buffering: bool
    response_buffering: bool
    https_ok: bool
    snis: frozenset[str] | None
    def __init__(self, id: str, name: str, service: ServiceRT | None, chain: Any = None,
                 entity: Any = None, native: Any = None, https_redirect: int = 0,
                 request_buffering: bool = True, response_buffering: bool = True,
                 https_ok: bool = True, snis: frozenset[str] | None = None) -> None: ...

class Pool:
    host: str
    port: int
    hostname: str
    host_header: bytes
    max_idle: int
    max_requests: int
    idle_timeout: float
    handler: Any
    ssl: Any
    def __init__(self, core: ProxyCore, host: str, port: int, max_idle: int = 512,
                 max_requests: int = 10000, idle_timeout: float = 60.0,
                 hostname: str | None = None) -> None: ...
    def __call__(self) -> UpstreamProtocol: ...
    def sweep(self, now: float) -> None: ...
    @property
    def idle_count(self) -> int: ...
    def close_idle(self) -> None: ...

class ProxyCore:
    loop: asyncio.AbstractEventLoop
    snapshot: Any
    router: Any
    conns: set[Downstream]
    now: float
    date_header: bytes
    requests_total: int
    connections_total: int
    connections_refused: int
    active_requests: int
    draining: bool
    listen_port: int
    keepalive_timeout: float
    header_timeout: float
    body_timeout: float
    context_factory: Callable[..., Any] | None
    inprocess_connect: Callable[[Any, Any, asyncio.AbstractEventLoop], Any] | None
    pools: dict[tuple[str, int, bool, Any], Pool]
    limits: Limits
    drained: asyncio.Future[None] | None
    access_log: Any            # fastgw._core.accesslog.AccessLog or None
    headers: int               # fastgw._core.accesslog.HEADER_BITS mask (Kong's `headers`)
    traffic: Any               # fastgw._core.traffic.TrafficStats
    tracer: Any                # fastgw.debug.trace.Tracer or None
    realip: Any                # fastgw.realip.RealIP or None (no trusted_ips)
    access_log: Any            # fastgw._core.accesslog.AccessLog or None
    headers: int               # fastgw._core.accesslog.HEADER_BITS mask (Kong's `headers`)
    traffic: Any               # fastgw._core.traffic.TrafficStats
    tracer: Any                # fastgw.debug.trace.Tracer or None
    realip: Any                # fastgw.realip.RealIP or None (no trusted_ips)
    def __init__(self, loop: asyncio.AbstractEventLoop, snapshot: Any = None, *,
                 listen_port: int = 8000, limits: Limits | None = None,
                 context_factory: Callable[..., Any] | None = None,
                 inprocess_connect: Callable[..., Any] | None = None) -> None: ...
    def set_snapshot(self, snapshot: Any) -> None: ...
    def pool(self, host: str, port: int, ssl: Any = None, verify: Any = False,
             hostname: str | None = None) -> Pool: ...
    def protocol(self, local_port: int = 0, tls: bool = False) -> DownstreamProtocol: ...
    def tick(self) -> None: ...
    def start_draining(self) -> asyncio.Future[None]: ...
    def close_pools(self) -> None: ...
    def stats(self) -> dict[str, int]: ...

class HeadCopy:
    def __init__(self, head: bytes, parser: Any) -> None: ...
    def get(self, name_lower: bytes) -> bytes | None: ...
    def get_all(self, name_lower: bytes) -> list[bytes]: ...
    def items(self) -> list[tuple[bytes, bytes]]: ...

class Sink:
    """What an Exchange writes to: its carrier (HTTP/1.1 Downstream; C-level methods)."""

class Exchange:
    """One request and its response (C-level; made by the carrier)."""
    def state(self) -> tuple[str, str]: ...
    def transition(self, rq: str, rp: str) -> bool: ...
    def get(self, name_lower: bytes) -> bytes | None: ...

class Downstream(Sink):
    transport: asyncio.Transport | None
    @property
    def exchange(self) -> Exchange | None: ...
    @property
    def holds_buffer(self) -> bool: ...
    def __init__(self, core: ProxyCore) -> None: ...
    def get_buffer(self, sizehint: int) -> memoryview: ...
    def connection_made(self, transport: asyncio.BaseTransport) -> None: ...
    def buffer_updated(self, nbytes: int) -> None: ...
    def eof_received(self) -> bool: ...
    def connection_lost(self, exc: BaseException | None) -> None: ...
    def pause_writing(self) -> None: ...
    def resume_writing(self) -> None: ...

class Upstream:
    def __init__(self, core: ProxyCore, pool: Pool) -> None: ...
    def get_buffer(self, sizehint: int) -> memoryview: ...
    def connection_made(self, transport: asyncio.BaseTransport) -> None: ...
    def buffer_updated(self, nbytes: int) -> None: ...
    def eof_received(self) -> bool: ...
    def connection_lost(self, exc: BaseException | None) -> None: ...
    def pause_writing(self) -> None: ...
    def resume_writing(self) -> None: ...

class DownstreamProtocol(Downstream, asyncio.BufferedProtocol): ...
class UpstreamProtocol(Upstream, asyncio.BufferedProtocol): ...

MSG_NO_ROUTE: str
MSG_BAD_GATEWAY: str
MSG_TIMEOUT: str
MSG_NO_PEER: str
MSG_INTERNAL: str
