"""Path normalization, strip_path, preserve_host and service path joining (v0 / v1)."""
from __future__ import annotations

import pytest

from fastgw._core.router import RouteSpec, Router, normalize_path


@pytest.mark.parametrize(
    "raw, expected",
    [
        (b"/", b"/"),
        (b"", b""),
        (b"/foo/bar", b"/foo/bar"),
        (b"/foo%3a", b"/foo%3A"),  # triplets uppercased
        (b"/fo%6F", b"/foo"),  # unreserved decoded
        (b"/%41%7a%30%2D%2e%5F%7E", b"/Az0-._~"),
        (b"/a%2Fb", b"/a%2Fb"),  # encoded slash stays encoded
        (b"/a%2fb", b"/a%2Fb"),
        (b"/a%20b", b"/a b"),  # Kong decodes everything but reserved characters
        (b"/a%zzb%4", b"/a%zzb%4"),  # broken triplets are left alone
        (b"/foo/./bar/../baz", b"/foo/baz"),
        (b"/foo//bar", b"/foo/bar"),  # Kong merges slashes (normalize(uri, true))
        (b"/a/b/..", b"/a/"),
        (b"/a/b/.", b"/a/b/"),
        (b"/..", b"/"),
        (b"/../../x", b"/x"),
        (b"/a/%2E%2E/b", b"/b"),  # encoded dots are dot segments after decoding
        (b"/a/%2e/b", b"/a/b"),
        (b"/.well-known/x", b"/.well-known/x"),
        (b"/a..b/c.", b"/a..b/c."),
        (b"/a/...", b"/a/..."),
        (b"/a/b/../../../c", b"/c"),
    ],
)
def test_normalize_path(raw, expected):
    assert normalize_path(raw) == expected


def test_normalize_returns_same_object_when_unchanged():
    p = b"/api/v1/users"
    assert normalize_path(p) is p


def test_routing_uses_the_normalized_path():
    routes = [RouteSpec("admin", paths=["/admin"]), RouteSpec("public", paths=["/"])]
    r = Router(routes)
    assert r.match(b"GET", None, b"/public/../admin/x", None).key == "admin"
    assert r.match(b"GET", None, b"/%61dmin", None).key == "admin"
    assert r.match(b"GET", None, b"/x/%2E%2E/admin", None).key == "admin"
    m = r.match(b"GET", None, b"/%61dmin%2fx", None)
    assert m.key == "admin" and m.upstream_path == b"/%2Fx"


def test_route_prefix_paths_must_be_normalized():
    # kong/db/schema/typedefs.lua validate_path_with_regexes
    with pytest.raises(ValueError, match="non-normalized path, consider use '/~user/x' instead"):
        Router([RouteSpec("r", paths=["/%7Euser/./x"])])
    r = Router([RouteSpec("r", paths=["/~user/x"])])
    assert r.match(b"GET", None, b"/%7Euser/./x/y", None).key == "r"


def upstream(route: RouteSpec, path: bytes) -> bytes:
    m = Router([route]).match(b"GET", b"h", path, None)
    assert m is not None
    return m.upstream_path


# The docs' path_handling table (Kong Admin API reference, "Path handling algorithms"); the row
# `/fv0/` + blank reads "/s/fv01/" there, a typo for "/s/fv0/".
DOCS_TABLE = [
    # service, route path, strip, handling, request path, upstream path
    ("/s", "/fv0", False, "v0", "/fv0/req", "/s/fv0/req"),
    ("/s", "/fv0", False, "v0", "/fv0", "/s/fv0"),
    ("/s", "/fv1", False, "v1", "/fv1/req", "/sfv1/req"),
    ("/s", "/fv1", False, "v1", "/fv1", "/sfv1"),
    ("/s", "/tv0", True, "v0", "/tv0/req", "/s/req"),
    ("/s", "/tv0", True, "v0", "/tv0", "/s"),
    ("/s", "/tv1", True, "v1", "/tv1/req", "/s/req"),
    ("/s", "/tv1", True, "v1", "/tv1", "/s"),
    ("/s", "/fv0/", False, "v0", "/fv0/req", "/s/fv0/req"),
    ("/s", "/fv0/", False, "v0", "/fv0/", "/s/fv0/"),
    ("/s", "/fv1/", False, "v1", "/fv1/req", "/sfv1/req"),
    ("/s", "/fv1/", False, "v1", "/fv1/", "/sfv1/"),
    ("/s", "/tv0/", True, "v0", "/tv0/req", "/s/req"),
    ("/s", "/tv0/", True, "v0", "/tv0/", "/s/"),
    ("/s", "/tv1/", True, "v1", "/tv1/req", "/sreq"),
    ("/s", "/tv1/", True, "v1", "/tv1/", "/s"),
]


