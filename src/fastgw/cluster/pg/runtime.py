"""The hooks `fastgw run` uses in database mode (cli, serve, master call these only).

  plan_database(settings)  -> Dsn or None            (conf.plan.make_plan)
  prepare(plan)            -> read the first configuration before serving/forking (cli)
  attach(plan, gw, apply)  -> the node's PgConfigStore as gw.store, following started
  detach(plan)             -> stop following, close the connection
"""
from __future__ import annotations

import asyncio
import os
from typing import Any

from fastgw.cluster.pg.db import DEFAULT_TIMEOUT, Dsn
from fastgw.cluster.pg.node import CACHE_NAME, PgNode, State
from fastgw.conf.settings import Settings, SettingsError

_NODE = "pg_node"


def plan_database(s: Settings) -> Dsn | None:
    """Kong's `database` + pg_* settings (or a postgres:// URL in `database`) -> a Dsn."""
    db = s.database
    if db == "off":
        return None
    timeout = (s.pg_timeout or int(DEFAULT_TIMEOUT * 1000)) / 1000.0
    if db == "postgres":
        return Dsn(host=s.pg_host or "127.0.0.1", port=s.pg_port or 5432,
                   user=s.pg_user or "kong", password=s.pg_password,
                   database=s.pg_database or "kong", timeout=timeout)
    try:
        return Dsn.from_url(db, timeout=timeout)
    except ValueError as e:
        raise SettingsError(f"database ({s.source('database')}): {e}") from None


def cache_path(s: Settings) -> str:
    """database_cache, else <prefix>/database_cache.json, else ~/.fastgw/..."""
    if s.database_cache:
        return os.path.abspath(s.database_cache)
    from fastgw.daemon import DEFAULT_PREFIX

    return os.path.join(os.path.abspath(s.prefix or DEFAULT_PREFIX), CACHE_NAME)


def prepare(plan: Any) -> None:
    """Read the configuration to start with (the database, else the cache: PgNode.open), on
    a short-lived loop: the serving loop (or the master's, after the fork) reconnects."""
    node = PgNode(plan.database, cache_path(plan.settings))

    async def first() -> tuple[Any, int]:
        try:
            return await node.open()
        finally:
            await node.disconnect()   # bound to this loop; the serving loop reconnects

    plan.config, version = asyncio.run(first())
    node.flush_cache()   # `run --workers N` forks next: no thread mid-write then
    from fastgw.cli import _compile   # rows written around fastgw may not compile: one error

    _compile(plan.config, f"the configuration in {plan.database.describe()} "
                          f"(version {version})")
    if node.connected:   # that connection is gone with its loop: reconnect quietly
        node.state, node.down_since, node.last_error = State.DOWN, None, "connecting"
    plan.extra[_NODE] = (node, version)


def attach(plan: Any, gw: Any, apply: Any) -> Any:
    """On the serving loop: the node's store becomes gw.store; the node follows the database
    from now on (its first round reconnects and catches up at once)."""
    node, version = plan.extra[_NODE]
    store = node.make_store(gw.config, version, apply)
    gw.store = store
    node._wake.set()
    node.start()
    return store


async def detach(plan: Any) -> None:
    entry = plan.extra.get(_NODE)
    if entry is not None:
        await entry[0].stop()
