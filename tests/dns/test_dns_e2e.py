"""Service discovery end to end: a real DNS server on loopback that the test rewrites, real
upstreams on 127.0.0.2-127.0.0.5, a real Gateway resolving through fastgw.dns.

Records added and removed while traffic runs move traffic within a TTL; SRV ports and
weights give exact shares; a dead resolver keeps traffic on the last good answer until
dns_stale_ttl runs out; a name with no answer gets Kong's 503 "name resolution failed".
"""
from __future__ import annotations

import collections
import json
import time

from dns_server import same_port_pair


def _upstream_config(target: str, **up: object) -> dict:
    return {
        "_format_version": "3.0",
        "upstreams": [{"name": "u", "targets": [{"target": target}], **up}],
        "services": [{"name": "s", "host": "u", "port": 80, "retries": 0,
                      "routes": [{"name": "r", "paths": ["/"]}]}],
    }


def _served(g, n: int, **kw) -> collections.Counter:
    c: collections.Counter = collections.Counter()
    for _ in range(n):
        status, _, body = g.get("/x", **kw)
        assert status == 200, (status, body)
        c[body.decode()] += 1
    return c


def test_records_added_and_removed_move_traffic_within_a_ttl(dns_srv, upstreams, gateway):
    a, b = same_port_pair(upstreams, ["127.0.0.2", "127.0.0.3"])
    dns_srv.set_a("api.test", ["127.0.0.2"], ttl=1)
    g = gateway(_upstream_config(f"api.test:{a.port}"))
    assert _served(g, 4) == {a.addr: 4}
    # Kong sends the target's name as Host, not the address
    assert a.hosts[-1] == f"api.test:{a.port}"

    dns_srv.set_a("api.test", ["127.0.0.2", "127.0.0.3"], ttl=1)
    t0 = time.monotonic()
    while b.hits == 0:
        assert time.monotonic() - t0 < 3.0, "new address not used within TTL (1 s) + 2 s"
        _served(g, 2)  # every request still succeeds while the balancer changes
    # both addresses now share the target's weight: round robin alternates
    assert _served(g, 10) == {a.addr: 5, b.addr: 5}

    dns_srv.set_a("api.test", ["127.0.0.3"], ttl=1)
    t0 = time.monotonic()
    while True:
        before = a.hits
        served = _served(g, 4)
        if a.hits == before:
            break
        assert time.monotonic() - t0 < 3.0, "removed address still used after TTL + 2 s"
    assert served == {b.addr: 4}
    health = g.call(lambda: g.gw.upstream_health("u"))
    assert [x["ip"] for x in health[0]["data"]["addresses"]] == ["127.0.0.3"]


def test_srv_ports_and_weights_give_exact_shares(dns_srv, upstreams, gateway):
    ups = [upstreams("127.0.0.2") for _ in range(3)]
    dns_srv.set_a("node.test", ["127.0.0.2"], ttl=30)
    dns_srv.set_srv("_http._tcp.svc.test", [
        (10, 1, ups[0].port, "node.test"),
        (10, 3, ups[1].port, "node.test"),
        (20, 50, ups[2].port, "node.test"),   # worse priority: not used while the others are
    ], ttl=30)
    g = gateway(_upstream_config("_http._tcp.svc.test:80"))
    assert _served(g, 40) == {ups[0].addr: 10, ups[1].addr: 30}
    # Host is the target's name with the SRV record's port (Kong, use_srv_name false)
    assert ups[1].hosts[-1] == f"_http._tcp.svc.test:{ups[1].port}"
    data = g.call(lambda: g.gw.upstream_health("u"))[0]["data"]
    assert data["dns"] == "SRV"
    assert sorted((x["port"], x["weight"]) for x in data["addresses"]) == sorted(
        [(ups[0].port, 1), (ups[1].port, 3)])


