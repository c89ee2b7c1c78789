"""The health state machine with an injected clock: every transition, half-open, manual
override, threshold, carry-over, health report, logging. No sleeping, no sockets."""
import logging

import msgspec
import pytest

from fastgw._core.balancer import HashRing, RoundRobin, Target
from fastgw.config.healthchecks import (ACTIVE_UNHEALTHY_STATUSES, PASSIVE_HEALTHY_STATUSES,
                                        Healthchecks, parse_healthchecks)
from fastgw.health import (HEALTHY, MOSTLY_HEALTHY, MOSTLY_UNHEALTHY, SUCCESS, TCP, TIMEOUT,
                           UNHEALTHY, HealthChecker, TargetHealth, TargetState, carry_over,
                           report_http_status, report_tcp_failure, report_timeout)


class FakeClock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def setup(cfg: dict, n: int = 3, threshold: float = 0.0, cls=RoundRobin):
    ts = [Target(f"10.0.0.{i}", 80) for i in range(n)]
    b = cls(ts, threshold=threshold)
    clock = FakeClock()
    hc = HealthChecker("up1", b, parse_healthchecks(cfg), clock=clock)
    return b, ts, hc, clock


PASSIVE = {"passive": {"unhealthy": {"http_failures": 3, "tcp_failures": 2, "timeouts": 2,
                                     "cooldown": 0},
                       "healthy": {"successes": 2}}}


# ---- passive circuit breaker ---------------------------------------------------------------
def test_http_failures_trip_after_n_consecutive(caplog) -> None:
    b, ts, hc, _ = setup(PASSIVE)
    t = ts[0]
    caplog.set_level(logging.INFO, logger="fastgw.health")
    hc.report_http_status(t, 500, 1.0)
    hc.report_http_status(t, 503, 2.0)
    assert t.health.internal == MOSTLY_HEALTHY and t.healthy
    hc.report_http_status(t, 429, 3.0)
    assert t.health.internal == UNHEALTHY and not t.healthy
    assert t.health.counters == [0, 0, 0, 0]  # a transition resets the counters
    assert "upstream up1 target 10.0.0.0:80: healthy -> unhealthy (3 http failures" in caplog.text
    assert all(b.pick() is not t for _ in range(20))


def test_a_success_breaks_the_failure_streak() -> None:
    _, ts, hc, _ = setup(PASSIVE)
    t = ts[0]
    for _ in range(10):
        hc.report_http_status(t, 500, 1.0)
        hc.report_http_status(t, 500, 1.0)
        hc.report_http_status(t, 200, 1.0)
    assert t.healthy and t.health.internal == HEALTHY


def test_failure_kinds_count_separately() -> None:
    _, ts, hc, _ = setup(PASSIVE)
    t = ts[0]
    hc.report_tcp_failure(t, 1.0)
    hc.report_timeout(t, 1.0)
    hc.report_http_status(t, 500, 1.0)
    hc.report_http_status(t, 500, 1.0)
    assert t.healthy and t.health.counters == [0, 2, 1, 1]
    hc.report_tcp_failure(t, 1.0)  # the 2nd tcp failure trips
    assert not t.healthy


def test_timeouts_trip(caplog) -> None:
    caplog.set_level(logging.INFO, logger="fastgw.health")
    _, ts, hc, _ = setup(PASSIVE)
    report_timeout(ts[1], 1.0)  # module-level report goes through Target.health
    report_timeout(ts[1], 2.0)
    assert not ts[1].healthy
    assert "(2 timeouts" in caplog.text


def test_unclassified_statuses_are_ignored() -> None:
    _, ts, hc, _ = setup(PASSIVE)
    for _ in range(10):
        report_http_status(ts[0], 404, 1.0)  # in neither passive list
    assert ts[0].health.internal == HEALTHY


