"""Kong's own router cases, replayed against the compiled router.

The data files hold the cases (Kong's file:line on each):
  select_spec.yml    spec/01-unit/08-router_spec.lua, traditional_compatible flavor
  path_handling.yml  spec/fixtures/router_path_handling_tests.lua (generated; see its script)
A case that fastgw answers differently on purpose carries `deviation:` (the reason, listed in
docs/kong-compat-router.md) and `fastgw_expect:`; it is asserted as fastgw's behaviour.
"""
from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from fastgw._core.router import RouteSpec, Router

HERE = Path(__file__).parent
DEFAULT_ID = "e8fb37f1-102d-461e-9c51-6608a6bb81{:02d}"


class Headers:
    """The router's HeaderSource: lowercase name -> value, or the list of its lines."""

    def __init__(self, d: dict[str, Any] | None) -> None:
        self.d: dict[bytes, Any] = {}
        for k, v in (d or {}).items():
            name = k.lower().encode()
            self.d[name] = [x.encode() for x in v] if isinstance(v, list) else v.encode()

    def get(self, name: bytes) -> Any:
        return self.d.get(name)


def _spec(i: int, r: dict) -> RouteSpec:
    return RouteSpec(
        i, hosts=r.get("hosts"), paths=r.get("paths"), methods=r.get("methods"),
        headers=r.get("headers"), snis=r.get("snis"),
        regex_priority=r.get("regex_priority", 0), strip_path=r.get("strip_path", False),
        preserve_host=r.get("preserve_host", False),
        path_handling=r.get("path_handling", "v0"), service_path=r.get("service_path"),
        id=r.get("id", DEFAULT_ID.format(i)))


def _select_cases() -> list[Any]:
    out = []
    for group in yaml.safe_load((HERE / "select_spec.yml").read_text()):
        for n, case in enumerate(group["cases"]):
            where = group["kong"] if "line" not in case else \
                group["kong"].rsplit(":", 1)[0] + f":{case['line']}"
            out.append(pytest.param(group, case,
                                    id=f"{where} {case.get('it', group['group'])} #{n}"))
    return out


SELECT = _select_cases()


@pytest.mark.parametrize("group, case", SELECT)
def test_kong_select_spec(group: dict, case: dict) -> None:
    specs = [_spec(i, r) for i, r in enumerate(group["routes"], 1)]
    if "fastgw_refuses" in group:
        with pytest.raises(ValueError, match=re.escape(group["fastgw_refuses"])):
            Router(specs)
        return
    router = Router(specs)
    if "path_bytes" in case:
        path = bytes.fromhex(case["path_bytes"])
    else:
        path = case["path"].encode()
    host = case.get("host")
    sni = case.get("sni")
    m = router.match(case.get("method", "GET").encode(),
                     None if host is None else host.encode(), path,
                     Headers(case.get("headers")),
                     None if sni is None else sni.encode())
    want = case.get("fastgw_expect", case["expect"]) if "deviation" in case else case["expect"]
    assert (m.key if m is not None else None) == want
    if m is None:
        return
    if "upstream_path" in case:
        assert m.upstream_path == case["upstream_path"].encode()
    if "prefix" in case:
        assert m.prefix == (None if case["prefix"] is None else case["prefix"].encode())
    if "captures" in case:
        assert list(m.captures) == case["captures"]
    if "named" in case:
        assert m.named_captures == case["named"]
    if "preserve_host" in case:
        assert m.preserve_host == case["preserve_host"]


def _path_cases() -> list[Any]:
    out = []
    for row in yaml.safe_load((HERE / "path_handling.yml").read_text()):
        strips = row["strip_path"] if isinstance(row["strip_path"], list) else [row["strip_path"]]
        handlings = row["path_handling"] if isinstance(row["path_handling"], list) \
            else [row["path_handling"]]
        for strip, handling in itertools.product(strips, handlings):
            base = (f"router_path_handling_tests.lua:{row['line']} {row['service_path']} "
                    f"{row['route_path']} strip={strip} {handling} {row['request_path']}")
            out.append(pytest.param(row, strip, handling, False, id=base + " plain"))
            if row["route_path"] is not None:
                out.append(pytest.param(row, strip, handling, True, id=base + " regex"))
    return out


@pytest.mark.parametrize("row, strip, handling, regex", _path_cases())
def test_kong_path_handling(row: dict, strip: bool, handling: str, regex: bool) -> None:
    # 08-router_spec.lua "#slash handling": the plain route, then the same path as a regex
    # ("~/[0]?" + path without its first "/"), or a host-only route when the row has no path
    route_path = row["route_path"]
    if route_path is None:
        spec = RouteSpec(1, hosts=["localbin.com"], strip_path=strip, path_handling=handling,
                         service_path=row["service_path"])
    else:
        path = "~/[0]?" + route_path[1:] if regex else route_path
        spec = RouteSpec(1, paths=[path], strip_path=strip, path_handling=handling,
                         service_path=row["service_path"])
    m = Router([spec]).match(b"GET", b"localbin.com", row["request_path"].encode(), None)
    assert m is not None
    assert m.upstream_path == row["expected_path"].encode()


def test_deviation_table_counts_match_the_data() -> None:
    # docs/kong-compat-router.md quotes these numbers; keep them true
    groups = yaml.safe_load((HERE / "select_spec.yml").read_text())
    total = sum(len(g["cases"]) for g in groups)
    refused = sum(len(g["cases"]) for g in groups if "fastgw_refuses" in g)
    deviations = sum(1 for g in groups for c in g["cases"] if "deviation" in c)
    doc = (HERE.parents[2] / "docs" / "kong-compat-router.md").read_text()
    row = f"| {total} | {total - refused - deviations} | {deviations} | {refused} |"
    assert row in doc, row
