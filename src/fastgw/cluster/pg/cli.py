"""Kong's database verbs: `migrations bootstrap | up | status`, `config db_import | db_export`.

Messages and exit codes follow kong/cmd/migrations.lua and kong/cmd/utils/migrations.lua
(`status` exits 3 when the database needs bootstrapping, 5 when migrations are pending).
Every failure is one line on stderr and exit 1 (cli.fail).
"""
from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from typing import Any

from fastgw.cluster.pg import db
from fastgw.conf.settings import SettingsError

#: Kong's exit codes for `migrations status` (kong/cmd/migrations.lua)
EXIT_NEEDS_BOOTSTRAP = 3
EXIT_PENDING = 5
NEEDS_BOOTSTRAP_MSG = "Database needs bootstrapping or is older than Kong 1.0."


def add_parsers(sub: Any, add_database_flags: Callable[[argparse.ArgumentParser], None]) -> None:
    m = sub.add_parser("migrations", help="bootstrap or upgrade the PostgreSQL schema")
    m.add_argument("action", choices=("bootstrap", "up", "status"))
    m.add_argument("--conf", help="a kong.conf-format file of node settings")
    add_database_flags(m)
    c = sub.add_parser("config", help="import a declarative file into the database, or "
                       "export the database as one")
    c.add_argument("action", choices=("db_import", "db_export"))
    c.add_argument("file", nargs="?", help="db_import: the declarative file (required); "
                   "db_export: where to write it (default: stdout)")
    c.add_argument("--conf", help="a kong.conf-format file of node settings")
    add_database_flags(c)


def _dsn(s: Any) -> db.Dsn:
    from fastgw.cluster.pg.runtime import plan_database

    dsn = plan_database(s)
    if dsn is None:
        raise SettingsError("no database: set --database postgres://user@host:port/db, "
                            "KONG_DATABASE=postgres (with KONG_PG_*) or database in kong.conf")
    return dsn


def run_command(args: argparse.Namespace, s: Any) -> int:
    dsn = _dsn(s)
    if args.cmd == "migrations":
        return asyncio.run(_migrations(dsn, args.action))
    if args.action == "db_import":
        if not args.file:
            raise SettingsError("config db_import: which file? (fastgw config db_import "
                                "kong.yml)")
        return asyncio.run(_db_import(dsn, args.file))
    return asyncio.run(_db_export(dsn, args.file))


async def _open(dsn: db.Dsn) -> Any:
    try:
        return await db.connect(dsn)
    except db.DatabaseDown as e:
        raise SettingsError(str(e)) from None


async def _migrations(dsn: db.Dsn, action: str) -> int:
    conn = await _open(dsn)
    try:
        done = await db.executed_migrations(conn)
        if action == "status":
            if done is None:
                print(NEEDS_BOOTSTRAP_MSG)
                return EXIT_NEEDS_BOOTSTRAP
            print(f"Executed migrations:\n{db.schema.SUBSYSTEM}: {', '.join(done)}")
            pending = db.pending_migrations(done)
            if pending:
                print(f"\nNew migrations available:\n{db.schema.SUBSYSTEM}: "
                      f"{', '.join(pending)}\n\nRun 'fastgw migrations up' to proceed")
                return EXIT_PENDING
            print("\nDatabase is up-to-date")
            return 0
        if action == "bootstrap":
            if done is not None:
                print("Database already bootstrapped")
                return 0
            print("Bootstrapping database...")
            ran = await db.run_migrations(conn, bootstrap=True)
            for name in ran:
                print(f"migrating {db.schema.SUBSYSTEM} on database '{dsn.database}'...\n"
                      f"{db.schema.SUBSYSTEM} migrated up to: {name}")
            print(f"{len(ran)} migration{'s' if len(ran) != 1 else ''} processed\n"
                  "Database is up-to-date")
            return 0
        if done is None:
            raise SettingsError(f"Cannot run migrations: {NEEDS_BOOTSTRAP_MSG} Run "
                                "'fastgw migrations bootstrap'")
        ran = await db.run_migrations(conn, bootstrap=False)
        if not ran:
            print("Database is already up-to-date")
        for name in ran:
            print(f"{db.schema.SUBSYSTEM} migrated up to: {name}")
        return 0
    finally:
        await conn.close()


async def _ready(dsn: db.Dsn) -> Any:
    conn = await _open(dsn)
    try:
        await db.check_schema(conn)
    except db.NotBootstrapped as e:
        await conn.close()
        raise SettingsError(f"database {dsn.describe()}: {e}") from None
    return conn


async def _db_import(dsn: db.Dsn, path: str) -> int:
    from fastgw.conf.plan import RunPlan, load_declarative
    from fastgw.conf.settings import Settings
    from fastgw.config.errors import ConfigError

    plan = RunPlan(settings=Settings(), listen=("127.0.0.1", 0), admin_listen=None,
                   status_listen=None, config_path=path, config_text=None, demo=False)
    config = load_declarative(plan)   # SettingsError naming the bad field
    conn = await _ready(dsn)
    try:
        version = await db.import_config(conn, config)
    except ConfigError as e:
        raise SettingsError(f"{path}: the database refused it: {e}") from None
    except db.DatabaseDown as e:
        raise SettingsError(f"{dsn.describe()}: {e}") from None
    finally:
        await conn.close()
    n = sum(len(getattr(config, t)) for t in db.ENTITY_TYPES)
    print(f"parse successful, {n} entities imported into {dsn.describe()} "
          f"(configuration version {version})")
    return 0


async def _db_export(dsn: db.Dsn, path: str | None) -> int:
    from fastgw.config.declarative import dump_yaml

    conn = await _ready(dsn)
    try:
        config, version = await db.load_all(conn)
    except db.BadRow as e:
        raise SettingsError(f"database {dsn.describe()}: {e}") from None
    finally:
        await conn.close()
    text = dump_yaml(config)
    if path is None:
        sys.stdout.write(text)
        return 0
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as e:
        raise SettingsError(f"cannot write {path}: {e.strerror}") from None
    print(f"configuration version {version} exported to {path}", file=sys.stderr)
    return 0
