"""PgNode: one gateway node following the configuration in PostgreSQL.

State machine (`state`): CONNECTED <-> DOWN. In CONNECTED the node holds one connection that
LISTENs on schema.CHANNEL; a notification wakes the sync loop, which, when the database's
version differs from the node's, reads the rows changed since (fastgw_change_log; everything
when the log does not reach back that far) and swaps the resulting whole Config in through
the store (the snapshot compile decides what that costs). The version is
also polled every POLL_INTERVAL, so a lost notification or a reconnect never leaves the node
stale. Any connection error -> DOWN: the node keeps serving its last configuration, Admin
API writes answer 503, and the loop reconnects every RECONNECT_INTERVAL, then resyncs.

Startup (`open`): read the configuration from the database; when it cannot be reached, from
the cache file the node writes after every applied version (atomic rename); with neither,
one clear SettingsError. No database access is ever on the request path.

Rules:
- Every use of the connection holds `write_lock` (asyncpg connections run one statement at a
  time; Admin API writes and resyncs on one node are serialized).
"""
from __future__ import annotations

import asyncio
import enum
import logging
import os
import tempfile
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import msgspec

from fastgw.cluster.pg import db, schema
from fastgw.cluster.pg.store import PgConfigStore
from fastgw.conf.settings import SettingsError
from fastgw.config.model import Config

log = logging.getLogger("fastgw.cluster")

#: the version poll, the fallback to LISTEN (Kong's db_update_frequency default is 5 s; 1 s
#: bounds the staleness after a lost notification to the brief's convergence target)
POLL_INTERVAL = 1.0
#: how often a DOWN node tries the database again (Kong retries on each db_update_frequency)
RECONNECT_INTERVAL = 1.0
#: the cache file name under the prefix (Kong keeps its own in <prefix>/.kong_env era files)
CACHE_NAME = "database_cache.json"


class State(enum.Enum):
    CONNECTED = "connected"
    DOWN = "down"


class _Cache(msgspec.Struct):
    version: int
    written_at: float
    database: str
    config: Config


