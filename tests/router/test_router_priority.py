"""Kong traditional_compatible priority rules, one small table per rule."""
from __future__ import annotations

import pytest

from fastgw._core.router import RouteSpec, Router


def pick(routes, path=b"/", method=b"GET", host=None, headers=None):
    m = Router(routes).match(method, host, path, headers)
    return None if m is None else m.key


def test_more_fields_wins_docs_example():
    # docs: {hosts} vs {hosts, methods}: POST goes to the second, GET to the first
    routes = [
        RouteSpec("hosts", hosts=["example.com"]),
        RouteSpec("hosts+methods", hosts=["example.com"], methods=["POST"]),
    ]
    assert pick(routes, method=b"GET", host=b"example.com") == "hosts"
    assert pick(routes, method=b"POST", host=b"example.com") == "hosts+methods"


@pytest.mark.parametrize(
    "other",
    [
        dict(methods=["GET"]),
        dict(hosts=["example.com"]),
        dict(headers={"x-a": ["1"]}),
    ],
)
def test_each_extra_field_outweighs_a_longer_path(other):
    routes = [
        RouteSpec("long", paths=["/very/long/path"]),
        RouteSpec("short+field", paths=["/"], **other),
    ]
    assert pick(routes, b"/very/long/path/x", host=b"example.com", headers={b"x-a": b"1"}) == (
        "short+field"
    )


def test_weight_counts_field_kinds_not_values():
    # three methods and two hosts are still weight 2; methods+hosts+paths (3) wins
    routes = [
        RouteSpec("wide", methods=["GET", "POST", "PUT"], hosts=["a.com", "b.com"]),
        RouteSpec("narrow", methods=["GET"], hosts=["a.com"], paths=["/"]),
    ]
    assert pick(routes, host=b"a.com") == "narrow"


def test_plain_host_before_wildcard_host():
    routes = [
        RouteSpec("wild", hosts=["*.example.com"], paths=["/longer/prefix"]),
        RouteSpec("plain", hosts=["api.example.com"], paths=["/"]),
    ]
    assert pick(routes, b"/longer/prefix", host=b"api.example.com") == "plain"
    # a route mixing plain and wildcard hosts is not "plain only"
    routes = [
        RouteSpec("mixed", hosts=["api.example.com", "*.example.org"], paths=["/longer/prefix"]),
        RouteSpec("plain", hosts=["api.example.com"], paths=["/"]),
    ]
    assert pick(routes, b"/longer/prefix", host=b"api.example.com") == "plain"


def test_route_with_plain_hosts_before_route_without_hosts_same_weight():
    # Kong 3 priority: the plain-host bit is only set when the route has hosts
    routes = [
        RouteSpec("methods", methods=["GET"], paths=["/longer/prefix"]),
        RouteSpec("hosts", hosts=["a.com"], paths=["/"]),
    ]
    assert pick(routes, b"/longer/prefix", host=b"a.com") == "hosts"


def test_more_headers_first():
    routes = [
        RouteSpec("one", headers={"x-a": ["1"]}, paths=["/longer/prefix"]),
        RouteSpec("two", headers={"x-a": ["1"], "x-b": ["2"]}, paths=["/"]),
    ]
    hdrs = {b"x-a": b"1", b"x-b": b"2"}
    assert pick(routes, b"/longer/prefix", headers=hdrs) == "two"
    assert pick(routes, b"/longer/prefix", headers={b"x-a": b"1"}) == "one"


def test_regex_before_prefix_even_when_prefix_is_longer():
    routes = [
        RouteSpec("prefix", paths=["/version/any/thing"]),
        RouteSpec("regex", paths=["~/version"]),
    ]
    assert pick(routes, b"/version/any/thing") == "regex"


def test_longest_prefix_first_regardless_of_declaration_order():
    routes = [
        RouteSpec("short", paths=["/service"]),
        RouteSpec("long", paths=["/service/resource"]),
    ]
    assert pick(routes, b"/service/resource/1") == "long"
    assert pick(routes, b"/service/other") == "short"
    assert pick(list(reversed(routes)), b"/service/resource/1") == "long"


def test_docs_regex_evaluation_order():
    # the docs' example: evaluated in the order
    # /version/\d+/status/\d+ (6), /status/\d+ (0), /version/any/ (0, later), /version (prefix)
    routes = [
        # equal regex_priority: the higher route id first (Kong's ATC router order)
        RouteSpec("status", paths=[r"~/status/\d+"], regex_priority=0, id="d"),
        RouteSpec("version-status", paths=[r"~/version/\d+/status/\d+"], regex_priority=6, id="c"),
        RouteSpec("version", paths=["/version"], id="b"),
        RouteSpec("version-any", paths=["~/version/any/"], id="a"),
    ]
    r = Router(routes)
    assert [k for k, _ in r.priority_order()] == ["version-status", "status", "version-any", "version"]
    assert pick(routes, b"/version/1/status/2") == "version-status"
    assert pick(routes, b"/status/42") == "status"
    assert pick(routes, b"/version/any/x") == "version-any"
    assert pick(routes, b"/version/other") == "version"


