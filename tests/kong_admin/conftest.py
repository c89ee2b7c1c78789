"""One real fastgw process (proxy + Admin API on free loopback ports) for the module's
cases; each case loads its own configuration through `POST /config` first."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from servers import EchoUpstream, FastgwProcess


@pytest.fixture(scope="module")
def kong_echo() -> Iterator[EchoUpstream]:
    up = EchoUpstream().start()
    try:
        yield up
    finally:
        up.stop()


@pytest.fixture(scope="module")
def kong_gateway() -> Iterator[FastgwProcess]:
    gw = FastgwProcess({"_format_version": "3.0"}, wait_admin=True).start()
    try:
        yield gw
    finally:
        gw.stop()
        gw.cleanup()