def test_srv_use_srv_name_sends_the_record_target_as_host(dns_srv, upstreams, gateway):
    u = upstreams("127.0.0.2")
    dns_srv.set_a("node.test", ["127.0.0.2"], ttl=30)
    dns_srv.set_srv("_http._tcp.svc.test", [(10, 0, u.port, "node.test")], ttl=30)
    g = gateway(_upstream_config("_http._tcp.svc.test:80", use_srv_name=True))
    assert _served(g, 2) == {u.addr: 2}
    assert u.hosts[-1] == f"node.test:{u.port}"


def test_dead_resolver_keeps_traffic_on_stale_answers(dns_srv, upstreams, gateway, caplog):
    a, b = same_port_pair(upstreams, ["127.0.0.2", "127.0.0.3"])
    dns_srv.set_a("api.test", ["127.0.0.2", "127.0.0.3"], ttl=1)
    g = gateway(_upstream_config(f"api.test:{a.port}"), stale_ttl=3)
    assert _served(g, 4) == {a.addr: 2, b.addr: 2}
    dns_srv.mode = "drop"           # the resolver answers nothing: lookups time out
    queries = len(dns_srv.queries)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 2.0:   # past the 1 s TTL: refreshes fail, stale is served
        assert _served(g, 2)
        time.sleep(0.1)
    assert len(dns_srv.queries) > queries, "no refresh was attempted"
    assert "serving the last good answer" in caplog.text
    # past dns_stale_ttl (3 s after expiry) the answer is dropped: no peer left
    t0 = time.monotonic()
    while True:
        status, _, body = g.get("/x")
        if status != 200:
            break
        assert time.monotonic() - t0 < 6.0, "stale answer kept past dns_stale_ttl"
        time.sleep(0.1)
    assert status == 503
    assert json.loads(body)["message"] == "failure to get a peer from the ring-balancer"
    assert g.call(lambda: g.gw.upstream_health("u"))[0]["health"] == "DNS_ERROR"
    # the resolver comes back: so does the traffic
    dns_srv.mode = "serve"
    t0 = time.monotonic()
    while g.get("/x")[0] != 200:
        assert time.monotonic() - t0 < 4.0
        time.sleep(0.1)


def test_service_hostname_round_robin_and_failures(dns_srv, upstreams, gateway):
    a, b = same_port_pair(upstreams, ["127.0.0.2", "127.0.0.3"])
    dns_srv.set_a("svc.test", ["127.0.0.2", "127.0.0.3"], ttl=30)
    dns_srv.set_rcode("gone.test", "NXDOMAIN")
    dns_srv.set_rcode("broken.test", "SERVFAIL")
    cfg = {"_format_version": "3.0", "services": [
        {"name": "ok", "host": "svc.test", "port": a.port,
         "routes": [{"name": "r1", "paths": ["/ok"]}]},
        {"name": "nx", "host": "gone.test", "port": a.port,
         "routes": [{"name": "r2", "paths": ["/nx"]}]},
        {"name": "sf", "host": "broken.test", "port": 80,
         "routes": [{"name": "r3", "paths": ["/sf"]}]},
    ]}
    g = gateway(cfg, not_found_ttl=1)
    got = collections.Counter(g.get("/ok")[2].decode() for _ in range(6))
    assert got == {a.addr: 3, b.addr: 3}
    assert a.hosts[-1] == f"svc.test:{a.port}"
    status, _, body = g.get("/nx")
    assert status == 503 and json.loads(body)["message"] == "name resolution failed"
    status, _, body = g.get("/sf")
    assert status == 500
    assert json.loads(body)["message"] == ("failed the initial dns/balancer resolve for "
                                           "'broken.test' with: dns server error: 2 server "
                                           "failure")
    # a name that starts resolving later is picked up by the refresh (not_found_ttl)
    dns_srv.set_a("gone.test", ["127.0.0.2"], ttl=30)
    t0 = time.monotonic()
    while g.get("/nx")[0] != 200:
        assert time.monotonic() - t0 < 4.0
        time.sleep(0.1)


