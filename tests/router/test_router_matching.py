"""What each route field matches, captures, no-match cases and compile errors."""
from __future__ import annotations

import pytest

from fastgw._core.router import RouteMatch, RouteSpec, Router


class CountingHeaders:
    """headers object with the router's protocol; counts lookups."""

    def __init__(self, d: dict[bytes, bytes]):
        self.d = d
        self.calls: list[bytes] = []

    def get(self, name: bytes) -> bytes | None:
        self.calls.append(name)
        return self.d.get(name)


def match(routes, path=b"/", method=b"GET", host=None, headers=None) -> RouteMatch | None:
    return Router(routes).match(method, host, path, headers)


def key(routes, path=b"/", method=b"GET", host=None, headers=None):
    m = match(routes, path, method, host, headers)
    return None if m is None else m.key


# ---------------------------------------------------------------- hosts


@pytest.mark.parametrize(
    "host, expected",
    [
        (b"example.com", "r"),
        (b"EXAMPLE.com", "r"),
        (b"example.com:8000", "r"),  # port ignored when the route has none
        (b"foo-service.com", "r"),
        (b"foo.com", None),
        (b"example.com.evil", None),
        (b"sub.example.com", None),
        (None, None),
        (b"", None),
    ],
)
def test_exact_hosts(host, expected):
    routes = [RouteSpec("r", hosts=["example.com", "Foo-Service.com"])]
    assert key(routes, host=host) == expected


@pytest.mark.parametrize(
    "host, expected",
    [
        (b"a.example.com", "left"),
        (b"x.y.example.com", "left"),
        (b"X.Example.COM:443", "left"),
        (b"example.com", "right"),  # "*.example.com" needs a label in front; "example.*" fits
        (b"example.org", "right"),
        (b"example.co.uk", "right"),
        (b"notexample.org", None),
        (b"example", None),
    ],
)
def test_wildcard_hosts(host, expected):
    routes = [RouteSpec("left", hosts=["*.example.com"]), RouteSpec("right", hosts=["example.*"])]
    assert key(routes, host=host) == expected


@pytest.mark.parametrize(
    "host, expected",
    [
        (b"example.com:8080", "port"),
        (b"EXAMPLE.COM:8080", "port"),
        (b"example.com:8081", None),
        (b"example.com", None),  # no port in the Host header: a host:port route cannot match
        (b"a.wild.com:9000", "wildport"),
        (b"a.wild.com:9001", None),
        (b"[::1]:8080", "v6"),
        (b"[::1]", None),
    ],
)
def test_hosts_with_ports(host, expected):
    routes = [
        RouteSpec("port", hosts=["example.com:8080"]),
        RouteSpec("wildport", hosts=["*.wild.com:9000"]),
        RouteSpec("v6", hosts=["[::1]:8080"]),
    ]
    assert key(routes, host=host) == expected


def test_same_host_with_and_without_port_in_one_route():
    routes = [RouteSpec("r", hosts=["a.com:8080", "b.com"]), RouteSpec("any", paths=["/"])]
    assert key(routes, host=b"a.com:8080") == "r"
    assert key(routes, host=b"a.com:80") == "any"
    assert key(routes, host=b"b.com:1") == "r"


# ---------------------------------------------------------------- methods


def test_methods():
    routes = [RouteSpec("r", methods=["GET", "HEAD"])]
    assert key(routes, method=b"GET") == "r"
    assert key(routes, method=b"HEAD") == "r"
    assert key(routes, method=b"POST") is None
    assert key(routes, method=b"get") is None  # method tokens are case-sensitive (RFC 9110 9.1)
    assert key(routes, method=b"PURGE") is None


def test_extension_methods_and_docs_example():
    routes = [RouteSpec("r", hosts=["example.com", "foo-service.com"], paths=["/foo", "/bar"],
                        methods=["GET"]), RouteSpec("purge", methods=["PURGE"])]
    assert key(routes, b"/foo", host=b"example.com") == "r"
    assert key(routes, b"/bar", host=b"foo-service.com") == "r"
    assert key(routes, b"/foo/hello/world", host=b"example.com") == "r"
    assert key(routes, b"/", host=b"example.com") is None
    assert key(routes, b"/foo", method=b"POST", host=b"example.com") is None
    assert key(routes, b"/foo", host=b"foo.com") is None
    assert key(routes, b"/x", method=b"PURGE") == "purge"


# ---------------------------------------------------------------- headers


def test_headers_values_or_names_and_case_insensitive():
    routes = [RouteSpec("r", headers={"Version": ["v1", "V2"], "x-team": ["Blue"]})]
    assert key(routes, headers={b"version": b"v1", b"x-team": b"blue"}) == "r"
    assert key(routes, headers={b"version": b"V2", b"x-team": b"BLUE"}) == "r"
    assert key(routes, headers={b"version": b"v3", b"x-team": b"blue"}) is None
    assert key(routes, headers={b"version": b"v1"}) is None
    assert key(routes, headers={}) is None
    assert key(routes, headers=None) is None