def test_zero_limits_disable_counters_and_defaults_do_nothing() -> None:
    _, ts, hc, _ = setup({})  # Kong defaults: every counter 0
    assert not hc.enabled and not hc.passive_enabled and not hc.active_enabled
    for _ in range(50):
        hc.report_http_status(ts[0], 500, 1.0)
        hc.report_tcp_failure(ts[0], 1.0)
        hc.report_timeout(ts[0], 1.0)
    assert ts[0].healthy and ts[0].health.counters == [0, 0, 0, 0]


def test_passive_successes_bring_target_back(caplog) -> None:
    caplog.set_level(logging.INFO, logger="fastgw.health")
    _, ts, hc, _ = setup(PASSIVE)
    t = ts[0]
    hc.report_tcp_failure(t, 1.0)
    hc.report_tcp_failure(t, 1.0)
    assert not t.healthy
    hc.report_tcp_failure(t, 1.0)  # failures are not counted while unhealthy
    assert t.health.counters == [0, 0, 0, 0]
    hc.report_http_status(t, 200, 2.0)
    assert t.health.internal == MOSTLY_UNHEALTHY and not t.healthy
    hc.report_http_status(t, 500, 2.0)  # a failure breaks the success streak
    assert t.health.internal == UNHEALTHY and t.health.counters[SUCCESS] == 0
    hc.report_http_status(t, 200, 3.0)
    hc.report_http_status(t, 204, 3.0)
    assert t.healthy and t.health.internal == HEALTHY
    assert "unhealthy -> healthy (2 successes)" in caplog.text


def test_passive_tcp_type_does_not_classify_statuses() -> None:
    cfg = {"passive": {"type": "tcp", "unhealthy": {"http_failures": 1, "tcp_failures": 1}}}
    _, ts, hc, _ = setup(cfg)
    hc.report_http_status(ts[0], 500, 1.0)
    assert ts[0].healthy
    hc.report_tcp_failure(ts[0], 1.0)
    assert not ts[0].healthy


# ---- half-open (fastgw extension) ------------------------------------------------------------
HALF = {"passive": {"unhealthy": {"tcp_failures": 1, "http_failures": 1, "cooldown": 10}}}


def test_half_open_trial_success_closes_the_circuit(caplog) -> None:
    caplog.set_level(logging.INFO, logger="fastgw.health")
    b, ts, hc, clock = setup(HALF, n=1)
    t = ts[0]
    assert hc.half_open_cooldown == 10.0
    hc.report_tcp_failure(t, 100.0)
    assert not t.healthy and b.pick() is None and not b.is_up()
    assert hc.tick(105.0) == pytest.approx(5.0)  # not yet
    assert not t.trial
    hc.tick(110.0)
    assert t.trial and b.is_up()
    assert "unhealthy -> half-open" in caplog.text
    assert b.pick() is t  # the one trial request
    assert b.pick() is None  # only one
    hc.report_http_status(t, 200, 110.5)
    assert t.healthy and t.health.internal == HEALTHY and t.health.cause is None
    assert "half-open -> healthy (half-open trial succeeded)" in caplog.text


def test_half_open_trial_failure_reopens_for_another_cooldown(caplog) -> None:
    caplog.set_level(logging.INFO, logger="fastgw.health")
    b, ts, hc, _ = setup(HALF, n=1)
    t = ts[0]
    hc.report_http_status(t, 500, 100.0)
    hc.tick(110.0)
    assert b.pick() is t
    hc.report_timeout(t, 111.0)  # any failure re-opens, even a kind whose counter is off
    assert not t.healthy and not t.trial
    assert t.health.opened_at == 111.0
    assert "half-open -> unhealthy (half-open trial failed: timeout)" in caplog.text
    hc.tick(120.0)
    assert not t.trial  # cooldown counts from the re-open
    hc.tick(121.0)
    assert t.trial


def test_half_open_trial_without_verdict_is_rearmed() -> None:
    b, ts, hc, _ = setup(HALF, n=1)
    t = ts[0]
    hc.report_tcp_failure(t, 0.0)
    hc.tick(10.0)
    assert b.pick() is t  # picked, but no report ever comes back
    hc.tick(15.0)
    assert not t.trial
    hc.tick(20.0)
    assert t.trial and b.pick() is t