def test_hostnames_are_never_resolved_on_the_request_path(dns_srv, upstreams, gateway):
    u = upstreams("127.0.0.2")
    dns_srv.set_a("api.test", ["127.0.0.2"], ttl=30)
    g = gateway(_upstream_config(f"api.test:{u.port}"))
    before = len(dns_srv.queries)
    _served(g, 50)
    assert len(dns_srv.queries) == before


def test_health_per_address_and_carried_over(dns_srv, upstreams, gateway):
    a, b, c = same_port_pair(upstreams, ["127.0.0.2", "127.0.0.3", "127.0.0.4"])
    dns_srv.set_a("api.test", ["127.0.0.2", "127.0.0.3"], ttl=1)
    hc = {"passive": {"healthy": {"successes": 1},
                      "unhealthy": {"http_failures": 1, "http_statuses": [500]}}}
    g = gateway(_upstream_config(f"api.test:{a.port}", healthchecks=hc))
    b.status = 500
    for _ in range(4):
        g.get("/x")   # one of them reaches b and trips it
    b.status = 200
    assert _served(g, 4) == {a.addr: 4}
    status, body = g.admin("GET", "/upstreams/u/health")
    assert status == 200
    row = body["data"][0]
    assert row["target"] == f"api.test:{a.port}" and row["health"] == "HEALTHY"
    assert row["data"]["addresses"] == [
        {"ip": "127.0.0.2", "port": a.port, "health": "HEALTHY", "weight": 100},
        {"ip": "127.0.0.3", "port": a.port, "health": "UNHEALTHY", "weight": 100}]
    assert row["data"]["weight"] == {"total": 200, "available": 100, "unavailable": 100}
    # a third address appears: the tripped one stays tripped, the new one takes traffic
    dns_srv.set_a("api.test", ["127.0.0.2", "127.0.0.3", "127.0.0.4"], ttl=1)
    t0 = time.monotonic()
    while c.hits == 0:
        assert time.monotonic() - t0 < 3.0
        _served(g, 2)
    assert _served(g, 6) == {a.addr: 3, c.addr: 3}
    # Kong's per-address override: PUT /upstreams/u/targets/{t}/{address}/healthy
    status, _ = g.admin("PUT", f"/upstreams/u/targets/api.test:{a.port}/127.0.0.3:{a.port}"
                               "/healthy")
    assert status == 204
    assert _served(g, 6) == {a.addr: 2, b.addr: 2, c.addr: 2}
    status, body = g.admin("PUT", f"/upstreams/u/targets/api.test:{a.port}/127.0.0.9:1"
                                  "/healthy")
    assert status == 400 and "127.0.0.9:1" in body["message"]
    # the whole target: every address at once
    status, _ = g.admin("PUT", f"/upstreams/u/targets/api.test:{a.port}/unhealthy")
    assert status == 204
    assert g.get("/x")[0] == 503


def test_consistent_hashing_stays_stable_when_an_address_is_added(dns_srv, upstreams,
                                                                  gateway):
    a, b, c = same_port_pair(upstreams, ["127.0.0.2", "127.0.0.3", "127.0.0.4"])
    dns_srv.set_a("api.test", ["127.0.0.2", "127.0.0.3"], ttl=1)
    g = gateway(_upstream_config(f"api.test:{a.port}", algorithm="consistent-hashing",
                                 hash_on="header", hash_on_header="x-user"))
    keys = [f"user-{i}" for i in range(60)]

    def owners() -> dict[str, str]:
        return {k: g.get("/x", {"x-user": k})[2].decode() for k in keys}

    before = owners()
    assert set(before.values()) == {a.addr, b.addr}
    dns_srv.set_a("api.test", ["127.0.0.2", "127.0.0.3", "127.0.0.4"], ttl=1)
    t0 = time.monotonic()
    while c.hits == 0:
        assert time.monotonic() - t0 < 3.0
        owners()
    after = owners()
    moved = {k for k in keys if after[k] != before[k]}
    # only keys that moved to the new address moved at all
    assert moved and all(after[k] == c.addr for k in moved)
    assert len(moved) < len(keys) * 0.6


