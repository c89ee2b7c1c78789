"""Least-connections and latency (peak EWMA) behaviour; threshold; half-open trials."""
import random
from collections import Counter

import pytest
from balancer_reference import RefLeastConnections, RefTarget

from fastgw._core.balancer import HashRing, Latency, LeastConnections, RoundRobin, Target


# ---- least-connections -----------------------------------------------------------------
def test_least_connections_prefers_fewest_inflight() -> None:
    ts = [Target("a", 80), Target("b", 80), Target("c", 80)]
    b = LeastConnections(ts)
    for _ in range(3):
        b.on_start(ts[0])
    b.on_start(ts[1])
    assert b.pick() is ts[2]
    b.on_start(ts[2])
    b.on_start(ts[2])
    assert b.pick() is ts[1]  # b:1 < c:2 < a:3
    assert [t.inflight for t in ts] == [3, 1, 2]
    b.on_finish(ts[0], 5.0, 0.0)
    b.on_finish(ts[0], 5.0, 0.0)
    b.on_finish(ts[0], 5.0, 0.0)
    b.on_finish(ts[0], 5.0, 0.0)  # extra finish does not go negative
    assert ts[0].inflight == 0
    assert b.pick() is ts[0]


def test_least_connections_ties_round_robin() -> None:
    ts = [Target("a", 80), Target("b", 80), Target("c", 80)]
    b = LeastConnections(ts)
    assert [b.pick().host for _ in range(6)] == ["a", "b", "c", "a", "b", "c"]


def test_least_connections_is_weighted() -> None:
    # with requests that never finish, in-flight counts end up proportional to weight
    ts = [Target("a", 80, 300), Target("b", 80, 100)]
    b = LeastConnections(ts)
    for _ in range(400):
        b.on_start(b.pick())
    assert (ts[0].inflight, ts[1].inflight) == (300, 100)


def test_least_connections_distribution_with_finishing_requests() -> None:
    rnd = random.Random(1)
    ts = [Target(f"h{i}", 80, w) for i, w in enumerate([100, 100, 200])]
    b = LeastConnections(ts)
    live = []
    seen = Counter()
    for _ in range(20000):
        t = b.pick()
        b.on_start(t)
        seen[t.host] += 1
        live.append(t)
        while len(live) > 40:
            b.on_finish(live.pop(rnd.randrange(len(live))), 1.0, 0.0)
    total = sum(seen.values())
    for name, expected in (("h0", 0.25), ("h1", 0.25), ("h2", 0.5)):
        assert abs(seen[name] / total - expected) < 0.05, seen


@pytest.mark.parametrize("seed", range(3))
def test_least_connections_differential(seed: int) -> None:
    rnd = random.Random(seed)
    ws = [rnd.choice([0, 1, 3, 100]) for _ in range(rnd.randint(1, 6))]
    ts = [Target(f"h{i}", 80, w) for i, w in enumerate(ws)]
    rs = [RefTarget(f"h{i}", w) for i, w in enumerate(ws)]
    b, r = LeastConnections(ts), RefLeastConnections(rs)
    live = []
    for step in range(3000):
        x = rnd.random()
        if x < 0.03:
            i = rnd.randrange(len(ts))
            h = rnd.random() < 0.7
            b.set_healthy(ts[i], h)
            rs[i].healthy = h
        elif x < 0.45 and live:
            i = live.pop(rnd.randrange(len(live)))
            b.on_finish(ts[i], 1.0, 0.0)
            rs[i].inflight -= 1
        else:
            got, want = b.pick(), r.pick()
            assert (got.host if got else None) == (want.name if want else None), step
            if got is not None:
                i = ts.index(got)
                b.on_start(got)
                rs[i].inflight += 1
                live.append(i)


# ---- latency ---------------------------------------------------------------------------
def test_latency_sends_traffic_to_the_faster_target() -> None:
    ts = [Target("fast", 80), Target("slow", 80)]
    b = Latency(ts, decay=10.0)
    lat = {"fast": 5.0, "slow": 50.0}
    now = 0.0
    seen = Counter()
    for _ in range(2000):
        t = b.pick()
        seen[t.host] += 1
        b.on_start(t)
        now += 0.001
        b.on_finish(t, lat[t.host], now)
    assert seen["fast"] > 0.9 * 2000, seen
    assert b.ewma(ts[0]) == pytest.approx(5.0)
    # the slow one is mostly idle: its EWMA decays towards 0 until it is tried again
    assert 0.0 < b.ewma(ts[1]) <= 50.0
    assert seen["slow"] >= 1


