"""pre-function and post-function in Python form (Kong's serverless-functions plugins).

Kong runs Lua code strings from the config in any phase. fastgw never runs code taken from
configuration data: each phase lists Python functions named by import path,
``"package.module:function"`` (the module is imported when the config is loaded; a missing
module or attribute is a config error naming the element). A Lua chunk in these arrays is
rejected with an error that says why.

Function signatures (each may be ``async def`` except header_filter and body_filter):

- ``rewrite(ctx)``, ``access(ctx)`` -> None to continue, or a :class:`~fastgw.plugins.Response`
  to answer instead of proxying (Kong's ``kong.response.exit``);
- ``header_filter(ctx)`` -> None, or a Response replacing the upstream's;
- ``body_filter(ctx, chunk, eof)`` -> the bytes to send (None keeps ``chunk``);
- ``log(ctx)`` -> ignored.

Functions of one phase run in list order. Only the phases a config names are hooked into the
chain, so a pre-function with only ``access`` costs nothing in the other phases (a configured
body_filter makes the response go out chunked, like every body filter).
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import msgspec

from .base import Plugin, PluginEnv, Response, field_error

PHASES = ("certificate", "rewrite", "access", "header_filter", "body_filter", "log")
_IMPORT_PATH = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*$")


def resolve(path: str, field: str, plugin: str) -> Callable[..., Any]:
    if not _IMPORT_PATH.match(path):
        raise field_error(
            field,
            f"{plugin} takes Python functions named 'package.module:function', not code: fastgw "
            "never runs code taken from the configuration (Kong's Lua code strings are not supported)",
        )
    modname, _, attr = path.partition(":")
    try:
        obj: Any = importlib.import_module(modname)
    except Exception as e:  # ImportError, or the module failing to import
        raise field_error(field, f"could not import module '{modname}': {e}") from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise field_error(field, f"module '{modname}' has no attribute '{attr}'") from None
    if not callable(obj):
        raise field_error(field, f"'{path}' is not callable")
    return obj


class ServerlessConfig(msgspec.Struct, forbid_unknown_fields=True):
    certificate: list[str] = msgspec.field(default_factory=list)
    rewrite: list[str] = msgspec.field(default_factory=list)
    access: list[str] = msgspec.field(default_factory=list)
    header_filter: list[str] = msgspec.field(default_factory=list)
    body_filter: list[str] = msgspec.field(default_factory=list)
    log: list[str] = msgspec.field(default_factory=list)

    def __post_init__(self) -> None:
        if not any(getattr(self, p) for p in PHASES):
            raise ValueError(
                "at least one of these fields must be non-empty: 'config.certificate', "
                "'config.rewrite', 'config.access', 'config.header_filter', 'config.body_filter', "
                "'config.log'"
            )
        if self.certificate:
            raise field_error(
                "certificate", "the certificate phase is not available to fastgw plugins (TLS is terminated by the core)"
            )
        for phase in PHASES[1:]:
            for i, path in enumerate(getattr(self, phase)):
                if not isinstance(path, str):
                    raise field_error(f"{phase}[{i}]", "expected a string")
                fn = resolve(path, f"{phase}[{i}]", "pre-function/post-function")
                if phase in ("header_filter", "body_filter") and inspect.iscoroutinefunction(fn):
                    raise field_error(f"{phase}[{i}]", f"{phase} functions cannot be async (the response head and body are streamed)")


def _run_all(fns: Sequence[Callable[..., Any]], ctx: Any, i: int = 0) -> Any:
    n = len(fns)
    while i < n:
        r = fns[i](ctx)
        i += 1
        if r is None:
            continue
        if isinstance(r, Response):
            return r
        if inspect.isawaitable(r):
            return _resume(fns, ctx, i, r)
        raise TypeError(f"function returned {type(r).__name__}, expected None or Response")
    return None


async def _resume(fns: Sequence[Callable[..., Any]], ctx: Any, i: int, aw: Any) -> Any:
    r = await aw
    if r is not None:
        if isinstance(r, Response):
            return r
        raise TypeError(f"function returned {type(r).__name__}, expected None or Response")
    nxt = _run_all(fns, ctx, i)
    while nxt is not None and not isinstance(nxt, Response):
        nxt = await nxt
    return nxt


class _Phases:
    """Phase bodies; a per-config subclass takes only the configured ones."""

    def rewrite(self: Any, ctx: Any) -> Any:
        return _run_all(self._fns["rewrite"], ctx)

    def access(self: Any, ctx: Any) -> Any:
        return _run_all(self._fns["access"], ctx)

    def header_filter(self: Any, ctx: Any) -> Any:
        return _run_all(self._fns["header_filter"], ctx)

    def body_filter(self: Any, ctx: Any, chunk: bytes, eof: bool) -> bytes:
        for fn in self._fns["body_filter"]:
            out = fn(ctx, chunk, eof)
            if out is not None:
                chunk = out
        return chunk

    def log(self: Any, ctx: Any) -> Any:
        pending = []
        for fn in self._fns["log"]:
            r = fn(ctx)
            if r is not None and inspect.isawaitable(r):
                pending.append(r)
        if not pending:
            return None

        async def wait() -> None:
            for aw in pending:
                await aw

        return wait()


_VARIANTS: dict[tuple[type, tuple[str, ...]], type] = {}


class ServerlessFunction(Plugin):
    """Base of pre-function and post-function (Kong's _handler.lua with a priority)."""

    Config = ServerlessConfig
    no_consumer: ClassVar[bool] = True  # Kong's typedefs.no_consumer

    def __new__(cls, config: ServerlessConfig, env: PluginEnv) -> ServerlessFunction:
        phases = tuple(p for p in PHASES[1:] if getattr(config, p))
        key = (cls, phases)
        sub = _VARIANTS.get(key)
        if sub is None:
            body = {p: getattr(_Phases, p) for p in phases}
            sub = _VARIANTS[key] = type(cls.__name__, (cls,), body)
        return super().__new__(sub)

    def __init__(self, config: ServerlessConfig, env: PluginEnv) -> None:
        super().__init__(config, env)
        # resolved again here (cached by importlib): the config struct holds the paths only
        self._fns = {
            p: tuple(resolve(x, f"{p}[{i}]", self.name) for i, x in enumerate(getattr(config, p)))
            for p in PHASES[1:]
        }
