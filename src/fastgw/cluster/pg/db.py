"""Reading and writing the configuration in PostgreSQL (asyncpg), and the migrations.

Rules:
- Every change is one transaction: the version claimed first, the entity rows (logged in
  fastgw_change_log by trigger), the NOTIFY (sent by PostgreSQL at COMMIT, so no node hears
  of a change it cannot read yet).
- A database constraint error becomes Kong's error (UniqueViolation / ForeignKeyViolation)
  through schema.constraint_info; anything else that means "no database" is DatabaseDown.
- The whole configuration is read in one REPEATABLE READ transaction with its version, so a
  node never mixes two versions.
"""
from __future__ import annotations

import asyncio
import urllib.parse
from dataclasses import dataclass
from typing import Any

import msgspec

from fastgw.cluster.pg import schema
from fastgw.config.errors import ConfigError, ForeignKeyViolation, UniqueViolation
from fastgw.config.model import ENTITY_CLASSES, ENTITY_TYPES, FOREIGN, Config

#: connect and per-statement timeout default (Kong's pg_timeout default is 5000 ms)
DEFAULT_TIMEOUT = 5.0

_ENCODER = msgspec.json.Encoder()


class DatabaseDown(Exception):
    """The database cannot be reached (or the connection broke)."""


class NotBootstrapped(Exception):
    """The database has no fastgw schema yet."""


class BadRow(Exception):
    """A row that is not a valid entity (written around fastgw): names table and id."""

    def __init__(self, message: str, version: int) -> None:
        super().__init__(message)
        self.version = version


@dataclass(frozen=True)
class Dsn:
    """Where the database is: Kong's pg_* settings or a postgres:// URL."""
    host: str = "127.0.0.1"
    port: int = 5432
    user: str = "kong"
    password: str | None = None
    database: str = "kong"
    timeout: float = DEFAULT_TIMEOUT

    @classmethod
    def from_url(cls, url: str, timeout: float = DEFAULT_TIMEOUT) -> "Dsn":
        u = urllib.parse.urlsplit(url)
        if u.scheme not in ("postgres", "postgresql"):
            raise ValueError(f"expected postgres://user@host:port/database, got {url!r}")
        if u.query or u.fragment:   # sslmode=... and friends: refused, never ignored
            raise ValueError(f"URL parameters ({u.query or u.fragment!r}) are not supported "
                             "yet")
        try:
            port = u.port or 5432
        except ValueError:
            raise ValueError(f"bad port in {url!r}") from None
        return cls(host=u.hostname or "127.0.0.1", port=port,
                   user=urllib.parse.unquote(u.username or "kong"),
                   password=urllib.parse.unquote(u.password) if u.password else None,
                   database=urllib.parse.unquote(u.path.lstrip("/")) or "kong", timeout=timeout)

    def describe(self) -> str:
        """For logs: never the password."""
        return f"postgres://{self.user}@{self.host}:{self.port}/{self.database}"


_DOWN_ERRORS: tuple[type[BaseException], ...] = (OSError, asyncio.TimeoutError)


def _down_errors() -> tuple[type[BaseException], ...]:
    import asyncpg

    return (*_DOWN_ERRORS, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
            asyncpg.CannotConnectNowError, asyncpg.AdminShutdownError)


async def connect(dsn: Dsn) -> Any:
    import asyncpg

    try:
        return await asyncpg.connect(host=dsn.host, port=dsn.port, user=dsn.user,
                                     password=dsn.password, database=dsn.database,
                                     timeout=dsn.timeout, command_timeout=dsn.timeout)
    except _down_errors() as e:
        raise DatabaseDown(f"cannot connect to {dsn.describe()}: {_why(e)}") from None
    except asyncpg.PostgresError as e:   # bad user, missing database, auth...
        raise DatabaseDown(f"{dsn.describe()}: {e}") from None


def _why(e: BaseException) -> str:
    if isinstance(e, asyncio.TimeoutError):
        return "timed out"
    return str(e) or type(e).__name__


# ------------------------------------------------------------------------------ migrations
async def executed_migrations(conn: Any) -> list[str] | None:
    """The migrations run so far; None when the database was never bootstrapped."""
    exists = await conn.fetchval("SELECT to_regclass('fastgw_schema_meta') IS NOT NULL")
    if not exists:
        return None
    rows = await conn.fetch("SELECT name FROM fastgw_schema_meta WHERE subsystem = $1 "
                            "ORDER BY name", schema.SUBSYSTEM)
    return [r["name"] for r in rows]


