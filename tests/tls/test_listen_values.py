"""Kong's listen syntax (proxy_listen / admin_listen / status_listen) -> ListenSpecs."""
from __future__ import annotations

import pytest

from fastgw.listeners import (DEFAULT_BACKLOG, DEFAULT_PROXY_LISTEN, ListenError, ListenSpec,
                              join_listen_values, parse_listen, parse_listen_values)


def test_kong_default_value_parses():
    specs = parse_listen("0.0.0.0:8000 reuseport backlog=16384, "
                         "0.0.0.0:8443 http2 ssl reuseport backlog=16384")
    assert specs == [ListenSpec("0.0.0.0", 8000, reuseport=True, backlog=16384),
                     ListenSpec("0.0.0.0", 8443, ssl=True, http2=True, reuseport=True,
                                backlog=16384)]
    assert [s.scheme for s in specs] == ["http", "https"]


def test_fastgw_default_serves_8000_and_8443_ssl():
    assert parse_listen(DEFAULT_PROXY_LISTEN) == [
        ListenSpec("127.0.0.1", 8000), ListenSpec("127.0.0.1", 8443, ssl=True, http2=True)]


def test_http2_flag_is_accepted_but_not_advertised_until_served():
    s = parse_listen("127.0.0.1:8443 ssl http2")[0]
    assert s.alpn == ("http/1.1",)
    assert "HTTP/2 is not implemented yet" in s.describe()


def test_ipv6_off_and_repeated_values():
    assert parse_listen("[::1]:8000 ssl") == [ListenSpec("::1", 8000, ssl=True)]
    assert parse_listen("off") == []
    assert parse_listen(":9000")[0] == ListenSpec("127.0.0.1", 9000)
    assert parse_listen("*:9000")[0].host == "0.0.0.0"
    specs = parse_listen_values(["127.0.0.1:1", "127.0.0.1:2 ssl, 127.0.0.1:3"], "x")
    assert [s.port for s in specs] == [1, 2, 3]
    assert parse_listen_values(None, "127.0.0.1:5 ssl") == [ListenSpec("127.0.0.1", 5,
                                                                      ssl=True)]
    assert join_listen_values(["127.0.0.1:1 backlog=7", "[::1]:2 ssl"], "x") == \
        "127.0.0.1:1 backlog=7, [::1]:2 ssl"
    assert parse_listen("127.0.0.1:1")[0].backlog == DEFAULT_BACKLOG


@pytest.mark.parametrize("value, words", [
    ("127.0.0.1", "expected host:port"),
    ("127.0.0.1:http", "port must be an integer"),
    ("127.0.0.1:70000", "port must be an integer"),
    ("::1:8000", "write IPv6 addresses as [addr]:port"),
    ("[::1]8000", "expected [ipv6]:port"),
    ("[nope]:8000", "is not an IPv6 address"),
    ("127.0.0.1:8000 proxy_protocol", "'proxy_protocol' in '127.0.0.1:8000 proxy_protocol' "
                                      "is not supported by fastgw"),
    ("127.0.0.1:8000 deferred", "is not supported"),
    ("127.0.0.1:8000 sll", "unknown listen flag 'sll'"),
    ("127.0.0.1:8000 backlog=0", "invalid backlog"),
    ("127.0.0.1:8000,", "empty entry"),
    ("127.0.0.1:8000, 127.0.0.1:8000 ssl", "given twice"),
])
def test_bad_values_name_the_problem(value, words):
    with pytest.raises(ListenError) as e:
        parse_listen(value)
    assert words in str(e.value)


def test_cli_rejects_a_bad_listen_value_in_one_line(capsys):
    from fastgw.cli import main

    # one line and exit 1, as every startup error (Kong exits 1)
    assert main(["run", "--listen", "127.0.0.1:27990 proxy_protocol"]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == ("fastgw: proxy_listen (flag): listen flag 'proxy_protocol' in "
                   "'127.0.0.1:27990 proxy_protocol' is not supported by fastgw (supported: "
                   "ssl, http2, reuseport, backlog=N)")
    assert main(["run", "--listen", "127.0.0.1:0", "--ssl-cert", "/nonexistent/cert.pem",
                 "--ssl-cert-key", "/x"]) == 1
    assert "cannot read /nonexistent/cert.pem" in capsys.readouterr().err