@pytest.mark.parametrize("service, rpath, strip, handling, req, expected", DOCS_TABLE)
def test_docs_path_handling_table(service, rpath, strip, handling, req, expected):
    route = RouteSpec("r", paths=[rpath], strip_path=strip, path_handling=handling,
                      service_path=service)
    assert upstream(route, req.encode()) == expected.encode()


@pytest.mark.parametrize(
    "service, rpath, strip, req, expected",
    [
        # service path ending in "/"
        ("/s/", "/p", True, "/p", "/s"),
        ("/s/", "/p", True, "/p/", "/s/"),
        ("/s/", "/p", True, "/p/x", "/s/x"),
        ("/s/", "/p/", True, "/p/x", "/s/x"),
        ("/s/", "/p", False, "/p/x", "/s/p/x"),
        # no service path (None) behaves like "/"
        (None, "/p", True, "/p", "/"),
        (None, "/p", True, "/p/", "/"),
        (None, "/p", True, "/p/x", "/x"),
        (None, "/p", True, "/px", "/x"),
        (None, "/p", False, "/p/x", "/p/x"),
        (None, "/", True, "/", "/"),
        (None, "/", True, "/a/b", "/a/b"),
        ("/", "/", False, "/a", "/a"),
        # service path without trailing slash, strip false, request "/"
        ("/s", "/", False, "/", "/s"),
        ("/s", "/", True, "/", "/s"),
        ("/s", "/", True, "/x/", "/s/x/"),
        # a postfix starting with ./ or ../ is cleaned (Kong sanitize_uri_postfix)
        ("/s", "/p", True, "/p..", "/s"),
        ("/s", "/p", True, "/p.", "/s"),
        ("/s/", "/p", True, "/p.", "/s"),
        ("/s", "/p", True, "/p../x", "/s/x"),
        ("/s", "/p", True, "/p./x", "/s/x"),
        # encoded characters go upstream as normalized
        ("/s", "/p", True, "/p/a%2fb%7e", "/s/a%2Fb~"),
    ],
)
def test_v0_joining(service, rpath, strip, req, expected):
    route = RouteSpec("r", paths=[rpath], strip_path=strip, service_path=service)
    assert upstream(route, req.encode()) == expected.encode()


def test_route_without_paths_keeps_the_whole_path():
    for strip in (True, False):
        route = RouteSpec("r", hosts=["h"], strip_path=strip, service_path="/s")
        assert upstream(route, b"/a/b") == b"/s/a/b"
        assert upstream(route, b"/") == b"/s"


def test_regex_strip_removes_the_whole_match():
    route = RouteSpec("r", paths=[r"~/version/\d+/service"], service_path="/")
    assert upstream(route, b"/version/1/service/path/to/resource") == b"/path/to/resource"
    route = RouteSpec("r", paths=[r"~/v\d+"], strip_path=False, service_path="/api")
    assert upstream(route, b"/v2/x") == b"/api/v2/x"


def test_docs_strip_path_example():
    route = RouteSpec("r", paths=["/service"])
    assert upstream(route, b"/service/path/to/resource") == b"/path/to/resource"


def test_preserve_host_flag_is_reported():
    r = Router([RouteSpec("keep", hosts=["a.com"], preserve_host=True),
                RouteSpec("drop", hosts=["b.com"])])
    assert r.match(b"GET", b"a.com", b"/", None).preserve_host is True
    assert r.match(b"GET", b"b.com", b"/", None).preserve_host is False


def test_unchanged_path_is_passed_through_without_copy():
    r = Router([RouteSpec("r", paths=["/"])])
    p = b"/api/v1/users"
    m = r.match(b"GET", None, p, None)
    assert m.upstream_path is p and m.path is p