async def run_migrations(conn: Any, *, bootstrap: bool) -> list[str]:
    """Run the pending migrations, each in its own transaction; returns their names. A
    transaction-level advisory lock makes concurrent runs from several nodes safe."""
    ran: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('fastgw_migrations'))")
        done = await executed_migrations(conn)
        if done is None:
            if not bootstrap:
                raise NotBootstrapped()
            await conn.execute(schema.META_DDL)
            done = []
        for name, statements in schema.MIGRATIONS:
            if name in done:
                continue
            for st in statements:
                await conn.execute(st)
            await conn.execute("INSERT INTO fastgw_schema_meta (subsystem, name) "
                               "VALUES ($1, $2)", schema.SUBSYSTEM, name)
            ran.append(name)
    return ran


def pending_migrations(done: list[str]) -> list[str]:
    return [name for name, _ in schema.MIGRATIONS if name not in done]


async def check_schema(conn: Any) -> None:
    done = await executed_migrations(conn)
    if done is None:
        raise NotBootstrapped("the database is not bootstrapped: run `fastgw migrations "
                              "bootstrap`")
    pending = pending_migrations(done)
    if pending:
        raise NotBootstrapped(f"the database has pending migrations ({', '.join(pending)}): "
                              "run `fastgw migrations up`")


# ------------------------------------------------------------------------------ reading
async def current_version(conn: Any) -> int:
    return int(await conn.fetchval("SELECT version FROM fastgw_version"))


async def load_all(conn: Any) -> tuple[Config, int]:
    """The whole configuration and its version, from one snapshot of the database."""
    parts: dict[str, list[Any]] = {}
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        version = await current_version(conn)
        for etype in ENTITY_TYPES:
            cls = ENTITY_CLASSES[etype]
            rows = await conn.fetch(schema.select_sql(etype))
            try:
                parts[etype] = [msgspec.json.decode(r[1], type=cls) for r in rows]
            except (msgspec.DecodeError, msgspec.ValidationError) as e:
                bad = next(r[0] for r in rows if not _decodes(r[1], cls))
                raise BadRow(f"{etype} {bad}: {e}", version) from None
    return Config(**parts), version


async def load_changes(conn: Any, config: Config, since: int) -> tuple[Config, int] | None:
    """`config` (the database's state at version `since`) brought to the current version by
    reading only the rows changed since; None when the change log does not reach back to
    `since` (pruned, or versions made without it): the caller reads everything."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        version = await current_version(conn)
        if version == since:
            return config, version
        if version < since:   # a restored or re-bootstrapped database
            return None
        rows = await conn.fetch("SELECT version, etype, id::text FROM fastgw_change_log "
                                "WHERE version > $1 AND version <= $2", since, version)
        if not rows or min(r[0] for r in rows) != since + 1:
            return None
        changed: dict[str, set[str]] = {}
        for _, etype, id_ in rows:
            changed.setdefault(etype, set()).add(id_)
        parts: dict[str, list[Any]] = {}
        for etype, ids in changed.items():
            if etype not in ENTITY_CLASSES:
                continue
            cls = ENTITY_CLASSES[etype]
            fresh = await conn.fetch(schema.select_ids_sql(etype), list(ids))
            try:
                now = {r[0]: msgspec.json.decode(r[1], type=cls) for r in fresh}
            except (msgspec.DecodeError, msgspec.ValidationError) as e:
                bad = next(r[0] for r in fresh if not _decodes(r[1], cls))
                raise BadRow(f"{etype} {bad}: {e}", version) from None
            old = getattr(config, etype)
            kept = [now.get(e.id, e) for e in old if e.id not in ids or e.id in now]
            known = {e.id for e in old}
            kept += [e for id_, e in now.items() if id_ not in known]   # seq order
            parts[etype] = kept
    return msgspec.structs.replace(config, **parts), version


def _decodes(text: str, cls: type) -> bool:
    try:
        msgspec.json.decode(text, type=cls)
        return True
    except (msgspec.DecodeError, msgspec.ValidationError):
        return False


# ------------------------------------------------------------------------------ writing
def _by_id(items: list[Any]) -> dict[str, Any]:
    return {e.id: e for e in items}


def diff_rows(old: Config, new: Config) -> tuple[list[tuple[str, str]], list[tuple[str, Any]],
                                                 list[tuple[str, Any]]]:
    """(deletes children first, inserts parents first, updates) between two configs."""
    deletes: list[tuple[str, str]] = []
    inserts: list[tuple[str, Any]] = []
    updates: list[tuple[str, Any]] = []
    for etype in ENTITY_TYPES:
        before, after = _by_id(getattr(old, etype)), _by_id(getattr(new, etype))
        for id_, ent in after.items():
            prev = before.get(id_)
            if prev is None:
                inserts.append((etype, ent))
            elif prev != ent:
                updates.append((etype, ent))
        for id_ in before:
            if id_ not in after:
                deletes.append((etype, id_))
    deletes.reverse()
    return deletes, inserts, updates


async def write_changes(conn: Any, old: Config, new: Config) -> int:
    """Write the difference old -> new in one transaction; returns the new version."""
    deletes, inserts, updates = diff_rows(old, new)
    return await _write(conn, deletes, [(t, e, False) for t, e in inserts] +
                        [(t, e, True) for t, e in updates])


async def import_config(conn: Any, config: Config) -> int:
    """Kong's `config db_import`: every entity of the file inserted or replaced by id."""
    rows = [(t, e, None) for t in ENTITY_TYPES for e in getattr(config, t)]
    return await _write(conn, [], rows)


