"""The version poll is the fallback to LISTEN: a change whose notification never came is
live within POLL_INTERVAL; rows the node cannot serve leave it on its running version."""
from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import msgspec

from conftest import call, wait_status
from fastgw.cluster.pg import db, schema
from fastgw.cluster.pg.node import POLL_INTERVAL
from fastgw.config.model import Route

#: one poll period, plus the read and compile on a loaded machine
WITHIN = POLL_INTERVAL + 1.0


def _sql(url: str, *statements: tuple[str, tuple[Any, ...]]) -> None:
    async def main() -> None:
        conn = await db.connect(db.Dsn.from_url(url))
        try:
            async with conn.transaction():
                for sql, args in statements:
                    await conn.execute(sql, *args)
        finally:
            await conn.close()

    asyncio.run(main())


def _insert_route_silently(url: str, route: Route) -> None:
    """A row and a version bump, but no NOTIFY: what a lost notification looks like."""
    vals = [*schema.row_values("routes", route), msgspec.json.encode(route).decode()]
    _sql(url, (schema.insert_sql("routes"), (route.id, *vals)),
         ("UPDATE fastgw_version SET version = version + 1", ()))


def test_a_lost_notification_is_caught_by_the_poll(database: str, node: Any,
                                                   echo_upstream: Any) -> None:
    a, b = node(database), node(database)
    st, _, svc = call("POST", a.admin_url("/services"),
                      {"name": "svc", "url": echo_upstream.url("/")})
    assert st == 201
    route = Route(id=str(uuid.uuid4()), name="silent", paths=["/silent"], service=svc["id"])
    _insert_route_silently(database, route)
    for n in (a, b):
        took = wait_status(n.url("/silent"), 200, WITHIN)
        assert took < WITHIN


def test_rows_the_node_cannot_serve_keep_the_running_version(database: str, node: Any,
                                                             echo_upstream: Any) -> None:
    a = node(database)
    st, _, svc = call("POST", a.admin_url("/services"),
                      {"name": "svc", "url": echo_upstream.url("/")})
    assert st == 201 and call("POST", a.admin_url("/services/svc/routes"),
                              {"name": "ok", "paths": ["/ok"]})[0] == 201
    wait_status(a.url("/ok"), 200, 1.0)
    # an entity that is not one (written with psql): an unknown field
    _sql(database, ("INSERT INTO services (id, name, entity) VALUES ($1, 'bad', "
                    "'{\"id\": \"00000000-0000-4000-8000-000000000001\", \"host\": \"x\", "
                    "\"nonsense\": 1}'::jsonb)", ("00000000-0000-4000-8000-000000000001",)),
         ("UPDATE fastgw_version SET version = version + 1", ()))
    logged = "unreadable row: services 00000000-0000-4000-8000-000000000001"
    deadline = time.monotonic() + WITHIN
    while logged not in a.log_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert logged in a.log_text()
    assert call("GET", a.url("/ok"))[0] == 200          # still serving its version
    assert call("GET", a.admin_url("/services/bad"))[0] == 404
    # removing the bad row and writing again brings the node forward
    _sql(database, ("DELETE FROM services WHERE name = 'bad'", ()))
    assert call("POST", a.admin_url("/services/svc/routes"),
                {"name": "next", "paths": ["/next"]})[0] == 201
    wait_status(a.url("/next"), 200, WITHIN)
