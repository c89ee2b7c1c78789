"""key-auth, basic-auth, jwt and acl: Kong's statuses, bodies, headers and anonymous handling."""

from __future__ import annotations

import base64
import hashlib
import time
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from fastgw.plugins import PluginEnv
from fastgw.plugins import jwt as jwt_plugin

from plugin_helpers import NOW, Harness, body_json, consumer, cred, upstream_headers

HS_SECRET = "hs-secret-" + "s" * 64
RAW_SECRET = b"raw-bytes-secret-" + b"r" * 64
ALICE = consumer("c-alice", "alice", "cust-a")
BOB = consumer("c-bob", "bob")
ANON = consumer("c-anon", "anonymous")


def env(**creds: Any) -> PluginEnv:
    return PluginEnv(consumers=[ALICE, BOB, ANON], credentials=creds)


# ------------------------------------------------------------------ key-auth
KEYS = {"key-auth": [(ALICE, cred(id="kid-a", key="secret-a")), (BOB, cred(id="kid-b", key="secret-b"))]}


def key_auth(**conf: Any) -> Harness:
    return Harness([{"name": "key-auth", "config": conf}], env(**KEYS))


def test_key_auth_header_query_and_consumer_headers() -> None:
    h = key_auth()
    ctx, resp = h.access(headers=[("apikey", "secret-a")])
    assert resp is None and ctx.consumer is ALICE and ctx.credential.id == "kid-a"
    assert upstream_headers(ctx) == {
        "x-consumer-id": ["c-alice"], "x-consumer-custom-id": ["cust-a"], "x-consumer-username": ["alice"],
        "x-credential-identifier": ["kid-a"], "x-anonymous-consumer": None,
    }
    ctx, resp = h.access(target="/p?apikey=secret-b")
    assert resp is None and ctx.consumer is BOB
    assert ctx.request.query_override is None  # not hidden by default


def test_key_auth_missing_and_invalid_key() -> None:
    h = key_auth()
    _, resp = h.access()
    assert resp.status == 401 and body_json(resp) == {"message": "No API key found in request"}
    assert resp.get_header("WWW-Authenticate") == 'Key'
    _, resp = h.access(headers=[("apikey", "wrong")])
    assert resp.status == 401 and body_json(resp) == {"message": "Unauthorized"}
    assert resp.get_header("WWW-Authenticate") == 'Key'
    _, resp = h.access(headers=[("apikey", "")])
    assert body_json(resp) == {"message": "No API key found in request"}


def test_key_auth_duplicate_keys() -> None:
    h = key_auth()
    _, resp = h.access(target="/?apikey=a&apikey=b")
    assert resp.status == 401 and body_json(resp) == {"message": "Duplicate API key found"}
    _, resp = h.access(headers=[("apikey", "secret-a"), ("apikey", "secret-b")])
    assert resp.status == 401 and body_json(resp) == {"message": "Duplicate API key found"}


def test_key_auth_key_names_and_sources() -> None:
    h = key_auth(key_names=["x-api-key", "token"], key_in_query=False)
    _, resp = h.access(headers=[("X-API-Key", "secret-a")])
    assert resp is None
    _, resp = h.access(target="/?token=secret-a")
    assert resp.status == 401  # query disabled
    h = key_auth(key_in_header=False)
    _, resp = h.access(headers=[("apikey", "secret-a")])
    assert resp.status == 401


def test_key_auth_hide_credentials() -> None:
    h = key_auth(hide_credentials=True)
    ctx, resp = h.access(target="/p?apikey=secret-a&x=1")
    assert resp is None and ctx.request.query_override == b"x=1"
    ctx, resp = h.access(headers=[("apikey", "secret-a")])
    assert resp is None and upstream_headers(ctx)["apikey"] is None


def test_key_auth_key_in_body_json_and_form_with_hide() -> None:
    h = key_auth(key_in_body=True, hide_credentials=True)
    assert h.chain().needs_request_body
    ctx, resp = h.access(method="POST", headers=[("Content-Type", "application/json")], body=b'{"apikey":"secret-b","a":1}')
    assert resp is None and ctx.consumer is BOB
    assert ctx.request.body_override == b'{"a":1}'
    ctx, resp = h.access(method="POST", headers=[("Content-Type", "application/x-www-form-urlencoded")], body=b"a=1&apikey=secret-a")
    assert resp is None and ctx.consumer is ALICE and ctx.request.body_override == b"a=1"
    _, resp = h.access(method="POST", headers=[("Content-Type", "text/plain")], body=b"apikey=secret-a")
    assert resp.status == 401


