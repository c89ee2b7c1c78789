"""kong.conf + KONG_* / FASTGW_* + flags, with Kong's precedence; bad values named."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from ops_helpers import Node, assert_one_line_error, clean_env, fastgw, free_port, http_get, \
    write_config

from fastgw.conf import SettingsError, load_settings
from fastgw.conf.kongconf import parse_conf_text


def test_conf_format_comments_escapes_and_case() -> None:
    text = "# a comment\n\nLOG_LEVEL = debug  # trailing\nheaders = off\n" \
           "pg_password = se\\#cret\nproxy_listen=127.0.0.1:9000\n"
    assert parse_conf_text(text) == {"log_level": "debug", "headers": "off",
                                     "pg_password": "se#cret",
                                     "proxy_listen": "127.0.0.1:9000"}


def test_precedence_defaults_file_env_flags(tmp_path: Path) -> None:
    conf = tmp_path / "kong.conf"
    conf.write_text("log_level = error\nproxy_listen = 127.0.0.1:9001\n"
                    "admin_listen = off\nnginx_worker_processes = 3\n")
    s = load_settings(str(conf), environ={})
    assert (s.log_level, s.proxy_listen, s.admin_listen, s.workers) == \
        ("error", ["127.0.0.1:9001"], [], 3)
    assert s.source("log_level") == f"file {conf}" and s.source("trusted_ips") == "default"
    env = {"KONG_LOG_LEVEL": "warn", "KONG_PROXY_LISTEN": "127.0.0.1:9002",
           "FASTGW_PROXY_LISTEN": "127.0.0.1:9003"}
    s = load_settings(str(conf), environ=env)
    assert s.log_level == "warn" and s.proxy_listen == ["127.0.0.1:9003"]
    assert s.source("proxy_listen") == "env FASTGW_PROXY_LISTEN"
    s = load_settings(str(conf), environ=env, flags={"proxy_listen": "127.0.0.1:9004",
                                                     "log_level": None})
    assert s.proxy_listen == ["127.0.0.1:9004"] and s.log_level == "warn"


def test_kong_value_forms() -> None:
    s = load_settings(None, environ={"KONG_TRUSTED_IPS": "10.0.0.0/8, ::1",
                                     "KONG_REAL_IP_RECURSIVE": "on",
                                     "KONG_NGINX_WORKER_PROCESSES": "auto",
                                     "KONG_NODE_ID": "NONE",
                                     "KONG_HEADERS": "Server, X-Kong-Upstream-Latency"})
    assert s.trusted_ips == ["10.0.0.0/8", "::1"] and s.real_ip_recursive is True
    assert s.workers >= 1 and s.node_id is None
    assert s.header_enabled("server") and not s.header_enabled("via")
    assert s.header_enabled("x-kong-upstream-latency")
    assert not s.header_enabled("x-kong-proxy-latency")


@pytest.mark.parametrize("env,needle", [
    ({"KONG_TRUSTED_IPS": "10.0.0.300"}, "trusted_ips (env KONG_TRUSTED_IPS)"),
    ({"KONG_REAL_IP_RECURSIVE": "maybe"}, "expected on or off"),
    ({"KONG_HEADERS": "x-powered-by"}, "unknown header token"),
    ({"KONG_LOG_LEVEL": "loud"}, "log_level"),
    ({"KONG_NGINX_WORKER_PROCESSES": "lots"}, "nginx_worker_processes"),
])
def test_bad_values_name_key_and_source(env: dict[str, str], needle: str) -> None:
    with pytest.raises(SettingsError, match=None) as ei:
        load_settings(None, environ=env)
    assert needle in str(ei.value)


def test_unknown_and_inert_keys_are_warned_by_name(tmp_path: Path) -> None:
    conf = tmp_path / "kong.conf"
    conf.write_text("mem_cache_size = 256m\nproxy_lisen = 127.0.0.1:1\n")
    s = load_settings(str(conf), environ={"KONG_LUA_SSL_VERIFY_DEPTH": "2",
                                          "KONG_NOT_A_THING": "x"})
    text = "\n".join(s.warnings)
    for name in ("mem_cache_size", "proxy_lisen", "KONG_LUA_SSL_VERIFY_DEPTH",
                 "KONG_NOT_A_THING"):
        assert name in text


@pytest.mark.parametrize("env,needle", [
    ({"KONG_DATABASE": "postgres", "KONG_PG_SSL": "on"},
     "pg_ssl (env KONG_PG_SSL) is not supported yet"),
    ({"KONG_ADMIN_SSL_CERT": "/tmp/c.pem", "KONG_ADMIN_SSL_CERT_KEY": "/tmp/k.pem"},
     "admin_ssl_cert (env KONG_ADMIN_SSL_CERT) is not supported yet"),
    ({"KONG_PROXY_LISTEN": "127.0.0.1:0 deferred"}, "listen flag 'deferred'"),
    ({"KONG_REAL_IP_HEADER": "proxy_protocol"}, "proxy_protocol is not supported yet"),
    ({"KONG_HEADERS_UPSTREAM": "x-consumer-id"}, "headers_upstream (env KONG_HEADERS_UPSTREAM)"),
])
def test_features_not_in_this_build_fail_clearly(tmp_path: Path, env: dict[str, str],
                                                 needle: str) -> None:
    r = fastgw("run", "-c", str(write_config(tmp_path)), env=clean_env(**env))
    assert_one_line_error(r, needle)


def test_pg_settings_pass_through_with_database_off() -> None:
    s = load_settings(None, environ={"KONG_PG_HOST": "db.internal", "KONG_PG_PORT": "6543"})
    s.check_supported()
    assert (s.pg_host, s.pg_port) == ("db.internal", 6543)


def _start(env: dict[str, str], *args: str) -> tuple[Node, int]:
    port = int(env.get("KONG_PROXY_LISTEN", "x:0").rsplit(":", 1)[1]) or free_port()
    node = Node(*args, env=env)
    node.wait_port(port)
    return node, port


def test_env_declarative_config_is_served_not_the_demo(tmp_path: Path) -> None:
    """With KONG_DECLARATIVE_CONFIG set, that file is served and the startup log says so;
    without one the log says loudly that it is the demo."""
    cfg = write_config(tmp_path, upstream_port=free_port())
    port, admin = free_port(), free_port()
    env = clean_env(KONG_DECLARATIVE_CONFIG=str(cfg), KONG_PROXY_LISTEN=f"127.0.0.1:{port}",
                    KONG_ADMIN_LISTEN=f"127.0.0.1:{admin}", KONG_PROXY_ACCESS_LOG="off")
    node, _ = _start(env)
    try:
        node.wait_port(admin)
        status, _, body = http_get(admin, "/services")
        assert status == 200 and [s["name"] for s in json.loads(body)["data"]] == ["s"]
    finally:
        _, err = node.stop()
    assert f"declarative config: {cfg} (env KONG_DECLARATIVE_CONFIG)" in err
    assert "DEMO" not in err

    port = free_port()
    node, _ = _start(clean_env(KONG_PROXY_LISTEN=f"127.0.0.1:{port}",
                               KONG_ADMIN_LISTEN="off", KONG_PROXY_ACCESS_LOG="off"))
    _, err = node.stop()
    assert "BUILT-IN DEMO" in err


def test_kong_conf_file_drives_the_node(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, upstream_port=free_port())
    port = free_port()
    conf = tmp_path / "kong.conf"
    conf.write_text(f"proxy_listen = 127.0.0.1:{port} reuseport\nadmin_listen = off\n"
                    f"declarative_config = {cfg}\nproxy_access_log = off\n"
                    "mem_cache_size = 128m\n")
    node = Node("--conf", str(conf), env=clean_env())
    try:
        node.wait_port(port)
        status, _, body = http_get(port, "/")
        assert status == 502     # the service's upstream port is closed: the config is live
    finally:
        _, err = node.stop()
    assert f"node settings: {conf}" in err and "mem_cache_size" in err


TRUST_CONFIG = """_format_version: "3.0"
services:
  - name: s
    url: http://127.0.0.1:9
    routes:
      - name: r
        paths: ["/"]
        plugins:
          - name: ip-restriction
            config: {deny: ["6.6.6.6"]}
