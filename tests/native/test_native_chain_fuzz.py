"""NativeChain.run against Chain.run_access/run_header_filter on generated requests (no proxy).

Two chains are built from the same plugin entities, each with its own fresh shared tables; every
generated request goes to both, in the same order at the same `now`. Compared: the exit
(status, headers, body), the upstream header lines key-auth adds (rendered as the proxy renders
header ops) and the response header lines rate-limiting adds.
"""
from __future__ import annotations

from types import SimpleNamespace as NS

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastgw._core.native import compile_chain
from fastgw.plugins import Context, ListHeaders, PluginEnv, Response, build_chains, rate_limiting

CONSUMERS = [NS(id="c1", username="alice", custom_id="ca"), NS(id="c2", username="bob", custom_id=None)]
CREDS = [(CONSUMERS[0], NS(id="k1", key="key-a")), (CONSUMERS[1], NS(id="k2", key="key-b")),
         (CONSUMERS[1], NS(id="k3", key="k\u00e9y"))]
SERVICE = NS(id="s1", name="svc", host="h")
ROUTE = NS(id="r1", name="rt")

PLUGINS = [
    {"name": "key-auth", "service": "s1", "config": {"key_names": ["apikey", "X-Key"],
                                                     "run_on_preflight": False}},
    {"name": "rate-limiting", "service": "s1", "config": {"second": 2, "minute": 4, "limit_by": "consumer"}},
    {"name": "prometheus", "service": "s1"},
]


def build(monkeypatch):
    monkeypatch.setattr(rate_limiting, "_shared", None)
    rate_limiting.init_shared(1024)
    env = PluginEnv(consumers=CONSUMERS, credentials={"key-auth": CREDS}, services=[SERVICE],
                    routes=[ROUTE])
    return env, build_chains([dict(p) for p in PLUGINS], env).for_route("r1", "s1")


def ops_lines(view):
    # the proxy's rendering of header ops (build_head / on_response_head)
    ops = view.header_ops or {}
    case = view.header_case or {}
    return b"".join(case.get(n, n) + b": " + v + b"\r\n"
                    for n, vals in ops.items() if vals is not None for v in vals)


keys = st.sampled_from(["key-a", "key-b", "k\u00e9y", "nope", "", "KEY-A"])
header = st.tuples(st.sampled_from(["apikey", "APIKEY", "x-key", "X-Key", "x-other"]), keys)
query = st.one_of(st.just(""), st.builds(lambda k, extra: f"apikey={k}{extra}",
                                         st.sampled_from(["key-a", "key-b", "k%C3%A9y", "nope", ""]),
                                         st.sampled_from(["", "&apikey=key-a", "&x=1"])),
                  st.just("x-key=key-b"), st.just("api%6Bey=key-a"))
request = st.tuples(st.sampled_from(["GET", "POST", "OPTIONS"]), st.lists(header, max_size=3), query,
                    st.sampled_from(["10.0.0.1", "10.0.0.2"]), st.floats(0, 0.9))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(request, min_size=1, max_size=12))
def test_native_chain_matches_python_chain(monkeypatch, requests):
    env_p, py_chain = build(monkeypatch)
    _, nat_chain = build(monkeypatch)
    native = compile_chain(nat_chain, ROUTE, SERVICE)
    assert native is not None
    now = 1_700_000_000.0
    for method, headers, q, client, dt in requests:
        now += dt
        target = "/p" + ("?" + q if q else "")
        head = (f"{method} {target} HTTP/1.1\r\nHost: gw\r\n"
                + "".join(f"{n}: {v}\r\n" for n, v in headers) + "\r\n").encode("latin-1")
        st_n, req_n, resp_n, exit_h, exit_b, _ = native.run(head, client.encode(), now)

        ctx = Context(method.encode(), target.encode(), ListHeaders(
            [(n.encode(), v.encode("latin-1")) for n, v in headers] + [(b"host", b"gw")]),
            client, "http", ROUTE, SERVICE, now, env_p)
        r = py_chain.run_access(ctx)
        if isinstance(r, Response):
            assert (st_n, exit_h, exit_b) == (r.status, r.headers, r.body)
            continue
        assert r is None and st_n == 0
        assert req_n == (ops_lines(ctx.request) if ctx.request.header_ops else None)
        ctx.set_response(200, ListHeaders([]))
        assert py_chain.run_header_filter(ctx) is None
        assert resp_n == (ops_lines(ctx.response) if ctx.response.header_ops else None)
