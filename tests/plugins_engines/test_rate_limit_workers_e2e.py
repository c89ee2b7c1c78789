"""Rate limiting is exact across worker processes (issue #6): `fastgw run --workers 2`, many
concurrent keep-alive clients, limit L per window -> exactly L requests allowed."""
from __future__ import annotations

import asyncio

import aiohttp

LIMIT = 37


def _config(echo_port: int, policy: dict) -> dict:
    return {
        "_format_version": "3.0",
        "services": [{"name": "svc", "url": f"http://127.0.0.1:{echo_port}",
                      "routes": [{"name": "r", "paths": ["/"]}],
                      "plugins": [{"name": "rate-limiting",
                                   "config": {"hour": LIMIT, "limit_by": "service", **policy}}]}],
    }


async def _hammer(url: str, clients: int, per_client: int) -> list[int]:
    async def one(session: aiohttp.ClientSession) -> list[int]:
        out = []
        for _ in range(per_client):
            async with session.get(url) as r:
                await r.read()
                out.append(r.status)
        return out

    sessions = [aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=False))
                for _ in range(clients)]
    try:
        results = await asyncio.gather(*(one(s) for s in sessions))
    finally:
        for s in sessions:
            await s.close()
    return [st for r in results for st in r]


def test_two_workers_allow_exactly_the_limit(echo_upstream, fastgw):
    gw = fastgw(_config(echo_upstream.port, {"policy": "local"}), workers=2, wait_admin=True)
    statuses = asyncio.run(_hammer(gw.url("/"), clients=16, per_client=8))
    assert statuses.count(200) == LIMIT, statuses
    assert statuses.count(429) == len(statuses) - LIMIT


def test_redis_policy_is_exact_too(echo_upstream, redis_server, fastgw):
    policy = {"policy": "redis", "redis": {"host": "127.0.0.1", "port": redis_server.port}}
    gw = fastgw(_config(echo_upstream.port, policy), workers=2, wait_admin=True)
    statuses = asyncio.run(_hammer(gw.url("/"), clients=12, per_client=6))
    assert statuses.count(200) == LIMIT, statuses
    assert statuses.count(429) == len(statuses) - LIMIT
