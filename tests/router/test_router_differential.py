"""Differential test: the compiled router against router_reference.RefRouter.

Route sets and requests are drawn from small alphabets so that routes overlap, tie and shadow
each other often; every field of the result must agree.
"""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastgw._core.router import RouteSpec, Router
from router_reference import RefRouter, Spec, normalize

HOSTS = ["a.com", "b.com", "*.a.com", "a.*", "a.com:8080", "x.a.com", "*.a.com:81", "B.COM"]
PATHS = ["/", "/a", "/a/", "/a/b", "/ab", "/b/", "/a/b/c", "/a b", "/a%2Fb"]
REGEXES = [r"~/a/(\d+)", r"~/(?<n>[ab]+)/x", "~/a", r"~/(a|b)(?P<rest>/.*)?$", r"~/b/?(\d*)"]
METHODS = ["GET", "POST", "PUT"]
HDR_VALUES = ["1", "2", "~*^2", "~*x", "Abc"]

SEGMENTS = ["a", "b", "ab", "x", "1", "22", ".", "..", "%61", "%2F", "%2e%2E", "c", "", "a.", "a..",
            "b%2E", ".x", "a%20b", "%22", "%7c"]
REQ_HOSTS = [None, b"", b"a.com", b"A.COM", b"a.com:8080", b"x.a.com", b"y.a.com:81",
             b"a.org", b"b.com", b"b.com:80", b"a"]


@st.composite
def specs(draw, idx):
    paths = draw(st.lists(st.sampled_from(PATHS + REGEXES), max_size=3, unique=True))
    hosts = draw(st.lists(st.sampled_from(HOSTS), max_size=2, unique=True))
    methods = draw(st.lists(st.sampled_from(METHODS), max_size=2, unique=True))
    headers = draw(st.dictionaries(st.sampled_from(["x-v", "X-W"]),
                                   st.lists(st.sampled_from(HDR_VALUES), min_size=1, max_size=2),
                                   max_size=2))
    if not (paths or hosts or methods or headers):
        paths = ["/"]
    return dict(
        key=idx,
        hosts=hosts,
        paths=paths,
        methods=methods,
        headers=headers,
        regex_priority=draw(st.integers(-1, 2)),
        strip_path=draw(st.booleans()),
        preserve_host=draw(st.booleans()),
        path_handling=draw(st.sampled_from(["v0", "v1"])),
        service_path=draw(st.sampled_from([None, "/", "/s", "/s/", "/s/t"])),
        id=draw(st.sampled_from([None, "1", "2", "a", "a0"])),
    )


@st.composite
def route_sets(draw):
    n = draw(st.integers(0, 8))
    return [draw(specs(i)) for i in range(n)]


@st.composite
def requests(draw):
    segs = draw(st.lists(st.sampled_from(SEGMENTS), max_size=5))
    path = "/" + "/".join(segs)
    if draw(st.booleans()):
        path += "/"
    return (
        draw(st.sampled_from(METHODS)),
        draw(st.sampled_from(REQ_HOSTS)),
        path,
        {k: v for k, v in (("x-v", draw(st.sampled_from([None, "1", "2", "22", "x", "ABC"]))),
                           ("x-w", draw(st.sampled_from([None, "1", "abc"])))) if v is not None},
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(route_sets(), st.lists(requests(), min_size=1, max_size=12))
def test_compiled_router_agrees_with_reference(routes, reqs):
    compiled = Router([RouteSpec(**r) for r in routes])
    ref = RefRouter([Spec(**r) for r in routes])
    for method, host, path, headers in reqs:
        got = compiled.match(method.encode(), host, path.encode(),
                             {k.encode(): v.encode() for k, v in headers.items()})
        want = ref.match(method, None if host is None else host.decode(), path, headers)
        if want is None:
            assert got is None, (method, host, path, headers, got)
            continue
        assert got is not None, (method, host, path, headers, want)
        assert got.key == want.key, (method, host, path, headers)
        assert got.upstream_path == want.upstream_path.encode(), (method, host, path, want)
        assert got.prefix == (None if want.prefix is None else want.prefix.encode())
        assert got.path == normalize(path).encode("latin-1")
        assert got.preserve_host == want.preserve_host
        assert got.captures == want.captures
        assert got.named_captures == want.named_captures


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(["/", "a", ".", "..", "%2e", "%2E%2e", "%2F", "%7e", "%zz", "b%",
                                 "%41", "//", "%20", "%c3%a9", "%25", "%2f", "%00"]), max_size=10))
def test_normalization_agrees_with_reference(parts):
    from fastgw._core.router import normalize_path

    raw = "".join(parts)
    assert normalize_path(raw.encode()) == normalize(raw).encode("latin-1")


# Many plain-prefix routes: these form "runs" (router.pxd) that the compiled router resolves by
# binary search instead of a scan; a few routes with other conditions split the runs.
RUN_PATHS = ["/", "/a", "/b", "/a/b", "/a/c", "/ab", "/abc", "/b/a", "/c", "/a/b/c", "/bb",
             "/abcdefghij", "/abcdefghik", "/abcdefgh", "/c/", "/a/"]


@st.composite
def prefix_heavy_specs(draw, idx):
    spec = dict(key=idx, paths=draw(st.lists(st.sampled_from(RUN_PATHS), min_size=1, max_size=3,
                                             unique=True)),
                id=draw(st.sampled_from([None, "1", "2"])),
                strip_path=draw(st.booleans()))
    extra = draw(st.sampled_from(["none"] * 6 + ["methods", "hosts", "regex", "headers"]))
    if extra == "methods":
        spec["methods"] = ["GET"]
    elif extra == "hosts":
        spec["hosts"] = [draw(st.sampled_from(["a.com", "*.a.com"]))]
    elif extra == "regex":
        spec["paths"] = spec["paths"] + [draw(st.sampled_from(REGEXES))]
    elif extra == "headers":
        spec["headers"] = {"x-v": ["1"]}
    return spec


@st.composite
def prefix_heavy_sets(draw):
    n = draw(st.integers(8, 40))
    return [draw(prefix_heavy_specs(i)) for i in range(n)]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prefix_heavy_sets(), st.lists(requests(), min_size=1, max_size=15))
def test_prefix_runs_agree_with_reference(routes, reqs):
    compiled = Router([RouteSpec(**r) for r in routes])
    ref = RefRouter([Spec(**r) for r in routes])
    for method, host, path, headers in reqs:
        got = compiled.match(method.encode(), host, path.encode(),
                             {k.encode(): v.encode() for k, v in headers.items()})
        want = ref.match(method, None if host is None else host.decode(), path, headers)
        assert (got is None) == (want is None), (method, host, path, headers)
        if want is not None:
            assert (got.key, got.upstream_path) == (want.key, want.upstream_path.encode())
