"""Helpers for driving plugins through Context + Chain directly (no proxy)."""

from __future__ import annotations

import asyncio
import inspect
from types import SimpleNamespace
from typing import Any



from fastgw.plugins import Context, ListHeaders, PluginEnv, Response, build_chains

NOW = 1_700_000_000.0


def consumer(cid: str, username: str | None = None, custom_id: str | None = None) -> SimpleNamespace:
    return SimpleNamespace(id=cid, username=username, custom_id=custom_id)


def cred(**kw: Any) -> SimpleNamespace:
    return SimpleNamespace(**kw)


def make_ctx(
    method: str = "GET",
    target: str = "/",
    headers: Any = (),
    client: str = "10.0.0.1",
    scheme: str = "http",
    now: float = NOW,
    route: Any = None,
    service: Any = None,
    env: PluginEnv | None = None,
    body: bytes | None = None,
) -> Context:
    ctx = Context(method.encode(), target.encode(), ListHeaders(headers), client, scheme, route, service, now, env)
    ctx.request.body = body
    return ctx


def resolve(value: Any) -> Any:
    """Run an awaitable result to completion (sync results pass through)."""
    if inspect.isawaitable(value):
        return asyncio.run(_await(value))
    return value


async def _await(aw: Any) -> Any:
    return await aw


class Harness:
    """One configured plugin set + env; `access()` runs rewrite/access for a request."""

    def __init__(self, plugins: list[dict[str, Any]], env: PluginEnv | None = None) -> None:
        self.env = env or PluginEnv()
        self.index = build_chains(plugins, self.env)

    def chain(self, route: str | None = "r1", service: str | None = "s1") -> Any:
        return self.index.for_route(route, service)

    def access(self, route: str | None = "r1", service: str | None = "s1", **kw: Any) -> tuple[Context, Response | None]:
        chain = self.chain(route, service)
        assert chain is not None
        ctx = make_ctx(env=self.env, **kw)
        return ctx, resolve(chain.run_access(ctx))

    def respond(self, ctx: Context, status: int = 200, headers: Any = ()) -> Response | None:
        """header_filter over an upstream response."""
        chain = self.chain()
        ctx.set_response(status, ListHeaders(headers))
        return resolve(chain.run_header_filter(ctx))


def upstream_headers(ctx: Context) -> dict[str, list[str] | None]:
    ops = ctx.request.header_ops or {}
    return {k.decode(): (None if v is None else [x.decode() for x in v]) for k, v in ops.items()}


def body_json(resp: Response) -> Any:
    import orjson

    return orjson.loads(resp.body)


