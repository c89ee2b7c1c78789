"""The compiled jwt kernel against the Python jwt plugin on generated requests (no proxy).

Both chains (jwt + rate-limiting by consumer + prometheus) are built from the same entities; every
generated request goes to both at the same `now`. Compared: the exit (status, headers, body) and
the upstream header lines. Tokens cover every verdict of the verifier: valid, expired, not yet
valid, missing claims, bad signature, unknown key, wrong algorithm, garbage, several tokens.
"""
from __future__ import annotations

from types import SimpleNamespace as NS

import jwt as pyjwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastgw._core.native import compile_chain
from fastgw.plugins import Context, ListHeaders, PluginEnv, Response, build_chains, rate_limiting

from native.test_native_chain_fuzz import ops_lines

NOW = 1_700_000_000
HS = "hs-secret-0123456789abcdef0123456789abcdef0123456789"
EC = ec.generate_private_key(ec.SECP256R1())
RSA = rsa.generate_private_key(65537, 2048)
EC_PUB = EC.public_key().public_bytes(serialization.Encoding.PEM,
                                      serialization.PublicFormat.SubjectPublicKeyInfo).decode()
CONSUMERS = [NS(id="c1", username="alice", custom_id="ca"), NS(id="c2", username="bob", custom_id=None)]
CREDS = [(CONSUMERS[0], NS(id="j1", key="iss-a", algorithm="HS256", secret=HS, rsa_public_key=None)),
         (CONSUMERS[1], NS(id="j2", key="iss-b", algorithm="ES256", secret=None, rsa_public_key=EC_PUB)),
         (CONSUMERS[1], NS(id="j3", key="iss-c", algorithm="RS256", secret=None,
                           rsa_public_key="not a pem"))]
SERVICE = NS(id="s1", name="svc", host="h")
ROUTE = NS(id="r1", name="rt")


def _hs(claims, key=HS, alg="HS256"):
    return pyjwt.encode(claims, key, algorithm=alg)


TOKENS = [
    _hs({"iss": "iss-a", "exp": NOW + 60, "nbf": NOW - 60}),
    _hs({"iss": "iss-a", "exp": NOW - 1, "nbf": NOW - 60}),
    _hs({"iss": "iss-a", "exp": NOW + 60, "nbf": NOW + 3600}),
    _hs({"iss": "iss-a"}),
    _hs({"iss": "iss-a", "exp": "soon", "nbf": NOW}),
    _hs({"iss": "iss-a", "exp": NOW + 60, "nbf": NOW}, key="wrong-secret-0123456789abcdef0123456789abcdef01"),
    _hs({"iss": "nobody", "exp": NOW + 60}),
    _hs({"sub": "x", "exp": NOW + 60}),
    _hs({"iss": "", "exp": NOW + 60}),
    _hs({"iss": "iss-a", "exp": NOW + 60}, alg="HS384"),
    pyjwt.encode({"iss": "iss-b", "exp": NOW + 60, "nbf": NOW}, EC, algorithm="ES256"),
    pyjwt.encode({"iss": "iss-b", "exp": NOW + 60, "nbf": NOW}, EC, algorithm="ES256")[:-4] + "AAAA",
    pyjwt.encode({"iss": "iss-c", "exp": NOW + 60, "nbf": NOW}, RSA, algorithm="RS256"),
    _hs({"iss": "iss-c", "exp": NOW + 60, "nbf": NOW}),
    "not.a.jwt", "only-one-part", "a.b", "e30.e30.", "",
]


def build(monkeypatch):
    monkeypatch.setattr(rate_limiting, "_shared", None)
    rate_limiting.init_shared(1024)
    env = PluginEnv(consumers=CONSUMERS, credentials={"jwt": CREDS}, services=[SERVICE], routes=[ROUTE])
    plugins = [
        {"name": "jwt", "service": "s1", "config": {"claims_to_verify": ["exp", "nbf"],
                                                    "header_names": ["authorization", "x-jwt"],
                                                    "realm": "api", "run_on_preflight": False}},
        {"name": "rate-limiting", "service": "s1", "config": {"second": 3, "limit_by": "consumer"}},
        {"name": "prometheus", "service": "s1", "config": {"per_consumer": True}},
    ]
    return env, build_chains(plugins, env).for_route("r1", "s1")


token = st.sampled_from(TOKENS)
bearer = st.tuples(st.sampled_from(["Bearer ", "bearer  ", " Bearer\t", "Basic ", "Bearer", "BEARER "]),
                   token).map("".join)
header = st.tuples(st.sampled_from(["Authorization", "authorization", "X-JWT", "x-other"]), bearer)
query = st.one_of(st.just(""), token.map(lambda t: "jwt=" + t), st.just("jwt=&x=1"),
                  st.tuples(token, token).map(lambda ts: f"jwt={ts[0]}&jwt={ts[1]}"))
request = st.tuples(st.sampled_from(["GET", "OPTIONS"]), st.lists(header, max_size=2), query,
                    st.sampled_from(["10.0.0.1", "10.0.0.2"]), st.floats(0, 0.5))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(request, min_size=1, max_size=10))
def test_native_jwt_matches_python_jwt(monkeypatch, requests):
    env_p, py_chain = build(monkeypatch)
    _, nat_chain = build(monkeypatch)
    native = compile_chain(nat_chain, ROUTE, SERVICE)
    assert native is not None and native.names[0] == "jwt"
    now = float(NOW)
    for method, headers, q, client, dt in requests:
        now += dt
        target = "/p" + ("?" + q if q else "")
        head = (f"{method} {target} HTTP/1.1\r\nHost: gw\r\n"
                + "".join(f"{n}: {v}\r\n" for n, v in headers) + "\r\n").encode("latin-1")
        st_n, req_n, _, exit_h, exit_b, _ = native.run(head, client.encode(), now)
        ctx = Context(method.encode(), target.encode(), ListHeaders(
            [(n.encode(), v.encode("latin-1")) for n, v in headers] + [(b"host", b"gw")]),
            client, "http", ROUTE, SERVICE, now, env_p)
        r = py_chain.run_access(ctx)
        if isinstance(r, Response):
            assert (st_n, exit_h, exit_b) == (r.status, r.headers, r.body)
            continue
        assert r is None and st_n == 0
        assert req_n == (ops_lines(ctx.request) if ctx.request.header_ops else None)


def test_native_jwt_verdicts(monkeypatch):
    _, chain = build(monkeypatch)
    native = compile_chain(chain, ROUTE, SERVICE)

    def run(auth, now=NOW):
        head = f"GET /p HTTP/1.1\r\nHost: gw\r\nAuthorization: {auth}\r\n\r\n".encode()
        return native.run(head, b"10.0.0.1", float(now))

    st_, req, _, _, _, consumer = run("Bearer " + TOKENS[0])
    assert st_ == 0 and consumer == 0 and b"X-Consumer-ID: c1\r\n" in req
    assert b"X-Credential-Identifier: iss-a\r\n" in req
    st_, _, _, hs, body, _ = run("Bearer " + TOKENS[1])
    assert st_ == 401 and body == b'{"exp":"token expired"}'
    assert (b"WWW-Authenticate", b'Bearer realm="api", error="invalid_token"') in hs
    st_, _, _, hs, body, _ = run("Basic abc")
    assert st_ == 401 and body == b'{"message":"Unauthorized"}'
    assert (b"WWW-Authenticate", b'Bearer realm="api"') in hs
    assert run("Bearer " + TOKENS[12])[4] == b'{"message":"Invalid key/secret"}'
    assert run("Bearer " + TOKENS[10])[0] == 0