def test_latency_inflight_multiplies_cost() -> None:
    ts = [Target("a", 80), Target("b", 80)]
    b = Latency(ts)
    b.on_start(ts[0]); b.on_finish(ts[0], 10.0, 1.0)
    b.on_start(ts[1]); b.on_finish(ts[1], 25.0, 1.0)
    assert b.pick() is ts[0]
    for _ in range(3):  # a: 10 * 4 = 40 > b: 25 * 1
        b.on_start(ts[0])
    assert b.pick() is ts[1]


def test_latency_peak_then_decay() -> None:
    t = Target("a", 80)
    b = Latency([t, Target("b", 80)], decay=10.0)
    b.on_finish(t, 10.0, 0.0)
    b.on_finish(t, 100.0, 1.0)  # a peak counts in full at once
    assert b.ewma(t) == pytest.approx(100.0)
    b.on_finish(t, 10.0, 11.0)  # a lower sample mixes in with weight 1 - exp(-dt/decay)
    import math
    w = math.exp(-10.0 / 10.0)
    assert b.ewma(t) == pytest.approx(100.0 * w + 10.0 * (1 - w))


def test_latency_idle_target_decays_and_is_tried_again() -> None:
    ts = [Target("a", 80), Target("b", 80)]
    b = Latency(ts, decay=1.0)
    b.on_finish(ts[0], 1000.0, 0.0)  # one terrible sample for a
    now = 0.0
    picks = []
    for _ in range(4000):
        t = b.pick()
        picks.append(t.host)
        now += 0.005
        b.on_finish(t, 20.0, now)
    assert picks[:100].count("a") == 0
    # after a few time constants a's EWMA decayed below 20 ms and a got traffic again
    assert "a" in picks[1000:]


def test_latency_unsampled_targets_are_tried_first() -> None:
    ts = [Target("a", 80), Target("b", 80), Target("c", 80)]
    b = Latency(ts)
    b.on_finish(ts[0], 3.0, 0.0)
    assert {b.pick().host, b.pick().host} == {"b", "c"}
    with pytest.raises(ValueError):
        Latency([Target("x", 80)], decay=0.0)


# ---- threshold and half-open trials ----------------------------------------------------------
@pytest.mark.parametrize("cls", [RoundRobin, HashRing, LeastConnections, Latency])
def test_threshold_marks_upstream_down(cls) -> None:
    ts = [Target(f"h{i}", 80) for i in range(4)]
    b = cls(ts, threshold=50.0)
    assert b.is_up()
    b.set_healthy(ts[0], False)
    assert b.is_up()  # 75% > 50%
    b.set_healthy(ts[1], False)
    assert not b.is_up()  # 50% is at the threshold: down (Kong: "at or below")
    assert b.pick(12345) is None  # pick() honours the threshold too
    b.set_healthy(ts[1], True)
    assert b.is_up() and b.pick(12345) is not None
    assert b.available_weight == 300 and b.total_weight == 400


@pytest.mark.parametrize("cls", [RoundRobin, HashRing, LeastConnections, Latency])
def test_all_unhealthy_is_down_with_default_threshold(cls) -> None:
    ts = [Target("a", 80), Target("b", 80)]
    b = cls(ts)
    for t in ts:
        b.set_healthy(t, False)
    assert not b.is_up()
    assert b.pick(1) is None
    with pytest.raises(ValueError):
        cls([Target("c", 80)], threshold=101.0)


@pytest.mark.parametrize("cls", [RoundRobin, HashRing, LeastConnections, Latency])
def test_half_open_trial_is_given_out_once(cls) -> None:
    ts = [Target("a", 80)]
    b = cls(ts)
    b.set_healthy(ts[0], False)
    assert b.pick(7) is None
    b.allow_trial(ts[0])
    assert ts[0].trial and not ts[0].healthy and b.is_up()
    assert b.pick(7) is ts[0]  # the one trial request
    assert not ts[0].trial
    assert b.pick(7) is None  # no second one until a verdict
    b.allow_trial(ts[0])
    b.set_healthy(ts[0], True)  # verdict: healthy (clears the trial flag)
    assert ts[0].healthy and not ts[0].trial
    b.allow_trial(ts[0])  # no-op on a healthy target
    assert ts[0].healthy and not ts[0].trial
