"""Kong's database verbs and settings: migrations, db_import / db_export, KONG_PG_*."""
from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import yaml

from cluster.conftest import PgNodeProcess, call, fastgw_cli, wait_status

KONG_YML = """\
_format_version: "3.0"
services:
- name: echo
  url: {url}
  routes:
  - name: hello
    paths: [/hello]
    plugins:
    - name: key-auth
consumers:
- username: alice
  keyauth_credentials:
  - key: alice-key
"""


def test_migrations_bootstrap_up_status(postgres: Any) -> None:
    url = postgres.create_database("migr")
    r = fastgw_cli("migrations", "status", "--database", url)
    assert r.returncode == 3 and "needs bootstrapping" in r.stdout
    r = fastgw_cli("migrations", "up", "--database", url)
    assert r.returncode == 1 and "bootstrap" in r.stderr and "Traceback" not in r.stderr
    r = fastgw_cli("migrations", "bootstrap", "--database", url)
    assert r.returncode == 0 and "Database is up-to-date" in r.stdout, r.stderr
    r = fastgw_cli("migrations", "bootstrap", "--database", url)
    assert r.returncode == 0 and "already bootstrapped" in r.stdout
    r = fastgw_cli("migrations", "status", "--database", url)
    assert r.returncode == 0 and "000_base" in r.stdout and "up-to-date" in r.stdout
    r = fastgw_cli("migrations", "up", "--database", url)
    assert r.returncode == 0 and "already up-to-date" in r.stdout


def test_a_node_refuses_a_database_that_is_not_bootstrapped(postgres: Any) -> None:
    url = postgres.create_database("nobootstrap")
    r = fastgw_cli("run", "--database", url, "--listen", "127.0.0.1:0",
                   "--admin-listen", "off")
    assert r.returncode == 1 and "fastgw migrations bootstrap" in r.stderr
    assert "Traceback" not in r.stderr


def test_db_import_then_export_and_serve(database: str, node: Any, echo_upstream: Any,
                                         tmp_path: Any) -> None:
    src = tmp_path / "kong.yml"
    src.write_text(KONG_YML.format(url=echo_upstream.url("/")))
    r = fastgw_cli("config", "db_import", str(src), "--database", database)
    assert r.returncode == 0, r.stderr
    n = node(database)
    wait_status(n.url("/hello"), 401, 1.0)   # key-auth from the database
    # importing the same file again replaces by id: nothing duplicated
    assert fastgw_cli("config", "db_import", str(src), "--database", database).returncode == 0
    out = tmp_path / "export.yml"
    r = fastgw_cli("config", "db_export", str(out), "--database", database)
    assert r.returncode == 0, r.stderr
    data = yaml.safe_load(out.read_text())
    assert [s["name"] for s in data["services"]] == ["echo"]
    assert [c["username"] for c in data["consumers"]] == ["alice"]
    # to stdout without a file
    r = fastgw_cli("config", "db_export", "--database", database)
    assert r.returncode == 0 and "alice" in r.stdout
    # a file that is wrong names the field and changes nothing
    bad = tmp_path / "bad.yml"
    bad.write_text("_format_version: '3.0'\nservices:\n- name: x\n  port: 99999\n"
                   "  host: example.test\n")
    r = fastgw_cli("config", "db_import", str(bad), "--database", database)
    assert r.returncode == 1 and "port" in r.stderr and "Traceback" not in r.stderr
    # a clash with a row already there is the database's unique constraint
    clash = tmp_path / "clash.yml"
    clash.write_text("_format_version: '3.0'\nservices:\n- id: 0b3f7e35-0a47-4bd4-9c5e-"
                     f"2a5e0a1b2c3d\n  name: echo\n  url: {echo_upstream.url('/')}\n")
    r = fastgw_cli("config", "db_import", str(clash), "--database", database)
    assert r.returncode == 1 and "UNIQUE violation" in r.stderr, r.stderr


def test_kong_pg_environment(database: str, echo_upstream: Any) -> None:
    """KONG_DATABASE=postgres with Kong's KONG_PG_* keys instead of a URL."""
    from urllib.parse import urlsplit

    u = urlsplit(database)
    env = dict(os.environ, KONG_DATABASE="postgres", KONG_PG_HOST=u.hostname,
               KONG_PG_PORT=str(u.port), KONG_PG_USER=u.username,
               KONG_PG_DATABASE=u.path.lstrip("/"))
    r = subprocess.run([sys.executable, "-m", "fastgw", "migrations", "status"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "up-to-date" in r.stdout, r.stderr
    n = PgNodeProcess("postgres", env=env)
    n.database_url = "postgres"   # --database postgres: the pg_* settings
    try:
        n.start()
        assert call("POST", n.admin_url("/services"),
                    {"name": "via-env", "url": echo_upstream.url("/")})[0] == 201
        assert "the database postgres://" in n.log_text()
        st, _, root = call("GET", n.admin_url("/"))
        conf = root["configuration"]
        assert (conf["database"], conf["pg_host"], conf["pg_port"]) == \
            ("postgres", u.hostname, u.port)
        assert conf["database_state"]["state"] == "connected"
    finally:
        n.stop()
        n.cleanup()


def test_settings_mistakes_are_one_line(tmp_path: Any) -> None:
    r = fastgw_cli("run", "--database", "mysql://x", "--listen", "127.0.0.1:0")
    assert r.returncode == 1 and "expected 'off', 'postgres'" in r.stderr
    r = fastgw_cli("run", "--database", "postgres://u@127.0.0.1:notaport/db",
                   "--listen", "127.0.0.1:0")
    assert r.returncode == 1 and "bad port" in r.stderr
    f = tmp_path / "kong.yml"
    f.write_text("_format_version: '3.0'\n")
    r = fastgw_cli("run", "-c", str(f), "--database", "postgres://u@127.0.0.1:1/db",
                   "--listen", "127.0.0.1:0")
    assert r.returncode == 1 and "db_import" in r.stderr
    r = fastgw_cli("run", "--persist", str(f), "--database", "postgres://u@127.0.0.1:1/db",
                   "--listen", "127.0.0.1:0")
    assert r.returncode == 1 and "admin_persist" in r.stderr
    env = dict(os.environ, KONG_DATABASE="postgres", KONG_PG_SSL="on")
    r = subprocess.run([sys.executable, "-m", "fastgw", "run", "--listen", "127.0.0.1:0"],
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "pg_ssl" in r.stderr and "not supported yet" in r.stderr
    r = fastgw_cli("config", "db_export")
    assert r.returncode == 1 and "no database" in r.stderr
    for line in (r.stderr,):
        assert "Traceback" not in line


def test_rows_that_do_not_compile_stop_the_start_with_one_error(database: str,
                                                                tmp_path: Any) -> None:
    import asyncio
    import uuid

    from fastgw.cluster.pg import db
    from fastgw.config.model import Config, Route, Service

    svc = Service(id=str(uuid.uuid4()), name="s", host="127.0.0.1", port=9)
    bad = Route(id=str(uuid.uuid4()), name="r", paths=["~/(unclosed"], service=svc.id)

    async def write() -> None:   # around the Admin API's validation, as psql would
        conn = await db.connect(db.Dsn.from_url(database))
        try:
            await db.write_changes(conn, Config(), Config(services=[svc], routes=[bad]))
        finally:
            await conn.close()

    asyncio.run(write())
    r = fastgw_cli("run", "--database", database, "--database-cache",
                   str(tmp_path / "c.json"), "--listen", "127.0.0.1:0", "--admin-listen", "off")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "invalid regex" in r.stderr and database.split("@")[1] in r.stderr
