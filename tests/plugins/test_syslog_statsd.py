"""syslog and statsd through a real gateway to loopback collectors (Kong's
spec/03-plugins/05-syslog and 06-statsd)."""
from __future__ import annotations

import json
import re
import socket

import pytest

from fastgw.plugins import syslog as syslog_plugin

from gw_helpers import config_errors, kong_config, route, serve, tcp_collector, udp_collector

HOST = socket.gethostname().replace(".", "_")

SCHEMA_CASES = [
    ("syslog", {}, {}),
    ("syslog", {"log_level": "loud"},
     {"config.log_level": "expected one of: debug, info, notice, warning, err, crit, alert, emerg"}),
    ("syslog", {"facility": "local9"}, {"config.facility": "expected one of: auth, authpriv, cron, daemon, ftp, "
                                        "kern, lpr, mail, news, syslog, user, uucp, local0, local1, local2, "
                                        "local3, local4, local5, local6, local7"}),
    ("statsd", {}, {}),
    ("statsd", {"metrics": [{"name": "request_count", "stat_type": "counter", "sample_rate": 1}]}, {}),
    ("statsd", {"metrics": [{"name": "request_count", "sample_rate": 1}]},
     {"config.metrics[0].stat_type": "field required for entity check"}),
    ("statsd", {"metrics": [{"stat_type": "counter", "sample_rate": 1}]},
     {"config.metrics[0].name": "required field missing"}),
    ("statsd", {"metrics": [{"name": "request_count", "stat_type": "counter"}]},
     {"config.metrics[0].sample_rate": "required field missing"}),
    ("statsd", {"metrics": [{"name": "request_count", "stat_type": "invalid_stat", "sample_rate": 1}]},
     {"config.metrics[0].stat_type": "expected one of: counter, gauge, histogram, meter, set, timer"}),
    ("statsd", {"metrics": [{"name": "status_count", "stat_type": "counter", "sample_rate": 1,
                             "service_identifier": "service_id"}]}, {}),
    ("statsd", {"metrics": [{"name": "status_count", "stat_type": "counter", "sample_rate": 1,
                             "service_identifier": "fooo"}]},
     {"config.metrics[0].service_identifier": "expected one of: service_id, service_name, service_host, "
                                              "service_name_or_host"}),
    ("statsd", {"metrics": [{"name": "invalid_name", "stat_type": "counter", "sample_rate": 1}]},
     {"config.metrics[0].name": "expected one of: kong_latency, latency, request_count, request_per_user, "
                                "request_size, response_size, status_count, status_count_per_user, unique_users, "
                                "upstream_latency, status_count_per_workspace, status_count_per_user_per_route, "
                                "shdict_usage"}),
    ("statsd", {"allow_status_codes": []}, {}),
    ("statsd", {"allow_status_codes": ["200-205", "400-499"]}, {}),
    ("statsd", {"allow_status_codes": ["200-205", "test"]}, {"config.allow_status_codes[1]": "invalid value: test"}),
    ("statsd", {"udp_packet_size": 70000}, {"config.udp_packet_size": "value should be between 0 and 65507"}),
]


@pytest.mark.parametrize("plugin,conf,errors", SCHEMA_CASES)
def test_schema(plugin, conf, errors):
    assert config_errors(plugin, conf) == errors


# ---------------------------------------------------------------------------- syslog
def test_syslog_severity_by_status_and_log_level(echo_upstream, tmp_path, monkeypatch):
    path = str(tmp_path / "log.sock")
    monkeypatch.setattr(syslog_plugin, "SYSLOG_SOCKET", path)
    conf = {"log_level": "info", "successful_severity": "info", "client_errors_severity": "warning",
            "server_errors_severity": "debug", "facility": "local3"}

    async def scenario(client):
        col = await udp_collector(unix_path=path)
        await client.get("/s/ok")
        await client.get("/s/missing", headers={"X-Echo": "status=404"})
        await client.get("/s/broken", headers={"X-Echo": "status=500"})  # debug > info: not sent
        await client.get("/s/ok2")
        items = await col.wait(3)
        col.close()
        return items

    items = serve(kong_config(echo_upstream.port, [route("s", [{"name": "syslog", "config": conf}])]), scenario)
    assert len(items) == 3
    pattern = re.compile(rb"^<(\d+)>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d kong: (\{.*\})$")
    parsed = [pattern.match(i) for i in items]
    assert all(parsed), items
    # local3 = 19: PRI = 19 * 8 + severity (info 6, warning 4)
    assert [int(m.group(1)) for m in parsed] == [158, 156, 158]
    entries = [json.loads(m.group(2)) for m in parsed]
    assert [e["request"]["uri"] for e in entries] == ["/s/ok", "/s/missing", "/s/ok2"]
    assert entries[1]["response"]["status"] == 404


