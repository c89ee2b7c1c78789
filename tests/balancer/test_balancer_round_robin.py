"""Smooth weighted round robin: nginx's exact sequences, GCD reduction, health, avoid."""
import random
from collections import Counter

import pytest
from balancer_reference import RefRoundRobin, RefTarget

from fastgw._core.balancer import RoundRobin, Target


def names(b, n, **kw):
    out = []
    for _ in range(n):
        t = b.pick(**kw)
        out.append(t.host if t is not None else None)
    return out


def test_nginx_sequence_5_1_1() -> None:
    b = RoundRobin([Target("a", 80, 5), Target("b", 80, 1), Target("c", 80, 1)])
    assert "".join(names(b, 7)) == "aabacaa"
    assert "".join(names(b, 14)) == "aabacaa" * 2  # the cycle repeats exactly


def test_gcd_reduction_keeps_the_sequence() -> None:
    b = RoundRobin([Target("a", 80, 500), Target("b", 80, 100), Target("c", 80, 100)])
    assert b.reduced_weights == [5, 1, 1]
    assert "".join(names(b, 7)) == "aabacaa"
    b2 = RoundRobin([Target("a", 80, 6), Target("b", 80, 4), Target("c", 80, 0)])
    assert b2.reduced_weights == [3, 2, 0]


def test_exact_shares_over_a_cycle() -> None:
    ws = [7, 3, 2, 1]
    b = RoundRobin([Target(f"h{i}", 80, w) for i, w in enumerate(ws)])
    c = Counter(names(b, sum(ws) * 50))
    assert [c[f"h{i}"] for i in range(4)] == [w * 50 for w in ws]


def test_unhealthy_target_is_skipped_and_comes_back() -> None:
    ts = [Target("a", 80, 5), Target("b", 80, 1), Target("c", 80, 1)]
    b = RoundRobin(ts)
    b.set_healthy(ts[1], False)
    assert ts[1].healthy is False
    seq = names(b, 600)
    assert "b" not in seq
    assert Counter(seq) == {"a": 500, "c": 100}
    b.set_healthy(ts[1], True)
    assert Counter(names(b, 700)) == {"a": 500, "b": 100, "c": 100}


def test_weight_zero_never_picked_and_all_down_is_none() -> None:
    ts = [Target("a", 80, 0), Target("b", 80, 3)]
    b = RoundRobin(ts)
    assert set(names(b, 30)) == {"b"}
    b.set_healthy(ts[1], False)
    assert b.pick() is None
    assert b.is_up() is False


def test_avoid_picks_another_target_when_one_exists() -> None:
    ts = [Target("a", 80, 5), Target("b", 80, 1)]
    b = RoundRobin(ts)
    for _ in range(50):
        assert b.pick(avoid=ts[0]) is ts[1]
    b.set_healthy(ts[1], False)
    assert b.pick(avoid=ts[0]) is ts[0]  # the only one left: a retry may reuse it


@pytest.mark.parametrize("seed", range(5))
def test_differential_against_reference(seed: int) -> None:
    rnd = random.Random(seed)
    ws = [rnd.choice([0, 1, 2, 3, 5, 10, 100]) for _ in range(rnd.randint(1, 8))]
    ts = [Target(f"h{i}", 80, w) for i, w in enumerate(ws)]
    rs = [RefTarget(f"h{i}", w) for i, w in enumerate(ws)]
    b, r = RoundRobin(ts), RefRoundRobin(rs)
    for step in range(3000):
        if rnd.random() < 0.02:
            i = rnd.randrange(len(ts))
            h = rnd.random() < 0.6
            b.set_healthy(ts[i], h)
            rs[i].healthy = h
        avoid_i = rnd.randrange(len(ts)) if rnd.random() < 0.1 else None
        got = b.pick(avoid=ts[avoid_i] if avoid_i is not None else None)
        want = r.pick(avoid=rs[avoid_i] if avoid_i is not None else None)
        assert (got.host if got else None) == (want.name if want else None), step


def test_targets_belong_to_one_balancer() -> None:
    ts = [Target("a", 80)]
    b = RoundRobin(ts)
    with pytest.raises(ValueError, match="already belongs"):
        RoundRobin(ts)
    other = Target("z", 80)
    ob = RoundRobin([other])
    # a request picked from the previous balancer (config reload) finishes on its own one
    b.on_start(other)
    assert other.inflight == 1 and ts[0].inflight == 0
    b.on_finish(other, 1.0, 0.0)
    assert other.inflight == 0
    b.set_healthy(other, False)
    assert not other.healthy and ts[0].healthy and not ob.is_up() and b.is_up()
    assert b.pick(avoid=other) is ts[0]  # a foreign `avoid` is ignored, not an error
    with pytest.raises(ValueError, match="does not belong"):
        b.on_start(Target("loose", 80))
    assert other.owner is ob and ts[0].owner is b


def test_target_validation_and_names() -> None:
    assert Target("::1", 8080).name == "[::1]:8080"
    assert Target("example.com", 80, 7, id="x").name == "example.com:80"
    with pytest.raises(ValueError):
        Target("a", 0)
    with pytest.raises(ValueError):
        Target("a", 80, 65536)
    with pytest.raises(ValueError):
        RoundRobin([Target("a", 80), Target("a", 80)])
    with pytest.raises(TypeError):
        RoundRobin(["a:80"])
