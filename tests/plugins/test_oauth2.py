"""oauth2 through a real gateway (Kong's spec/03-plugins/25-oauth2): the authorize and token
endpoints for every flow, Bearer authentication, PKCE, refresh, scopes, and the
oauth2_credentials entity (kong.yml nesting, Admin API, hashed secrets)."""
from __future__ import annotations

import base64
import hashlib
import json
from urllib.parse import parse_qs, urlsplit

import pytest

from fastgw.testing import FakeClock

from gw_helpers import config_errors, kong_config, route, serve, serve_with_admin

NOW = 1_800_000_000.0
PK = "provision123"
HTTPS = {"X-Forwarded-Proto": "https"}
FLOWS = {"enable_authorization_code": True, "enable_implicit_grant": True, "enable_client_credentials": True,
         "enable_password_grant": True}

SCHEMA_CASES = [
    ({"enable_password_grant": True}, {}),
    ({}, {"config.@entity": "at least one of these fields must be true: enable_authorization_code, enable_implicit_grant, "
                    "enable_client_credentials, enable_password_grant"}),
    ({"enable_password_grant": True, "mandatory_scope": True}, {"config.scopes": "required field missing"}),
    ({"enable_password_grant": True, "pkce": "sometimes"}, {"config.pkce": "expected one of: none, lax, strict"}),
    ({"enable_password_grant": True, "refresh_token_ttl": -1},
     {"config.refresh_token_ttl": "value should be between 0 and 100000000"}),
]


@pytest.mark.parametrize("conf,errors", SCHEMA_CASES)
def test_schema(conf, errors):
    assert config_errors("oauth2", conf) == errors


def test_provision_key_is_generated():
    from fastgw.plugins import validate_config

    assert len(validate_config("oauth2", {"enable_password_grant": True}).provision_key) == 32


def test_credential_entity_validation():
    from fastgw.config.errors import ConfigError
    from fastgw.gateway import load_config

    doc = {"_format_version": "3.0", "consumers": [{"username": "bob", "oauth2_credentials": [
        {"name": "a", "redirect_uris": ["not a uri"]}, {"name": "b", "redirect_uris": ["http://x.test/#frag"]},
        {"name": "c", "client_type": "secret"}]}]}
    with pytest.raises(ConfigError) as e:
        load_config(doc)
    errs = dict(e.value.errors)
    assert errs["consumers[0].oauth2_credentials[0].redirect_uris[0]"] == "cannot parse 'not a uri'"
    assert errs["consumers[0].oauth2_credentials[1].redirect_uris[0]"] == "fragment not allowed in 'http://x.test/#frag'"
    assert "consumers[0].oauth2_credentials[2].client_type" in errs
    cfg = load_config({"_format_version": "3.0", "consumers": [{"username": "bob", "oauth2_credentials": [
        {"name": "gen", "hash_secret": True, "client_secret": "s3cret"}]}]})
    cred = cfg.oauth2_credentials[0]
    assert len(cred.client_id) == 32 and cred.client_secret.startswith("$pbkdf2-sha512$i=10000,l=32$")


def _config(port, **conf):
    plugin = {"name": "oauth2", "config": {"provision_key": PK, "scopes": ["email", "profile"],
                                           "accept_http_if_already_terminated": True, **FLOWS, **conf}}
    routes = [route("api", [plugin]),
              route("plain", [{"name": "oauth2", "config": {"enable_password_grant": True}}])]
    consumers = [{"username": "bob", "oauth2_credentials": [
        {"name": "app", "client_id": "clientid123", "client_secret": "secret123",
         "redirect_uris": ["http://google.test/kong", "http://other.test/cb?x=1"]},
        {"name": "hashed", "client_id": "hashedclient", "client_secret": "hashsecret", "hash_secret": True,
         "redirect_uris": ["http://google.test/kong"]},
        {"name": "spa", "client_id": "publicclient", "client_type": "public",
         "redirect_uris": ["http://spa.test/cb"]}]}]
    return kong_config(port, routes, consumers=consumers)


def _serve(port, scenario, **conf):
    return serve(_config(port, **conf), scenario, clock=FakeClock(NOW), trusted_ips=("127.0.0.1",))


def _seen(r):
    return {k.lower(): v for k, v in json.loads(r.body)["headers"]}


