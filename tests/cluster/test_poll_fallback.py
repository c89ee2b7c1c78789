"""The version poll is the fallback to LISTEN: a change whose notification never came is
live within POLL_INTERVAL; rows the node cannot serve leave it on its running version."""
from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import msgspec

from cluster.conftest import call, wait_status
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


def _insert_route(url: str, route: Route, *, notify: bool) -> None:
    """A row written around fastgw. notify=False claims the version the way fastgw's writer
    does, but sends no NOTIFY: what a lost notification looks like."""
    vals = [*schema.row_values("routes", route), msgspec.json.encode(route).decode()]
    claim = [("SELECT set_config('fastgw.version', "
              "(SELECT (version + 1)::text FROM fastgw_version), true)", ()),
             ("UPDATE fastgw_version SET version = version + 1", ())]
    _sql(url, *([] if notify else claim), (schema.insert_sql("routes"), (route.id, *vals)))


def test_a_lost_notification_is_caught_by_the_poll(database: str, node: Any,
                                                   echo_upstream: Any) -> None:
    a, b = node(database), node(database)
    st, _, svc = call("POST", a.admin_url("/services"),
                      {"name": "svc", "url": echo_upstream.url("/")})
    assert st == 201
    route = Route(id=str(uuid.uuid4()), name="silent", paths=["/silent"], service=svc["id"])
    _insert_route(database, route, notify=False)
    for n in (a, b):
        took = wait_status(n.url("/silent"), 200, WITHIN)
        assert took < WITHIN
        assert "(read changes)" in n.log_text()   # only the changed rows were read


def test_edits_made_with_psql_reach_every_node(database: str, node: Any,
                                               echo_upstream: Any) -> None:
    """The change log trigger versions and announces writes made around fastgw, cascades
    included."""
    a, b = node(database), node(database)
    st, _, svc = call("POST", a.admin_url("/services"),
                      {"name": "svc", "url": echo_upstream.url("/")})
    assert st == 201
    _insert_route(database, Route(id=str(uuid.uuid4()), name="psql", paths=["/psql"],
                                  service=svc["id"]), notify=True)
    for n in (a, b):
        assert wait_status(n.url("/psql"), 200, 1.0) < 1.0   # NOTIFY, not the poll
    assert call("POST", a.admin_url("/consumers"), {"username": "bob"})[0] == 201
    assert call("POST", a.admin_url("/consumers/bob/acls"), {"group": "g"})[0] == 201
    _sql(database, ("DELETE FROM consumers WHERE username = 'bob'", ()))
    deadline = time.monotonic() + 1.0
    for n in (a, b):
        while call("GET", n.admin_url("/acls"))[2]["data"] and time.monotonic() < deadline:
            time.sleep(0.02)
        assert call("GET", n.admin_url("/acls"))[2]["data"] == []   # the cascade arrived
        assert call("GET", n.admin_url("/consumers/bob"))[0] == 404


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
                    "\"nonsense\": 1}'::jsonb)", ("00000000-0000-4000-8000-000000000001",)))
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
