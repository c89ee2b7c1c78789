"""The database goes away and comes back; nodes start without it."""
from __future__ import annotations

import threading
import time
from typing import Any

from cluster.conftest import PgNodeProcess, bootstrap, call, fastgw_cli, wait_status

CONVERGENCE = 1.0
#: a node notices a dead database on its next statement or poll (POLL_INTERVAL 1 s) and
#: reconnects every RECONNECT_INTERVAL (1 s): both bounded by this
RECOVERY = 5.0


def _wait_json(url: str, pred: Any, within: float) -> Any:
    deadline = time.monotonic() + within
    while True:
        st, headers, body = call("GET", url, timeout=2)
        if pred(st, headers, body) or time.monotonic() > deadline:
            return st, headers, body
        time.sleep(0.05)


def test_database_killed_mid_traffic_then_back(pg_factory: Any, node: Any,
                                               echo_upstream: Any) -> None:
    pg = pg_factory()
    url = pg.create_database("faults")
    bootstrap(url)
    nodes = [node(url) for _ in range(3)]
    a = nodes[0]
    assert call("POST", a.admin_url("/services"),
                {"name": "svc", "url": echo_upstream.url("/")})[0] == 201
    assert call("POST", a.admin_url("/services/svc/routes"),
                {"name": "r", "paths": ["/r"]})[0] == 201
    for n in nodes:
        wait_status(n.url("/r"), 200, CONVERGENCE)

    # steady traffic on every node while the database dies
    stop = threading.Event()
    failures: list[tuple[int, int]] = []
    counts = [0, 0, 0]

    def traffic(i: int) -> None:
        while not stop.is_set():
            st = call("GET", nodes[i].url("/r"), timeout=5)[0]
            counts[i] += 1
            if st != 200:
                failures.append((i, st))

    threads = [threading.Thread(target=traffic, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.3)
        pg.kill()
        # every node notices; writes answer 503 with Kong's JSON message shape
        for n in nodes:
            _, headers, _ = _wait_json(n.admin_url("/"),
                                       lambda s, h, b: "x-fastgw-database" in h, RECOVERY)
            assert "x-fastgw-database" in headers, n.log_tail()
            st, headers, body = call("POST", n.admin_url("/services"),
                                     {"name": "while-down", "url": echo_upstream.url("/")})
            assert st == 503, body
            assert "database is unreachable" in body["message"]
            assert headers.get("retry-after")
            # what is not a change still answers as usual: a 404, a validation error
            assert call("DELETE", n.admin_url("/services/no-such"))[0] == 204
            st, _, body = call("POST", n.admin_url("/services"), {"name": "x", "port": 1})
            assert st == 400 and body["code"] == 2
            st, _, body = call("GET", n.admin_url("/status"))
            assert st == 200 and body["database"]["reachable"] is False
            # reads still work and say they may be stale
            st, headers, body = call("GET", n.admin_url("/routes/r"))
            assert st == 200 and "stale" in headers["x-fastgw-database"]
        time.sleep(0.5)
        before = list(counts)
        time.sleep(0.5)
        assert all(c > b for c, b in zip(counts, before)), "traffic stopped"
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    assert failures == [], failures[:10]

    # a node that starts now has only its cache (another node's would do as well)
    late = node(url, cache=nodes[1].cache)
    wait_status(late.url("/r"), 200, CONVERGENCE)
    assert "starting from the cached configuration" in late.log_text()

    # the database comes back on the same port: writes work again, every node resyncs
    pg.start()
    for n in [*nodes, late]:
        _wait_json(n.admin_url("/"), lambda s, h, b: "x-fastgw-database" not in h, RECOVERY)
    deadline = time.monotonic() + RECOVERY
    while True:
        st, _, body = call("POST", nodes[2].admin_url("/services/svc/routes"),
                           {"name": "after", "paths": ["/after"]})
        if st != 503 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert st == 201, body
    for n in [*nodes, late]:
        wait_status(n.url("/after"), 200, CONVERGENCE)
        assert call("GET", n.admin_url("/status"))[2]["database"]["reachable"] is True
    assert "reachable again" in nodes[0].log_text()


def test_change_while_a_node_was_away_is_picked_up(pg_factory: Any, node: Any,
                                                   echo_upstream: Any) -> None:
    """A node cut off from the database misses notifications; the version poll catches up
    once it reconnects (here: the node restarts from its cache while the db is down)."""
    pg = pg_factory()
    url = pg.create_database("away")
    bootstrap(url)
    a = node(url)
    assert call("POST", a.admin_url("/services"),
                {"name": "svc", "url": echo_upstream.url("/")})[0] == 201
    a.stop()
    pg.stop()
    b = PgNodeProcess(url, cache=a.cache)   # starts from a's cache: db down
    try:
        b.start()
        assert call("GET", b.admin_url("/services/svc"))[0] == 200
        assert "starting from the cached configuration" in b.log_text()
        pg.start()
        # a change made directly through another node while b reconnects
        c = node(url)
        assert call("POST", c.admin_url("/services/svc/routes"),
                    {"name": "r", "paths": ["/new"]})[0] == 201
        wait_status(b.url("/new"), 200, RECOVERY)
    finally:
        b.stop()
        b.cleanup()


def test_no_database_and_no_cache_refuses_to_start(pg_factory: Any, tmp_path: Any) -> None:
    pg = pg_factory()
    url = pg.create_database("nocache")
    pg.stop()
    r = fastgw_cli("run", "--database", url, "--database-cache", str(tmp_path / "none.json"),
                   "--listen", "127.0.0.1:0", "--admin-listen", "off", timeout=60)
    assert r.returncode == 1
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert "database is unreachable" in lines[0] and "no cached configuration" in lines[0]
    assert "Traceback" not in r.stderr