def test_header_regex_values():
    routes = [RouteSpec("r", headers={"user-agent": ["~*mozilla/\\d", "curl"]})]
    assert key(routes, headers={b"user-agent": b"Mozilla/5.0 (X11)"}) == "r"
    assert key(routes, headers={b"user-agent": b"x MOZILLA/4 y"}) == "r"  # found anywhere
    assert key(routes, headers={b"user-agent": b"curl"}) == "r"
    assert key(routes, headers={b"user-agent": b"curl/8.0"}) is None  # plain values are exact
    assert key(routes, headers={b"user-agent": b"mozilla/x"}) is None


def test_headers_object_only_consulted_for_header_routes():
    hdrs = CountingHeaders({b"x-a": b"1"})
    routes = [RouteSpec("plain", paths=["/"])]
    assert key(routes, headers=hdrs) == "plain"
    assert hdrs.calls == []
    routes = [RouteSpec("hdr", headers={"X-A": ["1"]}, paths=["/"])]
    assert key(routes, headers=hdrs) == "hdr"
    assert hdrs.calls == [b"x-a"]


# ---------------------------------------------------------------- paths


def test_prefix_paths_are_byte_prefixes_like_kong():
    routes = [RouteSpec("r", paths=["/foo"])]
    assert key(routes, b"/foo") == "r"
    assert key(routes, b"/foo/bar") == "r"
    assert key(routes, b"/foobar") == "r"
    assert key(routes, b"/fo") is None
    assert key(routes, b"/FOO") is None


def test_long_prefix_compare_beyond_the_8_byte_prefilter():
    routes = [RouteSpec("r", paths=["/abcdefgh/ijklmnop"])]
    assert key(routes, b"/abcdefgh/ijklmnop/q") == "r"
    assert key(routes, b"/abcdefgh/ijklmnoX/q") is None
    assert key(routes, b"/abcdefgX/ijklmnop/q") is None
    assert key(routes, b"/abcdefgh/ijklmno") is None


def test_regex_paths_anchored_at_start():
    routes = [RouteSpec("r", paths=[r"~/status/\d+$"])]
    assert key(routes, b"/status/200") == "r"
    assert key(routes, b"/x/status/200") is None
    assert key(routes, b"/status/200/x") is None
    alt = [RouteSpec("r", paths=["~/a|/b"])]
    assert key(alt, b"/b/c") == "r"
    assert key(alt, b"/x/b") is None  # every alternative is anchored


def test_regex_with_literal_lead_and_quantifiers():
    routes = [RouteSpec("r", paths=["~/ab?c"]), RouteSpec("s", paths=["~/x+y"])]
    assert key(routes, b"/ac") == "r"
    assert key(routes, b"/abc") == "r"
    assert key(routes, b"/xxxy") == "s"
    assert key(routes, b"/y") is None


def test_regex_captures_named_both_syntaxes_and_positional():
    routes = [RouteSpec("r", paths=[r"~/version/(?<version>\d+)/users/(?P<user>\S+)"])]
    m = match(routes, b"/version/1/users/john")
    assert m.captures == ("1", "john")
    assert m.named_captures == {"version": "1", "user": "john"}


def test_regex_non_participating_groups():
    routes = [RouteSpec("r", paths=[r"~/(?<a>x)?(y)(?<c>z)?"])]
    m = match(routes, b"/yz")
    assert m.captures == ("", "y", "z")
    assert m.named_captures == {"c": "z"}


def test_lookbehind_is_not_rewritten_as_a_named_group():
    routes = [RouteSpec("r", paths=[r"~/a(?<=/a)b(?<!x)c"])]
    assert key(routes, b"/abc") == "r"


def test_prefix_match_has_empty_captures():
    m = match([RouteSpec("r", paths=["/a"])], b"/a/b")
    assert m.captures == () and m.named_captures == {}
    m2 = match([RouteSpec("r", paths=["~/a"])], b"/a/b")
    assert m2.captures == () and m2.named_captures == {}
    m2.named_captures["x"] = "y"  # mutating one result must not leak into the next
    assert match([RouteSpec("r", paths=["~/a"])], b"/a").named_captures == {}


def test_lowercase_methods_are_refused():
    # kong/db/schema/typedefs.lua http_method: match = "^%u+$"
    with pytest.raises(ValueError, match="methods\\[1\\]: invalid value: head"):
        Router([RouteSpec("r", methods=["GET", "head"])])


def test_regex_over_percent_encoded_and_unicode_route_paths():
    # the request path is decoded (all but reserved characters) before matching, as in Kong;
    # route regexes are taken as written, so they name the characters themselves
    routes = [RouteSpec("r", paths=["~/café/\\d"]), RouteSpec("u", paths=["/ünï"])]
    assert key(routes, b"/caf%C3%A9/1") == "r"
    assert key(routes, b"/%C3%BCn%C3%AF/x") == "u"
    assert key(routes, b"/%c3%bcn%c3%af") == "u"  # request triplets are uppercased first


