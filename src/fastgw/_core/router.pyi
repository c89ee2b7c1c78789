"""Compiled request router with Kong 3.x traditional_compatible rules (see router.pyx)."""
from typing import Any, Protocol, Sequence


class HeaderSource(Protocol):
    # the value of a request header (lowercase name), or its values when it came on several lines
    def get(self, name: bytes, /) -> bytes | Sequence[bytes] | None: ...


class RouteError(ValueError):
    key: Any
    field: tuple[str | int, ...]
    message: str


class RouteSpec:
    key: Any
    id: str
    hosts: list[str]
    paths: list[str]
    methods: list[str]
    headers: dict[str, list[str]]
    snis: list[str]
    regex_priority: int
    strip_path: bool
    preserve_host: bool
    path_handling: str
    service_path: str | None

    def __init__(
        self,
        key: Any,
        hosts: list[str] | None = ...,
        paths: list[str] | None = ...,
        methods: list[str] | None = ...,
        headers: dict[str, list[str]] | None = ...,
        regex_priority: int = 0,
        strip_path: bool = True,
        preserve_host: bool = False,
        path_handling: str = "v0",
        service_path: str | None = None,
        id: str | None = None,
        snis: list[str] | None = None,
    ) -> None: ...


class RouteMatch:
    @property
    def key(self) -> Any: ...
    @property
    def upstream_path(self) -> bytes: ...
    @property
    def path(self) -> bytes: ...
    @property
    def prefix(self) -> bytes | None: ...
    @property
    def preserve_host(self) -> bool: ...
    @property
    def captures(self) -> tuple[str, ...]: ...
    @property
    def named_captures(self) -> dict[str, str]: ...


class Router:
    regex_limit_hits: int

    def __init__(self, routes: list[RouteSpec]) -> None: ...
    def __len__(self) -> int: ...
    def match(
        self, method: bytes, host: bytes | None, path: bytes, headers: HeaderSource | None,
        sni: bytes | None = None, port: int = -1,
    ) -> RouteMatch | None: ...
    def priority_order(self) -> list[tuple[Any, str | None]]: ...
    def runs(self) -> list[tuple[int, int]]: ...


def route_errors(spec: RouteSpec) -> list[tuple[tuple[str | int, ...], str]]: ...
def header_field(name: str) -> bytes: ...
def normalize_path(path: bytes) -> bytes: ...
