"""The Admin API's /certificates, /snis and /ca_certificates with Kong's status codes and
error bodies (spec/02-integration/04-admin_api/06-certificates_routes_spec.lua,
16-ca_certificates_routes_spec.lua), and a running TLS listener that a bad change leaves
alone while a good one reaches the next handshake."""
from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import trustme
import uvloop
from tls_helpers import ca_pem, client_context, https_request, issue

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "admin"))
from admin_helpers import Client  # noqa: E402

from fastgw.admin.app import AdminAPI  # noqa: E402
from fastgw.config.store import ConfigStore  # noqa: E402
from fastgw.gateway import Gateway  # noqa: E402


def _cert(ca: trustme.CA, *names: str, **extra: Any) -> dict[str, Any]:
    c, k = issue(ca, *(names or ("x.test",)))
    return {"cert": c, "key": k, **extra}


def test_post_certificate_with_snis_and_read_it_back(ca):
    c = Client()
    st, body = c.call("POST", "/certificates", _cert(ca, snis=["b.test", "A.test"]))[:2]
    assert st == 201, body
    assert body["snis"] == ["a.test", "b.test"]
    cid = body["id"]
    st, got = c.call("GET", f"/certificates/{cid}")[:2]
    assert st == 200 and got["snis"] == ["a.test", "b.test"] and got["cert"] == body["cert"]
    # by one of its SNI names
    st, got = c.call("GET", "/certificates/b.test")[:2]
    assert st == 200 and got["id"] == cid
    st, got = c.call("GET", "/certificates/nope.test")[:2]
    assert st == 404 and got == {"message": "SNI not found"}
    st, lst = c.call("GET", "/snis")[:2]
    assert sorted(s["name"] for s in lst["data"]) == ["a.test", "b.test"]
    assert all(s["certificate"] == {"id": cid} for s in lst["data"])
    st, nested = c.call("GET", f"/certificates/{cid}/snis")[:2]
    assert st == 200 and len(nested["data"]) == 2
    st, lst = c.call("GET", "/certificates")[:2]
    assert st == 200 and lst["data"][0]["snis"] == ["a.test", "b.test"]


def test_certificate_errors_have_kongs_shapes(ca):
    c = Client()
    st, body = c.call("POST", "/certificates", {})[:2]
    assert st == 400 and body["message"] == ("2 schema violations (cert: required field "
                                             "missing; key: required field missing)")
    assert body["fields"] == {"cert": "required field missing",
                              "key": "required field missing"}
    other = issue(ca, "other.test")
    st, body = c.call("POST", "/certificates", _cert(ca) | {"key": other[1]})[:2]
    assert st == 400 and body["code"] == 2
    assert body["message"] == "schema violation (certificate does not match key)"
    st, body = c.call("POST", "/certificates", {"cert": "not a pem", "key": other[1]})[:2]
    assert st == 400 and body["fields"]["cert"].startswith("invalid certificate")
    st, body = c.call("POST", "/certificates", _cert(ca) | {"cert_alt": other[0]})[:2]
    assert st == 400 and body["message"] == ("schema violation (all or none of these fields "
                                             "must be set: 'cert_alt', 'key_alt')")
    same = issue(ca, "alt.test")
    st, body = c.call("POST", "/certificates",
                      _cert(ca) | {"cert_alt": same[0], "key_alt": same[1]})[:2]
    assert st == 400 and "need to have different type" in body["message"]
    st, body = c.call("POST", "/certificates", _cert(ca, snis=["d.test", "d.test"]))[:2]
    assert st == 400 and body["message"] == "schema violation (snis: d.test is duplicated)"
    st, first = c.call("POST", "/certificates", _cert(ca, snis=["taken.test"]))[:2]
    st, body = c.call("POST", "/certificates", _cert(ca, snis=["taken.test", "new.test"]))[:2]
    assert st == 400 and body["message"] == (
        "schema violation (snis: taken.test already associated with existing certificate "
        f"'{first['id']}')")
    # nothing of the refused requests was kept
    assert [s.name for s in c.store.config.snis] == ["taken.test"]
    assert len(c.store.config.certificates) == 1
    st, body = c.call("POST", "/snis", {"name": "taken.test",
                                        "certificate": {"id": first["id"]}})[:2]
    assert st == 409 and body["name"] == "unique constraint violation"
    st, body = c.call("POST", "/snis", {"name": "*.a.*", "certificate": {"id": first["id"]}})
    assert st == 400 and body["fields"]["name"] == "only one wildcard must be specified"
    st, body = c.call("POST", "/snis", {})[:2]
    assert body["message"] == ("2 schema violations (certificate: required field missing; "
                               "name: required field missing)")
    st, _ = c.call("GET", "/snis/taken.test/certificate")[:2]
    assert st == 405