def test_no_half_open_when_active_checks_probe_unhealthy_targets_or_cooldown_zero() -> None:
    cfg = {"passive": {"unhealthy": {"tcp_failures": 1}},
           "active": {"unhealthy": {"interval": 5, "tcp_failures": 1},
                      "healthy": {"successes": 1}}}
    _, ts, hc, _ = setup(cfg, n=1)
    assert hc.half_open_cooldown == 0.0
    hc.report_tcp_failure(ts[0], 0.0)
    assert hc.tick(1000.0) is None and not ts[0].trial
    _, ts2, hc2, _ = setup({"passive": {"unhealthy": {"tcp_failures": 1, "cooldown": 0}}}, n=1)
    hc2.report_tcp_failure(ts2[0], 0.0)
    assert hc2.tick(1e9) is None and not ts2[0].trial  # Kong: out until something else


def test_half_open_not_applied_to_manual_or_active_downs() -> None:
    cfg = {"passive": {"unhealthy": {"tcp_failures": 1, "cooldown": 1}},
           "active": {"unhealthy": {"tcp_failures": 1}}}
    _, ts, hc, clock = setup(cfg, n=2)
    hc.set_target_health(ts[0].name, False)
    hc.report_probe(ts[1], TCP, 0.0)  # active failure (no unhealthy probing configured)
    assert not ts[0].healthy and not ts[1].healthy
    hc.tick(1e6)
    assert not ts[0].trial and not ts[1].trial


# ---- active results --------------------------------------------------------------------------
ACTIVE = {"active": {"healthy": {"interval": 1, "successes": 2},
                     "unhealthy": {"interval": 1, "http_failures": 2, "tcp_failures": 1,
                                   "timeouts": 3}}}


def test_active_probe_results_use_active_limits(caplog) -> None:
    caplog.set_level(logging.INFO, logger="fastgw.health")
    _, ts, hc, _ = setup(ACTIVE)
    t = ts[0]
    hc.report_probe_status(t, 500, 1.0)
    assert t.healthy
    hc.report_probe_status(t, 404, 2.0)  # 404 is an active unhealthy status
    assert not t.healthy
    hc.report_probe_status(t, 302, 3.0)
    assert not t.healthy and t.health.internal == MOSTLY_UNHEALTHY
    hc.report_probe_status(t, 200, 4.0)
    assert t.healthy
    hc.report_probe_status(t, 0, 5.0)  # an invalid answer is an http failure (Kong)
    assert t.health.counters[1] == 1
    hc.report_probe(t, TIMEOUT, 6.0)
    hc.report_probe(t, TIMEOUT, 6.0)
    assert t.healthy
    hc.report_probe(t, TIMEOUT, 6.0)
    assert not t.healthy
    assert "(3 timeouts" in caplog.text
    # passive reports do not use active limits: passive counters are all 0 here
    hc.report_http_status(ts[1], 500, 1.0)
    hc.report_http_status(ts[1], 500, 1.0)
    assert ts[1].healthy


# ---- manual override, threshold, report ----------------------------------------------------
def test_manual_override_and_health_report(caplog) -> None:
    caplog.set_level(logging.INFO, logger="fastgw.health")
    b, ts, hc, _ = setup(ACTIVE, n=2)
    assert hc.set_target_health("10.0.0.1:80", False) is True
    assert hc.set_target_health("nope:1", True) is False
    assert not ts[1].healthy and ts[1].health.cause == "manual"
    assert "healthy -> unhealthy (set manually)" in caplog.text
    rep = {r["target"]: r for r in hc.health_report()}
    assert rep["10.0.0.0:80"]["health"] == "HEALTHY"
    assert rep["10.0.0.1:80"]["health"] == "UNHEALTHY"
    assert rep["10.0.0.1:80"]["weight"] == 100
    assert rep["10.0.0.1:80"]["data"]["addresses"] == [
        {"ip": "10.0.0.1", "port": 80, "health": "UNHEALTHY", "weight": 100}]
    assert rep["10.0.0.1:80"]["data"]["weight"] == {"total": 100, "available": 0,
                                                   "unavailable": 100}
    assert hc.upstream_health()["health"] == "HEALTHY"
    hc.set_target_health("10.0.0.1:80", True)
    assert ts[1].healthy and ts[1].health.counters == [0, 0, 0, 0]


