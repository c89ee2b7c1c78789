"""Balancer entries from resolved addresses (Kong's weight rules) and Kong's dns_* settings:
parsing, validation errors naming the setting, and the CLI options."""
from __future__ import annotations

import argparse

import pytest

from fastgw.balancing import expand_target, make_balancer
from fastgw.dns import DnsSettings, DnsSettingsError, add_arguments
from fastgw.dns import settings as dns_settings
from fastgw.dns.resolver import Address, Resolution
from fastgw._core.balancer import Target


def _a(*ips: str) -> Resolution:
    return Resolution("api.test", tuple(Address(ip) for ip in ips), "A")


def _srv(*recs: tuple) -> Resolution:
    return Resolution("_s._tcp.x", tuple(Address(ip, port, w, 1, t, n)
                                         for ip, port, w, t, n in recs), "SRV")


def test_a_records_each_get_the_target_weight() -> None:
    es = expand_target("api.test", 8080, 30, "api.test:8080", _a("127.0.0.3", "127.0.0.2"))
    assert [(e.ip, e.port, e.weight, e.hostname, e.name) for e in es] == [
        ("127.0.0.2", 8080, 30, "api.test", "127.0.0.2:8080@api.test:8080"),
        ("127.0.0.3", 8080, 30, "api.test", "127.0.0.3:8080@api.test:8080")]


def test_ip_target_keeps_its_name() -> None:
    es = expand_target("127.0.0.2", 80, 100, "127.0.0.2:80", _a("127.0.0.2"))
    assert [(e.name, e.hostname) for e in es] == [("127.0.0.2:80", "127.0.0.2")]
    es = expand_target("::1", 80, 100, "[::1]:80",
                       Resolution("::1", (Address("::1"),), "AAAA"))
    assert es[0].name == "[::1]:80"


def test_srv_weights_ports_zero_weight_and_shared_targets() -> None:
    res = _srv(("127.0.0.2", 81, 0, "a", 1), ("127.0.0.3", 82, 3, "b", 2),
               ("127.0.0.4", 82, 3, "b", 2), ("127.0.0.5", 0, 2, "c", 1))
    es = {(e.ip, e.port): e.weight for e in expand_target("_s._tcp.x", 9, 100, "_s._tcp.x:9",
                                                          res)}
    # weight 0 counts as 1; a record over 2 addresses splits its weight (all scaled by 2);
    # port 0 means the target's port
    assert es == {("127.0.0.2", 81): 2, ("127.0.0.3", 82): 3, ("127.0.0.4", 82): 3,
                  ("127.0.0.5", 9): 4}


def test_srv_split_that_would_overflow_rounds_instead() -> None:
    res = _srv(("127.0.0.2", 81, 65535, "a", 1), ("127.0.0.3", 82, 10, "b", 2),
               ("127.0.0.4", 82, 10, "b", 2))
    ws = sorted(e.weight for e in expand_target("_s._tcp.x", 9, 100, "t", res))
    assert ws == [5, 5, 65535]


def test_long_hostnames_still_fit_the_hash_ring() -> None:
    host = ".".join(["a" * 63] * 3) + "." + "b" * 61   # 253 bytes
    es = expand_target(host, 65535, 10, f"{host}:65535",
                       Resolution(host, (Address("fd00::1234:5678:9abc:def0"),), "AAAA"))
    ring = make_balancer("consistent-hashing",
                         [Target(e.ip, e.port, e.weight, name=e.name) for e in es])
    assert len(ring) == 1 and es[0].name.startswith("[fd00::1234:5678:9abc:def0]:65535@")


def test_disabled_target_and_no_addresses() -> None:
    assert [e.weight for e in expand_target("h", 1, 0, "h:1", _a("127.0.0.2"))] == [0]
    assert expand_target("h", 1, 10, "h:1", None) == []
    assert expand_target("h", 1, 10, "h:1", Resolution("h", (), "", "x", True)) == []


def test_two_hostnames_on_one_address_are_two_entries() -> None:
    ts = []
    for host in ("a.test", "b.test"):
        for e in expand_target(host, 80, 10, f"{host}:80", _a("127.0.0.2")):
            ts.append(Target(e.ip, e.port, e.weight, name=e.name))
    b = make_balancer("round-robin", ts)
    assert len(b) == 2