def _form(**kw):
    return "&".join(f"{k}={v}" for k, v in kw.items()).encode()


FORM = {"Content-Type": "application/x-www-form-urlencoded", **HTTPS}


async def _token(client, **kw):
    return await client.post("/api/oauth2/token", body=_form(**kw), headers=FORM)


def test_client_credentials_password_and_bearer(echo_upstream):
    async def scenario(client):
        r = await _token(client, grant_type="client_credentials", client_id="clientid123",
                         client_secret="secret123", scope="email")
        assert r.status == 200, r.body
        assert r.headers["cache-control"] == "no-store" and r.headers["pragma"] == "no-cache"
        doc = r.json()
        assert set(doc) == {"access_token", "token_type", "expires_in"} and doc["expires_in"] == 7200
        assert len(doc["access_token"]) == 32 and doc["token_type"] == "bearer"
        seen = _seen(await client.get("/api/x", headers={"Authorization": f"Bearer {doc['access_token']}"}))
        assert seen["x-consumer-username"] == "bob" and seen["x-credential-identifier"] == "clientid123"
        assert seen["x-authenticated-scope"] == "email" and "x-authenticated-userid" not in seen
        # access_token as a query parameter too
        assert (await client.get(f"/api/x?access_token={doc['access_token']}")).status == 200

        # password grant (Basic client auth) -> refresh token
        basic = base64.b64encode(b"clientid123:secret123").decode()
        r = await client.post("/api/oauth2/token", body=_form(grant_type="password", provision_key=PK,
                                                              authenticated_userid="user1", scope="email%20profile"),
                              headers={**FORM, "Authorization": f"Basic {basic}"})
        assert r.status == 200, r.body
        doc = r.json()
        assert "refresh_token" in doc
        seen = _seen(await client.get("/api/x", headers={"Authorization": f"bearer {doc['access_token']}"}))
        assert seen["x-authenticated-userid"] == "user1" and seen["x-authenticated-scope"] == "email profile"
        # refresh: a new pair, the old refresh token is gone
        r = await _token(client, grant_type="refresh_token", client_id="clientid123", client_secret="secret123",
                         refresh_token=doc["refresh_token"])
        assert r.status == 200 and r.json()["access_token"] != doc["access_token"]
        r2 = await _token(client, grant_type="refresh_token", client_id="clientid123", client_secret="secret123",
                          refresh_token=doc["refresh_token"])
        assert r2.status == 400 and r2.json() == {"error": "invalid_request",
                                                  "error_description": "Invalid refresh_token"}
        # hashed secret
        r = await _token(client, grant_type="client_credentials", client_id="hashedclient", client_secret="hashsecret")
        assert r.status == 200
        r = await _token(client, grant_type="client_credentials", client_id="hashedclient", client_secret="nope")
        assert r.status == 400 and r.json()["error"] == "invalid_client"

    _serve(echo_upstream.port, scenario)


# (form params, status, error, description) — token endpoint errors from 03-access_spec
TOKEN_ERRORS = [
    ({"grant_type": "foo", "client_id": "clientid123", "client_secret": "secret123"}, 400,
     "unsupported_grant_type", "Invalid grant_type"),
    ({"grant_type": "client_credentials", "client_id": "clientid123", "client_secret": "wrong"}, 400,
     "invalid_client", "Invalid client authentication"),
    ({"grant_type": "client_credentials", "client_id": "clientid123", "client_secret": "secret123",
      "scope": "wot"}, 400, "invalid_scope", '"wot" is an invalid scope'),
    ({"grant_type": "password", "client_id": "clientid123", "client_secret": "secret123",
      "authenticated_userid": "u"}, 400, "invalid_provision_key", "Invalid provision_key"),
    ({"grant_type": "password", "client_id": "clientid123", "client_secret": "secret123", "provision_key": PK},
     400, "invalid_authenticated_userid", "Missing authenticated_userid parameter"),
    ({"grant_type": "authorization_code", "client_id": "clientid123", "client_secret": "secret123",
      "code": "nope"}, 400, "invalid_request", "Invalid code"),
    ({"grant_type": "authorization_code", "client_id": "clientid123", "client_secret": "secret123",
      "code": "x", "redirect_uri": "http://evil.test"}, 400, "invalid_request",
     "Invalid redirect_uri that does not match with any redirect_uri created with the application"),
    ({"grant_type": "password", "client_id": "publicclient", "client_secret": "x", "provision_key": PK,
      "authenticated_userid": "u"}, 400, "invalid_request", "client_secret is disallowed for public clients"),
]