def test_key_auth_preflight() -> None:
    _, resp = key_auth().access(method="OPTIONS")
    assert resp.status == 401  # run_on_preflight defaults to true
    ctx, resp = key_auth(run_on_preflight=False).access(method="OPTIONS")
    assert resp is None and ctx.consumer is None


def test_key_auth_anonymous_by_id_and_username() -> None:
    for anon in ("c-anon", "anonymous"):
        ctx, resp = key_auth(anonymous=anon).access()
        assert resp is None and ctx.consumer is ANON and ctx.credential is None
        assert upstream_headers(ctx)["x-anonymous-consumer"] == ["true"]
        assert upstream_headers(ctx)["x-consumer-id"] == ["c-anon"]
    _, resp = key_auth(anonymous="ghost").access()
    assert resp.status == 500


def test_auth_plugins_logical_or_with_anonymous() -> None:
    # key-auth (1250) authenticates; basic-auth (1100) with anonymous must not override it.
    h = Harness(
        [
            {"name": "key-auth", "config": {"anonymous": "c-anon"}},
            {"name": "basic-auth", "config": {"anonymous": "c-anon"}},
        ],
        env(**KEYS, **{"basic-auth": [(BOB, cred(id="b1", username="bob", password="pw"))]}),
    )
    ctx, resp = h.access(headers=[("apikey", "secret-a")])
    assert resp is None and ctx.consumer is ALICE
    ctx, resp = h.access(headers=[("Authorization", "Basic " + base64.b64encode(b"bob:pw").decode())])
    assert resp is None and ctx.consumer is BOB
    ctx, resp = h.access()
    assert resp is None and ctx.consumer is ANON


