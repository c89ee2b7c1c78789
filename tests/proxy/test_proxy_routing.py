"""Routing end to end: Kong's priorities, strip_path / preserve_host / service path joining as the
upstream sees them, and the 404 body. The router has its own unit tests (tests/router); these
check that the proxy hands the router the right inputs and forwards what it decided."""
from __future__ import annotations

import json
import re
import subprocess
from typing import Iterator

import pytest
from _util import NO_ROUTE, RawClient, get, kong, route, service

from servers import EchoUpstream, FastgwProcess, find_binary, http_get


def _svc(echo: EchoUpstream, name: str, r: dict, path: str | None = None) -> dict:
    return service(f"svc-{name}", echo.url(path if path is not None else f"/svc-{name}"), [r])


@pytest.fixture(scope="module")
def gw(echo_mod: EchoUpstream) -> Iterator[FastgwProcess]:
    e = echo_mod
    cfg = kong(
        _svc(e, "plain", route("plain", paths=["/p"])),
        _svc(e, "hostpath", route("hostpath", hosts=["api.test"], paths=["/p"])),
        _svc(e, "wild", route("wild", hosts=["*.wild.test"])),
        _svc(e, "exact", route("exact", hosts=["a.wild.test"])),
        _svc(e, "longer", route("longer", paths=["/p/longer"])),
        _svc(e, "regex", route("regex", paths=[r"~/p/re/\d+$"])),
        _svc(e, "rplo", route("rplo", paths=["~/rp/.*"], regex_priority=0)),
        _svc(e, "rphi", route("rphi", paths=["~/rp/x.*"], regex_priority=10)),
        _svc(e, "post", route("post", paths=["/m"], methods=["POST"])),
        _svc(e, "many", route("many", paths=["/m"])),
        _svc(e, "h2", route("h2", paths=["/h"], headers={"x-version": ["v2"]})),
        _svc(e, "h1", route("h1", paths=["/h"])),
        _svc(e, "nostrip", route("nostrip", paths=["/ns"], strip_path=False), path="/base"),
        _svc(e, "preserve", route("preserve", paths=["/ph"], preserve_host=True)),
        _svc(e, "nopath", route("nopath", paths=["/np"]), path=""),
        _svc(e, "slash", route("slash", paths=["/sl/"]), path="/s/"),
    )
    with FastgwProcess(cfg, wait_admin=True) as p:
        yield p


def upstream_target(gw: FastgwProcess, path: str, host: str = "example.test",
                    method: str = "GET", extra: str = "") -> tuple[int, dict]:
    with RawClient(gw.port) as c:
        body = "" if method == "GET" else "Content-Length: 0\r\n"
        r = c.request(get(path, host, extra + body, method))
    return r.status, (r.json() if r.status == 200 else {"raw": r.body})


@pytest.mark.parametrize("method, host, path, extra, want", [
    # more attribute kinds first: host+path beats path only
    ("GET", "api.test", "/p/x", "", "/svc-hostpath/x"),
    ("GET", "other.test", "/p/x", "", "/svc-plain/x"),
    # plain host before wildcard
    ("GET", "a.wild.test", "/q", "", "/svc-exact/q"),
    ("GET", "b.wild.test", "/q", "", "/svc-wild/q"),
    ("GET", "a.wild.test:8000", "/q", "", "/svc-exact/q"),
    # longest prefix
    ("GET", "x.test", "/p/longer/y", "", "/svc-longer/y"),
    # regex path before prefix; regex_priority among regexes
    ("GET", "x.test", "/p/re/42", "", "/svc-regex"),
    ("GET", "x.test", "/p/re/4x", "", "/svc-plain/re/4x"),
    ("GET", "x.test", "/rp/xyz", "", "/svc-rphi"),
    ("GET", "x.test", "/rp/abc", "", "/svc-rplo"),
    # methods and headers count as attributes
    ("POST", "x.test", "/m/1", "", "/svc-post/1"),
    ("GET", "x.test", "/m/1", "", "/svc-many/1"),
    ("GET", "x.test", "/h/1", "X-Version: v2\r\n", "/svc-h2/1"),
    ("GET", "x.test", "/h/1", "X-Version: v3\r\n", "/svc-h1/1"),
])
def test_priorities(gw: FastgwProcess, echo: EchoUpstream, method: str, host: str, path: str,
                    extra: str, want: str) -> None:
    status, doc = upstream_target(gw, path, host, method, extra)
    assert status == 200, doc
    assert doc["path"] == want
    assert doc["method"] == method


