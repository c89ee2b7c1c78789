import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "config"))

import cfg_fakes  # noqa: E402


@pytest.fixture(autouse=True)
def fake_plugins(monkeypatch):
    cfg_fakes.install(monkeypatch)
    return cfg_fakes.FAKE_PLUGINS