def test_config_update_with_a_new_hostname_resolves_it(dns_srv, upstreams, gateway):
    a = upstreams("127.0.0.2")
    b = upstreams("127.0.0.3")
    dns_srv.set_a("one.test", ["127.0.0.2"], ttl=30)
    dns_srv.set_a("two.test", ["127.0.0.3"], ttl=30)
    g = gateway(_upstream_config(f"one.test:{a.port}"))
    assert _served(g, 2) == {a.addr: 2}
    g.call(lambda: g.gw.update(_upstream_config(f"two.test:{b.port}")))
    t0 = time.monotonic()
    while g.get("/x")[2].decode() != b.addr:
        assert time.monotonic() - t0 < 3.0
        time.sleep(0.05)
    assert _served(g, 3) == {b.addr: 3}


def test_cli_dns_resolver_option_with_workers(dns_srv, upstreams, fastgw):
    from servers import http_get

    u = upstreams("127.0.0.2")
    dns_srv.set_a("api.test", ["127.0.0.2"], ttl=30)
    gw = fastgw(_upstream_config(f"api.test:{u.port}"), workers=2,
                extra_args=("--dns-resolver", dns_srv.resolver, "--dns-stale-ttl", "60"))
    for _ in range(4):
        status, _, body = http_get(gw.url("/x"))
        assert (status, body.decode()) == (200, u.addr)
    assert dns_srv.count("api.test", "A") >= 1


def test_an_address_that_disappears_drains(dns_srv, upstreams, gateway):
    import threading

    a, b = same_port_pair(upstreams, ["127.0.0.2", "127.0.0.3"])
    dns_srv.set_a("api.test", ["127.0.0.2"], ttl=1)
    g = gateway(_upstream_config(f"api.test:{a.port}"))
    a.delay = 3.0
    slow: list = []
    t = threading.Thread(target=lambda: slow.append(g.get("/slow")))
    t.start()
    t0 = time.monotonic()
    while a.slow_started == 0:   # the slow request reached 127.0.0.2 and waits there
        assert time.monotonic() - t0 < 2.0
        time.sleep(0.01)
    dns_srv.set_a("api.test", ["127.0.0.3"], ttl=1)
    while b.hits == 0:
        assert time.monotonic() - t0 < 4.0, "traffic did not move within the TTL"
        g.get("/x")
    assert not slow, "the slow request should still be in flight when traffic moved"
    t.join(5)
    # the request in flight on the departed address finished normally
    assert slow and slow[0][0] == 200 and slow[0][2].decode() == a.addr
    assert _served(g, 3) == {b.addr: 3}


def test_active_probes_check_every_address(dns_srv, upstreams, gateway):
    a, b = same_port_pair(upstreams, ["127.0.0.2", "127.0.0.3"])
    dns_srv.set_a("api.test", ["127.0.0.2", "127.0.0.3"], ttl=30)
    hc = {"active": {"type": "http", "http_path": "/health", "timeout": 0.5,
                     "healthy": {"interval": 0.1, "successes": 1},
                     "unhealthy": {"interval": 0.1, "http_failures": 1,
                                   "http_statuses": [500]}}}
    b.health_status = 500
    g = gateway(_upstream_config(f"api.test:{a.port}", healthchecks=hc), active_health=True)

    def health() -> dict:
        rows = g.call(lambda: g.gw.upstream_health("u"))
        return {x["ip"]: x["health"] for x in rows[0]["data"]["addresses"]}

    t0 = time.monotonic()
    while health() != {"127.0.0.2": "HEALTHY", "127.0.0.3": "UNHEALTHY"}:
        assert time.monotonic() - t0 < 3.0, health()
        time.sleep(0.05)
    assert _served(g, 4) == {a.addr: 4}
    b.health_status = 200
    while health()["127.0.0.3"] != "HEALTHY":
        assert time.monotonic() - t0 < 6.0
        time.sleep(0.05)
    assert _served(g, 4) == {a.addr: 2, b.addr: 2}
