"""Route validation through the config layer: the router's route_errors() is the one source,
reported with the route's path; Kong 3.x messages (kong/db/schema/typedefs.lua,
entities/routes.lua, routes_subschemas.lua)."""
from __future__ import annotations

import pytest

from fastgw._core.router import RouteSpec, route_errors
from fastgw.config import declarative
from fastgw.config.errors import ConfigError


def errors_of(routes: list[dict]) -> dict[str, str]:
    doc = {"_format_version": "3.0",
           "services": [{"name": "s", "host": "h", "routes": routes}]}
    with pytest.raises(ConfigError) as ei:
        declarative.load_dict(doc)
    return dict(ei.value.errors)


@pytest.mark.parametrize("route, path, message", [
    ({"paths": ["/ok", "~/redos/(a+"]}, "services[0].routes[0].paths[1]",
     "invalid regex: '/redos/(a+' (PCRE returned: missing closing parenthesis"),
    ({"paths": ["/a//b"]}, "services[0].routes[0].paths[0]", "must not have empty segments"),
    ({"paths": ["/%7Euser"]}, "services[0].routes[0].paths[0]",
     "non-normalized path, consider use '/~user' instead"),
    ({"paths": ["/a%zz"]}, "services[0].routes[0].paths[0]", "invalid url-encoded value: '%zz'"),
    ({"paths": ["x"]}, "services[0].routes[0].paths[0]",
     "should start with: / (fixed path) or ~/ (regex path)"),
    ({"hosts": ["a.*.com"]}, "services[0].routes[0].hosts[0]",
     "invalid wildcard: must be placed at leftmost or rightmost label"),
    ({"hosts": ["*.a.*"]}, "services[0].routes[0].hosts[0]",
     "invalid wildcard: must have at most one wildcard"),
    ({"hosts": ["bad host"]}, "services[0].routes[0].hosts[0]", "invalid hostname: bad host"),
    ({"methods": ["get"]}, "services[0].routes[0].methods[0]", "invalid value: get"),
    ({"headers": {"Host": ["x"]}}, "services[0].routes[0].headers.Host",
     "cannot contain 'host' header, which must be specified in the 'hosts' attribute"),
    ({"headers": {"x y": ["x"]}}, "services[0].routes[0].headers.x y",
     "bad header name 'x y', allowed characters are A-Z, a-z, 0-9, '_', and '-'"),
    ({"headers": {"x-a": ["~*(z"]}}, "services[0].routes[0].headers.x-a[0]",
     "invalid regex: '(z' (PCRE returned: missing closing parenthesis"),
    ({"paths": ["/a"], "sources": [{"ip": "10.0.0.1"}]}, "services[0].routes[0].sources",
     "cannot set 'sources' when 'protocols' is 'http' or 'https'"),
    ({"paths": ["/a"], "destinations": [{"port": 80}]}, "services[0].routes[0].destinations",
     "cannot set 'destinations' when 'protocols' is 'http' or 'https'"),
    ({"paths": ["/a"], "snis": ["a.test"], "protocols": ["http"]}, "services[0].routes[0].snis",
     "'snis' can only be set when 'protocols' is 'grpcs', 'https', 'tls' or 'tls_passthrough'"),
    ({"protocols": ["tcp"], "destinations": [{"port": 80}]}, "services[0].routes[0].protocols",
     "stream routes (tcp, tls, tls_passthrough, udp) are not supported by fastgw"),
    ({}, "services[0].routes[0]",
     "must set one of 'methods', 'hosts', 'headers', 'paths', 'snis' when 'protocols' is "
     "'https'"),
])
def test_route_errors_name_the_field(route: dict, path: str, message: str) -> None:
    errs = errors_of([route])
    assert path in errs, errs
    assert errs[path].startswith(message), errs[path]


def test_valid_kong_routes_pass() -> None:
    doc = {"_format_version": "3.0", "services": [{"name": "s", "host": "h", "routes": [
        {"paths": ["~/users/(?<id>\\d+)$", "/plain", "/a b", "/endel%2Fst"]},
        {"hosts": ["*.a.com", "b.*", "c.com:8080", "[::1]:80"], "snis": ["*.a.com"],
         "protocols": ["https"]},
        {"headers": {"x_foo": ["a", "~*^b"]}, "methods": ["GET", "PURGE"]},
    ]}]}
    declarative.load_dict(doc)


def test_one_validator_for_config_and_router() -> None:
    # the config layer reports exactly what the router refuses, field by field
    spec = RouteSpec("k", paths=["~/(a", "/ok"], methods=["get"])
    assert [f for f, _ in route_errors(spec)] == [("methods", 0), ("paths", 0)]
    errs = errors_of([{"paths": ["~/(a", "/ok"], "methods": ["get"]}])
    assert set(errs) == {"services[0].routes[0].methods[0]", "services[0].routes[0].paths[0]"}