@pytest.mark.parametrize("path, want", [
    ("/p", "/svc-plain"),                  # strip_path: the whole prefix goes
    ("/p/a/b?x=1&y=%20", "/svc-plain/a/b?x=1&y=%20"),   # query forwarded verbatim
    ("/ns/x?q", "/base/ns/x?q"),           # strip_path false: the path is appended
    ("/np/x", "/x"),                       # no service path
    ("/np", "/"),
    ("/sl/x", "/s/x"),                     # service path with trailing slash
    ("/p/a%2fb%7e", "/svc-plain/a%2Fb~"),  # normalized before going upstream
])
def test_strip_path_and_joining(gw: FastgwProcess, echo: EchoUpstream, path: str,
                                want: str) -> None:
    status, doc = upstream_target(gw, path)
    assert status == 200, doc
    assert doc["target"] == want


def test_preserve_host(gw: FastgwProcess, echo: EchoUpstream) -> None:
    _, doc = upstream_target(gw, "/ph/x", host="client.example:9999")
    hdr = dict((k.lower(), v) for k, v in doc["headers"])
    assert hdr["host"] == "client.example:9999"
    assert hdr["x-forwarded-host"] == "client.example"
    _, doc = upstream_target(gw, "/p/x", host="client.example:9999")
    hdr = dict((k.lower(), v) for k, v in doc["headers"])
    # preserve_host false (default): the service's host:port (Kong)
    assert hdr["host"] == f"127.0.0.1:{echo.port}"
    assert hdr["x-forwarded-host"] == "client.example"


def test_404_body_shape(gw: FastgwProcess, echo: EchoUpstream) -> None:
    status, headers, body = http_get(gw.url("/nothing/here"))
    assert status == 404
    doc = json.loads(body)
    assert set(doc) == {"message", "request_id"}
    assert doc["message"] == NO_ROUTE
    assert re.fullmatch(r"[0-9a-f]{32}", doc["request_id"])
    assert dict(headers)["Content-Type"].startswith("application/json")
    assert echo.requests == []   # nothing went upstream


def test_404_keeps_the_connection(gw: FastgwProcess, echo: EchoUpstream) -> None:
    with RawClient(gw.port) as c:
        ids = set()
        for _ in range(3):
            r = c.request(get("/nothing"))
            assert r.status == 404
            ids.add(r.json()["request_id"])
        assert len(ids) == 3     # a fresh request id per request
        assert c.request(get("/p/ok")).status == 200


@pytest.mark.skipif(find_binary("curl") is None, reason="curl is not installed")
def test_curl_routes_and_404(gw: FastgwProcess, echo: EchoUpstream) -> None:
    out = subprocess.run(
        ["curl", "-sS", "--max-time", "5", "-H", "Host: api.test", gw.url("/p/hello?z=1")],
        capture_output=True, check=True, timeout=10)
    doc = json.loads(out.stdout)
    assert doc["target"] == "/svc-hostpath/hello?z=1"
    assert dict((k.lower(), v) for k, v in doc["headers"])["user-agent"].startswith("curl/")
    out = subprocess.run(
        ["curl", "-sS", "--max-time", "5", "-o", "/dev/stderr", "-w", "%{http_code}",
         gw.url("/zzz")], capture_output=True, check=True, timeout=10)
    assert out.stdout == b"404"
    assert json.loads(out.stderr)["message"] == NO_ROUTE
