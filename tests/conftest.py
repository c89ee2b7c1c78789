"""Shared pytest fixtures: real servers on 127.0.0.1 (see tests/servers.py for their API).

Fixtures:
    nginx_upstream   module scope   NginxUpstream(servers=3): .port/.ports/.url(path, i)
    redis_server     module scope   RedisServer, flushed before each test that uses it
    echo_upstream    function scope EchoUpstream (fresh recordings per test)
    echo_factory     function scope make(**kwargs) -> a started EchoUpstream, all stopped after
    fastgw           function scope start(config, workers=1, extra_args=(), **kw) ->
                                    a started FastgwProcess; all stopped after the test, and
                                    their logs printed when the test failed
    kong_echo        module scope   EchoUpstream shared by a module's Kong spec cases
    kong_gateway     module scope   FastgwProcess with its Admin API, empty config; each
                                    Kong spec case loads its own through `POST /config`
A fixture skips its test only when the server's binary is not installed.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

# tests/ on sys.path so any test module can `from servers import ...` whatever its directory.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from servers import (  # noqa: E402
    EchoUpstream,
    FastgwProcess,
    NginxUpstream,
    RedisServer,
    find_binary,
)


_SUITE_DNS: Any = None


def pytest_configure(config: pytest.Config) -> None:
    # Hostnames in test configs are resolved by fastgw.dns as soon as a gateway starts. Every
    # gateway of the suite (and every fastgw process it starts, through the environment) asks
    # a nameserver on loopback that answers NXDOMAIN for every name, so no test queries the
    # machine's nameserver or waits for a timeout. Tests of DNS start their own (tests/dns).
    global _SUITE_DNS
    if "KONG_DNS_RESOLVER" in os.environ:
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent / "dns"))
    from dns_server import TestDNS

    _SUITE_DNS = TestDNS().start()
    os.environ["KONG_DNS_RESOLVER"] = _SUITE_DNS.resolver


def pytest_unconfigure(config: pytest.Config) -> None:
    global _SUITE_DNS
    if _SUITE_DNS is not None:
        _SUITE_DNS.stop()
        os.environ.pop("KONG_DNS_RESOLVER", None)
        _SUITE_DNS = None


def _require(binary: str, package: str) -> None:
    if find_binary(binary) is None:
        pytest.skip(f"{binary} is not installed (apt-get install {package}; scripts/sysdeps.sh)")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Iterator[None]:
    # Keep each phase's report on the item so fixtures can tell in teardown if the test failed.
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"_rep_{rep.when}", rep)


def _failed(request: pytest.FixtureRequest) -> bool:
    rep = getattr(request.node, "_rep_call", None)
    return rep is None or rep.failed


@pytest.fixture(scope="module")
def nginx_upstream() -> Iterator[NginxUpstream]:
    _require("nginx", "nginx-light")
    with NginxUpstream(servers=3) as up:
        yield up


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


@pytest.fixture(scope="module")
def _redis_module() -> Iterator[RedisServer]:
    _require("redis-server", "redis-server")
    with RedisServer() as r:
        yield r


@pytest.fixture
def redis_server(_redis_module: RedisServer) -> RedisServer:
    with _redis_module.client() as c:
        c.flushall()
    return _redis_module


@pytest.fixture
def echo_upstream() -> Iterator[EchoUpstream]:
    with EchoUpstream() as up:
        yield up


@pytest.fixture
def echo_factory() -> Iterator[Callable[..., EchoUpstream]]:
    made: list[EchoUpstream] = []

    def make(**kwargs: Any) -> EchoUpstream:
        up = EchoUpstream(**kwargs).start()
        made.append(up)
        return up

    try:
        yield make
    finally:
        for up in made:
            up.stop()


@pytest.fixture
def fastgw(request: pytest.FixtureRequest) -> Iterator[Callable[..., FastgwProcess]]:
    started: list[FastgwProcess] = []

    def start(config: Any, workers: int = 1, extra_args: tuple[str, ...] = (),
              **kwargs: Any) -> FastgwProcess:
        gw = FastgwProcess(config, workers=workers, extra_args=extra_args, **kwargs)
        started.append(gw)
        return gw.start()

    try:
        yield start
    finally:
        failed = _failed(request)
        for gw in started:
            gw.stop()
            if failed:
                print(f"\n--- fastgw log ({gw.log_path}):\n{gw.log_tail(200)}")
            gw.cleanup()
