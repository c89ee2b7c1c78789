"""The PostgreSQL schema of Kong's database mode, derived from the entity model.

Storage design: one table per entity type (Kong's table names: services, routes, ...), each
row = `id uuid PRIMARY KEY`, the columns that take part in a constraint (model.UNIQUE and
model.FOREIGN) as real columns, and the whole entity as `entity jsonb`. `seq` keeps the
insertion order (the Admin API lists in that order, like a declarative file's). The database
enforces every cross-entity rule: unique names (409), foreign keys (400 code 4) and Kong's
cascades (`ON DELETE CASCADE` where model.CASCADE says so, RESTRICT elsewhere), so two nodes
writing at once can never both win.

`fastgw_version` is a single-row counter bumped in the same transaction as every change;
`NOTIFY fastgw_changes, '<version>'` is sent with it (delivered at COMMIT), and
`fastgw_change_log` records (version, table, id) of every changed row (a trigger, so
cascaded deletes and edits made with psql are logged too): a node reads only what changed
since its version.

Rules:
- Constraint names are generated here (`<table>_<cols>_key`, `<table>_<col>_fkey`) and mapped
  back by `constraint_info`: a database error becomes Kong's error without parsing its text.
- Migrations are an append-only list; `fastgw_schema_meta` records which ran.
"""
from __future__ import annotations

from typing import Any

from fastgw.config.model import CASCADE, ENTITY_TYPES, FOREIGN, UNIQUE

#: the channel every node LISTENs on
CHANNEL = "fastgw_changes"
#: the Kong-style subsystem name recorded in fastgw_schema_meta
SUBSYSTEM = "core"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def constraint_columns(etype: str) -> list[str]:
    """The real columns of an entity's table besides id/seq/entity."""
    cols: list[str] = []
    for fields in UNIQUE[etype]:
        for f in fields:
            if f not in cols:
                cols.append(f)
    for f in FOREIGN[etype]:
        if f not in cols:
            cols.append(f)
    return cols


def unique_name(etype: str, fields: tuple[str, ...]) -> str:
    return f"{etype}_{'_'.join(fields)}_key"


def foreign_name(etype: str, field: str) -> str:
    return f"{etype}_{field}_fkey"


def _table_ddl(etype: str) -> str:
    lines = ["id uuid PRIMARY KEY", "seq bigserial NOT NULL"]
    for col in constraint_columns(etype):
        parent = FOREIGN[etype].get(col)
        if parent is not None:
            action = "CASCADE" if CASCADE.get((etype, col), False) else "RESTRICT"
            lines.append(f"{_ident(col)} uuid CONSTRAINT {foreign_name(etype, col)} "
                         f"REFERENCES {_ident(parent)} (id) ON DELETE {action}")
        else:
            lines.append(f"{_ident(col)} text")
    lines.append("entity jsonb NOT NULL")
    for fields in UNIQUE[etype]:
        cols = ", ".join(_ident(f) for f in fields)
        # a plugin's scope (name, route, service, consumer) is unique with NULLs equal: one
        # global rate-limiting plugin, not one per NULL (PostgreSQL >= 15)
        nulls = " NULLS NOT DISTINCT" if len(fields) > 1 else ""
        lines.append(f"CONSTRAINT {unique_name(etype, fields)} UNIQUE{nulls} ({cols})")
    body = ",\n  ".join(lines)
    return f"CREATE TABLE {_ident(etype)} (\n  {body}\n)"


def base_ddl() -> list[str]:
    """Migration 000: the version counter and one table per entity type (parents first:
    ENTITY_TYPES is in dependency order)."""
    out = [
        "CREATE TABLE fastgw_version (id boolean PRIMARY KEY DEFAULT true CHECK (id), "
        "version bigint NOT NULL)",
        "INSERT INTO fastgw_version (id, version) VALUES (true, 0)",
    ]
    out += [_table_ddl(t) for t in ENTITY_TYPES]
    return out


#: versions kept in fastgw_change_log; a node further behind reads the whole configuration
#: (Kong keeps its cluster_events rows for a bounded time too: kong/cluster_events/init.lua)
CHANGE_LOG_KEEP = 10_000