# ---------------------------------------------------------------------------- statsd
def _statsd_config(port, **conf):
    return {"host": "127.0.0.1", "port": port, **conf}


def test_statsd_default_metrics(echo_upstream):
    consumers = [{"username": "bob", "custom_id": "bob-1", "keyauth_credentials": [{"key": "kb"}]}]

    async def scenario(client):
        col = await udp_collector()
        client.gateway.update(kong_config(echo_upstream.port, [route("m", [
            {"name": "key-auth", "config": {}},
            {"name": "statsd", "config": _statsd_config(col.port)}])], consumers=consumers))
        assert (await client.get("/m/x", headers={"apikey": "kb"})).status == 200
        items = await col.wait(12)
        col.close()
        return items, client.gateway.config.routes[0].id

    items, route_id = serve(kong_config(echo_upstream.port, []), scenario)
    lines = {i.decode() for i in items}
    s = "kong.service.echo"
    expected_exact = {f"{s}.request.count:1|c", f"{s}.status.200:1|c", f"{s}.user.uniques:bob-1|s",
                      f"{s}.user.bob-1.request.count:1|c", f"{s}.user.bob-1.status.200:1|c",
                      f"{s}.workspace.default.status.200:1|c",
                      f"kong.route.{route_id}.user.bob-1.status.200:1|c"}
    assert expected_exact <= lines, lines - expected_exact
    for stat, kind in (("latency", "ms"), ("request.size", "c"), ("response.size", "c"),
                       ("upstream_latency", "ms"), ("kong_latency", "ms")):
        assert any(re.fullmatch(rf"{re.escape(s)}\.{re.escape(stat)}:\d+\|{kind}", x) for x in lines), (stat, lines)
    assert len(lines) == 12  # shdict_usage: no shared dicts in fastgw


def test_statsd_options(echo_upstream):
    metrics = [{"name": "request_count", "stat_type": "counter", "sample_rate": 0.5},
               {"name": "status_count", "stat_type": "counter", "sample_rate": 1}]

    async def scenario(client):
        col = await udp_collector()
        col_tags = await udp_collector()
        col_tcp = await tcp_collector()
        client.gateway.update(kong_config(echo_upstream.port, [
            route("p", [{"name": "statsd", "config": _statsd_config(
                col.port, prefix="gw", hostname_in_prefix=True, metrics=metrics, udp_packet_size=1000,
                allow_status_codes=["200-299"])}]),
            route("t", [{"name": "statsd", "config": _statsd_config(col_tags.port, metrics=metrics,
                                                                    tag_style="dogstatsd")}]),
            route("tcp", [{"name": "statsd", "config": _statsd_config(col_tcp.port, metrics=metrics,
                                                                      use_tcp=True)}]),
        ]))
        await client.get("/p/x")
        await client.get("/p/x", headers={"X-Echo": "status=500"})   # not in allow_status_codes
        await client.get("/t/x")
        await client.get("/tcp/x")
        packed = await col.wait(1)
        tagged = await col_tags.wait(1)
        tcp = await col_tcp.wait(2)
        for c in (col, col_tags, col_tcp):
            c.close()
        return list(packed), list(tagged), list(tcp)

    packed, tagged, tcp = serve(kong_config(echo_upstream.port, []), scenario)
    # both metrics of the request in one datagram; the 500 is filtered out
    assert packed == [f"gw.node.{HOST}.service.echo.request.count:1|c|@0.5\n"
                      f"gw.node.{HOST}.service.echo.status.200:1|c".encode()]
    # tag mode: no scope in the name, status_count skipped
    assert tagged == [f"kong.request.count:1|c|@0.5|#service:echo,route:t,workspace:default,node:{HOST},"
                      f"status:200".encode()]
    assert tcp == [b"kong.service.echo.request.count:1|c|@0.5\n", b"kong.service.echo.status.200:1|c\n"]


def test_statsd_queue_packs_several_requests(echo_upstream):
    metrics = [{"name": "request_count", "stat_type": "counter", "sample_rate": 1}]

    async def scenario(client):
        col = await udp_collector()
        client.gateway.update(kong_config(echo_upstream.port, [route("b", [{"name": "statsd", "config": _statsd_config(
            col.port, metrics=metrics, udp_packet_size=1000, queue={"max_batch_size": 3, "max_coalescing_delay": 2})}])]))
        for _ in range(3):
            await client.get("/b/x")
        items = await col.wait(1)
        col.close()
        return list(items)

    items = serve(kong_config(echo_upstream.port, []), scenario)
    assert items == [b"\n".join([b"kong.service.echo.request.count:1|c"] * 3)]
