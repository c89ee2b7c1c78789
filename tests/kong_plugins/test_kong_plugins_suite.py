"""Kong's plugin spec cases (cases_*.py) for the plugins fastgw has, through a real fastgw
process and a real echo upstream: status, body and headers the client gets, and what the
upstream received."""
from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cases_auth import CASES as AUTH_CASES  # noqa: E402
from cases_reqtrans import CASES as REQTRANS_CASES  # noqa: E402
from cases_traffic import CASES as TRAFFIC_CASES  # noqa: E402
from kong_cases import Case, run_case  # noqa: E402

CASES: list[Case] = [*AUTH_CASES, *TRAFFIC_CASES, *REQTRANS_CASES]


def _point_at(doc: Any, url: str) -> Any:
    if isinstance(doc, dict):
        return {k: (url if k == "url" and v == "ECHO" else _point_at(v, url))
                for k, v in doc.items()}
    if isinstance(doc, list):
        return [_point_at(v, url) for v in doc]
    return doc


def test_case_ids_are_unique() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), [i for i in ids if ids.count(i) > 1]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_kong_plugin_case(case: Case, kong_gateway, kong_echo) -> None:
    if case.deviation:
        pytest.skip(f"deviation: {case.deviation}")
    case = copy.copy(case)
    case.config = _point_at(case.config or {}, kong_echo.url("/"))
    from servers import Behaviour
    kong_echo.set_default(Behaviour(headers=case.upstream_headers))
    try:
        errors = run_case(case, kong_gateway.admin_port, kong_gateway.port, kong_echo)
    finally:
        kong_echo.set_default(Behaviour())
    assert not errors, "\n".join(errors)
