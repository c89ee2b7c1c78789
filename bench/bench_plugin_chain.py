"""Per-request cost of the plugin framework (no sockets): Context creation + run_access +
run_header_filter + run_log for a few chains. Plain script, bounded to ~1 s per row.

    .venv/bin/python bench/bench_plugin_chain.py
"""

from __future__ import annotations

import base64
import time
from types import SimpleNamespace

import jwt as pyjwt

from fastgw.plugins import Context, ListHeaders, PluginEnv, build_chains

ALICE = SimpleNamespace(id="c1", username="alice", custom_id=None)
SECRET = "s" * 64
ENV = PluginEnv(
    consumers=[ALICE],
    credentials={
        "key-auth": [(ALICE, SimpleNamespace(id="k1", key="secret-key"))],
        "jwt": [(ALICE, SimpleNamespace(id="j1", key="iss-1", secret=SECRET, algorithm="HS256", rsa_public_key=None))],
        "basic-auth": [(ALICE, SimpleNamespace(id="b1", username="alice", password="pw"))],
    },
)
TOKEN = pyjwt.encode({"iss": "iss-1", "exp": 4_000_000_000}, SECRET, algorithm="HS256")
HEADERS = [
    (b"host", b"api.example"), (b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64) Chrome/120"),
    (b"accept", b"*/*"), (b"apikey", b"secret-key"), (b"authorization", f"Bearer {TOKEN}".encode()),
]
RESP = ListHeaders([(b"content-type", b"application/json"), (b"content-length", b"2")])

ROWS = {
    "context only (no chain work)": [],
    "key-auth": [{"name": "key-auth"}],
    "jwt (HS256, cached)": [{"name": "jwt", "config": {"claims_to_verify": ["exp"]}}],
    "key-auth + acl + cors + correlation-id": [
        {"name": "key-auth"}, {"name": "cors"}, {"name": "correlation-id"},
    ],
    "bot-detection + ip-restriction": [
        {"name": "bot-detection"}, {"name": "ip-restriction", "config": {"allow": ["10.0.0.0/8"]}},
    ],
}


def bench(plugins: list[dict], seconds: float = 1.0) -> float:
    idx = build_chains(plugins, ENV) if plugins else None
    chain = idx.for_route("r1", "s1") if idx else None
    headers = ListHeaders(HEADERS)
    n = 0
    t0 = time.perf_counter()
    deadline = t0 + seconds
    while True:
        for _ in range(1000):
            ctx = Context(b"GET", b"/v1/items?x=1", headers, "10.0.0.7", "http", None, None, 1.7e9, ENV)
            if chain is not None:
                r = chain.run_access(ctx)
                assert r is None, r
                ctx.set_response(200, RESP)
                chain.run_header_filter(ctx)
                chain.run_log(ctx)
        n += 1000
        if time.perf_counter() >= deadline:
            break
    return (time.perf_counter() - t0) / n * 1e6


if __name__ == "__main__":
    for name, plugins in ROWS.items():
        print(f"{name:45s} {bench(plugins):7.2f} us/request")
