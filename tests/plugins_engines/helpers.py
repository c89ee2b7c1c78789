"""Drive the rate-limiting and prometheus plugins through the real chain (no proxy)."""
from __future__ import annotations

import asyncio
import inspect
from types import SimpleNamespace
from typing import Any

from fastgw.plugins import Context, ListHeaders, PluginEnv, Response, build_chains

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

    def __init__(self, plugins: list[dict[str, Any]], env: PluginEnv | None = None) -> None:
        self.env = env or PluginEnv()
        self.index = build_chains(plugins, self.env)
        self.chain = self.index.for_route(ROUTE.id, SERVICE.id)
        assert self.chain is not None

    def plugin(self, name: str) -> Any:
        return next(p for p in self.chain.plugins if p.name == name)

    def request(self, **kw: Any) -> tuple[Context, Response | None]:
        ctx = make_ctx(self.env, **kw)
        return ctx, resolve(self.chain.run_access(ctx))

    async def arequest(self, **kw: Any) -> tuple[Context, Response | None]:
        ctx = make_ctx(self.env, **kw)
        r = self.chain.run_access(ctx)
        if inspect.isawaitable(r):
            r = await r
        return ctx, r

    def respond(self, ctx: Context, status: int = 200) -> dict[str, str]:
        """Run header_filter over an upstream response; the headers the client gets added."""
        ctx.set_response(status, ListHeaders([]))
        assert resolve(self.chain.run_header_filter(ctx)) is None
        ops = ctx.response.header_ops or {}
        return {k.decode(): v[0].decode() for k, v in ops.items() if v}


def hdrs(resp: Response) -> dict[str, str]:
    return {n.decode().lower(): v.decode() for n, v in resp.headers}
