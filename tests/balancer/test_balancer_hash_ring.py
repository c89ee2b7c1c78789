"""Consistent hashing ring: reproducible, minimal disruption, weighted, health-aware."""
import random
import subprocess
import sys
from collections import Counter

import pytest
import xxhash
from balancer_reference import RefRing, RefTarget

from fastgw._core.balancer import HashRing, Target

KEYS = [xxhash.xxh64_intdigest(f"key-{i}".encode()) for i in range(20000)]


def ring(names_weights, slots=10000, **kw):
    return HashRing([Target(h, p, w) for h, p, w in names_weights], slots, **kw)


def owners(r, keys=KEYS):
    return [r.owner_of(k).name for k in keys]


def nodes(n, w=100):
    return [(f"10.0.0.{i}", 8000 + i, w) for i in range(n)]


def test_same_ring_whatever_the_target_order() -> None:
    base = nodes(6)
    want = owners(ring(base))
    for seed in range(3):
        shuffled = base[:]
        random.Random(seed).shuffle(shuffled)
        assert owners(ring(shuffled)) == want


def test_same_ring_in_another_process() -> None:
    # a restart (new process, new hash seeds for Python's str hashing) builds the same ring
    code = (
        "import xxhash\n"
        "from fastgw._core.balancer import HashRing, Target\n"
        "r = HashRing([Target(f'10.0.0.{i}', 8000 + i) for i in range(6)])\n"
        "keys = [xxhash.xxh64_intdigest(f'key-{i}'.encode()) for i in range(2000)]\n"
        "print(','.join(r.owner_of(k).name for k in keys))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={"PYTHONHASHSEED": "12345"}).stdout.strip()
    assert out.split(",") == owners(ring(nodes(6)), KEYS[:2000])


def test_adding_a_target_moves_only_keys_to_it() -> None:
    for n in (3, 5, 10):
        before = owners(ring(nodes(n)))
        after = owners(ring(nodes(n + 1)))
        new = nodes(n + 1)[-1]
        new_name = f"{new[0]}:{new[1]}"
        moved = [(a, b) for a, b in zip(before, after) if a != b]
        assert all(b == new_name for _, b in moved), "a key moved between two old targets"
        frac = len(moved) / len(KEYS)
        assert abs(frac - 1 / (n + 1)) < 0.35 / (n + 1), (n, frac)


def test_removing_a_target_moves_only_its_keys() -> None:
    for n in (3, 5, 10):
        full = nodes(n)
        gone = full[n // 2]
        gone_name = f"{gone[0]}:{gone[1]}"
        before = owners(ring(full))
        after = owners(ring([x for x in full if x is not gone]))
        moved = [(a, b) for a, b in zip(before, after) if a != b]
        assert all(a == gone_name for a, _ in moved)
        assert len(moved) == before.count(gone_name)
        assert abs(len(moved) / len(KEYS) - 1 / n) < 0.35 / n


def test_weight_change_of_one_target_moves_only_its_keys() -> None:
    base = nodes(4)
    heavier = base[:3] + [(base[3][0], base[3][1], 200)]
    before, after = owners(ring(base)), owners(ring(heavier))
    name = f"{base[3][0]}:{base[3][1]}"
    assert all(b == name for a, b in zip(before, after) if a != b)


def test_points_proportional_to_weight() -> None:
    r = ring([("a", 80, 100), ("b", 80, 200), ("c", 80, 50), ("z", 80, 0)], slots=10000)
    assert r.point_counts() == {"a:80": 400, "b:80": 800, "c:80": 200, "z:80": 0}
    assert r.npoints == 1400
    assert ring([("a", 80, 1)], slots=10).npoints == 1  # at least one point


def test_distribution_follows_weights() -> None:
    ws = {"a:80": 100, "b:80": 200, "c:80": 300, "d:80": 100}
    r = ring([(n.split(":")[0], 80, w) for n, w in ws.items()])
    c = Counter(r.pick(k).name for k in KEYS)
    total = sum(ws.values())
    for name, w in ws.items():
        share = c[name] / len(KEYS)
        assert abs(share - w / total) < 0.15 * w / total, (name, share)


def test_differential_and_chi_square_against_reference_ring() -> None:
    spec = [("a", 80, 100), ("b", 81, 50), ("c", 82, 250)]
    r = ring(spec, slots=2000)
    ref = RefRing([RefTarget(f"{h}:{p}", w) for h, p, w in spec], slots=2000)
    assert [r.owner_of(k).name for k in KEYS] == [ref.owner_of(k).name for k in KEYS]
    # the observed distribution matches the ring's exact arc shares (chi-square, df=2,
    # p=0.001 critical value 13.8)
    shares = ref.arc_shares()
    c = Counter(r.pick(k).name for k in KEYS)
    chi2 = sum((c[n] - shares[n] * len(KEYS)) ** 2 / (shares[n] * len(KEYS)) for n in shares)
    assert chi2 < 13.8, (chi2, c, shares)


def test_unhealthy_owner_walks_to_next_healthy_point() -> None:
    spec = nodes(4)
    ts = [Target(h, p, w) for h, p, w in spec]
    r = HashRing(ts)
    rs = [RefTarget(t.name, t.weight) for t in ts]
    ref = RefRing(rs)
    r.set_healthy(ts[1], False)
    rs[1].healthy = False
    for k in KEYS[:5000]:
        got = r.pick(k)
        assert got is not ts[1]
        assert got.name == ref.pick(k).name
    # keys of healthy targets stay where they were
    for k in KEYS[:5000]:
        if r.owner_of(k) is not ts[1]:
            assert r.pick(k) is r.owner_of(k)


def test_avoid_on_the_ring() -> None:
    ts = [Target(h, p, w) for h, p, w in nodes(3)]
    r = HashRing(ts)
    for k in KEYS[:2000]:
        first = r.pick(k)
        retry = r.pick(k, avoid=first)
        assert retry is not first and retry is not None
        assert r.pick(k, avoid=first) is retry  # deterministic
    r.set_healthy(ts[0], False)
    r.set_healthy(ts[1], False)
    assert r.pick(KEYS[0], avoid=ts[2]) is ts[2]
    r.set_healthy(ts[2], False)
    assert r.pick(KEYS[0]) is None


def test_slots_limits() -> None:
    with pytest.raises(ValueError, match="slots"):
        ring(nodes(2), slots=9)
    with pytest.raises(ValueError, match="slots"):
        ring(nodes(2), slots=65537)
    assert ring(nodes(2), slots=65536).npoints == 2 * 2621


def test_huge_weights_are_capped() -> None:
    r = ring([(f"h{i}", 80, 65535) for i in range(3)], slots=65536)
    assert r.npoints <= 1048576
    counts = r.point_counts()
    assert len(set(counts.values())) == 1  # scaled evenly


@pytest.mark.parametrize("count,slots", [(1, 10), (2, 10), (3, 10000), (7, 3000), (12, 20000)])
def test_lookup_index_edges_match_reference(count: int, slots: int) -> None:
    # exact point values, their neighbours, and the ends of the key space: the bucketed lookup
    # must agree with a plain binary search over all points
    spec = [(f"h{i}", 80, 1 + 37 * i) for i in range(count)]
    r = ring(spec, slots=slots)
    ref = RefRing([RefTarget(f"{h}:{p}", w) for h, p, w in spec], slots=slots)
    probes = [0, 1, 2**63, 2**64 - 2, 2**64 - 1]
    for h in ref.hashes[:: max(1, len(ref.hashes) // 3000)]:
        probes += [h, max(h - 1, 0), min(h + 1, 2**64 - 1)]
    for h in probes:
        assert r.owner_of(h).name == ref.owner_of(h).name, h


def test_longest_hostname_and_no_reinit() -> None:
    host = ".".join(["a" * 63] * 3 + ["b" * 61])  # 253 bytes, the DNS maximum
    r = ring([(host, 65535, 100), ("x", 80, 100)])
    assert r.point_counts()[f"{host}:65535"] == 400
    with pytest.raises(RuntimeError, match="immutable"):
        r.__init__([Target("y", 80)])
