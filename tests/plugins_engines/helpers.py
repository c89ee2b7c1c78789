"""Drive the rate-limiting and prometheus plugins through the real chain (no proxy), on either
engine: the Python chain, or the compiled chain (fastgw._core.native) built from the same
instances, as aiohttp runs its parser tests against both parsers."""
from __future__ import annotations

import asyncio
import inspect
from types import SimpleNamespace
from typing import Any

import pytest

from fastgw._core.native import compile_chain, unsupported
from fastgw.plugins import Context, ListHeaders, PluginEnv, Response, build_chains

ENGINES = ("python", "native")
# the engine Gateway() uses unless told: set per test by the suites' `engine` fixture
engine = "python"

NOW = 1_700_000_000.25  # 2023-11-14T22:13:20.25Z

ROUTE = SimpleNamespace(id="r1", name="route-one")
SERVICE = SimpleNamespace(id="s1", name="service-one", host="upstream.local")


def make_ctx(env: PluginEnv, now: float = NOW, headers: Any = (), target: str = "/",
             client: str = "10.0.0.1", route: Any = ROUTE, service: Any = SERVICE) -> Context:
    return Context(b"GET", target.encode(), ListHeaders(headers), client, "http", route, service, now, env)


async def _await(aw: Any) -> Any:
    return await aw


def resolve(value: Any) -> Any:
    if inspect.isawaitable(value):
        return asyncio.run(_await(value))
    return value


class Gateway:
    """A plugin set on route r1 / service s1 and the three phases of one request."""

    def __init__(self, plugins: list[dict[str, Any]], env: PluginEnv | None = None,
                 engine: str | None = None) -> None:
        self.env = env or PluginEnv()
        self.index = build_chains(plugins, self.env)
        self.chain = self.index.for_route(ROUTE.id, SERVICE.id)
        assert self.chain is not None
        self.engine = engine or globals()["engine"]
        self.native = None
        if self.engine == "native":
            self.native = compile_chain(self.chain, ROUTE, SERVICE)
            if self.native is None:
                pytest.skip(f"no compiled chain for this config ({unsupported(self.chain)})")

    def plugin(self, name: str) -> Any:
        return next(p for p in self.chain.plugins if p.name == name)

    def request(self, **kw: Any) -> tuple[Any, Response | None]:
        if self.native is not None:
            return self._native_request(**kw)
        ctx = make_ctx(self.env, **kw)
        return ctx, resolve(self.chain.run_access(ctx))

    def _native_request(self, now: float = NOW, headers: Any = (), target: str = "/",
                        client: str = "10.0.0.1", **other: Any) -> tuple[Any, Response | None]:
        if other:
            pytest.skip(f"the compiled chain is built for one route and service ({other})")
        head = (f"GET {target} HTTP/1.1\r\nHost: gw\r\n"
                + "".join(f"{n}: {v}\r\n" for n, v in headers) + "\r\n").encode("latin-1")
        st, _, resp_lines, exit_h, exit_b, _ = self.native.run(head, client.encode(), now)
        if st:
            return SimpleNamespace(resp_lines=None), Response(st, exit_b, exit_h)
        return SimpleNamespace(resp_lines=resp_lines), None

    async def arequest(self, **kw: Any) -> tuple[Context, Response | None]:
        ctx = make_ctx(self.env, **kw)
        r = self.chain.run_access(ctx)
        if inspect.isawaitable(r):
            r = await r
        return ctx, r

    def respond(self, ctx: Context, status: int = 200) -> dict[str, str]:
        """Run header_filter over an upstream response; the headers the client gets added."""
        if self.native is not None:
            lines = [ln.partition(b": ") for ln in (ctx.resp_lines or b"").split(b"\r\n") if ln]
            return {n.decode().lower(): v.decode() for n, _, v in lines}
        ctx.set_response(status, ListHeaders([]))
        assert resolve(self.chain.run_header_filter(ctx)) is None
        ops = ctx.response.header_ops or {}
        return {k.decode(): v[0].decode() for k, v in ops.items() if v}


def hdrs(resp: Response) -> dict[str, str]:
    return {n.decode().lower(): v.decode() for n, v in resp.headers}
