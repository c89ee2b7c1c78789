"""The database itself decides conflicts: two writers that both believe a name is free, a
child whose parent vanished, a delete that would orphan routes, Kong's cascades."""
from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import pytest

from fastgw.cluster.pg import db
from fastgw.config.errors import ForeignKeyViolation, UniqueViolation
from fastgw.config.model import Config, Consumer, KeyAuthCredential, Route, Service, new_id


def _run(url: str, body: Any) -> Any:
    async def main() -> Any:
        conn = await db.connect(db.Dsn.from_url(url))
        try:
            return await body(conn)
        finally:
            await conn.close()

    return asyncio.run(main())


def _svc(name: str) -> Service:
    return Service(id=new_id(), name=name, host="127.0.0.1", port=9)


def test_two_stale_writers_same_name(database: str) -> None:
    empty = Config()

    async def body(conn: Any) -> None:
        v1 = await db.write_changes(conn, empty, Config(services=[_svc("taken")]))
        # a second writer that never saw the first one: its own check passed
        with pytest.raises(UniqueViolation) as e:
            await db.write_changes(conn, empty, Config(services=[_svc("taken")]))
        assert e.value.values == {"name": "taken"}
        assert await db.current_version(conn) == v1   # the failed write bumped nothing
        cfg, version = await db.load_all(conn)
        assert [s.name for s in cfg.services] == ["taken"] and version == v1

    _run(database, body)


def test_foreign_keys_and_cascades(database: str) -> None:
    s = _svc("svc")
    r = Route(id=new_id(), name="r", paths=["/r"], service=s.id)
    c = Consumer(id=new_id(), username="alice")
    k = KeyAuthCredential(id=new_id(), consumer=c.id, key="k")
    full = Config(services=[s], routes=[r], consumers=[c], keyauth_credentials=[k])

    async def body(conn: Any) -> None:
        await db.write_changes(conn, Config(), full)
        # a route whose service another node deleted meanwhile
        orphan = Route(id=new_id(), name="o", paths=["/o"], service=new_id())
        with pytest.raises(ForeignKeyViolation) as e:
            await db.write_changes(conn, full, msgspec.structs.replace(
                full, routes=[r, orphan]))
        assert e.value.field == "service"
        # deleting the service while a route uses it: RESTRICT, as Kong
        with pytest.raises(ForeignKeyViolation) as e:
            await db.write_changes(conn, full, msgspec.structs.replace(full, services=[]))
        assert e.value.referenced_by == "routes"
        # deleting the consumer takes its credentials (ON DELETE CASCADE), even when the
        # writer did not know about them
        await db.write_changes(conn, Config(consumers=[c]), Config())
        cfg, _ = await db.load_all(conn)
        assert cfg.consumers == [] and cfg.keyauth_credentials == []
        assert [x.name for x in cfg.routes] == ["r"]

    _run(database, body)


def test_one_global_plugin_per_name(database: str) -> None:
    from fastgw.config.model import Plugin

    async def body(conn: Any) -> None:
        p = Plugin(id=new_id(), name="cors")
        await db.write_changes(conn, Config(), Config(plugins=[p]))
        with pytest.raises(UniqueViolation):   # NULLS NOT DISTINCT: both are global
            await db.write_changes(conn, Config(), Config(
                plugins=[Plugin(id=new_id(), name="cors")]))

    _run(database, body)
