"""Cases from Kong's spec/03-plugins: key-auth (09), basic-auth (10), jwt (16), acl (18).

Configurations use `"url": "ECHO"` for the service; the runner points it at its echo
upstream. Routes are told apart by path where Kong's specs use Host headers."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

from kong_cases import ANY, Case, Re, Step

KA = "09-key-auth/02-access_spec.lua"
BA = "10-basic-auth/03-access_spec.lua"
JW = "16-jwt/03-access_spec.lua"
AC = "18-acl/02-access_spec.lua"

NO_BODY_ANON = "00000000-0000-4000-8000-000000000000"


def proxy(method: str, path: str, **kw) -> Step:
    return Step(method, path, admin=False, **kw)


def _route(name: str, plugins: list[dict], **extra) -> dict:
    return {"name": name, "paths": [f"/{name}"], "plugins": plugins, **extra}


KEY_AUTH = {
    "services": [{"name": "echo", "url": "ECHO", "routes": [
        _route("ka1", [{"name": "key-auth"}]),
        _route("ka2", [{"name": "key-auth", "config": {"realm": "test-realm"}}]),
        _route("ka7", [{"name": "key-auth", "config": {"run_on_preflight": False}}]),
        _route("kahide", [{"name": "key-auth", "config": {"hide_credentials": True}}]),
        _route("kabody", [{"name": "key-auth", "config": {"key_in_body": True}}]),
        _route("kaanon", [{"name": "key-auth", "config": {"anonymous": "no-body"}}]),
        _route("kaanon404", [{"name": "key-auth", "config": {"anonymous": NO_BODY_ANON}}]),
        _route("kanames", [{"name": "key-auth", "config": {"key_names": ["api_key", "key"]}}]),
    ]}],
    "consumers": [{"username": "bob", "keyauth_credentials": [{"key": "kong"}]},
                  {"username": "no-body"}],
}

CASES: list[Case] = [
    Case("returns 200 on OPTIONS requests if run_on_preflight is false", f"{KA}:196",
         config=KEY_AUTH, steps=[proxy("OPTIONS", "/ka7/status/200", status=200)]),
    Case("returns Unauthorized on OPTIONS requests if run_on_preflight is true", f"{KA}:206",
         config=KEY_AUTH, steps=[proxy("OPTIONS", "/ka1/status/200", status=401,
                                       body={"message": "No API key found in request"})]),
    Case("returns Unauthorized on missing credentials", f"{KA}:220", config=KEY_AUTH, steps=[
        proxy("GET", "/ka1/status/200", status=401,
              body={"message": "No API key found in request"})]),
    Case("returns Unauthorized on empty key header", f"{KA}:233", config=KEY_AUTH, steps=[
        proxy("GET", "/ka1/status/200", headers={"apikey": ""}, status=401,
              body={"message": "No API key found in request"})]),
    Case("returns Unauthorized on empty key header with no realm", f"{KA}:248",
         config=KEY_AUTH, steps=[proxy("GET", "/ka1/status/200", headers={"apikey": ""},
                                       status=401, resp_headers={"WWW-Authenticate": "Key"})]),
    Case("returns Unauthorized on empty key header with configured realm", f"{KA}",
         config=KEY_AUTH, steps=[proxy("GET", "/ka2/status/200", headers={"apikey": ""},
                                       status=401, resp_headers={
                                           "WWW-Authenticate": 'Key realm="test-realm"'})]),
    Case("returns Unauthorized on empty key querystring", f"{KA}:282", config=KEY_AUTH, steps=[
        proxy("GET", "/ka1/status/200?apikey", status=401,
              body={"message": "No API key found in request"},
              resp_headers={"WWW-Authenticate": "Key"})]),
    Case("authenticates valid credentials in querystring", f"{KA}", config=KEY_AUTH,
         steps=[proxy("GET", "/ka1/request?apikey=kong", status=200,
                      upstream={"headers": {"x-consumer-username": "bob"}})]),
    Case("returns 401 Unauthorized on invalid key", f"{KA}:320", config=KEY_AUTH, steps=[
        proxy("GET", "/ka1/status/200?apikey=123", status=401,
              body={"message": "Unauthorized"}, resp_headers={"WWW-Authenticate": "Key"})]),
    Case("handles duplicated key in querystring", f"{KA}:334", config=KEY_AUTH, steps=[
        proxy("GET", "/ka1/status/200?apikey=kong&apikey=kong", status=401,
              body={"message": "Duplicate API key found"})]),
    Case("authenticates valid credentials in header", f"{KA}:379", config=KEY_AUTH, steps=[
        proxy("GET", "/ka1/request", headers={"apikey": "kong"}, status=200)]),
    Case("returns 401 Unauthorized on invalid key in header", f"{KA}", config=KEY_AUTH,
         steps=[proxy("GET", "/ka1/status/200", headers={"apikey": "123"}, status=401,
                      body={"message": "Unauthorized"})]),
    Case("key_names with underscore in header", f"{KA}", config=KEY_AUTH, steps=[
        proxy("GET", "/kanames/request", headers={"key": "kong"}, status=200)]),
    Case("sends Consumer headers to upstream", f"{KA}:588", config=KEY_AUTH, steps=[
        proxy("GET", "/ka1/request", headers={"apikey": "kong"}, status=200, upstream={
            "headers": {"x-consumer-username": "bob", "x-anonymous-consumer": None}})]),
    Case("(json) false sends key to upstream", f"{KA}", config=KEY_AUTH, steps=[
        proxy("POST", "/kabody/request", json={"apikey": "kong", "x": 1}, status=200,
              upstream={"json": {"apikey": "kong", "x": 1}})]),
    Case("(form) false sends key to upstream", f"{KA}", config=KEY_AUTH, steps=[
        proxy("POST", "/kabody/request", form={"apikey": "kong", "x": "1"}, status=200,
              upstream={"form": {"apikey": "kong", "x": "1"}})]),
    Case("(multipart) key in body authenticates", f"{KA}", config=KEY_AUTH, steps=[
        proxy("POST", "/kabody/request", multipart=[("apikey", "kong"), ("x", "1")],
              status=200, upstream={"headers": {"x-consumer-username": "bob"},
                                    "body_contains": "kong"})]),
    Case("hide_credentials removes apikey and preserves order of query parameters",
         f"{KA}", config=KEY_AUTH, steps=[
             proxy("GET", "/kahide/request?c=value1&b=value2&apikey=kong&a=value3", status=200,
                   upstream={"path": "/request", "query_raw": "c=value1&b=value2&a=value3"})]),
    Case("hide_credentials removes the key header", f"{KA}", config=KEY_AUTH, steps=[
        proxy("GET", "/kahide/request", headers={"apikey": "kong"}, status=200,
              upstream={"headers": {"apikey": None}})]),
    Case("works with right credentials and anonymous", f"{KA}:761", config=KEY_AUTH, steps=[
        proxy("GET", "/kaanon/request?apikey=kong", status=200, upstream={
            "headers": {"x-consumer-username": "bob", "x-anonymous-consumer": None}})]),
    Case("works with wrong credentials and username as anonymous", f"{KA}:787",
         config=KEY_AUTH, steps=[proxy("GET", "/kaanon/request?apikey=123", status=200,
                                       upstream={"headers": {
                                           "x-anonymous-consumer": "true",
                                           "x-consumer-username": "no-body"}})]),
    Case("errors when anonymous user doesn't exist", f"{KA}:799", config=KEY_AUTH, steps=[
        proxy("GET", "/kaanon404/request", status=500, body={
            "message": f"anonymous consumer {NO_BODY_ANON} is configured but doesn't exist"})]),
]

# ------------------------------------------------------------------------------- basic-auth
BASIC = {
    "services": [{"name": "echo", "url": "ECHO", "routes": [
        _route("ba1", [{"name": "basic-auth"}]),
        _route("ba2", [{"name": "basic-auth", "config": {"hide_credentials": True}}]),
        _route("ba3", [{"name": "basic-auth", "config": {"anonymous": "no-body"}}]),
        _route("barealm", [{"name": "basic-auth", "config": {"realm": "test-realm"}}]),
    ]}],
    "consumers": [{"username": "bob", "basicauth_credentials": [
        {"username": "bob", "password": "kong"},
        {"username": "user123", "password": "password123"}]}, {"username": "no-body"}],
}


def _basic(user: str, pw: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()


CASES += [
    Case("returns Unauthorized on missing credentials", f"{BA}:156", config=BASIC, steps=[
        proxy("GET", "/ba1/status/200", status=401, body={"message": "Unauthorized"},
              resp_headers={"WWW-Authenticate": 'Basic realm="service"'})]),
    Case("returns WWW-Authenticate header with the configured realm", f"{BA}",
         config=BASIC, steps=[proxy("GET", "/barealm/status/200", status=401,
                                    resp_headers={"WWW-Authenticate":
                                                  'Basic realm="test-realm"'})]),
    Case("returns 401 Unauthorized on invalid credentials in Authorization", f"{BA}:175",
         config=BASIC, steps=[proxy("GET", "/ba1/status/200",
                                    headers={"Authorization": "foobar"}, status=401,
                                    body={"message": "Unauthorized"})]),
    Case("returns 401 Unauthorized on invalid credentials in Proxy-Authorization",
         f"{BA}:191", config=BASIC, steps=[
             proxy("GET", "/ba1/status/200", headers={"Proxy-Authorization": "foobar"},
                   status=401, body={"message": "Unauthorized"})]),
    Case("returns 401 Unauthorized on password only", f"{BA}:207", config=BASIC, steps=[
        proxy("GET", "/ba1/status/200", headers={"Authorization": "Basic a29uZw=="},
              status=401, body={"message": "Unauthorized"})]),
    Case("returns 401 Unauthorized on username only", f"{BA}:223", config=BASIC, steps=[
        proxy("GET", "/ba1/status/200", headers={"Authorization": "Basic Ym9i"},
              status=401, body={"message": "Unauthorized"})]),
    Case("rejects gibberish in credentials", f"{BA}", config=BASIC, steps=[
        proxy("GET", "/ba1/status/200", headers={
            "Authorization": "Basic " + base64.b64encode(b"\xff\xfe:\x00").decode()},
              status=401, body={"message": "Unauthorized"})]),
    Case("authenticates valid credentials in Authorization", f"{BA}:259", config=BASIC,
         steps=[proxy("GET", "/ba1/request", headers={"Authorization": _basic("bob", "kong")},
                      status=200, upstream={"headers": {"x-consumer-username": "bob",
                                                        "x-credential-identifier": "bob"}})]),
    Case("authenticates with a password containing ':'", f"{BA}:285",
         config={**BASIC, "consumers": [{"username": "c", "basicauth_credentials": [
             {"username": "user321", "password": "pass:word:123"}]}]},
         steps=[proxy("GET", "/ba1/request",
                      headers={"Authorization": _basic("user321", "pass:word:123")},
                      status=200)]),
    Case("returns 401 for valid Base64 encoding with a wrong password", f"{BA}",
         config=BASIC, steps=[proxy("GET", "/ba1/status/200",
                                    headers={"Authorization": _basic("bob", "nope")},
                                    status=401, body={"message": "Unauthorized"})]),
    Case("authenticates valid credentials in Proxy-Authorization", f"{BA}:315", config=BASIC,
         steps=[proxy("GET", "/ba1/request",
                      headers={"Proxy-Authorization": _basic("user123", "password123")},
                      status=200)]),
    Case("hide_credentials removes Authorization", f"{BA}", config=BASIC, steps=[
        proxy("GET", "/ba2/request", headers={"Authorization": _basic("bob", "kong")},
              status=200, upstream={"headers": {"authorization": None}})]),
    Case("basic-auth works with wrong credentials and anonymous", f"{BA}", config=BASIC,
         steps=[proxy("GET", "/ba3/request", status=200, upstream={"headers": {
             "x-anonymous-consumer": "true", "x-consumer-username": "no-body"}})]),
]

# ------------------------------------------------------------------------------- jwt
SECRET = "secret-of-kong"


def _b64(d: bytes) -> str:
    return base64.urlsafe_b64encode(d).rstrip(b"=").decode()


def hs256(claims: dict, secret: str = SECRET, header: dict | None = None) -> str:
    h = _b64(json.dumps(header or {"typ": "JWT", "alg": "HS256"}).encode())
    p = _b64(json.dumps(claims).encode())
    sig = hmac.new(secret.encode(), f"{h}.{p}".encode(), hashlib.sha256).digest()
    return f"{h}.{p}.{_b64(sig)}"


JWT = {
    "services": [{"name": "echo", "url": "ECHO", "routes": [
        _route("jw1", [{"name": "jwt"}]),
        _route("jwexp", [{"name": "jwt", "config": {"claims_to_verify": ["exp"]}}]),
        _route("jwnbf", [{"name": "jwt", "config": {"claims_to_verify": ["nbf"]}}]),
        _route("jwrealm", [{"name": "jwt", "config": {"realm": "kong"}}]),
        _route("jwcookie", [{"name": "jwt", "config": {"cookie_names": ["choco"]}}]),
        _route("jwanon", [{"name": "jwt", "config": {"anonymous": "no-body"}}]),
        _route("jwmax", [{"name": "jwt", "config": {"claims_to_verify": ["exp"],
                                                    "maximum_expiration": 300}}]),
    ]}],
    "consumers": [{"username": "jwt_tests_consumer", "jwt_secrets": [
        {"key": "jwt-key", "secret": SECRET}]}, {"username": "no-body"}],
}
NOW = int(time.time())

CASES += [
    Case("returns 401 Unauthorized if no JWT is found in the request", f"{JW}:296",
         config=JWT, steps=[proxy("GET", "/jw1/request", status=401,
                                  body={"message": "Unauthorized"},
                                  resp_headers={"WWW-Authenticate": "Bearer"})]),
    Case("returns 401 if the claims do not contain the key to identify a secret", f"{JW}:307",
         config=JWT, steps=[proxy("GET", "/jw1/request", headers={
             "Authorization": "Bearer " + hs256({"sub": "x"})}, status=401,
             body={"message": "No mandatory 'iss' in claims"},
             resp_headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})]),
    Case("returns 401 if the claims do not contain a valid key", f"{JW}", config=JWT,
         steps=[proxy("GET", "/jw1/request", headers={
             "Authorization": "Bearer " + hs256({"iss": "nope"})}, status=401,
             body={"message": "No credentials found for given 'iss'"})]),
    Case("returns 401 Unauthorized if the signature is invalid", f"{JW}:358", config=JWT,
         steps=[proxy("GET", "/jw1/request", headers={
             "Authorization": "Bearer " + hs256({"iss": "jwt-key"}, secret="bad")},
             status=401, body={"message": "Invalid signature"})]),
    Case("returns 401 if the alg does not match the credential", f"{JW}", config=JWT,
         steps=[proxy("GET", "/jw1/request", headers={
             "Authorization": "Bearer " + hs256({"iss": "jwt-key"},
                                                header={"typ": "JWT", "alg": "HS512"})},
             status=401, body={"message": ANY})]),
    Case("returns 401 Unauthorized with a malformed token", f"{JW}", config=JWT, steps=[
        proxy("GET", "/jw1/request", headers={"Authorization": "Bearer a.b"}, status=401,
              body={"message": "Bad token; invalid JSON"})]),
    Case("proxies the request with a valid token in Authorization", f"{JW}", config=JWT,
         steps=[proxy("GET", "/jw1/request", headers={
             "Authorization": "Bearer " + hs256({"iss": "jwt-key"})}, status=200,
             upstream={"headers": {"x-consumer-username": "jwt_tests_consumer",
                                   "x-credential-identifier": "jwt-key"}})]),
    Case("finds the JWT in the uri param jwt", f"{JW}", config=JWT, steps=[
        proxy("GET", "/jw1/request?jwt=" + hs256({"iss": "jwt-key"}), status=200)]),
    Case("finds the JWT in a cookie", f"{JW}", config=JWT, steps=[
        proxy("GET", "/jwcookie/request", headers={
            "Cookie": "choco=" + hs256({"iss": "jwt-key"})}, status=200)]),
    Case("returns 401 with multiple different tokens", f"{JW}", config=JWT, steps=[
        proxy("GET", "/jw1/request?jwt=" + hs256({"iss": "jwt-key", "a": 1}), headers={
            "Authorization": "Bearer " + hs256({"iss": "jwt-key"})}, status=401,
            body={"message": "Multiple tokens provided"})]),
    Case("WWW-Authenticate carries the realm", f"{JW}", config=JWT, steps=[
        proxy("GET", "/jwrealm/request", status=401,
              resp_headers={"WWW-Authenticate": 'Bearer realm="kong"'}),
        proxy("GET", "/jwrealm/request", headers={"Authorization": "Bearer a.b"}, status=401,
              resp_headers={"WWW-Authenticate": 'Bearer realm="kong", error="invalid_token"'})]),
    Case("claims_to_verify exp: a token without exp is rejected", "16-jwt/01-jwt_parser_spec.lua:250",
         config=JWT, steps=[proxy("GET", "/jwexp/request", headers={
             "Authorization": "Bearer " + hs256({"iss": "jwt-key"})}, status=401,
             body={"exp": "must be a number"})]),
    Case("claims_to_verify exp: an expired token is rejected", f"{JW}", config=JWT,
         steps=[proxy("GET", "/jwexp/request", headers={
             "Authorization": "Bearer " + hs256({"iss": "jwt-key", "exp": NOW - 10})},
             status=401, body={"exp": "token expired"})]),
    Case("claims_to_verify exp: a valid token passes", f"{JW}", config=JWT, steps=[
        proxy("GET", "/jwexp/request", headers={
            "Authorization": "Bearer " + hs256({"iss": "jwt-key", "exp": NOW + 600})},
              status=200)]),
    Case("claims_to_verify nbf: a token not valid yet is rejected", f"{JW}", config=JWT,
         steps=[proxy("GET", "/jwnbf/request", headers={
             "Authorization": "Bearer " + hs256({"iss": "jwt-key", "nbf": NOW + 600})},
             status=401, body={"nbf": "token not valid yet"})]),
    Case("maximum_expiration rejects a token expiring too late", f"{JW}", config=JWT,
         steps=[proxy("GET", "/jwmax/request", headers={
             "Authorization": "Bearer " + hs256({"iss": "jwt-key", "exp": NOW + 3600})},
             status=401, body={"exp": "exceeds maximum allowed expiration"})]),
    Case("jwt works with wrong credentials and anonymous", f"{JW}", config=JWT, steps=[
        proxy("GET", "/jwanon/request", status=200, upstream={"headers": {
            "x-anonymous-consumer": "true", "x-consumer-username": "no-body"}})]),
]

# ------------------------------------------------------------------------------- acl
ACL = {
    "services": [{"name": "echo", "url": "ECHO", "routes": [
        _route("acl1", [{"name": "key-auth"}, {"name": "acl", "config": {"allow": ["admin"]}}]),
        _route("acl2", [{"name": "key-auth"}, {"name": "acl", "config": {"deny": ["admin"]}}]),
        _route("acl3", [{"name": "acl", "config": {"allow": ["admin"]}}]),
    ]}],
    "consumers": [
        {"username": "admin", "keyauth_credentials": [{"key": "apikey-admin"}],
         "acls": [{"group": "admin"}]},
        {"username": "user", "keyauth_credentials": [{"key": "apikey-user"}],
         "acls": [{"group": "user"}]}],
}
CASES += [
    Case("allows an allowed group", f"{AC}", config=ACL, steps=[
        proxy("GET", "/acl1/request?apikey=apikey-admin", status=200,
              upstream={"headers": {"x-consumer-groups": "admin"}})]),
    Case("rejects a consumer outside the allowed groups", f"{AC}", config=ACL, steps=[
        proxy("GET", "/acl1/request?apikey=apikey-user", status=403,
              body={"message": "You cannot consume this service"})]),
    Case("rejects a denied group", f"{AC}", config=ACL, steps=[
        proxy("GET", "/acl2/request?apikey=apikey-admin", status=403,
              body={"message": "You cannot consume this service"})]),
    Case("allows a group not denied", f"{AC}", config=ACL, steps=[
        proxy("GET", "/acl2/request?apikey=apikey-user", status=200)]),
    Case("acl without authentication is 401", f"{AC}", config=ACL, steps=[
        proxy("GET", "/acl3/request", status=401, body={"message": "Unauthorized"})]),
]

CASES += [
    Case("authenticate for up to ttl", f"{KA}:1084", config={
        "services": [{"name": "echo", "url": "ECHO", "routes": [
            _route("kattl", [{"name": "key-auth"}])]}],
        "consumers": [{"username": "ttl-user"}]}, steps=[
        Step("POST", "/consumers/ttl-user/key-auth", json={"key": "ttl-key", "ttl": 2},
             status=201),
        proxy("GET", "/kattl/x", headers={"apikey": "ttl-key"}, status=200),
        proxy("GET", "/kattl/x", headers={"apikey": "ttl-key"}, status=401, sleep=2.2,
              body={"message": "Unauthorized"})]),
]

KA_BODY = {
    "services": [{"name": "echo", "url": "ECHO", "routes": [
        _route("ka5", [{"name": "key-auth", "config": {"key_in_body": True}}]),
        _route("ka6", [{"name": "key-auth", "config": {"key_in_body": True,
                                                      "hide_credentials": True}}]),
        _route("kaq", [{"name": "key-auth"}]),
        _route("kaqh", [{"name": "key-auth", "config": {"hide_credentials": True}}]),
    ]}],
    "consumers": [{"username": "bob", "keyauth_credentials": [{"key": "kong"}]}],
}
for _ct, _kw, _exp in (
        ("json", lambda b: {"json": b}, lambda b: {"json": b}),
        ("form", lambda b: {"form": b}, lambda b: {"form": b}),
        ("multipart", lambda b: {"multipart": list(b.items())}, None)):
    CASES += [
        Case(f"({_ct}) true doesn't send key to upstream", f"{KA}:671", config=KA_BODY, steps=[
            proxy("POST", "/ka6/request", status=200, **_kw({"apikey": "kong", "foo": "bar"}),
                  upstream={"body_lacks": "apikey"})]),
        Case(f"({_ct}) true preserves body MIME type", f"{KA}:684", config=KA_BODY, steps=[
            proxy("POST", "/ka6/request", status=200, **_kw({"apikey": "kong", "foo": "bar"}),
                  upstream=(_exp({"foo": "bar"}) if _exp else {"body_contains": "bar"}))]),
    ]
CASES += [
    Case("fails with 'key_in_body' and unsupported content type", f"{KA}:700", config=KA_BODY,
         steps=[proxy("POST", "/ka5/status/200", raw=b"foobar",
                      headers={"Content-Type": "text/plain"}, status=401,
                      body={"message": "No API key found in request"},
                      resp_headers={"WWW-Authenticate": "Key"})]),
    Case("does not remove apikey and preserves order of query parameters", f"{KA}:717",
         config=KA_BODY, steps=[
             proxy("GET", "/kaq/request?c=value1&b=value2&apikey=kong&a=value3", status=200,
                   upstream={"query_raw": "c=value1&b=value2&apikey=kong&a=value3"})]),
    Case("removes apikey in encoded query and preserves order of query parameters",
         f"{KA}:745", config=KA_BODY, steps=[
             proxy("GET", "/kaqh/request?c=valu%651&b=value2&api%6B%65%79=kong&a=valu%653",
                   status=200, upstream={"query_raw": "c=value1&b=value2&a=value3"})]),
]
CASES += [
    Case("authenticates with a percent-encoded key name in the query", f"{KA}:745",
         config=KA_BODY, steps=[proxy("GET", "/kaq/request?api%6B%65%79=kong", status=200,
                                      upstream={"headers": {"x-consumer-username": "bob"}})]),
]

B64_SECRET = base64.b64encode(b"base64-secret-of-kong").decode()
JWT2 = {
    "services": [{"name": "echo", "url": "ECHO", "routes": [
        _route("jwt3", [{"name": "jwt", "config": {"claims_to_verify": ["exp", "nbf"]}}]),
        _route("jwt9", [{"name": "jwt", "config": {"cookie_names": ["silly", "crumble"],
                                                   "realm": "test-jwt"}}]),
        _route("jwthdr", [{"name": "jwt", "config": {"header_names": ["CustomAuthorization"]}}]),
        _route("jwtparam", [{"name": "jwt", "config": {"uri_param_names": ["token", "jwt"]}}]),
        _route("jwtclaim", [{"name": "jwt", "config": {"key_claim_name": "aud"}}]),
        _route("jwtb64", [{"name": "jwt", "config": {"secret_is_base64": True}}]),
        _route("jwtpre", [{"name": "jwt", "config": {"run_on_preflight": False}}]),
        _route("jwtmax", [{"name": "jwt", "config": {"claims_to_verify": ["exp"],
                                                     "maximum_expiration": 600}}]),
    ]}],
    "consumers": [
        {"username": "jwt_tests_consumer", "jwt_secrets": [{"key": "jwt-key", "secret": SECRET}]},
        {"username": "b64", "jwt_secrets": [{"key": "b64-key", "secret": B64_SECRET}]}],
}
BEARER_ERR = 'Bearer error="invalid_token"'
CASES += [
    Case("requires the checked fields to be in the claims", f"{JW}:1122", config=JWT2, steps=[
        proxy("GET", "/jwt3/request/?jwt=" + hs256({"iss": "jwt-key"}), status=401,
              body={"nbf": "must be a number", "exp": "must be a number"},
              resp_headers={"WWW-Authenticate": BEARER_ERR})]),
    Case("checks if the fields are valid: `exp` claim", f"{JW}:1138", config=JWT2, steps=[
        proxy("GET", "/jwt3/request/?jwt=" + hs256({"iss": "jwt-key", "exp": NOW - 10,
                                                    "nbf": NOW - 10}), status=401,
              text='{"exp":"token expired"}', resp_headers={"WWW-Authenticate": BEARER_ERR})]),
    Case("checks if the fields are valid: `nbf` claim", f"{JW}:1156", config=JWT2, steps=[
        proxy("GET", "/jwt3/request/?jwt=" + hs256({"iss": "jwt-key", "exp": NOW + 600,
                                                    "nbf": NOW + 300}), status=401,
              text='{"nbf":"token not valid yet"}')]),
    Case("returns 200 the JWT is found in the cookie crumble", f"{JW}:571", config=JWT2, steps=[
        proxy("GET", "/jwt9/request", headers={
            "Cookie": "crumble=" + hs256({"iss": "jwt-key"}) + "; path=/;domain=.jwt9.test"},
              status=200)]),
    Case("returns 401 if the JWT found in the cookie does not match a credential", f"{JW}:597",
         config=JWT2, steps=[proxy("GET", "/jwt9/request", headers={
             "Cookie": "silly=" + hs256({"iss": "incorrect-issuer"}) + "; path=/"},
             status=401, body={"message": "No credentials found for given 'iss'"},
             resp_headers={"WWW-Authenticate": 'Bearer realm="test-jwt", error="invalid_token"'})]),
    Case("returns a 401 if the JWT in the cookie is corrupted", f"{JW}:613", config=JWT2, steps=[
        proxy("GET", "/jwt9/request", headers={
            "Cookie": "silly=no-way-this-works" + hs256({"iss": "jwt-key"}) + "; path=/"},
              status=401, text='{"message":"Bad token; invalid JSON"}',
              resp_headers={"WWW-Authenticate": 'Bearer realm="test-jwt", error="invalid_token"'})]),
    Case("returns 401 if no JWT tokens are found in cookies or Authorization header",
         f"{JW}:641", config=JWT2, steps=[
             proxy("GET", "/jwt9/request", status=401, body={"message": "Unauthorized"},
                   resp_headers={"WWW-Authenticate": 'Bearer realm="test-jwt"'})]),
    Case("returns 200 without cookies but with a JWT token in the CustomAuthorization header",
         f"{JW}:652", config=JWT2, steps=[
             proxy("GET", "/jwthdr/request", headers={
                 "CustomAuthorization": "Bearer " + hs256({"iss": "jwt-key"})}, status=200)]),
    Case("finds the JWT if given in a custom URL parameter", f"{JW}:690", config=JWT2, steps=[
        proxy("GET", "/jwtparam/request/?token=" + hs256({"iss": "jwt-key"}), status=200)]),
    Case("proxies the request if secret key is stored in a field other than iss", f"{JW}:523",
         config=JWT2, steps=[proxy("GET", "/jwtclaim/request", headers={
             "Authorization": "Bearer " + hs256({"aud": "jwt-key"})}, status=200,
             upstream={"headers": {"x-consumer-username": "jwt_tests_consumer"}})]),
    Case("proxies the request if secret is base64", f"{JW}:540", config=JWT2, steps=[
        proxy("GET", "/jwtb64/request", headers={
            "Authorization": "Bearer " + hs256({"iss": "b64-key"},
                                               secret="base64-secret-of-kong")},
              status=200, upstream={"headers": {"x-consumer-username": "b64"}})]),
    Case("jwt: returns 200 on OPTIONS requests if run_on_preflight is false", f"{JW}:392",
         config=JWT2, steps=[proxy("OPTIONS", "/jwtpre/request", status=200)]),
    Case("jwt: returns Unauthorized on OPTIONS requests if run_on_preflight is true",
         f"{JW}:402", config=JWT2, steps=[proxy("OPTIONS", "/jwt9/request", status=401,
                                                body={"message": "Unauthorized"})]),
    Case("accepts a JWT token within the maximum allowed expiration limit", f"{JW}:432",
         config=JWT2, steps=[proxy("GET", "/jwtmax/request", headers={
             "Authorization": "Bearer " + hs256({"iss": "jwt-key", "exp": NOW + 300})},
             status=200)]),
    Case("returns 401 if the token exceeds the maximum allowed expiration limit", f"{JW}:414",
         config=JWT2, steps=[proxy("GET", "/jwtmax/request", headers={
             "Authorization": "Bearer " + hs256({"iss": "jwt-key", "exp": NOW + 3600})},
             status=401, text='{"exp":"exceeds maximum allowed expiration"}')]),
]

# ------------------------------------------------------------------------------- several auth plugins
ANON_ID = "0a4bd3a4-4ff0-4ed6-9c54-2a2d81bd9c11"
MULTI = {
    "services": [{"name": "echo", "url": "ECHO", "routes": [
        _route("land", [{"name": "basic-auth"}, {"name": "key-auth"}]),
        _route("lor", [{"name": "basic-auth", "config": {"anonymous": ANON_ID}},
                       {"name": "key-auth", "config": {"anonymous": ANON_ID}}]),
    ]}],
    "consumers": [
        {"id": ANON_ID, "username": "Anonymous"},
        {"username": "Mickey", "keyauth_credentials": [{"key": "Mouse"}]},
        {"username": "Aladdin", "basicauth_credentials": [{"username": "Aladdin",
                                                           "password": "OpenSesame"}]}],
}
ALADDIN = "Basic QWxhZGRpbjpPcGVuU2VzYW1l"
CASES += [
    Case("logical AND: passes with all credentials provided", f"{BA}:543", config=MULTI, steps=[
        proxy("GET", "/land/request", headers={"apikey": "Mouse", "Authorization": ALADDIN},
              status=200, upstream={"headers": {"x-anonymous-consumer": None,
                                                "x-consumer-username": Re("Mickey|Aladdin")}})]),
    Case("logical AND: fails 401, with only the first credential provided", f"{BA}:560",
         config=MULTI, steps=[proxy("GET", "/land/request", headers={"apikey": "Mouse"},
                                    status=401)]),
    Case("logical AND: fails 401, with only the second credential provided", f"{BA}:572",
         config=MULTI, steps=[proxy("GET", "/land/request", headers={"Authorization": ALADDIN},
                                    status=401, resp_headers={"WWW-Authenticate": "Key"})]),
    Case("logical AND: fails 401, with no credential provided", f"{BA}:585", config=MULTI,
         steps=[proxy("GET", "/land/request", status=401,
                      resp_headers={"WWW-Authenticate": ANY})]),
    Case("logical OR: passes with all credentials provided", f"{BA}:601", config=MULTI, steps=[
        proxy("GET", "/lor/request", headers={"apikey": "Mouse", "Authorization": ALADDIN},
              status=200, upstream={"headers": {"x-anonymous-consumer": None}})]),
    Case("logical OR: passes with only the first credential provided", f"{BA}:618",
         config=MULTI, steps=[proxy("GET", "/lor/request", headers={"apikey": "Mouse"},
                                    status=200, upstream={"headers": {
                                        "x-anonymous-consumer": None,
                                        "x-consumer-username": "Mickey"}})]),
    Case("logical OR: passes with only the second credential provided", f"{BA}:634",
         config=MULTI, steps=[proxy("GET", "/lor/request", headers={"Authorization": ALADDIN},
                                    status=200, upstream={"headers": {
                                        "x-anonymous-consumer": None,
                                        "x-consumer-username": "Aladdin"}})]),
    Case("logical OR: passes with no credential provided", f"{BA}:650", config=MULTI, steps=[
        proxy("GET", "/lor/request", status=200, upstream={"headers": {
            "x-anonymous-consumer": "true", "x-consumer-id": ANON_ID}})]),
]