def test_health_report_healthchecks_off() -> None:
    _, ts, hc, _ = setup({})
    assert {r["health"] for r in hc.health_report()} == {"HEALTHCHECKS_OFF"}
    assert hc.upstream_health()["health"] == "HEALTHCHECKS_OFF"
    hc.set_target_health(ts[0].name, False)  # manual override still works
    assert [r["health"] for r in hc.health_report()][0] == "UNHEALTHY"


def test_threshold_makes_upstream_unhealthy() -> None:
    cfg = dict(PASSIVE, threshold=40)
    b, ts, hc, _ = setup(cfg, n=3, threshold=40.0)
    hc.report_tcp_failure(ts[0], 1.0)
    hc.report_tcp_failure(ts[0], 1.0)
    assert b.is_up()  # 66 % > 40 %
    hc.report_tcp_failure(ts[1], 1.0)
    hc.report_tcp_failure(ts[1], 1.0)
    assert not b.is_up() and b.pick() is None  # 33 % <= 40 %
    assert hc.upstream_health()["health"] == "UNHEALTHY"


# ---- carry-over ------------------------------------------------------------------------------
def test_carry_over_keeps_state_of_unchanged_targets() -> None:
    b, ts, hc, _ = setup(PASSIVE, n=3)
    hc.report_tcp_failure(ts[0], 1.0)
    hc.report_tcp_failure(ts[0], 1.0)      # unhealthy
    hc.report_http_status(ts[1], 500, 1.0)  # one failure counted
    # new config: ts[2] removed, a new target added, same upstream
    nts = [Target("10.0.0.0", 80), Target("10.0.0.1", 80), Target("10.0.0.9", 80)]
    nb = HashRing(nts)
    nhc = HealthChecker("up1", nb, parse_healthchecks(PASSIVE))
    assert carry_over(hc, nhc) == 2  # destination may be the checker or its balancer
    assert not nts[0].healthy and nts[0].health.internal == UNHEALTHY
    assert nts[1].healthy and nts[1].health.counters[1] == 1
    assert nts[2].healthy and nts[2].health.counters == [0, 0, 0, 0]
    assert all(nb.pick(h) is not nts[0] for h in range(0, 2**64, 2**58))
    nhc.report_http_status(nts[1], 500, 2.0)
    nhc.report_http_status(nts[1], 500, 2.0)
    assert not nts[1].healthy  # the carried counter counted: 3 in a row


def test_carry_over_before_the_new_checker_exists() -> None:
    b, ts, hc, _ = setup(PASSIVE, n=2)
    hc.report_tcp_failure(ts[0], 1.0)
    hc.report_tcp_failure(ts[0], 1.0)
    nts = [Target("10.0.0.0", 80), Target("10.0.0.1", 80)]
    nb = RoundRobin(nts)
    assert carry_over(b, nb) == 2  # from the old balancer
    assert isinstance(nts[0].health, TargetState) and not nts[0].healthy
    nhc = HealthChecker("up1", nb, parse_healthchecks(PASSIVE))
    assert isinstance(nts[0].health, TargetHealth)
    assert nts[0].health.internal == UNHEALTHY and not nts[0].healthy
    assert carry_over(nhc.snapshot(), RoundRobin([Target("10.0.0.0", 80)])) == 1


