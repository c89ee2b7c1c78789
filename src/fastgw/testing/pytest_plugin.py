"""pytest fixtures for fastgw (no pytest-asyncio needed).

Enable with ``pytest_plugins = ["fastgw.testing.pytest_plugin"]`` in the top-level conftest.py,
``-p fastgw.testing.pytest_plugin``, or the ``pytest11`` entry point when the package declares
it. Fixtures:

``loop_kind``       "asyncio" and "uvloop": every test using ``fastgw_run`` runs on both.
                    Override it in your conftest to pick one::

                        @pytest.fixture
                        def loop_kind(): return "uvloop"

``fastgw_run``      ``fastgw_run(coro)`` runs the coroutine on a fresh loop of ``loop_kind``.
``gateway_client``  the ``fastgw.testing.gateway_client`` factory: inside the coroutine,
                    ``async with gateway_client(config, handlers=...) as client:``.

Example::

    def test_route(fastgw_run, gateway_client):
        up = MemoryUpstream(body=b"hi")
        async def main():
            async with gateway_client(CONFIG, handlers={"asgi:users": up}) as client:
                status, headers, body = await client.get("/users")
                assert (status, body) == (200, b"hi")
        fastgw_run(main())
"""
from __future__ import annotations

from typing import Any, Callable, Coroutine

import pytest

from fastgw import testing


@pytest.fixture(params=["asyncio", "uvloop"])
def loop_kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def fastgw_run(loop_kind: str) -> Callable[[Coroutine[Any, Any, Any]], Any]:
    def run(coro: Coroutine[Any, Any, Any]) -> Any:
        return testing.run(coro, loop_kind)

    return run


@pytest.fixture
def gateway_client() -> Callable[..., Any]:
    return testing.gateway_client
