"""fastgw.dns.Resolver against the loopback DNS server, with a simulated clock: Kong's cache
rules (TTL, dns_valid_ttl, not-found/error TTLs, stale window), dns_order with LAST, SRV
priority, CNAME, the hosts file, and query coalescing."""
from __future__ import annotations

import asyncio

import pytest

from fastgw.dns import DnsSettings, Resolver
from fastgw.dns.hosts import HostsTable
from fastgw.dns.resolver import ERR_NAME, ERR_SERVFAIL, ERR_TIMEOUT


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _resolver(srv, clock, **kw) -> Resolver:
    kw.setdefault("resolvers", (("127.0.0.1", srv.port),))
    kw.setdefault("timeout", 0.2)
    kw.setdefault("attempts", 1)
    return Resolver(DnsSettings(hostsfile="/nonexistent", **kw), clock=clock,
                    hosts=HostsTable.parse("127.0.0.7 static.test\n::7 static.test v6.test\n"))


def run(coro):
    return asyncio.run(coro)


def ips(res) -> list[str]:
    return [a.ip for a in res.addresses]


def test_ttl_is_honoured_then_the_name_is_asked_again(dns_srv):
    clock = Clock()
    dns_srv.set_a("api.test", ["127.0.0.2"], ttl=30)

    async def go():
        r = _resolver(dns_srv, clock)
        res = await r.resolve("api.test")
        assert ips(res) == ["127.0.0.2"] and res.rtype == "A"
        assert res.refresh_at == pytest.approx(clock.t + 30)
        n = dns_srv.count("api.test", "A")
        dns_srv.set_a("api.test", ["127.0.0.3"], ttl=30)
        clock.t += 29
        assert ips(await r.resolve("api.test")) == ["127.0.0.2"]   # cached
        assert dns_srv.count("api.test", "A") == n
        clock.t += 2
        assert ips(await r.resolve("api.test")) == ["127.0.0.3"]
        assert dns_srv.count("api.test", "A") == n + 1
    run(go())


def test_valid_ttl_overrides_the_record_ttl(dns_srv):
    clock = Clock()
    dns_srv.set_a("api.test", ["127.0.0.2"], ttl=300)

    async def go():
        r = _resolver(dns_srv, clock, valid_ttl=5)
        res = await r.resolve("api.test")
        assert res.refresh_at == pytest.approx(clock.t + 5)
    run(go())


def test_order_last_asks_the_type_that_answered_first(dns_srv):
    clock = Clock()
    dns_srv.set_a("api.test", ["127.0.0.2"], ttl=1)

    async def go():
        r = _resolver(dns_srv, clock, not_found_ttl=1)
        await r.resolve("api.test")
        assert dns_srv.count("api.test", "SRV") == 1   # Kong's order: SRV before A
        clock.t += 10
        await r.resolve("api.test")
        assert dns_srv.count("api.test", "SRV") == 1   # LAST (A) answered: SRV not asked
        assert dns_srv.count("api.test", "A") == 2
    run(go())


def test_order_without_a_type_never_asks_it(dns_srv):
    dns_srv.set_a("api.test", ["127.0.0.2"], ttl=1)

    async def go():
        r = _resolver(dns_srv, Clock(), order=("SRV",))
        res = await r.resolve("api.test")
        assert not res.ok and res.not_found
        assert dns_srv.count("api.test", "A") == 0
    run(go())


def test_not_found_and_errors_are_cached_for_their_ttls(dns_srv):
    clock = Clock()
    dns_srv.set_rcode("gone.test", "NXDOMAIN")
    dns_srv.set_rcode("bad.test", "SERVFAIL")

    async def go():
        r = _resolver(dns_srv, clock, order=("A",), not_found_ttl=30, error_ttl=2)
        nx = await r.resolve("gone.test")
        assert not nx.ok and nx.not_found and nx.error == ERR_NAME
        assert nx.refresh_at == pytest.approx(clock.t + 30)
        sf = await r.resolve("bad.test")
        assert not sf.ok and not sf.not_found and sf.error == ERR_SERVFAIL
        assert sf.refresh_at == pytest.approx(clock.t + 2)
        clock.t += 20
        await r.resolve("gone.test")
        await r.resolve("bad.test")
        assert dns_srv.count("gone.test") == 1 and dns_srv.count("bad.test") == 2
    run(go())


