"""Which routes get the compiled chain: every plugin natively supported and its config in the
supported subset, else the Python chain (fastgw._core.native module header)."""
from __future__ import annotations

from types import SimpleNamespace as NS

import pytest

from fastgw._core.native import NativeChain, compile_chain, unsupported
from fastgw.plugins import PluginEnv, build_chains

CONSUMER = NS(id="c1", username="alice", custom_id=None)
CRED = NS(id="k1", key="secret")
SERVICE = NS(id="s1", name="svc", host="h")
ROUTE = NS(id="r1", name="rt")


def chain_of(plugins, trusted_ips=()):
    env = PluginEnv(consumers=[CONSUMER], credentials={"key-auth": [(CONSUMER, CRED)]},
                    services=[SERVICE], routes=[ROUTE], trusted_ips=trusted_ips)
    for p in plugins:
        p.setdefault("service", "s1")
    return build_chains(plugins, env).for_route("r1", "s1")


SUPPORTED = [
    [{"name": "key-auth"}],
    [{"name": "rate-limiting", "config": {"minute": 5, "limit_by": "ip"}}],
    [{"name": "prometheus"}],
    [{"name": "key-auth", "config": {"key_names": ["a", "b"], "key_in_query": False}},
     {"name": "rate-limiting", "config": {"second": 1, "year": 9, "limit_by": "credential",
                                          "hide_client_headers": True}},
     {"name": "prometheus", "config": {"per_consumer": True, "latency_metrics": True}}],
    [{"name": "rate-limiting", "config": {"hour": 1, "limit_by": "service"}}],
    [{"name": "jwt"}],
    [{"name": "jwt", "config": {"claims_to_verify": ["exp"], "uri_param_names": [],
                                "header_names": ["authorization", "x-token"]}},
     {"name": "rate-limiting", "config": {"minute": 5, "limit_by": "consumer"}},
     {"name": "prometheus", "config": {"per_consumer": True}}],
]

UNSUPPORTED = [
    ([{"name": "key-auth", "config": {"hide_credentials": True}}], "hide_credentials"),
    ([{"name": "key-auth", "config": {"anonymous": "c1"}}], "anonymous"),
    ([{"name": "key-auth", "config": {"key_in_body": True}}], "body"),
    ([{"name": "rate-limiting", "config": {"minute": 1, "window_type": "sliding"}}], "window_type"),
    ([{"name": "rate-limiting", "config": {"minute": 1, "policy": "redis",
                                           "redis": {"host": "127.0.0.1"}}}], "policy"),
    ([{"name": "rate-limiting", "config": {"minute": 1, "limit_by": "header",
                                           "header_name": "x-user"}}], "limit_by header"),
    ([{"name": "rate-limiting", "config": {"minute": 1, "limit_by": "path", "path": "/a"}}],
     "limit_by path"),
    ([{"name": "key-auth"}, {"name": "cors"}], "plugin cors"),
    ([{"name": "jwt", "config": {"cookie_names": ["t"]}}], "cookie_names"),
    ([{"name": "jwt", "config": {"anonymous": "c1"}}], "anonymous"),
    ([{"name": "jwt"}, {"name": "key-auth"}], "more than one authentication plugin"),
    # a consumer-scoped plugin makes a variant chain after authentication
    ([{"name": "key-auth"}, {"name": "rate-limiting", "consumer": "c1", "service": None,
                             "config": {"minute": 1}}], "consumer-scoped"),
    # limited to https: a per-scheme dispatcher
    ([{"name": "key-auth", "protocols": ["https"]}], "scheme"),
]


@pytest.mark.parametrize("plugins", SUPPORTED)
def test_supported_chains_compile(plugins):
    chain = chain_of(plugins)
    assert unsupported(chain) is None
    native = compile_chain(chain, ROUTE, SERVICE)
    assert isinstance(native, NativeChain)
    assert native.names == [p.name for p in chain.plugins]


@pytest.mark.parametrize("plugins,reason", UNSUPPORTED)
def test_unsupported_chains_keep_python(plugins, reason):
    chain = chain_of(plugins)
    why = unsupported(chain)
    assert why is not None and reason in why
    assert compile_chain(chain, ROUTE, SERVICE) is None


def test_trusted_ips_keep_python_for_rate_limiting():
    # the client IP could come from X-Forwarded-For: Context.client_ip stays the one source
    chain = chain_of([{"name": "rate-limiting", "config": {"minute": 1}}], trusted_ips=("10.0.0.0/8",))
    assert "trusted_ips" in unsupported(chain)
    assert compile_chain(chain, ROUTE, SERVICE) is None
    # key-auth alone does not read the client IP
    assert compile_chain(chain_of([{"name": "key-auth"}], trusted_ips=("10.0.0.0/8",)),
                         ROUTE, SERVICE) is not None


def test_hashing_on_consumer_keeps_python():
    chain = chain_of([{"name": "key-auth"}])
    assert compile_chain(chain, ROUTE, SERVICE, hash_spec=NS(hash_on="consumer")) is None
    assert compile_chain(chain, ROUTE, SERVICE,
                         hash_spec=NS(hash_on="header", hash_fallback="consumer")) is None
    assert compile_chain(chain, ROUTE, SERVICE, hash_spec=NS(hash_on="ip", hash_fallback="none")) \
        is not None


def test_a_build_failure_keeps_python(monkeypatch, caplog):
    # a kernel that cannot mirror its plugin never fails the config: the Python chain serves
    from fastgw._core import native

    chain = chain_of([{"name": "key-auth"}])
    monkeypatch.setattr(chain.plugins[0], "names", None)
    assert native.unsupported(chain) is None
    assert compile_chain(chain, ROUTE, SERVICE) is None
    assert "native build failed" in caplog.text


def test_env_switch_forces_python(monkeypatch):
    chain = chain_of([{"name": "key-auth"}])
    monkeypatch.setenv("FASTGW_NATIVE_PLUGINS", "0")
    assert compile_chain(chain, ROUTE, SERVICE) is None
    monkeypatch.setenv("FASTGW_NATIVE_PLUGINS", "1")
    assert compile_chain(chain, ROUTE, SERVICE) is not None


def test_gateway_routes_take_the_expected_path(monkeypatch):
    # through the snapshot compiler: RouteRT.native set and chain None, or the reverse
    from fastgw.gateway import load_config
    from fastgw.config.snapshot import Compiler
    from fastgw._core.proxy import ProxyCore
    import asyncio

    cfg = load_config({
        "_format_version": "3.0",
        "services": [{"name": "s", "url": "http://127.0.0.1:9",
                      "routes": [{"name": "fast", "paths": ["/f"], "plugins": [{"name": "key-auth"}]},
                                 {"name": "slow", "paths": ["/s"], "plugins": [{"name": "cors"}]},
                                 {"name": "bare", "paths": ["/b"]}]}],
        "plugins": [{"name": "prometheus"}],
    })
    loop = asyncio.new_event_loop()
    try:
        snap = Compiler(ProxyCore(loop), active_health=False).compile(cfg)
        routes = {r.name: r for r in snap.routes.values()}
        assert routes["fast"].native is not None and routes["fast"].chain is None
        assert routes["slow"].native is None and routes["slow"].chain is not None
        # the global prometheus makes every route's chain non-empty; alone it is native
        assert routes["bare"].native is not None and routes["bare"].chain is None
        monkeypatch.setenv("FASTGW_NATIVE_PLUGINS", "0")
        snap = Compiler(ProxyCore(loop), active_health=False).compile(cfg)
        assert all(r.native is None and r.chain is not None for r in snap.routes.values())
    finally:
        loop.close()