async def _write(conn: Any, deletes: list[tuple[str, str]],
                 rows: list[tuple[str, Any, bool | None]]) -> int:
    import asyncpg

    phase = "delete"   # which statement failed decides what a foreign key error means
    try:
        async with conn.transaction():
            # claim the next version first: fastgw's writers queue here, one at a time, and
            # the change log trigger tags every row (cascades included) with this version.
            # Conflicts are still the constraints': a writer that queued behind another one
            # that took the same name fails on the unique index, not on a check of its own.
            version = int(await conn.fetchval(
                "UPDATE fastgw_version SET version = version + 1 RETURNING version"))
            await conn.execute("SELECT set_config('fastgw.version', $1, true)", str(version))
            for etype, id_ in deletes:
                await conn.execute(schema.delete_sql(etype), id_)
            phase = "write"
            for etype, ent, is_update in rows:
                vals = [*schema.row_values(etype, ent), _ENCODER.encode(ent).decode()]
                if is_update is None:
                    await conn.execute(schema.upsert_sql(etype), ent.id, *vals)
                elif is_update:
                    await conn.execute(schema.update_sql(etype), ent.id, *vals)
                else:
                    await conn.execute(schema.insert_sql(etype), ent.id, *vals)
            await conn.execute("DELETE FROM fastgw_change_log WHERE version <= $1",
                               version - schema.CHANGE_LOG_KEEP)
            await conn.execute("SELECT pg_notify($1, $2)", schema.CHANNEL, str(version))
    except asyncpg.UniqueViolationError as e:
        raise _unique_error(e, rows) from None
    except asyncpg.ForeignKeyViolationError as e:
        raise _foreign_error(e, rows, phase) from None
    except _down_errors() as e:
        raise DatabaseDown(_why(e)) from None
    return version


def _unique_error(e: Any, rows: list[tuple[str, Any, bool | None]]) -> ConfigError:
    info = schema.constraint_info(getattr(e, "constraint_name", None))
    if info is None:   # the primary key: an id already taken
        table = getattr(e, "table_name", None) or "entity"
        ent = next((ent for t, ent, _ in rows if t == table), None)
        return UniqueViolation(table, {"id": ent.id if ent is not None else None})
    _, etype, fields = info
    for t, ent, _ in rows:
        if t != etype:
            continue
        vals = {f: getattr(ent, f) for f in fields}
        if all(v is not None for v in vals.values()) or len(fields) > 1:
            shown = {f: v for f, v in vals.items() if v is not None}
            if len(fields) > 1 and "name" in fields:   # plugin scope, as the store shows it
                shown = {f: ({"id": v} if f in FOREIGN[etype] else v)
                         for f, v in shown.items()}
            return UniqueViolation(etype, shown)
    return UniqueViolation(etype, {f: None for f in fields})


def _foreign_error(e: Any, rows: list[tuple[str, Any, bool | None]],
                   phase: str) -> ConfigError:
    info = schema.constraint_info(getattr(e, "constraint_name", None))
    if info is None:
        return ConfigError([("", f"foreign key violation: {e}")])
    _, child_type, (field,) = info
    parent = FOREIGN[child_type][field]
    if phase == "delete":
        # deleting a parent that a RESTRICT child still references (routes of a service)
        return ForeignKeyViolation("@referenced_by", None, parent, referenced_by=child_type)
    for t, ent, _ in rows:
        if t == child_type and getattr(ent, field) is not None:
            return ForeignKeyViolation(field, {"id": getattr(ent, field)}, parent)
    return ForeignKeyViolation("@referenced_by", None, parent, referenced_by=child_type)