def test_no_routes_and_no_match():
    assert Router([]).match(b"GET", b"a.com", b"/", None) is None
    routes = [RouteSpec("r", paths=["/a"], methods=["GET"], hosts=["a.com"])]
    assert key(routes, b"/b", host=b"a.com") is None
    assert key(routes, b"/a", host=b"b.com") is None
    assert key(routes, b"/a", method=b"PUT", host=b"a.com") is None


def test_route_key_is_returned_as_is():
    payload = object()
    assert key([RouteSpec(payload, paths=["/"])]) is payload
    assert len(Router([RouteSpec(1, paths=["/"]), RouteSpec(2, hosts=["x"])])) == 2


# ---------------------------------------------------------------- compile errors


@pytest.mark.parametrize(
    "spec, fragment",
    [
        (RouteSpec("bad-path", paths=["/ok", "~/a(b"]), "paths[1]"),
        (RouteSpec("bad-hdr", headers={"x-a": ["ok", "~*[z"]}), "headers.x-a[1]"),
        (RouteSpec("bad-prefix", paths=["nope"]), "paths[0]"),
        (RouteSpec("empty"), "must set one of"),
        (RouteSpec("bad-host", hosts=["a.*.com"]), "hosts[0]"),
        (RouteSpec("bad-handling", paths=["/"], path_handling="v2"), "path_handling"),
        (RouteSpec("bad-service", paths=["/"], service_path="s"), "service_path"),
    ],
)
def test_compile_errors_name_route_and_field(spec, fragment):
    with pytest.raises(ValueError) as exc:
        Router([RouteSpec("fine", paths=["/"]), spec])
    msg = str(exc.value)
    assert repr(spec.key) in msg
    assert fragment in msg


def test_invalid_regex_error_mentions_the_pattern():
    with pytest.raises(ValueError, match=r"invalid regex: '/a\(b' \(PCRE returned: "):
        Router([RouteSpec("r", paths=["~/a(b"])])


def test_routespec_copies_its_inputs():
    paths = ["/a"]
    spec = RouteSpec("r", paths=paths)
    paths.append("/b")
    assert spec.paths == ["/a"]
    assert spec.strip_path is True and spec.preserve_host is False
    assert spec.path_handling == "v0" and spec.service_path is None and spec.regex_priority == 0


def test_router_cannot_be_reinitialized():
    r = Router([RouteSpec("r", paths=["/"])])
    with pytest.raises(TypeError):
        r.__init__([RouteSpec("s", paths=["/"])])
    assert r.match(b"GET", None, b"/", None).key == "r"


def test_no_reference_leaks_on_the_match_path():
    import sys

    key_obj = object()
    routes = [
        RouteSpec(key_obj, hosts=["a.com"], paths=[r"~/x/(?<n>\d+)"], service_path="/s"),
        RouteSpec("hdr", headers={"x-a": ["1"]}, paths=["/h"]),
        RouteSpec("root", paths=["/"]),
    ]
    r = Router(routes)
    path, host, method = b"/x/12/y", b"A.com:80", b"GET"
    hdrs = {b"x-a": b"1"}
    before = [sys.getrefcount(o) for o in (key_obj, path, host, method, hdrs)]
    for _ in range(2000):
        assert r.match(method, host, path, hdrs).key is key_obj
        assert r.match(method, None, b"/h%2e/./z", hdrs).key == "hdr"
        assert r.match(b"PUT", b"b.com", b"/q", None).key == "root"
    after = [sys.getrefcount(o) for o in (key_obj, path, host, method, hdrs)]
    assert after == before


def test_host_port_falls_back_to_the_listener_port():
    # kong/router/fields.lua net.dst.port: the Host header's port, else the server port
    r = Router([RouteSpec("p", hosts=["a.com:8000"]), RouteSpec("any", hosts=["b.com"])])
    assert r.match(b"GET", b"a.com", b"/", None, None, 8000).key == "p"
    assert r.match(b"GET", b"a.com", b"/", None, None, 9000) is None
    assert r.match(b"GET", b"a.com:8000", b"/", None, None, 9000).key == "p"
    assert r.match(b"GET", b"a.com:9000", b"/", None, None, 8000) is None
    assert r.match(b"GET", b"a.com", b"/", None) is None
    assert r.match(b"GET", b"b.com", b"/", None, None, 8000).key == "any"


def test_header_values_lowercase_ascii_only_on_both_sides():
    # Lua's string.lower (Kong) and bytes.lower leave non-ASCII bytes alone
    r = Router([RouteSpec("r", headers={"x-a": ["ÀB"]})])

    class H:
        def __init__(self, v: bytes) -> None:
            self.v = v

        def get(self, name: bytes):
            return self.v

    assert r.match(b"GET", None, b"/", H("Àb".encode("latin-1"))).key == "r"
    assert r.match(b"GET", None, b"/", H("àb".encode("latin-1"))) is None