"""


@pytest.mark.parametrize("env,headers,expected", [
    # untrusted peer: its headers are not believed
    ({}, {"X-Real-IP": "6.6.6.6"}, 502),
    # Kong's default real_ip_header X-Real-IP
    ({"KONG_TRUSTED_IPS": "127.0.0.1"}, {"X-Real-IP": "6.6.6.6"}, 403),
    ({"KONG_TRUSTED_IPS": "127.0.0.1"}, {"X-Forwarded-For": "6.6.6.6"}, 502),
    # X-Forwarded-For, not recursive: the last hop is the client
    ({"KONG_TRUSTED_IPS": "127.0.0.0/8,10.0.0.0/8", "KONG_REAL_IP_HEADER": "X-Forwarded-For"},
     {"X-Forwarded-For": "6.6.6.6, 10.0.0.1"}, 502),
    # recursive: trusted hops are skipped
    ({"KONG_TRUSTED_IPS": "127.0.0.0/8,10.0.0.0/8", "KONG_REAL_IP_HEADER": "X-Forwarded-For",
      "KONG_REAL_IP_RECURSIVE": "on"}, {"X-Forwarded-For": "6.6.6.6, 10.0.0.1"}, 403),
])
def test_trusted_ips_and_real_ip_take_effect(tmp_path: Path, env: dict[str, str],
                                             headers: dict[str, str], expected: int) -> None:
    cfg = tmp_path / "kong.yml"
    cfg.write_text(TRUST_CONFIG)
    port = free_port()
    node = Node("-c", str(cfg), "--listen", f"127.0.0.1:{port}", "--admin-listen", "off",
                "--access-log", "off", env=clean_env(**env))
    try:
        node.wait_port(port)
        assert http_get(port, "/", headers)[0] == expected
    finally:
        node.stop()


def test_real_ip_reaches_upstream_and_access_log(tmp_path: Path) -> None:
    """X-Real-IP sent upstream and the access log's client are the resolved client (Kong:
    $remote_addr after realip); X-Forwarded-For still ends with the direct peer."""
    import socket
    import threading

    up = socket.socket()
    up.bind(("127.0.0.1", 0))
    up.listen(8)

    def echo() -> None:
        while True:
            try:
                c, _ = up.accept()
            except OSError:
                return
            with c:
                head = c.recv(65536)
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                          % len(head) + head)

    threading.Thread(target=echo, daemon=True).start()
    cfg = write_config(tmp_path, upstream_port=up.getsockname()[1])
    log = tmp_path / "access.log"
    port = free_port()
    node = Node("-c", str(cfg), "--listen", f"127.0.0.1:{port}", "--admin-listen", "off",
                "--access-log", str(log), "--access-log-format", "json",
                "--trusted-ips", "127.0.0.1", env=clean_env())
    try:
        node.wait_port(port)
        _, resp_headers, body = http_get(port, "/", {"X-Real-IP": "203.0.113.7",
                                                     "X-Forwarded-For": "198.51.100.1",
                                                     "X-Kong-Request-Id": "spoofed"})
    finally:
        node.stop()
    head = body.decode().lower()
    # Kong's headers_upstream default: the request id goes upstream, replacing the client's
    assert f"x-kong-request-id: {resp_headers['x-kong-request-id']}\r\n" in head
    assert "spoofed" not in head
    assert "x-real-ip: 203.0.113.7\r\n" in head
    assert "x-forwarded-for: 198.51.100.1, 127.0.0.1\r\n" in head
    assert json.loads(log.read_text().splitlines()[0])["client"] == "203.0.113.7"
    port = free_port()
    node = Node("-c", str(cfg), "--listen", f"127.0.0.1:{port}", "--admin-listen", "off",
                "--access-log", "off", env=clean_env(KONG_HEADERS_UPSTREAM="off"))
    try:
        node.wait_port(port)
        _, _, body = http_get(port, "/", {"X-Kong-Request-Id": "from-client"})
    finally:
        node.stop()
    assert b"x-kong-request-id: from-client\r\n" in body.lower()
    up.close()
