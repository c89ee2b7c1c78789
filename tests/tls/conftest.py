"""Fixtures of the TLS tests (helpers: tls_helpers.py).

    ca        function scope  trustme.CA: a fresh test CA
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import trustme

# tests/tls on sys.path: the modules import `tls_helpers`
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()