def test_put_patch_and_delete_manage_the_sni_list(ca):
    c = Client()
    # PUT by SNI name creates a certificate owning that name
    st, body = c.call("PUT", "/certificates/put.test", _cert(ca, snis=["extra.test"]))[:2]
    assert st == 200 and body["snis"] == ["extra.test", "put.test"]
    cid = body["id"]
    st, body = c.call("PATCH", f"/certificates/{cid}", {"snis": ["only.test"]})[:2]
    assert st == 200 and body["snis"] == ["only.test"]
    assert [s.name for s in c.store.config.snis] == ["only.test"]
    st, body = c.call("PATCH", f"/certificates/{cid}", {"tags": ["t"]})[:2]
    assert body["snis"] == ["only.test"] and body["tags"] == ["t"]
    # PUT without snis removes them (Kong: snis = ngx.null on PUT)
    st, body = c.call("PUT", f"/certificates/{cid}", _cert(ca))[:2]
    assert st == 200 and body["snis"] == [] and not c.store.config.snis
    st, _ = c.call("POST", f"/certificates/{cid}/snis", {"name": "nested.test"})[:2]
    assert st == 201
    st, got = c.call("GET", f"/certificates/{cid}/snis/nested.test")[:2]
    assert st == 200 and got["certificate"] == {"id": cid}
    assert c.call("DELETE", f"/certificates/{cid}")[0] == 204
    assert not c.store.config.certificates and not c.store.config.snis
    assert c.call("DELETE", f"/certificates/{cid}")[0] == 204


def test_a_certificate_used_by_a_service_cannot_be_deleted(ca):
    c = Client()
    cid = c.call("POST", "/certificates", _cert(ca))[1]["id"]
    st, svc = c.call("POST", "/services", {"url": "https://127.0.0.1:9443",
                                           "client_certificate": {"id": cid}})[:2]
    assert st == 201 and svc["client_certificate"] == {"id": cid}
    st, body = c.call("DELETE", f"/certificates/{cid}")[:2]
    assert st == 400 and body["code"] == 4


def test_ca_certificates(ca):
    c = Client()
    st, body = c.call("POST", "/ca_certificates", {"cert": ca_pem(ca)})[:2]
    assert st == 201 and len(body["cert_digest"]) == 64
    caid = body["id"]
    st, body = c.call("POST", "/ca_certificates", {"cert": ca_pem(ca)})[:2]
    assert st == 409
    st, body = c.call("POST", "/ca_certificates", {})[:2]
    assert st == 400 and body["message"] == "schema violation (cert: required field missing)"
    leaf = issue(ca, "leaf.test")[0].split("-----END CERTIFICATE-----")[0] + \
        "-----END CERTIFICATE-----\n"
    st, body = c.call("POST", "/ca_certificates", {"cert": leaf})[:2]
    assert st == 400 and body["message"] == (
        'schema violation (certificate does not appear to be a CA because it is missing the '
        '"CA" basic constraint)')
    two = ca_pem(ca) + ca_pem(trustme.CA())
    st, body = c.call("POST", "/ca_certificates", {"cert": two})[:2]
    assert body["message"] == "schema violation (please submit only one certificate at a time)"
    st, svc = c.call("POST", "/services", {"url": "https://127.0.0.1:9443",
                                           "ca_certificates": [caid]})[:2]
    assert st == 201
    st, body = c.call("DELETE", f"/ca_certificates/{caid}")[:2]
    assert st == 400 and body["message"] == (f"ca certificate {caid} is still referenced by "
                                             f"services (id = {svc['id']})")
    st, body = c.call("POST", "/services", {"url": "https://127.0.0.1:9443",
                                            "ca_certificates": [svc["id"]]})[:2]
    assert st == 400
    assert c.call("DELETE", f"/services/{svc['id']}")[0] == 204
    assert c.call("DELETE", f"/ca_certificates/{caid}")[0] == 204


def test_admin_changes_reach_a_running_listener_and_bad_ones_do_not(ca):
    good = _cert(ca, "live.test", snis=["live.test"])

    async def main() -> None:
        gw = Gateway({"_format_version": "3.0"})
        await gw.start("127.0.0.1:0 ssl")
        store = ConfigStore(gw.config, gw.update)
        api = AdminAPI(store, gw)

        async def call(method: str, path: str, body: Any) -> tuple[int, Any]:
            import orjson
            st, _, out = await api.handle(method, path, {}, {"content-type":
                                                             "application/json"},
                                          orjson.dumps(body))
            return st, orjson.loads(out) if out else None

        tls = gw.listeners[0].port
        trust = client_context(ca)
        try:
            st, body = await call("POST", "/certificates", good)
            assert st == 201
            r = await https_request(tls, sni="live.test", ctx=trust)
            assert r.names == ["live.test"]
            other = issue(ca, "bad.test")
            st, _ = await call("PATCH", f"/certificates/{body['id']}", {"key": other[1]})
            assert st == 400
            r = await https_request(tls, sni="live.test", ctx=client_context(ca))
            assert r.names == ["live.test"]
            assert (await call("DELETE", f"/certificates/{body['id']}", None))[0] == 204
            r = await https_request(tls, sni="live.test", ctx=client_context(None))
            assert r.names == ["localhost"]
        finally:
            await gw.stop()

    uvloop.run(asyncio.wait_for(main(), 60))
