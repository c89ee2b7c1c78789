"""HTTP/2 server connections over libnghttp2, sans-IO (bytes in, events out)."""

MAX_CONCURRENT_STREAMS: int
INITIAL_WINDOW_SIZE: int
MAX_HEADER_LIST_SIZE: int
MAX_SETTINGS: int
MAX_OUTBOUND_ACK: int
RESET_BURST: int
RESET_RATE: int
MAX_CONTINUATIONS: int
FIELD_OVERHEAD: int

EV_REQUEST: int
EV_DATA: int
EV_END_STREAM: int
EV_TRAILERS: int
EV_RESET: int
EV_CLOSED: int
EV_GOAWAY: int
EV_HEADERS_TOO_LARGE: int

NO_ERROR: int
PROTOCOL_ERROR: int
INTERNAL_ERROR: int
FLOW_CONTROL_ERROR: int
REFUSED_STREAM: int
CANCEL: int
ENHANCE_YOUR_CALM: int

Event = tuple[object, ...]
Fields = list[tuple[bytes, bytes]]

class H2Error(Exception):
    code: int
    def __init__(self, code: int) -> None: ...

class H2Connection:
    def __init__(self, *, max_concurrent_streams: int = ..., initial_window_size: int = ...,
                 max_header_list_size: int = ..., manual_flow_control: bool = False) -> None: ...
    def receive(self, data: bytes | bytearray | memoryview) -> list[Event]: ...
    def data_to_send(self) -> bytes: ...
    def send_response(self, stream_id: int, status: int, headers: Fields,
                      end_stream: bool = False) -> None: ...
    def send_data(self, stream_id: int, data: bytes, end_stream: bool = False) -> None: ...
    def send_trailers(self, stream_id: int, headers: Fields) -> None: ...
    def reset(self, stream_id: int, error_code: int = ...) -> None: ...
    def goaway(self, error_code: int = ...) -> None: ...
    def consume(self, stream_id: int, n: int) -> None: ...
    @property
    def want_read(self) -> bool: ...
    @property
    def want_write(self) -> bool: ...