@pytest.mark.parametrize("failure", ["NXDOMAIN", "SERVFAIL", "drop"])
def test_failures_keep_the_last_good_answer_for_the_stale_ttl(dns_srv, failure):
    clock = Clock()
    dns_srv.set_a("api.test", ["127.0.0.2", "127.0.0.3"], ttl=10)

    async def go():
        r = _resolver(dns_srv, clock, order=("A",), stale_ttl=60, error_ttl=1,
                      not_found_ttl=1)
        assert ips(await r.resolve("api.test")) == ["127.0.0.2", "127.0.0.3"]
        if failure == "drop":
            dns_srv.mode = "drop"
        else:
            dns_srv.set_rcode("api.test", failure)
        clock.t += 11                       # expired: the refresh fails
        res = await r.resolve("api.test")
        assert ips(res) == ["127.0.0.2", "127.0.0.3"] and res.error is not None
        if failure == "drop":
            assert res.error == ERR_TIMEOUT
        assert res.refresh_at == pytest.approx(clock.t + 1)   # retried after the error TTL
        clock.t += 58                       # 69 s: still inside expiry (1010) + 60
        assert ips(await r.resolve("api.test")) == ["127.0.0.2", "127.0.0.3"]
        clock.t += 2                        # past the stale window: the failure stands
        res = await r.resolve("api.test")
        assert not res.ok
        dns_srv.mode = "serve"
        dns_srv.set_a("api.test", ["127.0.0.4"], ttl=10)
        clock.t += 2
        assert ips(await r.resolve("api.test")) == ["127.0.0.4"]
    run(go())


def test_srv_priority_weights_ports_and_targets(dns_srv):
    dns_srv.set_a("a.test", ["127.0.0.2"], ttl=30)
    dns_srv.set_a("b.test", ["127.0.0.3", "127.0.0.4"], ttl=5)
    dns_srv.set_srv("_x._tcp.svc.test", [(10, 0, 81, "a.test"), (10, 6, 82, "b.test"),
                                         (20, 9, 83, "a.test")], ttl=20)

    async def go():
        clock = Clock()
        r = _resolver(dns_srv, clock)
        res = await r.resolve("_x._tcp.svc.test")
        assert res.rtype == "SRV"
        got = sorted((a.ip, a.port, a.weight, a.srv_name, a.split) for a in res.addresses)
        assert got == [("127.0.0.2", 81, 0, "a.test", 1), ("127.0.0.3", 82, 6, "b.test", 2),
                       ("127.0.0.4", 82, 6, "b.test", 2)]
        # re-resolved at the earliest expiry of the SRV answer and of its targets
        assert res.refresh_at == pytest.approx(clock.t + 5)
        # when the best priority's targets do not resolve, the next priority is used
        dns_srv.set_a("c.test", ["127.0.0.5"], ttl=30)
        dns_srv.set_srv("_y._tcp.svc.test", [(1, 1, 81, "never.test"), (5, 1, 85, "c.test")])
        res = await r.resolve("_y._tcp.svc.test")
        assert [(a.ip, a.port) for a in res.addresses] == [("127.0.0.5", 85)]
    run(go())


def test_cname_hosts_file_and_ip_literals(dns_srv):
    dns_srv.set_a("real.test", ["127.0.0.2"], ttl=30)
    dns_srv.set_cname("alias.test", "real.test")

    async def go():
        r = _resolver(dns_srv, Clock())
        assert ips(await r.resolve("alias.test")) == ["127.0.0.2"]
        # the hosts file answers before any query, A first (Kong), AAAA when only v6
        n = len(dns_srv.queries)
        assert ips(await r.resolve("static.test")) == ["127.0.0.7"]
        assert ips(await r.resolve("v6.test")) == ["::7"]
        assert ips(await r.resolve("127.0.0.9")) == ["127.0.0.9"]
        assert ips(await r.resolve("::1")) == ["::1"]
        assert len(dns_srv.queries) == n
    run(go())


def test_concurrent_lookups_share_one_query(dns_srv):
    dns_srv.set_a("api.test", ["127.0.0.2"], ttl=30)

    async def go():
        r = _resolver(dns_srv, Clock(), order=("A",))
        res = await asyncio.gather(*(r.resolve("api.test") for _ in range(20)))
        assert all(ips(x) == ["127.0.0.2"] for x in res)
        assert dns_srv.count("api.test", "A") == 1
    run(go())


def test_cache_size_bounds_the_entries(dns_srv):
    for i in range(5):
        dns_srv.set_a(f"n{i}.test", ["127.0.0.2"], ttl=30)

    async def go():
        r = _resolver(dns_srv, Clock(), order=("A",), cache_size=3)
        for i in range(5):
            await r.resolve(f"n{i}.test")
        assert len(r._cache) == 3
        await r.resolve("n0.test")   # evicted (least recently used): asked again
        assert dns_srv.count("n0.test", "A") == 2
    run(go())


def test_aaaa_only_when_the_order_names_it(dns_srv):
    dns_srv.set_a("six.test", ["::1", "127.0.0.2"], ttl=30)

    async def go():
        r = _resolver(dns_srv, Clock(), order=("AAAA", "A"))
        res = await r.resolve("six.test")
        assert (res.rtype, ips(res)) == ("AAAA", ["::1"])
        r = _resolver(dns_srv, Clock())   # Kong's default order has no AAAA
        res = await r.resolve("six.test")
        assert (res.rtype, ips(res)) == ("A", ["127.0.0.2"])
    run(go())
