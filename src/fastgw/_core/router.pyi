"""Compiled request router with Kong 3.x traditional_compatible rules (see router.pyx)."""
from typing import Any, Protocol


class HeaderSource(Protocol):
    def get(self, name: bytes, /) -> bytes | None: ...


class RouteSpec:
    key: Any
    hosts: list[str]
    paths: list[str]
    methods: list[str]
    headers: dict[str, list[str]]
    regex_priority: int
    strip_path: bool
    preserve_host: bool
    path_handling: str
    service_path: str | None
    order: int

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
        order: int = 0,
    ) -> None: ...


class RouteMatch:
    @property
    def key(self) -> Any: ...
    @property
    def upstream_path(self) -> bytes: ...
    @property
    def path(self) -> bytes: ...
    @property
    def preserve_host(self) -> bool: ...
    @property
    def captures(self) -> tuple[str, ...]: ...
    @property
    def named_captures(self) -> dict[str, str]: ...


class Router:
    def __init__(self, routes: list[RouteSpec]) -> None: ...
    def __len__(self) -> int: ...
    def match(
        self, method: bytes, host: bytes | None, path: bytes, headers: HeaderSource | None
    ) -> RouteMatch | None: ...
    def priority_order(self) -> list[tuple[Any, str | None]]: ...
    def runs(self) -> list[tuple[int, int]]: ...


def normalize_path(path: bytes) -> bytes: ...
