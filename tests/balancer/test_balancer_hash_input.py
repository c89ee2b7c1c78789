"""hash_on / hash_fallback sources: values, fallback order, cookie generation, distribution."""
import uuid
from collections import Counter
from dataclasses import dataclass, field

import pytest
from balancer_reference import RefRing, RefTarget

from fastgw._core.balancer import HashRing, Target
from fastgw.balancing import (ALGORITHMS, cookie_header, hash_input, hash_value,
                              make_balancer)
from fastgw._core.balancer import Latency, LeastConnections, RoundRobin


@dataclass
class Spec:
    hash_on: str = "none"
    hash_fallback: str = "none"
    hash_on_header: str | None = None
    hash_fallback_header: str | None = None
    hash_on_cookie: str | None = None
    hash_on_cookie_path: str = "/"
    hash_on_query_arg: str | None = None
    hash_fallback_query_arg: str | None = None
    hash_on_uri_capture: str | None = None
    hash_fallback_uri_capture: str | None = None


@dataclass
class Req:
    client_ip: str = "192.0.2.1"
    path: str = "/"
    consumer_id: str | None = None
    headers: dict = field(default_factory=dict)
    cookies: dict = field(default_factory=dict)
    query: dict = field(default_factory=dict)
    captures: dict = field(default_factory=dict)

    def get_header(self, name):
        return self.headers.get(name.lower())

    def get_cookie(self, name):
        return self.cookies.get(name)

    def get_query_arg(self, name):
        return self.query.get(name)

    def get_uri_capture(self, name):
        return self.captures.get(name)


def req_with(source: str, value: str) -> Req:
    r = Req(client_ip="0.0.0.0", path="/")
    if source == "ip":
        r.client_ip = value
    elif source == "consumer":
        r.consumer_id = value
    elif source == "header":
        r.headers["x-user"] = value
    elif source == "cookie":
        r.cookies["sess"] = value
    elif source == "path":
        r.path = value
    elif source == "query_arg":
        r.query["user"] = value
    elif source == "uri_capture":
        r.captures["user"] = value
    return r


SPEC_FOR = {
    "ip": Spec(hash_on="ip"),
    "consumer": Spec(hash_on="consumer"),
    "header": Spec(hash_on="header", hash_on_header="X-User"),
    "cookie": Spec(hash_on="cookie", hash_on_cookie="sess"),
    "path": Spec(hash_on="path"),
    "query_arg": Spec(hash_on="query_arg", hash_on_query_arg="user"),
    "uri_capture": Spec(hash_on="uri_capture", hash_on_uri_capture="user"),
}


@pytest.mark.parametrize("source", sorted(SPEC_FOR))
def test_each_source_reads_its_value(source: str) -> None:
    value = "/u/42" if source == "path" else "u-42"
    data, cookie = hash_input(SPEC_FOR[source], req_with(source, value))
    assert data == value.encode()
    assert cookie is None


@pytest.mark.parametrize("source", sorted(SPEC_FOR))
def test_each_source_distributes_and_sticks(source: str) -> None:
    ts = [Target(f"10.1.0.{i}", 80) for i in range(3)]
    ring = HashRing(ts)
    spec = SPEC_FOR[source]
    seen = Counter()
    first = {}
    n = 3000
    for i in range(n):
        value = f"/users/{i}" if source == "path" else (
            f"10.{i // 250}.{i % 250}.7" if source == "ip" else f"user-{i}")
        data, _ = hash_input(spec, req_with(source, value))
        t = ring.pick(hash_value(data))
        seen[t.name] += 1
        first[value] = t
    for value in list(first)[:200]:  # same input -> same target
        data, _ = hash_input(spec, req_with(source, value))
        assert ring.pick(hash_value(data)) is first[value]
    # roughly even: each of 3 targets within 1/3 +- 20 %
    for name in (t.name for t in ts):
        assert abs(seen[name] / n - 1 / 3) < 0.2 / 3, (source, seen)
    # and as the ring's exact arc shares predict: chi-square, df=2, p=0.001 critical 13.8
    shares = RefRing([RefTarget(t.name, t.weight) for t in ts]).arc_shares()
    chi2 = sum((seen[k] - shares[k] * n) ** 2 / (shares[k] * n) for k in shares)
    assert chi2 < 13.8, (source, chi2, seen, shares)


