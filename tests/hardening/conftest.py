"""Fixtures of the hostile-client suite (real sockets on 127.0.0.1).

    echo   a fresh EchoUpstream per test (its connection counters are asserted on)
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import pytest

# tests/proxy on sys.path: its _util has the raw client and the in-process gateway
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "proxy"))

from servers import EchoUpstream  # noqa: E402


@pytest.fixture
def echo() -> Iterator[EchoUpstream]:
    with EchoUpstream() as up:
        yield up
        assert not up.errors, up.errors