# -- settings ---------------------------------------------------------------------------------
def test_conf_keys_parse_like_kong() -> None:
    s = DnsSettings.from_conf({
        "dns_resolver": "127.0.0.1:8600, [::1]:53, 127.0.0.2", "dns_order": "last,a,srv",
        "dns_valid_ttl": "5", "dns_stale_ttl": "10", "dns_not_found_ttl": "3",
        "dns_error_ttl": "0.5", "dns_cache_size": "50", "dns_no_sync": "off",
        "dns_hostsfile": "/tmp/h", "proxy_listen": "ignored"})
    assert s.resolvers == (("127.0.0.1", 8600), ("::1", 53), ("127.0.0.2", 53))
    assert s.order == ("LAST", "A", "SRV")
    assert (s.valid_ttl, s.stale_ttl, s.not_found_ttl, s.error_ttl, s.cache_size) == \
        (5.0, 10.0, 3.0, 0.5, 50)
    assert s.hostsfile == "/tmp/h"


@pytest.mark.parametrize("conf,msg", [
    ({"dns_order": "A,MX"}, "dns_order: unknown record type 'MX'"),
    ({"dns_order": "A,A"}, "dns_order: duplicate"),
    ({"dns_order": "LAST,CNAME"}, "dns_order: must name at least one of SRV, A, AAAA"),
    ({"dns_resolver": "consul:8600"}, "dns_resolver: 'consul:8600' is not ip[:port]"),
    ({"dns_resolver": "127.0.0.1:0"}, "dns_resolver: bad port"),
    ({"dns_stale_ttl": "-1"}, "dns_stale_ttl: must be >= 0"),
    ({"dns_valid_ttl": "soon"}, "dns_valid_ttl: expected a number"),
    ({"dns_cache_size": "0"}, "dns_cache_size: must be >= 1"),
    ({"dns_no_sync": "on"}, "dns_no_sync: only 'off' is supported"),
    ({"dns_bogus": "1"}, "dns_bogus: unknown DNS setting"),
])
def test_bad_values_name_the_setting(conf, msg) -> None:
    with pytest.raises(DnsSettingsError) as e:
        DnsSettings.from_conf(conf)
    assert str(e.value).startswith(msg)


def test_env_and_cli_options(monkeypatch) -> None:
    monkeypatch.setenv("KONG_DNS_STALE_TTL", "7")
    monkeypatch.setenv("KONG_DNS_RESOLVER", "127.0.0.1:5353")
    assert DnsSettings.from_env().stale_ttl == 7.0
    p = argparse.ArgumentParser(prog="fastgw", exit_on_error=False)
    add_arguments(p)
    try:
        p.parse_args(["--dns-resolver", "127.0.0.1:26053", "--dns-order", "A"])
        s = dns_settings.default_settings()
        assert s.resolvers == (("127.0.0.1", 26053),) and s.order == ("A",)
        assert s.stale_ttl == 7.0   # the environment still applies under the options
        with pytest.raises(argparse.ArgumentError) as e:
            p.parse_args(["--dns-error-ttl", "x"])
        assert str(e.value) == ("argument --dns-error-ttl: dns_error_ttl: expected a number "
                                "of seconds, got 'x'")
    finally:
        dns_settings.configure(None)


def test_health_report_groups_addresses_under_their_target() -> None:
    from fastgw.balancing import TargetGroup
    from fastgw.health import HealthChecker
    from fastgw.config.healthchecks import Healthchecks
    import msgspec

    hc = msgspec.convert({"passive": {"unhealthy": {"http_failures": 1}}}, Healthchecks)
    groups, entries = [], []
    for target, w, res in (("api.test:80", 10, _a("127.0.0.2", "127.0.0.3")),
                           ("off.test:80", 0, _a("127.0.0.4")),
                           ("gone.test:80", 10, None)):
        ts = [Target(e.ip, e.port, e.weight, name=e.name)
              for e in expand_target(target[:-3], 80, w, target, res)]
        groups.append(TargetGroup(target, None, target[:-3], 80, w, "A", ts))
        entries += ts
    b = make_balancer("round-robin", entries)
    checker = HealthChecker("u", b, hc, groups=groups)
    assert checker.set_target_health("api.test:80", False, "127.0.0.3:80")
    assert not checker.set_target_health("api.test:80", False, "127.0.0.9:80")
    rep = {r["target"]: r for r in checker.health_report()}
    assert rep["api.test:80"]["health"] == "HEALTHY"
    assert [(x["ip"], x["health"]) for x in rep["api.test:80"]["data"]["addresses"]] == [
        ("127.0.0.2", "HEALTHY"), ("127.0.0.3", "UNHEALTHY")]
    assert rep["api.test:80"]["data"]["weight"] == {"total": 20, "available": 10,
                                                   "unavailable": 10}
    assert rep["off.test:80"]["health"] == "HEALTHCHECKS_OFF"
    assert rep["gone.test:80"]["health"] == "DNS_ERROR"
    assert rep["gone.test:80"]["data"]["addresses"] == []
    assert checker.set_target_health("api.test:80", False)   # every address
    assert rep and b.available_weight == 0
