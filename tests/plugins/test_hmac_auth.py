"""hmac-auth through a real gateway: Kong's spec/03-plugins/19-hmac-auth (schema, access, API).
Signatures are computed here; the clock is a FakeClock so Date skew is exact."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
from email.utils import formatdate

import pytest

from fastgw.testing import FakeClock

from gw_helpers import config_errors, kong_config, route, serve, serve_with_admin

NOW = 1_800_000_000.0
DATE = formatdate(NOW, usegmt=True)
SECRET = "secret"


def sign(lines: list[str], algo: str = "sha256", secret: str = SECRET) -> str:
    d = hmac.new(secret.encode(), "\n".join(lines).encode(), getattr(hashlib, algo)).digest()
    return base64.b64encode(d).decode()


def auth(headers: str, signature: str, username: str = "bob", algorithm: str = "hmac-sha256") -> str:
    return f'hmac username="{username}",algorithm="{algorithm}",headers="{headers}",signature="{signature}"'


SCHEMA_CASES = [
    ({}, {}),
    ({"clock_skew": 10}, {}),
    ({"clock_skew": -10}, {"config.clock_skew": "value must be greater than 0"}),
    ({"algorithms": ["sha1024"]},
     {"config.algorithms[0]": "expected one of: hmac-sha1, hmac-sha256, hmac-sha384, hmac-sha512"}),
    ({"algorithms": ["hmac-sha1", "hmac-sha256"]}, {}),
]


@pytest.mark.parametrize("conf,errors", SCHEMA_CASES)
def test_schema(conf, errors):
    assert config_errors("hmac-auth", conf) == errors


def _config(port, **extra_routes):
    routes = [
        route("h", [{"name": "hmac-auth", "config": {}}]),
        route("hide", [{"name": "hmac-auth", "config": {"hide_credentials": True, "realm": "test"}}]),
        route("enf", [{"name": "hmac-auth", "config": {"enforce_headers": ["date", "request-line"],
                                                        "algorithms": ["hmac-sha256", "hmac-sha512"]}}]),
        route("anon", [{"name": "hmac-auth", "config": {"anonymous": "anonymous"}}]),
        route("ghost", [{"name": "hmac-auth", "config": {"anonymous": "ghost-consumer"}}]),
        route("body", [{"name": "hmac-auth", "config": {"validate_request_body": True}}]),
    ]
    consumers = [{"username": "bob", "custom_id": "1234",
                  "hmacauth_credentials": [{"username": "bob", "secret": SECRET}]},
                 {"username": "anonymous"}]
    return kong_config(port, routes, consumers=consumers)


def _seen(r):
    return {k.lower(): v for k, v in json.loads(r.body)["headers"]}


# (path, headers, status, message) — Kong's 03-access_spec cases, data-driven
def _cases():
    rl = sign([f"date: {DATE}", "GET /h/request HTTP/1.1"])
    rt = sign([f"date: {DATE}", "@request-target: get /h/request?a=1&b=%20c"])
    return [
        ("/h/request", {}, 401, "Unauthorized"),
        ("/h/request", {"Authorization": "asd", "Date": DATE}, 401, "HMAC signature cannot be verified"),
        ("/h/request", {"Authorization": auth("date", sign([f"date: {DATE}"]))}, 401,
         "HMAC signature cannot be verified, a valid date or x-date header is required for HMAC Authentication"),
        ("/h/request", {"Date": DATE, "Authorization": auth("date", "wrong")}, 401, "HMAC signature does not match"),
        ("/h/request", {"Date": DATE, "Authorization": auth("date", "not=base64")}, 401, "HMAC signature does not match"),
        ("/h/request", {"Date": DATE, "Authorization": auth("date", sign([f"date: {DATE}"]), username="alice")},
         401, "HMAC signature cannot be verified"),
        ("/h/request", {"Date": DATE, "Authorization": auth("date", sign([f"date: {DATE}"]), algorithm="hmac-sha3")},
         401, "HMAC signature cannot be verified"),
        ("/h/request", {"Date": DATE, "Authorization": f'hmac username="bob",signature="{sign([f"date: {DATE}"])}"'},
         401, "HMAC signature cannot be verified"),
        ("/h/request", {"Date": DATE, "Authorization": auth("date", sign([f"date: {DATE}"]))}, 200, None),
        ("/h/request", {"Date": DATE, "Proxy-Authorization": auth("date", sign([f"date: {DATE}"]))}, 200, None),
        ("/h/request", {"Date": DATE, "Authorization": "hello",
                        "Proxy-Authorization": auth("date", sign([f"date: {DATE}"]))}, 200, None),
        ("/h/request", {"Date": DATE, "Authorization": auth("date", sign([f"date: {DATE}"])),
                        "Proxy-Authorization": "hello"}, 200, None),
        ("/h/request", {"Date": DATE, "Authorization": auth("date request-line", rl)}, 200, None),
        ("/h/request?a=1&b=%20c", {"Date": DATE, "Authorization": auth("date @request-target", rt)}, 200, None),
        ("/h/request?a=1", {"Date": DATE, "Authorization": auth("date request-line", rl)}, 401,
         "HMAC signature does not match"),  # signed without the query
        ("/h/request", {"X-Date": DATE, "Authorization": auth("x-date", sign([f"x-date: {DATE}"]))}, 200, None),
        ("/h/request", {"X-Date": "wrong", "Date": DATE, "Authorization": auth("date", sign([f"date: {DATE}"]))},
         200, None),
        ("/h/request", {"Date": formatdate(NOW - 301, usegmt=True),
                        "Authorization": auth("date", sign([f"date: {formatdate(NOW - 301, usegmt=True)}"]))},
         401, "HMAC signature cannot be verified, a valid date or x-date header is required for HMAC Authentication"),
        ("/h/request", {"Date": DATE, "Authorization": auth("date content-md5", sign([f"date: {DATE}", "content-md5:"]))},
         200, None),  # a listed header the request does not have signs as "name:"
        ("/h/request", {"Date": DATE, "Authorization": auth("date", sign([f"date: {DATE}"], "sha1"), algorithm="hmac-sha1")},
         200, None),
        ("/enf/request", {"Date": DATE, "Authorization": auth("date", sign([f"date: {DATE}"]))}, 401,
         "HMAC signature cannot be verified"),  # enforced request-line not signed
        ("/enf/request", {"Date": DATE, "Authorization": auth(
            "date request-line", sign([f"date: {DATE}", "GET /enf/request HTTP/1.1"], "sha512"), algorithm="hmac-sha512")},
         200, None),
        ("/enf/request", {"Date": DATE, "Authorization": auth(
            "date request-line", sign([f"date: {DATE}", "GET /enf/request HTTP/1.1"], "sha1"), algorithm="hmac-sha1")},
         401, "HMAC signature cannot be verified"),  # algorithm not allowed here
    ]


def test_access_cases(echo_upstream):
    cases = _cases()

    async def scenario(client):
        for i, (path, headers, status, message) in enumerate(cases):
            r = await client.get(path, headers=headers)
            assert r.status == status, (i, path, headers, r.body)
            if message is not None:
                assert r.json() == {"message": message}, i
                assert r.headers["www-authenticate"] == "hmac", i
            else:
                seen = _seen(r)
                assert seen["x-consumer-username"] == "bob" and seen["x-credential-identifier"] == "bob"
                assert seen["x-consumer-custom-id"] == "1234" and "x-anonymous-consumer" not in seen
                assert "authorization" in seen or "proxy-authorization" in seen  # not hidden by default

    serve(_config(echo_upstream.port), scenario, clock=FakeClock(NOW))


def test_hide_credentials_realm_and_anonymous(echo_upstream):
    good = auth("date", sign([f"date: {DATE}"]))

    async def scenario(client):
        r = await client.get("/hide/x", headers={"Date": DATE, "Authorization": good})
        assert r.status == 200 and "authorization" not in _seen(r)
        r = await client.get("/hide/x", headers={"Date": DATE, "Authorization": "bad"})
        assert r.headers["www-authenticate"] == 'hmac realm="test"'
        r = await client.get("/anon/x", headers={"Date": DATE, "Authorization": good})
        assert _seen(r)["x-consumer-username"] == "bob"
        r = await client.get("/anon/x")
        seen = _seen(r)
        assert r.status == 200 and seen["x-consumer-username"] == "anonymous" and seen["x-anonymous-consumer"] == "true"
        r = await client.get("/ghost/x")
        assert r.status == 500
        assert r.json() == {"message": "anonymous consumer ghost-consumer is configured but doesn't exist"}

    serve(_config(echo_upstream.port), scenario, clock=FakeClock(NOW))


def test_body_validation(echo_upstream):
    body = b'{"a":"apple","b":"ball"}'
    digest = "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()
    signed = auth("date digest", sign([f"date: {DATE}", f"digest: {digest}"]))
    plain = auth("date", sign([f"date: {DATE}"]))

    async def scenario(client):
        assert (await client.get("/body/x", headers={"Date": DATE, "Authorization": plain})).status == 200
        r = await client.post("/body/x", body=body, headers={"Date": DATE, "Authorization": signed, "Digest": digest})
        assert r.status == 200
        r = await client.post("/body/x", body=body, headers={"Date": DATE, "Authorization": plain, "Digest": digest})
        assert r.status == 200   # digest present but not signed: still checked against the body
        r = await client.post("/body/x", body=body, headers={"Date": DATE, "Authorization": plain})
        assert r.status == 401 and r.json()["message"] == "HMAC signature does not match"
        r = await client.post("/body/x", body=body + b" ", headers={"Date": DATE, "Authorization": signed, "Digest": digest})
        assert r.status == 401
        r = await client.post("/body/x", body=body, headers={"Date": DATE, "Authorization": signed, "Digest": digest + "x"})
        assert r.status == 401

    serve(_config(echo_upstream.port), scenario, clock=FakeClock(NOW))


def test_credentials_admin_api(echo_upstream):
    async def scenario(proxy, admin):
        r = await admin.post("/consumers/bob/hmac-auth", json={"username": "bob-2", "secret": "s2"})
        assert r.status == 201, r.body
        cred = r.json()
        assert cred["username"] == "bob-2" and cred["consumer"]["id"]
        r = await admin.post("/consumers/bob/hmac-auth", json={"username": "gen"})
        assert r.status == 201 and len(r.json()["secret"]) == 32  # generated when absent
        r = await admin.get("/consumers/bob/hmac-auth")
        assert {c["username"] for c in r.json()["data"]} == {"bob", "bob-2", "gen"}
        r = await admin.get("/hmac-auths/bob-2")
        assert r.status == 200 and r.json()["id"] == cred["id"]
        r = await admin.post("/consumers/bob/hmac-auth", json={"username": "bob-2"})
        assert r.status == 409
        # the new credential authenticates at once
        r = await proxy.get("/h/x", headers={"Date": DATE, "Authorization": auth(
            "date", sign([f"date: {DATE}"], secret="s2"), username="bob-2")})
        assert r.status == 200 and _seen(r)["x-credential-identifier"] == "bob-2"
        assert (await admin.delete(f"/hmac-auths/{cred['id']}")).status == 204
        r = await proxy.get("/h/x", headers={"Date": DATE, "Authorization": auth(
            "date", sign([f"date: {DATE}"], secret="s2"), username="bob-2")})
        assert r.status == 401

    serve_with_admin(_config(echo_upstream.port), scenario, clock=FakeClock(NOW))


def test_declarative_nesting_and_no_consumer_scope():
    from fastgw.config.errors import ConfigError
    from fastgw.gateway import load_config

    cfg = load_config(_config(1))
    (cred,) = cfg.hmacauth_credentials
    assert cred.username == "bob" and cred.consumer == cfg.consumers[0].id
    doc = {"_format_version": "3.0", "consumers": [{"username": "a", "plugins": [{"name": "hmac-auth"}]}]}
    with pytest.raises(ConfigError) as e:
        load_config(doc)
    assert any(m == "value must be null" for _, m in e.value.errors)


def test_schema_validate_endpoint(echo_upstream):
    async def scenario(proxy, admin):
        r = await admin.post("/schemas/hmacauth_credentials/validate", json={"username": "u", "consumer": {"id": "x"}})
        assert r.status == 200, r.body
        r = await admin.post("/schemas/oauth2_credentials/validate", json={"name": "n", "consumer": {"id": "x"}})
        assert r.status == 200, r.body
        r = await admin.post("/schemas/oauth2_credentials/validate", json={"consumer": {"id": "x"}})
        assert r.status == 400 and "name" in r.body.decode()

    serve_with_admin(_config(echo_upstream.port), scenario)