def test_carry_over_resets_when_checks_are_switched_off() -> None:
    b, ts, hc, _ = setup(PASSIVE, n=2)
    hc.report_tcp_failure(ts[0], 1.0)
    hc.report_tcp_failure(ts[0], 1.0)
    hc.set_target_health(ts[1].name, False)
    nts = [Target("10.0.0.0", 80), Target("10.0.0.1", 80)]
    nhc = HealthChecker("up1", RoundRobin(nts), Healthchecks())
    carry_over(hc, nhc)
    assert nts[0].healthy  # nothing could ever bring it back: not kept down
    assert not nts[1].healthy  # a manual override is kept


def test_carried_half_open_target_is_rearmed() -> None:
    b, ts, hc, _ = setup(HALF, n=1)
    hc.report_tcp_failure(ts[0], 0.0)
    hc.tick(10.0)
    assert ts[0].trial
    nts = [Target("10.0.0.0", 80)]
    nhc = HealthChecker("up1", RoundRobin(nts), parse_healthchecks(HALF))
    carry_over(hc, nhc)
    assert not nts[0].healthy and not nts[0].trial
    nhc.tick(11.0)
    assert nts[0].trial


# ---- config ----------------------------------------------------------------------------------
def test_kong_defaults() -> None:
    h = Healthchecks()
    assert msgspec.to_builtins(h) == {
        "active": {
            "type": "http", "timeout": 1, "concurrency": 10, "http_path": "/",
            "https_sni": None, "https_verify_certificate": True, "headers": None,
            "healthy": {"interval": 0, "http_statuses": [200, 302], "successes": 0},
            "unhealthy": {"interval": 0, "http_statuses": ACTIVE_UNHEALTHY_STATUSES,
                          "tcp_failures": 0, "timeouts": 0, "http_failures": 0},
        },
        "passive": {
            "type": "http",
            "healthy": {"http_statuses": PASSIVE_HEALTHY_STATUSES, "successes": 0},
            "unhealthy": {"http_statuses": [429, 500, 503], "tcp_failures": 0,
                          "timeouts": 0, "http_failures": 0, "cooldown": 10},
        },
        "threshold": 0,
    }
    assert ACTIVE_UNHEALTHY_STATUSES == [429, 404, 500, 501, 502, 503, 504, 505]
    assert PASSIVE_HEALTHY_STATUSES == [200, 201, 202, 203, 204, 205, 206, 207, 208, 226,
                                        300, 301, 302, 303, 304, 305, 306, 307, 308]
    assert parse_healthchecks(None) == h
    assert parse_healthchecks({"passive": {"type": "grpcs"}}).passive.type == "grpcs"


@pytest.mark.parametrize("data,where", [
    ({"active": {"timeout": -1}}, "$.active.timeout"),
    ({"active": {"concurrency": 0}}, "$.active.concurrency"),
    ({"active": {"type": "udp"}}, "$.active.type"),
    ({"active": {"healthy": {"interval": 65536}}}, "$.active.healthy.interval"),
    ({"active": {"unhealthy": {"http_statuses": [1000]}}}, "$.active.unhealthy.http_statuses[0]"),
    ({"passive": {"unhealthy": {"tcp_failures": 256}}}, "$.passive.unhealthy.tcp_failures"),
    ({"passive": {"unhealthy": {"cooldown": -1}}}, "$.passive.unhealthy.cooldown"),
    ({"passive": {"healthy": {"succeses": 1}}}, "$.passive.healthy"),
    ({"threshold": 100.5}, "$.threshold"),
    ({"active": {"http_path": "status"}}, "$.active"),
    ({"active": {"headers": {"bad name": ["x"]}}}, "$.active"),
    ({"active": {"headers": {"X-A": ["a\r\nInjected: 1"]}}}, "$.active"),
    ({"active": {"type": "grpc"}}, "$.active"),
])
def test_validation_errors_name_the_path(data, where) -> None:
    with pytest.raises(msgspec.ValidationError) as ei:
        parse_healthchecks(data)
    assert f"at `{where}`" in str(ei.value)
