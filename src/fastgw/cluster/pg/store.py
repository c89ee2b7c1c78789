"""PgConfigStore: the Admin API's ConfigStore when the configuration lives in PostgreSQL.

The inherited ConfigStore logic still builds and validates each change against this node's
copy (Kong's schema errors, readable 404s); the change is then written to the database in one
transaction, where the constraints decide conflicts between nodes (409 / 400 code 4 come from
PostgreSQL when two nodes race), and only then is it live here. Every other node picks it up
through PgNode (LISTEN / version poll).

Rules:
- `_commit` (the single point every inherited change goes through) only records the new
  Config during an Admin API write (`around_request`); outside one it refuses, so nothing
  can change this node without going through the database.
- A write is: catch up with the database, run the handler, compile and swap the result here
  (a config the runtime cannot compile never reaches the database), write the rows; if the
  database refuses or is gone, swap the previous config back and answer the error (503 when
  the database is away). Writes on one node are serialized by PgNode's lock.
- Reads never touch the database; when it is away they carry `X-Fastgw-Database` saying the
  data may be stale.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastgw.config.errors import ConfigError
from fastgw.config.model import Config, config_hash
from fastgw.config.store import ConfigStore

if TYPE_CHECKING:
    from fastgw.cluster.pg.node import PgNode

_READS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Kong's answer to POST /config in database mode (kong/api/routes/config.lua)
NOT_DBLESS = "this endpoint is only available when Kong is configured to not use a database"


class PgConfigStore(ConfigStore):
    def __init__(self, node: "PgNode", config: Config, version: int,
                 apply: Callable[[Config], None]) -> None:
        super().__init__(config, apply, None, source_path=None)
        self.node = node
        self.version = version
        self._capturing = False
        self._pending: Config | None = None

    @property
    def persistence(self) -> str:
        return "postgres"

    def info(self) -> dict[str, Any]:
        out = super().info()
        out["database"] = self.node.info()
        return out

    # ----------------------------------------------------------------- inherited hook
    def _commit(self, new: Config) -> None:
        if not self._capturing:
            raise ConfigError([("", "in database mode the configuration changes only "
                                    "through the Admin API or `fastgw config db_import`")])
        self._pending = new

    # ----------------------------------------------------------------- from the database
    def install(self, config: Config, version: int) -> None:
        """A configuration read from the database (or the cache): compile and swap it in
        (raises ConfigError and changes nothing when it does not compile)."""
        self._apply(config)
        self._config = config
        self._hash = config_hash(config)
        self.version = version

    # ----------------------------------------------------------------- Admin API hook
    async def around_request(self, method: str, path: str,
                             call: Callable[[], Any]) -> Any:
        """Run one Admin API handler (`call` returns (status, payload, extra headers))."""
        if method in _READS:
            status, payload, extra = call()
            if isinstance(payload, dict) and status == 200:
                self._describe_database(path.rstrip("/") or "/", payload)
            stale = self.node.stale_note()
            if stale:
                extra = [*extra, ("X-Fastgw-Database", stale)]
            return status, payload, extra
        if path.rstrip("/") == "/config" and method == "POST":
            return 400, {"message": NOT_DBLESS}, []
        async with self.node.write_lock:
            # fresh: this node has the database's latest version. Without the database the
            # handler still runs (404s, validation, target health marks answer as usual);
            # only a change is refused
            fresh = self.node.connected and await self.node.catch_up()
            old = self._config
            self._capturing, self._pending = True, None
            try:
                result = call()
            finally:
                self._capturing = False
            new, self._pending = self._pending, None
            if new is None:   # nothing changed (DELETE of nothing, a validate endpoint)
                return result
            if not fresh:
                return self.node.unavailable()
            self._apply(new)   # ConfigError: not compilable, nothing written
            try:
                version = await self.node.write(old, new)
            except BaseException:
                self._apply(old)
                raise
            if version is None:   # the database went away during the write
                self._apply(old)
                return self.node.unavailable()
            if version == self.version + 1:
                self._config, self._hash, self.version = new, config_hash(new), version
                self.node.saved(new, version)
            else:   # another node wrote in between: take the database's whole state
                await self.node.resync_after_write()
            return result

    def _describe_database(self, path: str, payload: dict[str, Any]) -> None:
        """What Kong's GET / and GET /status say about the database, for this node."""
        if path == "/status" and isinstance(payload.get("database"), dict):
            # database.reachable: whether the database answers this node now
            payload["database"] = {**payload["database"], "reachable": self.node.connected}
        elif path == "/" and isinstance(payload.get("configuration"), dict):
            d = self.node.dsn
            payload["configuration"] = {
                **payload["configuration"], "database": "postgres", "pg_host": d.host,
                "pg_port": d.port, "pg_user": d.user, "pg_database": d.database,
                "pg_password": "******" if d.password else None,   # Kong masks it too
                "pg_timeout": int(d.timeout * 1000), "database_state": self.node.info()}
