"""fastgw.dns.Discovery: names refreshed at their TTL, changes reported as one set, a name
whose lookups time out holding back no other name, and watch() adding/dropping names."""
from __future__ import annotations

import asyncio
import time

from fastgw.dns import Discovery, DnsSettings, Resolver
from fastgw.dns.hosts import HostsTable


def _discovery(srv, **kw) -> Discovery:
    kw.setdefault("timeout", 0.3)
    kw.setdefault("attempts", 1)
    r = Resolver(DnsSettings(resolvers=(("127.0.0.1", srv.port),), order=("A",), **kw),
                 hosts=HostsTable.parse("127.0.0.9 static.test\n"))
    return Discovery(r)


def test_refresh_at_ttl_and_changes_reported(dns_srv):
    dns_srv.set_a("a.test", ["127.0.0.2"], ttl=1)
    dns_srv.set_a("b.test", ["127.0.0.3"], ttl=30)

    async def go():
        d = _discovery(dns_srv)
        seen: list[set[str]] = []
        d.listener = seen.append
        d.start()
        await d.prime({"a.test", "b.test", "static.test"})
        assert [a.ip for a in d.current("a.test").addresses] == ["127.0.0.2"]
        assert [a.ip for a in d.current("static.test").addresses] == ["127.0.0.9"]
        d.watch({"a.test", "b.test", "static.test"})
        dns_srv.set_a("a.test", ["127.0.0.4"], ttl=1)
        t0 = time.monotonic()
        while not seen:
            assert time.monotonic() - t0 < 2.5
            await asyncio.sleep(0.05)
        assert seen == [{"a.test"}]
        assert [a.ip for a in d.current("a.test").addresses] == ["127.0.0.4"]
        assert dns_srv.count("b.test", "A") == 1     # TTL 30: not asked again
        assert dns_srv.count("static.test") == 0
        # an unchanged answer is not reported
        await asyncio.sleep(1.3)
        assert seen == [{"a.test"}]
        # names no longer watched are no longer refreshed
        d.watch({"b.test"})
        n = dns_srv.count("a.test")
        await asyncio.sleep(1.3)
        assert dns_srv.count("a.test") == n and d.current("a.test") is None
        await d.stop()
    asyncio.run(go())


def test_a_timing_out_name_holds_back_no_other(dns_srv):
    dns_srv.set_a("slow.test", ["127.0.0.2"], ttl=1)
    dns_srv.set_a("fast.test", ["127.0.0.3"], ttl=1)

    async def go():
        d = _discovery(dns_srv, timeout=3.0, stale_ttl=60)
        seen: list[set[str]] = []
        d.listener = seen.append
        d.start()
        await d.prime({"slow.test", "fast.test"})
        d.watch({"slow.test", "fast.test"})
        dns_srv.set_rcode("slow.test", "DROP")      # its next lookup waits 3 s
        await asyncio.sleep(1.2)
        dns_srv.set_a("fast.test", ["127.0.0.4"], ttl=1)
        t0 = time.monotonic()
        while {"fast.test"} not in seen:
            assert time.monotonic() - t0 < 2.0, "fast.test waited for slow.test's timeout"
            await asyncio.sleep(0.05)
        # the stale answer of slow.test stands meanwhile
        assert [a.ip for a in d.current("slow.test").addresses] == ["127.0.0.2"]
        await d.stop()
    asyncio.run(go())
