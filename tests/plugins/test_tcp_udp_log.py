"""tcp-log and udp-log through a real gateway to loopback collectors (Kong's
spec/03-plugins/01-tcp-log and 02-udp-log): one JSON entry (Kong's serializer) per request."""
from __future__ import annotations

import datetime
import json
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gw_helpers import config_errors, kong_config, route, serve, tcp_collector, udp_collector

LUA_ERR = ("Lua code is not supported: fastgw never runs code taken from the configuration "
           "(set log fields with a plugin calling ctx.set_serialize_value instead)")

SCHEMA_CASES = [
    ("tcp-log", {"host": "127.0.0.1", "port": 1}, {}),
    ("tcp-log", {"port": 1}, {"config.host": "required field missing"}),
    ("tcp-log", {"host": "127.0.0.1"}, {"config.port": "required field missing"}),
    ("tcp-log", {"host": "127.0.0.1", "port": 70000}, {"config.port": "value should be between 0 and 65535"}),
    ("tcp-log", {"host": "a b", "port": 1}, {"config.host": "invalid value: a b"}),
    ("tcp-log", {"host": "example.com:80", "port": 1}, {"config.host": "must not have a port"}),
    ("tcp-log", {"host": "127.0.0.1", "port": 1, "custom_fields_by_lua": {"a": "return 1"}},
     {"config.custom_fields_by_lua": LUA_ERR}),
    ("udp-log", {"host": "localhost", "port": 53}, {}),
    ("udp-log", {"host": "localhost", "port": 53, "keepalive": 1}, {"config.keepalive": "unknown field"}),
    ("udp-log", {"host": "localhost", "port": 53, "custom_fields_by_lua": {"a": "return 1"}},
     {"config.custom_fields_by_lua": LUA_ERR}),
]


@pytest.mark.parametrize("plugin,conf,errors", SCHEMA_CASES)
def test_schema(plugin, conf, errors):
    assert config_errors(plugin, conf) == errors


def _check_entry(entry, path, status):
    assert entry["request"]["method"] == "GET"
    assert entry["request"]["uri"] == path
    assert entry["response"]["status"] == status
    assert entry["route"]["name"] == "logged" and entry["service"]["name"] == "echo"
    assert entry["client_ip"] == "127.0.0.1"
    assert entry["request"]["headers"]["authorization"] == "REDACTED"
    assert entry["latencies"]["request"] >= 0


def test_tcp_log_sends_one_json_line_per_request(echo_upstream):
    # the collector lives on the gateway's loop, so the config naming its port comes by update()
    async def scenario(client):
        col = await tcp_collector()
        client.gateway.update(kong_config(echo_upstream.port, [route("logged", [
            {"name": "tcp-log", "config": {"host": "127.0.0.1", "port": col.port}}])]))
        r = await client.get("/logged/a?x=1", headers={"Authorization": "secret"})
        assert r.status == 200
        r = await client.get("/logged/b", headers={"Authorization": "secret", "X-Echo": "status=404"})
        items = await col.wait(2)
        assert all(i.endswith(b"\n") for i in items)
        _check_entry(json.loads(items[0]), "/logged/a?x=1", 200)
        _check_entry(json.loads(items[1]), "/logged/b", 404)
        assert col.connections == 1  # kept alive between entries
        col.close()

    serve(kong_config(echo_upstream.port, []), scenario)


def _self_signed() -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "collector.test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


def test_tcp_log_over_tls(echo_upstream, tmp_path):
    cert, key = _self_signed()
    (tmp_path / "c.pem").write_bytes(cert)
    (tmp_path / "k.pem").write_bytes(key)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")

    async def scenario(client):
        col = await tcp_collector(ctx)
        client.gateway.update(kong_config(echo_upstream.port, [route("logged", [
            {"name": "tcp-log", "config": {"host": "127.0.0.1", "port": col.port, "tls": True,
                                           "tls_sni": "collector.test"}}])]))
        assert (await client.get("/logged/tls", headers={"Authorization": "x"})).status == 200
        _check_entry(json.loads((await col.wait(1))[0]), "/logged/tls", 200)
        col.close()

    serve(kong_config(echo_upstream.port, []), scenario)


def test_udp_log_sends_one_datagram_per_request(echo_upstream):
    async def scenario(client):
        col = await udp_collector()
        client.gateway.update(kong_config(echo_upstream.port, [route("logged", [
            {"name": "udp-log", "config": {"host": "127.0.0.1", "port": col.port}}])]))
        for p in ("/logged/1", "/logged/2"):
            assert (await client.get(p, headers={"Authorization": "x"})).status == 200
        items = await col.wait(2)
        _check_entry(json.loads(items[0]), "/logged/1", 200)
        _check_entry(json.loads(items[1]), "/logged/2", 200)
        col.close()

    serve(kong_config(echo_upstream.port, []), scenario)


def test_unreachable_collector_does_not_affect_requests(echo_upstream):
    import socket as s

    with s.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]

    async def scenario(client):
        client.gateway.update(kong_config(echo_upstream.port, [route("logged", [
            {"name": "tcp-log", "config": {"host": "127.0.0.1", "port": dead, "timeout": 200}}])]))
        for _ in range(3):
            assert (await client.get("/logged/x")).status == 200

    serve(kong_config(echo_upstream.port, []), scenario)
