"""Run plugin scenarios through a real in-process Gateway on 127.0.0.1:0 (real sockets).

``serve(config, scenario)`` starts a Gateway with the declarative ``config`` on a fresh asyncio
loop, calls ``await scenario(client)`` with an HttpClient connected to it, stops the gateway
and returns what the scenario returned. Upstreams are EchoUpstream instances (tests/servers.py:
their own thread and loop, real sockets), so the upstream can be reached while the gateway's
loop waits on the client.
"""
from __future__ import annotations

from typing import Any, Awaitable, Callable, TypeVar

from fastgw import testing
from fastgw.config.errors import ConfigError
from fastgw.gateway import load_config

T = TypeVar("T")


def kong_config(upstream_port: int, routes: list[dict[str, Any]], **top: Any) -> dict[str, Any]:
    """One service on the echo upstream holding ``routes``; ``top`` adds top-level lists."""
    return {
        "_format_version": "3.0",
        "services": [{"name": "echo", "url": f"http://127.0.0.1:{upstream_port}", "routes": routes}],
        **top,
    }


def route(name: str, plugins: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
    return {"name": name, "paths": kw.pop("paths", [f"/{name}"]), "plugins": plugins, **kw}


def serve(config: dict[str, Any], scenario: Callable[[Any], Awaitable[T]], **gateway_kwargs: Any) -> T:
    async def main() -> T:
        async with testing.gateway_client(config, **gateway_kwargs) as client:
            return await scenario(client)

    return testing.run(main())


def config_errors(plugin: str, config: dict[str, Any]) -> dict[str, str]:
    """Load a one-plugin config and return its errors as {path under the plugin: message}."""
    doc = {"_format_version": "3.0", "plugins": [{"name": plugin, "config": config}]}
    try:
        load_config(doc)
    except ConfigError as e:
        return {p.removeprefix("plugins[0]."): m for p, m in e.errors}
    return {}
