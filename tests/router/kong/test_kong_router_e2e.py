"""Kong's router integration cases (e2e_spec.yml) end to end: a real gateway on 127.0.0.1, an
echo upstream, raw HTTP/1.1 requests. Plus the regex-route ReDoS case (a route regex that
backtracks exponentially answers at once, and other clients are served meanwhile)."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from proxy._util import InProcessGateway, RawClient, get
from servers import EchoUpstream

HERE = Path(__file__).parent
GROUPS = yaml.safe_load((HERE / "e2e_spec.yml").read_text())


@pytest.fixture(scope="module")
def echo() -> Iterator[EchoUpstream]:
    with EchoUpstream() as e:
        yield e


def kong_config(routes: list[dict], echo: EchoUpstream) -> dict:
    """One service per route, each behind an upstream whose host_header names the route."""
    services: list[dict] = []
    upstreams: list[dict] = []
    loose: list[dict] = []
    for i, r in enumerate(routes, 1):
        r = dict(r)
        svc = r.pop("service", {})
        r["name"] = f"r{i}"
        if svc is None:
            loose.append(r)
            continue
        upstreams.append({"name": f"u{i}", "host_header": f"r{i}.test",
                          "targets": [{"target": f"127.0.0.1:{echo.port}"}]})
        s: dict[str, Any] = {"name": f"s{i}", "host": f"u{i}", "port": 80, "protocol": "http",
                             "routes": [r]}
        if svc.get("path") is not None:
            s["path"] = svc["path"]
        if svc.get("enabled") is False:
            s["enabled"] = False
        services.append(s)
    cfg: dict[str, Any] = {"_format_version": "3.0", "services": services,
                           "upstreams": upstreams}
    if loose:
        cfg["routes"] = loose
    return cfg


def _cases() -> list[Any]:
    out = []
    for gi, g in enumerate(GROUPS):
        out.append(pytest.param(gi, id=f"{g['kong']} {g['group']}"))
    return out


@pytest.mark.parametrize("gi", _cases())
def test_kong_router_integration(gi: int, echo: EchoUpstream) -> None:
    group = GROUPS[gi]
    with InProcessGateway(kong_config(group["routes"], echo)) as gw:
        for case in group["cases"]:
            extra = "".join(f"{k}: {v}\r\n" for k, v in (case.get("headers") or {}).items())
            method = case.get("method", "GET")
            if method in ("POST", "PUT", "DELETE"):
                extra += "Content-Length: 0\r\n"
            with RawClient(gw.port) as c:
                resp = c.request(get(case["path"], case.get("host", "example.test"), extra,
                                     method))
            where = f"{group['kong']} line {case.get('line', '?')}: {case.get('it', '')}"
            assert resp.status == case.get("status", 200), (where, resp.body)
            if resp.status != 200:
                if "message" in case:
                    assert resp.json()["message"] == case["message"], where
                continue
            doc = json.loads(resp.body)
            headers = {k.lower(): v for k, v in doc["headers"]}
            if "route" in case:
                assert headers["host"] == f"r{case['route']}.test", where
            if "target" in case:
                assert doc["target"] == case["target"], where
            for name, value in (case.get("upstream_headers") or {}).items():
                assert headers.get(name) == value, (where, name)


def test_header_on_several_lines_matches_any_line(echo: EchoUpstream) -> None:
    # Kong transform.lua: any(lower(http.headers.x)) -- every line of the header is a value
    cfg = kong_config([{"headers": {"x_version": ["v2"]}, "paths": ["/h"]}], echo)
    with InProcessGateway(cfg) as gw:
        with RawClient(gw.port) as c:
            r = c.request(get("/h", extra="X-Version: v1\r\nX-Version: v2\r\n"))
        assert r.status == 200
        with RawClient(gw.port) as c:
            r = c.request(get("/h", extra="X-Version: v1, v2\r\n"))
        assert r.status == 404   # one line "v1, v2" is one value, as in Kong


def test_regex_route_redos_answers_fast_while_others_are_served(echo: EchoUpstream) -> None:
    # "(a+)+$" against "a" * 33 + "!" backtracks 2^33 times without a limit; PCRE2's match
    # limit stops it: the route does not match (404) and the loop keeps serving
    cfg = kong_config([{"paths": ["~/redos/(a+)+$"]}, {"paths": ["/ok"]}], echo)
    evil = "/redos/" + "a" * 33 + "!"
    with InProcessGateway(cfg) as gw:
        served: list[float] = []
        stop = threading.Event()

        def other_client() -> None:
            deadline = time.monotonic() + 10
            while not stop.is_set() and time.monotonic() < deadline:
                t0 = time.monotonic()
                with RawClient(gw.port) as c:
                    assert c.request(get("/ok")).status == 200
                served.append(time.monotonic() - t0)

        t = threading.Thread(target=other_client)
        t.start()
        try:
            t0 = time.monotonic()
            for _ in range(20):
                with RawClient(gw.port) as c:
                    assert c.request(get(evil)).status == 404
            evil_time = time.monotonic() - t0
        finally:
            stop.set()
            t.join(15)
        assert evil_time < 2.0, evil_time      # 20 requests; Python's re took ~3 s for ONE
        assert served and max(served) < 1.0, max(served or [0])
        assert gw.call(lambda: gw.gw.snapshot.router.regex_limit_hits) >= 20


def test_route_without_service_runs_its_plugins_then_answers_503(echo: EchoUpstream) -> None:
    # kong/init.lua: the access phase runs, then "no Service found with those values"
    cfg = {"_format_version": "3.0",
           "routes": [{"name": "lonely", "paths": ["/lonely"],
                       "plugins": [{"name": "key-auth"}]}],
           "consumers": [{"username": "u", "keyauth_credentials": [{"key": "k1"}]}]}
    with InProcessGateway(cfg) as gw:
        with RawClient(gw.port) as c:
            r = c.request(get("/lonely"))
        assert r.status == 401
        with RawClient(gw.port) as c:
            r = c.request(get("/lonely", extra="apikey: k1\r\n"))
        assert r.status == 503
        assert r.json()["message"] == "no Service found with those values"


def test_client_x_forwarded_prefix_is_replaced(echo: EchoUpstream) -> None:
    cfg = kong_config([{"paths": ["/p"], "strip_path": True},
                       {"paths": ["/q"], "strip_path": False}], echo)
    with InProcessGateway(cfg) as gw:
        for path, want in (("/p/x", ["/p"]), ("/q/x", [])):
            with RawClient(gw.port) as c:
                r = c.request(get(path, extra="X-Forwarded-Prefix: /evil\r\n"))
            assert r.status == 200
            got = [v for k, v in json.loads(r.body)["headers"]
                   if k.lower() == "x-forwarded-prefix"]
            assert got == want, path


def test_forwarded_path_is_escaped_as_kong_does(echo: EchoUpstream) -> None:
    # runloop/handler.lua escape(): decoded "others" go upstream percent-encoded again
    cfg = kong_config([{"paths": ["/e"], "strip_path": False}], echo)
    with InProcessGateway(cfg) as gw:
        with RawClient(gw.port) as c:
            r = c.request(get('/e/a%7cb/"q"/%c3%a9/%2f//x'))
        assert r.status == 200
        assert json.loads(r.body)["target"] == "/e/a%7Cb/%22q%22/%C3%A9/%2F/x"


def test_kong_slash_handling_end_to_end(echo: EchoUpstream) -> None:
    # 02-router_spec.lua "slash handling" (plain and regex): every v0 row of Kong's
    # router_path_handling_tests.lua fixture, each on its own host, through one gateway
    rows = yaml.safe_load((HERE / "path_handling.yml").read_text())
    services: list[dict] = []
    cases: list[tuple[str, str, str]] = []
    for row in rows:
        strips = row["strip_path"] if isinstance(row["strip_path"], list) else [row["strip_path"]]
        if "v0" not in (row["path_handling"] if isinstance(row["path_handling"], list)
                        else [row["path_handling"]]):
            continue
        kinds = ["plain", "regex"] if row["route_path"] is not None else ["host"]
        for strip in strips:
            for kind in kinds:
                n = len(services)
                host = f"localbin-{n}.test"
                route: dict[str, Any] = {"name": f"r{n}", "hosts": [host], "strip_path": strip}
                if kind == "plain":
                    route["paths"] = [row["route_path"]]
                elif kind == "regex":
                    route["paths"] = ["~/[0]?" + row["route_path"][1:]]
                services.append({"name": f"s{n}", "url": echo.url(row["service_path"]),
                                 "routes": [route]})
                cases.append((host, row["request_path"], row["expected_path"]))
    cfg = {"_format_version": "3.0", "services": services}
    with InProcessGateway(cfg) as gw:
        bad = []
        for host, path, want in cases:
            with RawClient(gw.port) as c:
                r = c.request(get(path, host))
            got = json.loads(r.body)["target"] if r.status == 200 else r.status
            if got != want:
                bad.append((host, path, want, got))
        assert not bad, bad
    assert len(cases) > 150
