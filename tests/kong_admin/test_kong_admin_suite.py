"""Kong's Admin API spec cases (cases_*.py), replayed against a real fastgw process.

Each case loads its own declarative configuration through POST /config, then runs its
requests and compares status, body and headers with what Kong's spec asserts."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cases_entities import CASES as ENTITY_CASES  # noqa: E402
from cases_kong import CASES as KONG_CASES  # noqa: E402
from kong_cases import Case, run_case  # noqa: E402

CASES: list[Case] = [*ENTITY_CASES, *KONG_CASES]


def test_case_ids_are_unique() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), [i for i in ids if ids.count(i) > 1]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_kong_admin_case(case: Case, kong_gateway, kong_echo) -> None:
    if case.deviation:
        pytest.skip(f"deviation: {case.deviation}")
    errors = run_case(case, kong_gateway.admin_port, kong_gateway.port, None)
    assert not errors, "\n".join(errors)