def test_token_endpoint_errors(echo_upstream):
    async def scenario(client):
        for i, (params, status, error, desc) in enumerate(TOKEN_ERRORS):
            r = await _token(client, **params)
            assert (r.status, r.json()) == (status, {"error": error, "error_description": desc}), i
        # Basic credentials that fail: 401 with Kong's challenge
        bad = base64.b64encode(b"clientid123:wrong").decode()
        r = await client.post("/api/oauth2/token", body=_form(grant_type="password"),
                              headers={**FORM, "Authorization": f"Basic {bad}"})
        assert r.status == 401 and r.headers["www-authenticate"] == 'Basic realm="OAuth2.0"'
        r = await client.get("/api/oauth2/token")
        assert r.status == 405 and r.json() == {"error": "invalid_method", "error_description":
                                                "The HTTP method GET is invalid for the token endpoint"}
        r = await client.post("/plain/oauth2/token", body=_form(grant_type="password"),
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert r.status == 400 and r.json() == {"error": "access_denied", "error_description": "You must use HTTPS"}
        r = await client.post("/api/oauth2/token", body=_form(grant_type="password", state="s1"),
                              headers={"Content-Type": "application/x-www-form-urlencoded"})  # no X-Forwarded-Proto
        assert r.json() == {"error": "access_denied", "error_description": "You must use HTTPS", "state": "s1"}

    _serve(echo_upstream.port, scenario)


def test_authorization_code_flow_with_pkce(echo_upstream):
    verifier = "v" * 50
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")

    async def scenario(client):
        r = await client.post("/api/oauth2/authorize", headers=FORM, body=_form(
            provision_key=PK, client_id="clientid123", response_type="code", scope="email",
            authenticated_userid="user1", state="xyz", redirect_uri="http://other.test/cb?x=1"))
        assert r.status == 200, r.body
        uri = urlsplit(r.json()["redirect_uri"])
        q = parse_qs(uri.query)
        assert uri.netloc == "other.test" and q["x"] == ["1"] and q["state"] == ["xyz"]
        code = q["code"][0]
        r = await _token(client, grant_type="authorization_code", client_id="clientid123",
                         client_secret="secret123", code=code, redirect_uri="http://other.test/cb?x=1")
        assert r.status == 200, r.body
        token = r.json()
        seen = _seen(await client.get("/api/x", headers={"Authorization": f"Bearer {token['access_token']}"}))
        assert seen["x-authenticated-userid"] == "user1"
        r = await _token(client, grant_type="authorization_code", client_id="clientid123",
                         client_secret="secret123", code=code)
        assert r.json()["error_description"] == "Invalid code"   # a code is used once

        # public client: PKCE required (pkce "lax")
        r = await client.post("/api/oauth2/authorize", headers=FORM, body=_form(
            provision_key=PK, client_id="publicclient", response_type="code", authenticated_userid="u"))
        assert r.status == 400
        q = parse_qs(urlsplit(r.json()["redirect_uri"]).query)
        assert q["error"] == ["invalid_request"] and q["error_description"] == ["code_challenge is required for public clients"]
        r = await client.post("/api/oauth2/authorize", headers=FORM, body=_form(
            provision_key=PK, client_id="publicclient", response_type="code", authenticated_userid="u",
            code_challenge=challenge, code_challenge_method="S256"))
        code = parse_qs(urlsplit(r.json()["redirect_uri"]).query)["code"][0]
        r = await _token(client, grant_type="authorization_code", client_id="publicclient", code=code,
                         code_verifier="w" * 50)
        assert r.json() == {"error": "invalid_grant", "error_description": "Invalid code"}
        r = await _token(client, grant_type="authorization_code", client_id="publicclient", code=code,
                         code_verifier=verifier)
        assert r.status == 200 and "refresh_token" in r.json()

        # implicit grant: the token in the fragment, no refresh token
        r = await client.post("/api/oauth2/authorize", headers=FORM, body=_form(
            provision_key=PK, client_id="clientid123", response_type="token", authenticated_userid="u"))
        frag = parse_qs(urlsplit(r.json()["redirect_uri"]).fragment)
        assert frag["token_type"] == ["bearer"] and "refresh_token" not in frag
        # authorize errors
        r = await client.post("/api/oauth2/authorize", headers=FORM, body=_form(
            provision_key="bad", client_id="clientid123", response_type="code", authenticated_userid="u"))
        assert r.status == 400 and r.json() == {"error": "invalid_provision_key",
                                                "error_description": "Invalid provision_key"}
        r = await client.post("/api/oauth2/authorize", headers=FORM, body=_form(
            provision_key=PK, client_id="nobody", response_type="code", authenticated_userid="u"))
        assert r.json() == {"error": "invalid_client", "error_description": "Invalid client authentication"}
        r = await client.post("/api/oauth2/authorize", headers=FORM, body=_form(
            provision_key=PK, client_id="clientid123", response_type="nope", authenticated_userid="u"))
        q = parse_qs(urlsplit(r.json()["redirect_uri"]).query)
        assert q["error"] == ["unsupported_response_type"]

    _serve(echo_upstream.port, scenario)


def test_bearer_errors_expiry_and_service_scoping(echo_upstream):
    clock = FakeClock(NOW)

    async def scenario(client):
        r = await client.get("/api/x")
        assert r.status == 401 and r.json() == {"error": "invalid_request",
                                                "error_description": "The access token is missing"}
        assert r.headers["www-authenticate"] == 'Bearer realm="service"'
        r = await client.get("/api/x", headers={"Authorization": "Bearer nope"})
        assert r.status == 401 and r.json()["error"] == "invalid_token"
        assert r.headers["www-authenticate"] == ('Bearer realm="service", error="invalid_token", '
                                                 'error_description="The access token is invalid or has expired"')
        tok = (await _token(client, grant_type="client_credentials", client_id="clientid123",
                            client_secret="secret123")).json()["access_token"]
        assert (await client.get("/api/x", headers={"Authorization": f"Bearer {tok}"})).status == 200
        clock.advance(7201)
        assert (await client.get("/api/x", headers={"Authorization": f"Bearer {tok}"})).status == 401

    serve(_config(echo_upstream.port, realm="service"), scenario, clock=clock, trusted_ips=("127.0.0.1",))


def test_hide_credentials(echo_upstream):
    async def scenario(client):
        tok = (await _token(client, grant_type="client_credentials", client_id="clientid123",
                            client_secret="secret123")).json()["access_token"]
        r = await client.get("/api/x", headers={"Authorization": f"Bearer {tok}"})
        assert "authorization" not in _seen(r)
        r = await client.get(f"/api/x?access_token={tok}&a=1")
        assert r.status == 200 and json.loads(r.body)["target"] == "/x?a=1"
        r = await client.post("/api/x", body=_form(access_token=tok, b="2"),
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert r.status == 200 and json.loads(r.body)["body"] == "b=2"

    _serve(echo_upstream.port, scenario, hide_credentials=True)


def test_credentials_admin_api(echo_upstream):
    async def scenario(proxy, admin):
        r = await admin.post("/consumers/bob/oauth2", json={"name": "new app", "redirect_uris": ["http://n.test/cb"]})
        assert r.status == 201, r.body
        cred = r.json()
        assert len(cred["client_id"]) == 32 and len(cred["client_secret"]) == 32
        assert (await admin.get(f"/oauth2/{cred['client_id']}")).json()["name"] == "new app"
        r = await proxy.post("/api/oauth2/token", headers=FORM, body=_form(
            grant_type="client_credentials", client_id=cred["client_id"], client_secret=cred["client_secret"]))
        assert r.status == 200
        r = await admin.post("/consumers/bob/oauth2", json={"name": "x", "redirect_uris": ["nope"]})
        assert r.status == 400
        assert (await admin.delete(f"/oauth2/{cred['id']}")).status == 204
        r = await proxy.post("/api/oauth2/token", headers=FORM, body=_form(
            grant_type="client_credentials", client_id=cred["client_id"], client_secret=cred["client_secret"]))
        assert r.status == 400

    serve_with_admin(_config(echo_upstream.port), scenario, trusted_ips=("127.0.0.1",))