def test_regex_priority_higher_first_then_route_id_then_position():
    routes = [
        RouteSpec("low", paths=["~/a"], regex_priority=1),
        RouteSpec("high", paths=["~/a"], regex_priority=5),
        RouteSpec("neg", paths=["~/a"], regex_priority=-3),
    ]
    assert pick(routes, b"/a") == "high"
    assert [k for k, _ in Router(routes).priority_order()] == ["high", "low", "neg"]
    # atc-router keeps (priority, uuid) in a BTreeMap and tries it in reverse: higher id first
    tie = [RouteSpec("second", paths=["~/a"], id="0f8a0e2c-0000-4000-8000-000000000001"),
           RouteSpec("first", paths=["~/a"], id="9d1c8e2c-0000-4000-8000-000000000001")]
    assert pick(tie, b"/a") == "first"
    assert pick(tie[::-1], b"/a") == "first"
    same = [RouteSpec("x", paths=["~/a"]), RouteSpec("y", paths=["~/a"])]
    assert pick(same, b"/a") == "x"


def test_regex_priority_does_not_reorder_prefix_paths():
    # Kong #7687: regex_priority only orders regex paths; prefixes go by length
    routes = [
        RouteSpec("root", hosts=["foo.com"], paths=["/"], regex_priority=1),
        RouteSpec("v1", hosts=["foo.com"], paths=["/v1"], regex_priority=0),
        RouteSpec("bar", hosts=["bar.com"], paths=["~/.*"]),
    ]
    assert pick(routes, b"/v1/x", host=b"foo.com") == "v1"


def test_each_path_of_a_route_has_its_own_priority():
    routes = [
        RouteSpec("x", paths=["/a", "/a/b/c"]),
        RouteSpec("y", paths=["/a/b"]),
    ]
    assert pick(routes, b"/a/b/c/d") == "x"
    assert pick(routes, b"/a/b/x") == "y"
    assert pick(routes, b"/a/z") == "x"
    order = Router(routes).priority_order()
    assert order == [("x", "/a/b/c"), ("y", "/a/b"), ("x", "/a")]


def test_route_without_paths_after_prefix_route_of_same_weight():
    routes = [
        RouteSpec("methods", methods=["GET"], hosts=["a.com"]),
        RouteSpec("paths", paths=["/"], hosts=["a.com"]),
    ]
    assert pick(routes, b"/x", host=b"a.com") == "paths"
    assert pick(routes, b"/x", method=b"POST", host=b"a.com") == "paths"


def test_exact_wildcard_and_hostless_lists_are_merged_by_rank():
    # the best candidate may sit in any of the three lists; each case puts it in another
    routes = [
        RouteSpec("hostless-heavy", methods=["GET"], headers={"x": ["1"]}, paths=["/"]),
        RouteSpec("exact", hosts=["a.example.com"], paths=["/"]),
        RouteSpec("wild", hosts=["*.example.com"], methods=["GET"], headers={"x": ["1"]},
                  paths=["/"]),
    ]
    assert pick(routes, host=b"a.example.com", headers={b"x": b"1"}) == "wild"
    assert pick(routes, method=b"POST", host=b"a.example.com", headers={b"x": b"1"}) == "exact"
    routes.append(RouteSpec("exact-heavy", hosts=["a.example.com"], methods=["GET"],
                            headers={"x": ["1"]}, paths=["/"]))
    assert pick(routes, host=b"a.example.com", headers={b"x": b"1"}) == "exact-heavy"
    assert pick(routes, host=b"b.example.com", headers={b"x": b"1"}) == "wild"
    assert pick(routes, host=b"other.com", headers={b"x": b"1"}) == "hostless-heavy"


def test_long_runs_of_prefix_routes_pick_longest_then_declared_first():
    routes = [RouteSpec(f"p{i}", paths=[f"/svc{i}"]) for i in range(30)]
    routes += [RouteSpec("dup", paths=["/svc7"]), RouteSpec("root", paths=["/"])]
    r = Router(routes)
    assert r.runs() == [(32, 3)]  # one run: 32 entries, 3 distinct lengths
    assert r.match(b"GET", None, b"/svc17/x", None).key == "p17"
    assert r.match(b"GET", None, b"/svc1/x", None).key == "p1"
    assert r.match(b"GET", None, b"/svc7", None).key == "p7"  # duplicate: declared first wins
    assert r.match(b"GET", None, b"/svc", None).key == "root"
    assert r.match(b"GET", None, b"", None) is None


def test_prefix_run_split_by_an_entry_with_a_port():
    # in the "a.com" bucket a host:port entry sits between the short and the long prefixes
    routes = [RouteSpec(f"p{i}", hosts=["a.com"], paths=[f"/svc{i:02d}"]) for i in range(10)]
    routes += [RouteSpec(f"l{i}", hosts=["a.com"], paths=[f"/svc{i:02d}/long"]) for i in range(10)]
    routes.append(RouteSpec("port", hosts=["a.com:8080"], paths=["/svc05/x"]))
    r = Router(routes)
    assert sorted(r.runs()) == [(10, 1), (10, 1)]
    assert r.match(b"GET", b"a.com:8080", b"/svc05/long", None).key == "l5"
    assert r.match(b"GET", b"a.com:8080", b"/svc05/xy", None).key == "port"
    assert r.match(b"GET", b"a.com", b"/svc05/xy", None).key == "p5"
    assert r.match(b"GET", b"a.com:8080", b"/svc06/xy", None).key == "p6"
    assert r.match(b"GET", b"b.com", b"/svc06/xy", None) is None