def test_fallback_used_only_when_primary_absent() -> None:
    spec = Spec(hash_on="header", hash_on_header="X-User", hash_fallback="ip")
    r = Req(client_ip="198.51.100.9")
    assert hash_input(spec, r) == (b"198.51.100.9", None)
    r.headers["x-user"] = "alice"
    assert hash_input(spec, r) == (b"alice", None)
    r.headers["x-user"] = ""  # empty counts as absent
    assert hash_input(spec, r) == (b"198.51.100.9", None)


@pytest.mark.parametrize("fb,setter,expected", [
    ("consumer", lambda r: setattr(r, "consumer_id", "c-1"), b"c-1"),
    ("path", lambda r: setattr(r, "path", "/p"), b"/p"),
])
def test_fallback_sources(fb, setter, expected) -> None:
    spec = Spec(hash_on="query_arg", hash_on_query_arg="u", hash_fallback=fb)
    r = Req()
    setter(r)
    assert hash_input(spec, r) == (expected, None)


def test_header_fallback_uses_its_own_header_names() -> None:
    spec = Spec(hash_on="header", hash_on_header="X-A", hash_fallback="header",
                hash_fallback_header="X-B")
    r = Req(headers={"x-b": "bee"})
    assert hash_input(spec, r) == (b"bee", None)
    spec2 = Spec(hash_on="uri_capture", hash_on_uri_capture="a", hash_fallback="uri_capture",
                 hash_fallback_uri_capture="b")
    assert hash_input(spec2, Req(captures={"b": "cap"})) == (b"cap", None)
    spec3 = Spec(hash_on="query_arg", hash_on_query_arg="a", hash_fallback="query_arg",
                 hash_fallback_query_arg="b")
    assert hash_input(spec3, Req(query={"b": "q"})) == (b"q", None)


def test_nothing_to_hash_is_none() -> None:
    assert hash_input(Spec(), Req()) == (None, None)
    spec = Spec(hash_on="consumer", hash_fallback="header", hash_fallback_header="X-U")
    assert hash_input(spec, Req()) == (None, None)


def test_cookie_generated_when_absent() -> None:
    spec = Spec(hash_on="cookie", hash_on_cookie="sess", hash_on_cookie_path="/app")
    data, cookie = hash_input(spec, Req())
    assert cookie is not None and data == cookie.encode()
    uuid.UUID(cookie)  # a UUID, as Kong generates
    assert cookie_header(spec, cookie) == f"sess={cookie}; Path=/app"
    data2, cookie2 = hash_input(spec, Req())
    assert cookie2 != cookie  # a fresh one per client
    # the client comes back with it: same hash input, no new cookie
    assert hash_input(spec, Req(cookies={"sess": cookie})) == (cookie.encode(), None)


def test_cookie_as_fallback_is_generated_too() -> None:
    spec = Spec(hash_on="header", hash_on_header="X-U", hash_fallback="cookie",
                hash_on_cookie="sess")
    data, cookie = hash_input(spec, Req())
    assert cookie is not None and data == cookie.encode()
    assert hash_input(spec, Req(headers={"x-u": "h"})) == (b"h", None)


def test_generated_cookies_distribute() -> None:
    ts = [Target(f"10.2.0.{i}", 80) for i in range(3)]
    ring = HashRing(ts)
    spec = Spec(hash_on="cookie", hash_on_cookie="sess")
    c = Counter(ring.pick(hash_value(hash_input(spec, Req())[0])).name for _ in range(3000))
    assert all(abs(v / 3000 - 1 / 3) < 0.2 / 3 for v in c.values()) and len(c) == 3


def test_make_balancer() -> None:
    classes = {"round-robin": RoundRobin, "consistent-hashing": HashRing,
               "least-connections": LeastConnections, "latency": Latency}
    for algo in ALGORITHMS:
        b = make_balancer(algo, [Target("a", 80)], 100, threshold=10.0)
        assert type(b) is classes[algo] and b.threshold == 10.0
        assert b.algorithm == algo
    assert make_balancer("consistent-hashing", [Target("a", 80)], 100).slots == 100
    with pytest.raises(ValueError, match="unknown algorithm"):
        make_balancer("random", [], 10)
