"""Three fastgw nodes on one PostgreSQL database: a change made on any node is live on every
node within CONVERGENCE seconds; conflicts between nodes are decided by the database."""
from __future__ import annotations

import threading
import time
from typing import Any

from cluster.conftest import call, wait_status

#: the brief's convergence target: a write on any node proxies on every node within 1 s
CONVERGENCE = 1.0


def _service(node: Any, name: str, upstream: Any) -> dict[str, Any]:
    status, _, body = call("POST", node.admin_url("/services"),
                           {"name": name, "url": upstream.url("/")})
    assert status == 201, body
    return body


def test_write_on_one_node_proxies_on_the_others(database: str, node: Any,
                                                 echo_upstream: Any) -> None:
    # C runs a master and 2 workers: the master follows the database and feeds its workers
    a, b, c = node(database), node(database), node(database, workers=2)
    _service(a, "svc", echo_upstream)
    status, _, body = call("POST", a.admin_url("/services/svc/routes"),
                           {"name": "r1", "paths": ["/one"]})
    assert status == 201, body
    for n in (a, b, c):
        took = wait_status(n.url("/one"), 200, CONVERGENCE)
        assert took < CONVERGENCE
    # the other nodes' Admin APIs show it too, with the same id
    for n in (b, c):
        status, _, got = call("GET", n.admin_url("/routes/r1"))
        assert status == 200 and got["id"] == body["id"]
    # a change made on C reaches A
    status, _, _ = call("POST", c.admin_url("/services/svc/routes"),
                        {"name": "r2", "paths": ["/two"]})
    assert status == 201
    wait_status(a.url("/two"), 200, CONVERGENCE)


def test_deleted_route_404s_everywhere(database: str, node: Any, echo_upstream: Any) -> None:
    # C has no Admin API (a pure proxy node): it follows the database all the same
    a, b = node(database), node(database)
    c = node(database, wait_admin=False, extra_args=["--admin-listen", "off"])
    _service(a, "svc", echo_upstream)
    call("POST", a.admin_url("/services/svc/routes"), {"name": "gone", "paths": ["/gone"]})
    for n in (a, b, c):
        wait_status(n.url("/gone"), 200, CONVERGENCE)
    status, _, _ = call("DELETE", b.admin_url("/routes/gone"))
    assert status == 204
    for n in (a, b, c):
        wait_status(n.url("/gone"), 404, CONVERGENCE)
    for n in (a, b):
        assert call("GET", n.admin_url("/routes/gone"))[0] == 404


def test_same_name_on_two_nodes_at_once_one_201_one_409(database: str, node: Any,
                                                        echo_upstream: Any) -> None:
    a, b = node(database), node(database)
    for round_ in range(5):
        name = f"race{round_}"
        results: dict[str, tuple[int, Any]] = {}
        barrier = threading.Barrier(2)

        def create(n: Any, key: str) -> None:
            barrier.wait()
            st, _, body = call("POST", n.admin_url("/services"),
                               {"name": name, "url": echo_upstream.url("/")})
            results[key] = (st, body)

        threads = [threading.Thread(target=create, args=(n, k)) for n, k in ((a, "a"), (b, "b"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        statuses = sorted(st for st, _ in results.values())
        assert statuses == [201, 409], results
        loser = next(body for st, body in results.values() if st == 409)
        assert loser["code"] == 5 and loser["fields"] == {"name": name}
        # and both nodes end with the winner's entity
        winner = next(body for st, body in results.values() if st == 201)
        for n in (a, b):
            deadline = time.monotonic() + CONVERGENCE
            while True:
                st, _, got = call("GET", n.admin_url(f"/services/{name}"))
                if st == 200 or time.monotonic() > deadline:
                    break
                time.sleep(0.02)
            assert st == 200 and got["id"] == winner["id"]


def test_constraints_answer_as_kong(database: str, node: Any, echo_upstream: Any) -> None:
    a, b = node(database), node(database)
    svc = _service(a, "svc", echo_upstream)
    call("POST", a.admin_url("/services/svc/routes"), {"name": "r", "paths": ["/r"]})
    wait_status(b.url("/r"), 200, CONVERGENCE)
    # a service with routes cannot go (Kong: routes do not cascade)
    status, _, body = call("DELETE", b.admin_url("/services/svc"))
    assert status == 400 and body["code"] == 4
    assert body["fields"] == {"@referenced_by": "routes"}
    # a consumer's credentials and plugins do cascade
    assert call("POST", a.admin_url("/consumers"), {"username": "alice"})[0] == 201
    assert call("POST", a.admin_url("/consumers/alice/key-auth"), {"key": "k1"})[0] == 201
    status, _, body = call("POST", b.admin_url("/consumers"), {"username": "alice"})
    assert status == 409 and body["fields"] == {"username": "alice"}
    assert call("DELETE", b.admin_url("/consumers/alice"))[0] == 204
    for n in (a, b):
        deadline = time.monotonic() + CONVERGENCE
        while call("GET", n.admin_url("/key-auths"))[2]["data"] and \
                time.monotonic() < deadline:
            time.sleep(0.02)
        assert call("GET", n.admin_url("/key-auths"))[2]["data"] == []
    # POST /config is DB-less only, as in Kong
    status, _, body = call("POST", a.admin_url("/config"), {"_format_version": "3.0"})
    assert status == 400 and "not use a database" in body["message"]
    assert svc["id"]


def test_convergence_of_successive_writes(database: str, node: Any, echo_upstream: Any) -> None:
    """Each of WRITES route creations on A proxies on B within CONVERGENCE (p50 printed)."""
    writes = 20
    a, b = node(database), node(database)
    _service(a, "svc", echo_upstream)
    took = []
    for i in range(writes):
        assert call("POST", a.admin_url("/services/svc/routes"),
                    {"name": f"c{i}", "paths": [f"/c{i}"]})[0] == 201
        took.append(wait_status(b.url(f"/c{i}"), 200, CONVERGENCE))
    took.sort()
    print(f"\nwrite on A -> live on B: p50 {took[writes // 2] * 1000:.0f} ms, "
          f"max {took[-1] * 1000:.0f} ms over {writes} writes")
    assert took[-1] < CONVERGENCE