#: the change log trigger: every row change of an entity table is logged with the version of
#: its transaction. The first change of a transaction that did not claim a version (psql,
#: any writer but fastgw) bumps fastgw_version and NOTIFYs itself, so edits made around
#: fastgw reach the nodes too. fastgw's writer claims the version up front (db._write).
LOG_FUNCTION = f"""
CREATE FUNCTION fastgw_log_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE v text := current_setting('fastgw.version', true);
BEGIN
  IF v IS NULL OR v = '' THEN
    UPDATE fastgw_version SET version = version + 1 RETURNING version::text INTO v;
    PERFORM set_config('fastgw.version', v, true);
    PERFORM pg_notify('{CHANNEL}', v);
  END IF;
  INSERT INTO fastgw_change_log (version, etype, id)
    VALUES (v::bigint, TG_TABLE_NAME, CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END);
  RETURN NULL;
END $$"""


def change_log_ddl() -> list[str]:
    """Migration 001: fastgw_change_log and its triggers (incremental reads)."""
    out = ["CREATE TABLE fastgw_change_log (version bigint NOT NULL, etype text NOT NULL, "
           "id uuid NOT NULL)",
           "CREATE INDEX fastgw_change_log_version ON fastgw_change_log (version)",
           LOG_FUNCTION]
    # row triggers fire for ON DELETE CASCADE deletes too: cascades are logged
    out += [f"CREATE TRIGGER {t}_log AFTER INSERT OR UPDATE OR DELETE ON {_ident(t)} "
            "FOR EACH ROW EXECUTE FUNCTION fastgw_log_change()" for t in ENTITY_TYPES]
    return out


#: (name, statements): append only, never edit a released one
MIGRATIONS: list[tuple[str, list[str]]] = [
    ("000_base", base_ddl()),
    ("001_change_log", change_log_ddl()),
]

META_DDL = ("CREATE TABLE IF NOT EXISTS fastgw_schema_meta (subsystem text NOT NULL, "
            "name text NOT NULL, executed_at timestamptz NOT NULL DEFAULT now(), "
            "PRIMARY KEY (subsystem, name))")


def constraint_info(name: str | None) -> tuple[str, str, tuple[str, ...]] | None:
    """A constraint name -> ("unique" | "foreign", entity type, fields)."""
    if not name:
        return None
    for etype in ENTITY_TYPES:
        for fields in UNIQUE[etype]:
            if unique_name(etype, fields) == name:
                return "unique", etype, fields
        for f in FOREIGN[etype]:
            if foreign_name(etype, f) == name:
                return "foreign", etype, (f,)
    return None


def row_values(etype: str, ent: Any) -> list[Any]:
    """The constraint columns' values of an entity, in constraint_columns order."""
    return [getattr(ent, c) for c in constraint_columns(etype)]


def insert_sql(etype: str) -> str:
    cols = ["id", *constraint_columns(etype), "entity"]
    params = [f"${i + 1}" for i in range(len(cols))]
    params[-1] += "::jsonb"
    return (f"INSERT INTO {_ident(etype)} ({', '.join(_ident(c) for c in cols)}) "
            f"VALUES ({', '.join(params)})")


def upsert_sql(etype: str) -> str:
    cols = [*constraint_columns(etype), "entity"]
    sets = ", ".join(f"{_ident(c)} = EXCLUDED.{_ident(c)}" for c in cols)
    return insert_sql(etype) + f" ON CONFLICT (id) DO UPDATE SET {sets}"


def update_sql(etype: str) -> str:
    cols = [*constraint_columns(etype), "entity"]
    sets = [f"{_ident(c)} = ${i + 2}" for i, c in enumerate(cols)]
    sets[-1] += "::jsonb"
    return f"UPDATE {_ident(etype)} SET {', '.join(sets)} WHERE id = $1"


def delete_sql(etype: str) -> str:
    return f"DELETE FROM {_ident(etype)} WHERE id = $1"


def select_ids_sql(etype: str) -> str:
    return (f"SELECT id::text, entity::text FROM {_ident(etype)} WHERE id = ANY($1::uuid[]) "
            "ORDER BY seq")


def select_sql(etype: str) -> str:
    return f"SELECT id::text, entity::text FROM {_ident(etype)} ORDER BY seq"