# ------------------------------------------------------------------ basic-auth
def basic(user: str, pw: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()


def test_basic_auth() -> None:
    hashed = hashlib.sha1(("s3cret" + "c-bob").encode()).hexdigest()  # Kong's stored form
    creds = {"basic-auth": [(ALICE, cred(id="b-a", username="alice", password="pa:ss")), (BOB, cred(id="b-b", username="bob", password=hashed))]}
    h = Harness([{"name": "basic-auth"}], env(**creds))
    ctx, resp = h.access(headers=[("Authorization", basic("alice", "pa:ss"))])
    assert resp is None and ctx.consumer is ALICE
    assert upstream_headers(ctx)["x-credential-identifier"] == ["alice"]
    assert upstream_headers(ctx).get("authorization") is None  # not hidden by default
    ctx, resp = h.access(headers=[("Proxy-Authorization", basic("bob", "s3cret"))])
    assert resp is None and ctx.consumer is BOB
    _, resp = h.access(headers=[("Authorization", basic("bob", hashed))])  # the digest is not a password
    assert resp.status == 401
    _, resp = h.access()
    assert resp.status == 401 and body_json(resp) == {"message": "Unauthorized"}
    assert resp.get_header("WWW-Authenticate") == 'Basic realm="service"'
    for bad in (basic("alice", "nope"), basic("carol", "x"), "Basic !!!", "Bearer abc"):
        _, resp = h.access(headers=[("Authorization", bad)])
        assert resp.status == 401 and body_json(resp) == {"message": "Unauthorized"}
        assert resp.get_header("WWW-Authenticate") == 'Basic realm="service"'


def test_basic_auth_hide_credentials_and_realm_and_anonymous() -> None:
    creds = {"basic-auth": [(ALICE, cred(id="b-a", username="alice", password="pw"))]}
    h = Harness([{"name": "basic-auth", "config": {"hide_credentials": True, "realm": "api"}}], env(**creds))
    ctx, resp = h.access(headers=[("Authorization", basic("alice", "pw"))])
    assert resp is None and upstream_headers(ctx)["authorization"] is None
    _, resp = h.access()
    assert resp.get_header("WWW-Authenticate") == 'Basic realm="api"'
    h = Harness([{"name": "basic-auth", "config": {"anonymous": "c-anon"}}], env(**creds))
    ctx, resp = h.access(headers=[("Authorization", basic("alice", "bad"))])
    assert resp is None and ctx.consumer is ANON


# ------------------------------------------------------------------ jwt
@pytest.fixture(scope="module")
def keys() -> dict[str, Any]:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec256 = ec.generate_private_key(ec.SECP256R1())
    ec384 = ec.generate_private_key(ec.SECP384R1())

    def pub(k: Any) -> str:
        return k.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    return {"rsa": rsa_key, "rsa_pub": pub(rsa_key), "ec256": ec256, "ec256_pub": pub(ec256), "ec384": ec384, "ec384_pub": pub(ec384)}


def jwt_env(keys: dict[str, Any], **extra: Any) -> PluginEnv:
    secrets = [
        (ALICE, cred(id="j-hs256", key="hs256-key", secret=HS_SECRET, algorithm="HS256", rsa_public_key=None)),
        (ALICE, cred(id="j-hs384", key="hs384-key", secret=HS_SECRET, algorithm="HS384", rsa_public_key=None)),
        (ALICE, cred(id="j-hs512", key="hs512-key", secret=HS_SECRET, algorithm="HS512", rsa_public_key=None)),
        (BOB, cred(id="j-rs256", key="rs256-key", secret=None, algorithm="RS256", rsa_public_key=keys["rsa_pub"])),
        (BOB, cred(id="j-rs384", key="rs384-key", secret=None, algorithm="RS384", rsa_public_key=keys["rsa_pub"])),
        (BOB, cred(id="j-rs512", key="rs512-key", secret=None, algorithm="RS512", rsa_public_key=keys["rsa_pub"])),
        (BOB, cred(id="j-es256", key="es256-key", secret=None, algorithm="ES256", rsa_public_key=keys["ec256_pub"])),
        (BOB, cred(id="j-es384", key="es384-key", secret=None, algorithm="ES384", rsa_public_key=keys["ec384_pub"])),
        (BOB, cred(id="j-nokey", key="rs-nokey", secret=None, algorithm="RS256", rsa_public_key=None)),
        (ALICE, cred(id="j-b64", key="b64-key", secret=base64.b64encode(RAW_SECRET).decode(), algorithm="HS256", rsa_public_key=None)),
    ]
    return env(jwt=secrets, **extra)


def jwt_h(keys: dict[str, Any], **conf: Any) -> Harness:
    return Harness([{"name": "jwt", "config": conf}], jwt_env(keys))


def sign(keys: dict[str, Any], alg: str, claims: dict[str, Any], headers: dict[str, Any] | None = None) -> str:
    if alg.startswith("HS"):
        k: Any = HS_SECRET
    elif alg.startswith("RS"):
        k = keys["rsa"]
    else:
        k = keys["ec256" if alg == "ES256" else "ec384"]
    return pyjwt.encode(claims, k, algorithm=alg, headers=headers)


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384"])
def test_jwt_algorithms_with_real_keys(keys: dict[str, Any], alg: str) -> None:
    h = jwt_h(keys)
    token = sign(keys, alg, {"iss": f"{alg.lower()}-key", "sub": "x"})
    ctx, resp = h.access(headers=[("Authorization", f"Bearer {token}")])
    assert resp is None, body_json(resp)
    assert ctx.consumer is (ALICE if alg.startswith("HS") else BOB)
    assert upstream_headers(ctx)["x-credential-identifier"] == [f"{alg.lower()}-key"]
    assert ctx.vars["authenticated_jwt_token"] == token
    # tampered payload -> signature check fails
    head, _, sig = token.split(".")
    forged_payload = base64.urlsafe_b64encode(b'{"iss":"%s-key","sub":"admin"}' % alg.lower().encode()).rstrip(b"=").decode()
    _, resp = h.access(headers=[("Authorization", f"Bearer {head}.{forged_payload}.{sig}")])
    assert resp.status == 401 and body_json(resp) == {"message": "Invalid signature"}


def test_jwt_token_sources(keys: dict[str, Any]) -> None:
    token = sign(keys, "HS256", {"iss": "hs256-key"})
    h = jwt_h(keys, cookie_names=["session"], header_names=["authorization", "x-token"])
    for kw in (
        {"target": f"/?jwt={token}"},
        {"headers": [("Cookie", f"a=b; session={token}")]},
        {"headers": [("X-Token", f"bearer {token}")]},
    ):
        ctx, resp = h.access(**kw)
        assert resp is None and ctx.consumer is ALICE, kw
    other = sign(keys, "HS256", {"iss": "hs256-key", "n": 1})
    _, resp = h.access(target=f"/?jwt={token}", headers=[("Authorization", f"Bearer {other}")])
    assert resp.status == 401 and body_json(resp) == {"message": "Multiple tokens provided"}
    # the same token twice is one token
    ctx, resp = h.access(target=f"/?jwt={token}", headers=[("Authorization", f"Bearer {token}")])
    assert resp is None
    _, resp = h.access()
    assert resp.status == 401 and body_json(resp) == {"message": "Unauthorized"}


def test_jwt_error_messages(keys: dict[str, Any]) -> None:
    h = jwt_h(keys)

    def call(token: str) -> Any:
        _, resp = h.access(headers=[("Authorization", f"Bearer {token}")])
        return resp.status, body_json(resp)

    assert call("not-a-jwt") == (401, {"message": "Bad token; invalid JSON"})
    assert call("a.b.c")[1]["message"].startswith("Bad token;")
    assert call(sign(keys, "HS256", {"sub": "x"})) == (401, {"message": "No mandatory 'iss' in claims"})
    assert call(sign(keys, "HS256", {"iss": ""})) == (401, {"message": "Invalid 'iss' in claims"})
    assert call(sign(keys, "HS256", {"iss": "unknown"})) == (401, {"message": "No credentials found for given 'iss'"})
    assert call(sign(keys, "HS512", {"iss": "hs256-key"})) == (401, {"message": "Invalid algorithm"})
    assert call(sign(keys, "RS256", {"iss": "rs-nokey"})) == (401, {"message": "Invalid key/secret"})
    bad_sig = pyjwt.encode({"iss": "hs256-key"}, HS_SECRET + "-other", algorithm="HS256")
    assert call(bad_sig) == (401, {"message": "Invalid signature"})
    none_alg = pyjwt.encode({"iss": "hs256-key"}, None, algorithm="none")
    assert call(none_alg) == (401, {"message": "Bad token; invalid alg"})


def test_jwt_claims_to_verify_use_ctx_now(keys: dict[str, Any]) -> None:
    h = jwt_h(keys, claims_to_verify=["exp", "nbf"])

    def call(claims: dict[str, Any], now: float = NOW) -> Any:
        _, resp = h.access(headers=[("Authorization", f"Bearer {sign(keys, 'HS256', claims)}")], now=now)
        return None if resp is None else (resp.status, body_json(resp))

    assert call({"iss": "hs256-key", "exp": NOW + 60, "nbf": NOW - 60}) is None
    assert call({"iss": "hs256-key", "exp": NOW, "nbf": NOW}) == (401, {"exp": "token expired"})
    assert call({"iss": "hs256-key", "exp": NOW + 60, "nbf": NOW + 10}) == (401, {"nbf": "token not valid yet"})
    assert call({"iss": "hs256-key", "exp": "soon", "nbf": NOW}) == (401, {"exp": "must be a number"})
    # a listed claim that is absent is "must be a number" (Kong's jwt_parser), never a pass
    assert call({"iss": "hs256-key", "nbf": NOW}) == (401, {"exp": "must be a number"})
    assert call({"iss": "hs256-key"}) == (401, {"exp": "must be a number", "nbf": "must be a number"})
    assert call({"iss": "hs256-key", "exp": NOW - 1, "nbf": NOW + 1}) == (401, {"exp": "token expired", "nbf": "token not valid yet"})
    # without claims_to_verify, an expired token passes (Kong)
    _, resp = jwt_h(keys).access(headers=[("Authorization", f"Bearer {sign(keys, 'HS256', {'iss': 'hs256-key', 'exp': NOW - 5})}")])
    assert resp is None


def test_jwt_maximum_expiration(keys: dict[str, Any]) -> None:
    h = jwt_h(keys, claims_to_verify=["exp"], maximum_expiration=100)
    ok = sign(keys, "HS256", {"iss": "hs256-key", "exp": NOW + 50})
    far = sign(keys, "HS256", {"iss": "hs256-key", "exp": NOW + 500})
    noexp = sign(keys, "HS256", {"iss": "hs256-key"})
    assert h.access(headers=[("Authorization", f"Bearer {ok}")])[1] is None
    _, resp = h.access(headers=[("Authorization", f"Bearer {far}")])
    assert resp.status == 401 and body_json(resp) == {"exp": "exceeds maximum allowed expiration"}
    # claims_to_verify (required with maximum_expiration) rejects it first (Kong's order)
    _, resp = h.access(headers=[("Authorization", f"Bearer {noexp}")])
    assert resp.status == 401 and body_json(resp) == {"exp": "must be a number"}


def test_jwt_secret_is_base64_and_key_claim_name(keys: dict[str, Any]) -> None:
    h = jwt_h(keys, secret_is_base64=True)
    token = pyjwt.encode({"iss": "b64-key"}, RAW_SECRET, algorithm="HS256")
    assert h.access(headers=[("Authorization", f"Bearer {token}")])[1] is None
    h = jwt_h(keys, key_claim_name="kid")
    token = sign(keys, "HS256", {"sub": "x"}, headers={"kid": "hs256-key"})  # from the JWT header
    ctx, resp = h.access(headers=[("Authorization", f"Bearer {token}")])
    assert resp is None and ctx.consumer is ALICE


def test_jwt_verified_cache_until_expiry(keys: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    h = jwt_h(keys, claims_to_verify=["exp"])
    plugin = h.chain().plugins[0]
    token = sign(keys, "RS256", {"iss": "rs256-key", "exp": NOW + 30})
    for _ in range(3):
        ctx, resp = h.access(headers=[("Authorization", f"Bearer {token}")])
        assert resp is None and ctx.consumer is BOB
    assert plugin.verifier.verifications == 1  # signature verified once, then cached
    _, resp = h.access(headers=[("Authorization", f"Bearer {token}")], now=NOW + 31)
    assert resp.status == 401 and body_json(resp) == {"exp": "token expired"}
    assert token not in plugin.verifier.cached_tokens()
    # a forged token is never cached
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    for _ in range(2):
        assert h.access(headers=[("Authorization", f"Bearer {forged}")])[1].status == 401
    assert forged not in plugin.verifier.cached_tokens()


def test_jwt_cache_is_bounded(keys: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jwt_plugin, "VERIFIED_CACHE_SIZE", 3)
    h = jwt_h(keys)
    plugin = h.chain().plugins[0]
    tokens = [sign(keys, "HS256", {"iss": "hs256-key", "n": i}) for i in range(5)]
    for t in tokens:
        assert h.access(headers=[("Authorization", f"Bearer {t}")])[1] is None
    assert plugin.verifier.cached_tokens() == tokens[2:]


def test_jwt_anonymous_and_preflight(keys: dict[str, Any]) -> None:
    ctx, resp = jwt_h(keys, anonymous="c-anon").access(headers=[("Authorization", "Bearer junk")])
    assert resp is None and ctx.consumer is ANON
    ctx, resp = jwt_h(keys, run_on_preflight=False).access(method="OPTIONS")
    assert resp is None and ctx.consumer is None


def test_jwt_real_clock_smoke(keys: dict[str, Any]) -> None:
    now = time.time()
    token = sign(keys, "ES256", {"iss": "es256-key", "exp": int(now) + 60})
    _, resp = jwt_h(keys, claims_to_verify=["exp"]).access(headers=[("Authorization", f"Bearer {token}")], now=now)
    assert resp is None


# ------------------------------------------------------------------ acl
ACLS = {
    "acl": [(ALICE, cred(group="admin")), (ALICE, cred(group="dev")), (BOB, cred(group="dev")), (ANON, cred(group="guest"))],
}


def acl_h(acl_conf: dict[str, Any], anonymous: str | None = None) -> Harness:
    ka: dict[str, Any] = {"anonymous": anonymous} if anonymous else {}
    return Harness([{"name": "key-auth", "config": ka}, {"name": "acl", "config": acl_conf}], env(**KEYS, **ACLS))


def test_acl_allow() -> None:
    h = acl_h({"allow": ["admin"]})
    ctx, resp = h.access(headers=[("apikey", "secret-a")])
    assert resp is None and upstream_headers(ctx)["x-consumer-groups"] == ["admin, dev"]
    _, resp = h.access(headers=[("apikey", "secret-b")])
    assert resp.status == 403 and body_json(resp) == {"message": "You cannot consume this service"}


def test_acl_deny_and_hide_groups() -> None:
    h = acl_h({"deny": ["admin"], "hide_groups_header": True})
    _, resp = h.access(headers=[("apikey", "secret-a")])
    assert resp.status == 403
    ctx, resp = h.access(headers=[("apikey", "secret-b"), ("X-Consumer-Groups", "admin")])
    assert resp is None and upstream_headers(ctx)["x-consumer-groups"] is None


def test_acl_without_consumer_is_401_and_anonymous_groups_apply() -> None:
    h = Harness([{"name": "acl", "config": {"allow": ["dev"]}}], env(**ACLS))
    _, resp = h.access()
    assert resp.status == 401 and body_json(resp) == {"message": "Unauthorized"}
    h = acl_h({"allow": ["guest"]}, anonymous="c-anon")
    ctx, resp = h.access()
    assert resp is None and ctx.consumer is ANON
    _, resp = acl_h({"allow": ["dev"]}, anonymous="c-anon").access()
    assert resp.status == 403


def test_acl_config_needs_exactly_one_list() -> None:
    from fastgw.plugins import PluginConfigError, validate_config

    for raw in ({}, {"allow": ["a"], "deny": ["b"]}):
        with pytest.raises(PluginConfigError):
            validate_config("acl", raw)
