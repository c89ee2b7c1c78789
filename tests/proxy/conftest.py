"""Fixtures of the proxy's end-to-end tests (tests/conftest.py has the shared servers).

    echo_mod   module scope   one EchoUpstream shared by a module's tests
    echo       function scope echo_mod with its recordings cleared and default behaviour reset
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import pytest

# tests/proxy on sys.path: the modules import `_util` (tests/ is added by tests/conftest.py).
sys.path.insert(0, str(Path(__file__).resolve().parent))

from servers import Behaviour, EchoUpstream  # noqa: E402


@pytest.fixture(scope="module")
def echo_mod() -> Iterator[EchoUpstream]:
    with EchoUpstream() as up:
        yield up


@pytest.fixture
def echo(echo_mod: EchoUpstream) -> Iterator[EchoUpstream]:
    echo_mod.clear()
    echo_mod.set_default(Behaviour())
    yield echo_mod
    assert not echo_mod.errors, echo_mod.errors