class PgNode:
    def __init__(self, dsn: db.Dsn, cache_path: str) -> None:
        self.dsn = dsn
        self.cache_path = cache_path
        self.state = State.DOWN
        self.down_since: float | None = time.time()
        self.last_error = ""
        self.write_lock = asyncio.Lock()
        self.store: PgConfigStore | None = None
        self._conn: Any = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._failed_version = -1
        self._last_cache_write: Future[None] | None = None
        self._cache_writer = ThreadPoolExecutor(max_workers=1,
                                                thread_name_prefix="fastgw-db-cache")

    # ------------------------------------------------------------------ startup
    async def open(self) -> tuple[Config, int]:
        """The configuration to start with (see module doc)."""
        try:
            await self._connect()
            assert self._conn is not None
            config, version = await db.load_all(self._conn)
        except (db.NotBootstrapped, db.BadRow) as e:
            await self.disconnect()
            raise SettingsError(f"database {self.dsn.describe()}: {e}") from None
        except db.DatabaseDown as e:
            return self._from_cache(str(e))
        except db._down_errors() as e:
            await self.disconnect()
            return self._from_cache(db._why(e))
        log.info("configuration version %d read from %s", version, self.dsn.describe())
        self.saved(config, version)
        return config, version

    def _from_cache(self, why: str) -> tuple[Config, int]:
        self._set_down(why)
        try:
            with open(self.cache_path, "rb") as f:
                cache = msgspec.json.decode(f.read(), type=_Cache)
        except FileNotFoundError:
            raise SettingsError(f"the database is unreachable ({why}) and there is no cached "
                                f"configuration at {self.cache_path}: refusing to start "
                                "without a configuration") from None
        except (OSError, msgspec.DecodeError, msgspec.ValidationError) as e:
            raise SettingsError(f"the database is unreachable ({why}) and the cached "
                                f"configuration {self.cache_path} is unreadable: {e}") from None
        log.warning("the database is unreachable (%s): starting from the cached configuration "
                    "%s (version %d of %s, written %s); resyncing when the database is back",
                    why, self.cache_path, cache.version, cache.database,
                    time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(cache.written_at)))
        return cache.config, cache.version

    def make_store(self, config: Config, version: int, apply: Any) -> PgConfigStore:
        self.store = PgConfigStore(self, config, version, apply)
        return self.store

    def start(self) -> None:
        """Start following the database (after make_store, on the serving loop)."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        await self.disconnect()
        self._cache_writer.shutdown(wait=True)   # the last version reaches the file

    # ------------------------------------------------------------------ status
    @property
    def connected(self) -> bool:
        return self.state is State.CONNECTED

    def info(self) -> dict[str, Any]:
        return {"database": self.dsn.describe(), "state": self.state.value,
                "down_since": self.down_since, "last_error": self.last_error or None,
                "cache": self.cache_path}

    def stale_note(self) -> str | None:
        if self.connected:
            return None
        v = self.store.version if self.store is not None else "?"
        return f"unreachable; this is the last configuration seen (version {v}) and may be stale"

    def unavailable(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        """Kong answers 503 when its database is away; the message says what still works."""
        v = self.store.version if self.store is not None else "?"
        return 503, {"message": f"the database is unreachable ({self.last_error}): changes "
                                f"are refused until it is back; this node keeps serving its "
                                f"last configuration (version {v})"}, \
            [("Retry-After", str(int(RECONNECT_INTERVAL) or 1))]

    # ------------------------------------------------------------------ database
    async def _connect(self) -> None:
        conn = await db.connect(self.dsn)
        try:
            await db.check_schema(conn)
            await conn.add_listener(schema.CHANNEL, self._on_notify)
        except BaseException:
            await conn.close(timeout=1)
            raise
        conn.add_termination_listener(self._on_terminated)
        self._conn = conn
        if self.state is not State.CONNECTED:
            if self.down_since is not None and self.store is not None:
                log.warning("the database %s is reachable again", self.dsn.describe())
            self.state, self.down_since, self.last_error = State.CONNECTED, None, ""

    async def disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            try:
                await conn.close(timeout=1)
            except Exception:  # noqa: BLE001 - closing a broken connection
                conn.terminate()

    def _set_down(self, why: str) -> None:
        if self.state is State.CONNECTED or self.down_since is None:
            self.down_since = time.time()
            log.error("the database %s is unreachable (%s): serving the last configuration, "
                      "Admin API writes answer 503", self.dsn.describe(), why)
        self.state, self.last_error = State.DOWN, why

    def _on_notify(self, conn: Any, pid: int, channel: str, payload: str) -> None:
        self._wake.set()

    def _on_terminated(self, conn: Any) -> None:
        if conn is self._conn:
            self._conn = None
            self._set_down("connection closed")
            self._wake.set()

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(),
                                       POLL_INTERVAL if self.connected else RECONNECT_INTERVAL)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            try:
                await self._round()
            except Exception:  # noqa: BLE001 - the node must keep following, whatever happens
                log.exception("following the database failed; retrying")

    async def _round(self) -> None:
        async with self.write_lock:
            if self._conn is None:
                try:
                    await self._connect()
                except (db.DatabaseDown, db.NotBootstrapped) as e:
                    self._set_down(str(e))
                    return
                except db._down_errors() as e:
                    self._set_down(db._why(e))
                    return
            await self.catch_up()

    async def catch_up(self) -> bool:
        """With write_lock held: resync when the database is ahead. False when it is down."""
        if self._conn is None:
            return False
        try:
            version = await db.current_version(self._conn)
            if self.store is not None and version != self.store.version and \
                    version != self._failed_version:
                await self.resync()
        except db._down_errors() as e:
            await self._lost(db._why(e))
            return False
        return self._conn is not None

    async def resync(self) -> None:
        """With write_lock held: read the whole configuration and swap it in."""
        assert self._conn is not None and self.store is not None
        try:
            got = await db.load_changes(self._conn, self.store.config, self.store.version)
            how = "changes"
            if got is None:
                got, how = await db.load_all(self._conn), "everything"
            config, version = got
        except db.BadRow as e:
            self._refuse(e.version, f"unreadable row: {e}")
            return
        if version == self.store.version:
            return
        try:
            self.store.install(config, version)
        except Exception as e:  # noqa: BLE001 - ConfigError, or a compiler bug: keep serving
            self._refuse(version, f"does not compile: {e}")
            return
        log.info("configuration version %d applied from the database (read %s)", version,
                 how)
        self.saved(config, version)

    async def resync_after_write(self) -> None:
        """With write_lock held, after a committed write that was not the next version: the
        answer must not fail because of this, so a failure leaves it to the follow loop."""
        try:
            await self.resync()
        except Exception as e:  # noqa: BLE001 - the write itself is committed
            log.warning("reading the configuration after a write failed (%s); retrying", e)
            self._wake.set()

    def _refuse(self, version: int, why: str) -> None:
        # rows written around fastgw (psql) that it cannot serve: keep serving the running
        # version, and do not retry this one on every poll (the next change retries)
        self._failed_version = version
        log.error("configuration version %d from the database %s; running version %s kept",
                  version, why, self.store.version if self.store is not None else "?")

    async def write(self, old: Config, new: Config) -> int | None:
        """With write_lock held: one change; its version, or None when the database is gone
        (UniqueViolation / ForeignKeyViolation raise)."""
        if self._conn is None:
            return None
        try:
            return await db.write_changes(self._conn, old, new)
        except db.DatabaseDown as e:
            await self._lost(str(e))
            return None

    async def _lost(self, why: str) -> None:
        self._set_down(why)
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.terminate()

    # ------------------------------------------------------------------ cache
    def saved(self, config: Config, version: int) -> None:
        """Write the cache file of an applied version (tmp + fsync + rename), off the loop:
        one writer thread keeps the versions in order."""
        data = msgspec.json.encode(_Cache(version=version, written_at=time.time(),
                                          database=self.dsn.describe(), config=config))
        self._last_cache_write = self._cache_writer.submit(self._write_cache, data)

    def flush_cache(self) -> None:
        """Wait for the cache file write in progress (before a fork: no thread mid-write)."""
        if self._last_cache_write is not None:
            self._last_cache_write.result()

    def _write_cache(self, data: bytes) -> None:
        d = os.path.dirname(os.path.abspath(self.cache_path))
        try:
            os.makedirs(d, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".fastgw-cache-", dir=d)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.cache_path)
        except OSError as e:
            log.error("cannot write the configuration cache %s: %s", self.cache_path, e)
