"""Every operator mistake at startup is one `fastgw: ...` line and a non-zero exit."""
from __future__ import annotations

import socket
from pathlib import Path

import pytest

from ops_helpers import Node, assert_one_line_error, fastgw, free_port, write_config


@pytest.mark.parametrize("data,needle", [
    (b"\xff\xfe services: [", "not valid UTF-8"),
    (b"\x7fELF\x02\x01\x01\x00\x00\x00", "binary data"),
    (b"\x89PNG\r\n\x1a\n\xde\xad\xbe\xef", "not valid UTF-8"),
])
def test_garbage_declarative_file(tmp_path: Path, data: bytes, needle: str) -> None:
    bad = tmp_path / "kong.yml"
    bad.write_bytes(data)
    for verb in (["run", "-c", str(bad), "--listen", "127.0.0.1:0"], ["check", str(bad)]):
        assert_one_line_error(fastgw(*verb), str(bad), needle)


def test_garbage_kong_conf(tmp_path: Path) -> None:
    bad = tmp_path / "kong.conf"
    bad.write_bytes(b"proxy_listen = 127.0.0.1:0\n\xc3\x28 = x\n")
    assert_one_line_error(fastgw("run", "--conf", str(bad)), str(bad), "not valid UTF-8")
    bad.write_text("proxy_listen 127.0.0.1:0\n")
    assert_one_line_error(fastgw("run", "--conf", str(bad)), f"{bad}:1", "key = value")


@pytest.mark.parametrize("listen,needle", [
    ("nonsense", "expected host:port"),
    ("127.0.0.1:http", "port must be an integer between 0 and 65535"),
    ("127.0.0.1:70000", "port must be an integer between 0 and 65535"),
    ("127.0.0.1:8000 proxy_protocol", "listen flag 'proxy_protocol'"),
])
def test_bad_listen(tmp_path: Path, listen: str, needle: str) -> None:
    cfg = write_config(tmp_path)
    assert_one_line_error(fastgw("run", "-c", str(cfg), "--listen", listen),
                          "proxy_listen", needle)
    assert_one_line_error(fastgw("run", "-c", str(cfg), "--listen", "127.0.0.1:0",
                                 "--admin-listen", listen), "admin_listen", needle)


def test_bad_log_level(tmp_path: Path) -> None:
    r = fastgw("run", "-c", str(write_config(tmp_path)), "--log-level", "chatty")
    assert_one_line_error(r, "log_level", "'chatty'", "notice")


def test_bad_workers(tmp_path: Path) -> None:
    for w, needle in (("0", "1..512"), ("many", "'auto'")):
        assert_one_line_error(fastgw("run", "-c", str(write_config(tmp_path)), "--workers", w),
                              "nginx_worker_processes", needle)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_port_in_use(tmp_path: Path, workers: str) -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        r = fastgw("run", "-c", str(write_config(tmp_path)), "--listen", f"127.0.0.1:{port}",
                   "--admin-listen", "off", "--workers", workers)
        assert_one_line_error(r, f"127.0.0.1:{port}", "proxy_listen", "Address already in use")
    finally:
        holder.close()


def test_multi_worker_refuses_a_port_shared_with_so_reuseport(tmp_path: Path) -> None:
    """Another process listening with SO_REUSEPORT (e.g. another fastgw's workers) would have
    the kernel split the traffic between two configs: refused."""
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        r = fastgw("run", "-c", str(write_config(tmp_path)), "--listen", f"127.0.0.1:{port}",
                   "--admin-listen", "off", "--workers", "2")
        assert_one_line_error(r, f"127.0.0.1:{port}", "Address already in use")
    finally:
        holder.close()


def test_admin_port_in_use_stops_the_node(tmp_path: Path) -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        r = fastgw("run", "-c", str(write_config(tmp_path)), "--listen",
                   f"127.0.0.1:{free_port()}", "--admin-listen", f"127.0.0.1:{port}")
        assert_one_line_error(r, "admin_listen", "Address already in use")
    finally:
        holder.close()


def test_two_multi_worker_nodes_cannot_share_a_port(tmp_path: Path) -> None:
    port = free_port()
    cfg = write_config(tmp_path)
    first = Node("-c", str(cfg), "--listen", f"127.0.0.1:{port}", "--admin-listen", "off",
                 "--workers", "2", "--access-log", "off")
    try:
        first.wait_port(port)
        r = fastgw("run", "-c", str(cfg), "--listen", f"127.0.0.1:{port}", "--admin-listen",
                   "off", "--workers", "2")
        assert_one_line_error(r, "Address already in use")
    finally:
        first.stop()


def test_non_loopback_admin_without_token(tmp_path: Path) -> None:
    r = fastgw("run", "-c", str(write_config(tmp_path)), "--admin-listen", "0.0.0.0:0")
    assert_one_line_error(r, "admin_listen", "admin token")
