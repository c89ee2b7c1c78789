"""statsd: request metrics to a StatsD server over UDP (or TCP) (Kong kong/plugins/statsd).

Per request (log phase, from Kong's serializer entry) each configured metric becomes one
StatsD line ``<prefix>.<scope>.<stat>:<value>|<type>[|@<rate>]`` where scope is
``service.<name or host, dots as _>`` or ``global.unmatched``; with ``tag_style`` the scope
moves into tags (dogstatsd ``|#k:v``, influxdb ``,k=v``, librato ``#k=v``, signalfx
``[k=v]``) and the per-user/status metrics are skipped, as Kong. Over UDP with
``udp_packet_size`` > 0 the lines of a request are joined with ``\\n`` into packets of at most
that size. With ``queue.max_batch_size`` > 1, Kong's queue gathers several requests' lines
(for at most ``queue.max_coalescing_delay`` s) and packs them together. Delivery is off the
request path (_net_sender.py).
"""

from __future__ import annotations

import asyncio
import re
import socket
from typing import Any, Literal

import msgspec

from ._kong_schema import check_between, check_gt, check_host, check_one_of, check_port
from ._net_sender import Sender, sender_for
from .base import Plugin, PluginEnv, field_error
from .http_log import QueueConfig
from .log_serializer import serialize

METRIC_NAMES = (
    "kong_latency", "latency", "request_count", "request_per_user", "request_size", "response_size",
    "status_count", "status_count_per_user", "unique_users", "upstream_latency",
    "status_count_per_workspace", "status_count_per_user_per_route", "shdict_usage",
)
STAT_TYPE_NAMES = ("counter", "gauge", "histogram", "meter", "set", "timer")
CONSUMER_IDS = ("consumer_id", "custom_id", "username")
SERVICE_IDS = ("service_id", "service_name", "service_host", "service_name_or_host")
WORKSPACE_IDS = ("workspace_id", "workspace_name")
ConsumerId = Literal["consumer_id", "custom_id", "username"]
ServiceId = Literal["service_id", "service_name", "service_host", "service_name_or_host"]
WorkspaceId = Literal["workspace_id", "workspace_name"]

STAT_TYPES = {"gauge": "g", "counter": "c", "timer": "ms", "histogram": "h", "meter": "m", "set": "s"}

# fastgw has one implicit workspace (Kong's "default"); it has no id of its own.
WORKSPACE = "default"

_STATUS_RANGE = re.compile(r"^[0-9]+-[0-9]+$")
_SPLIT_RANGE = re.compile(r"(\d\d\d)-(\d\d\d)")


class Metric(msgspec.Struct, forbid_unknown_fields=True):
    # checked by StatsdConfig with Kong's "expected one of" wording and the element's path
    name: str
    stat_type: str | None = None
    sample_rate: float | None = None
    consumer_identifier: str | None = None
    service_identifier: str | None = None
    workspace_identifier: str | None = None


def _m(name: str, stat_type: str, rate: float | None = 1) -> Metric:
    return Metric(name, stat_type, rate)


def default_metrics() -> list[Metric]:
    """Kong's DEFAULT_METRICS."""
    return [
        _m("request_count", "counter"), _m("latency", "timer", None), _m("request_size", "counter"),
        _m("status_count", "counter"), _m("response_size", "counter"), _m("unique_users", "set", None),
        _m("request_per_user", "counter"), _m("upstream_latency", "timer", None),
        _m("kong_latency", "timer", None), _m("status_count_per_user", "counter"),
        _m("status_count_per_workspace", "counter"), _m("status_count_per_user_per_route", "counter"),
        _m("shdict_usage", "gauge"),
    ]


class StatsdConfig(msgspec.Struct, forbid_unknown_fields=True):
    host: str = "localhost"
    port: int = 8125
    prefix: str = "kong"
    metrics: list[Metric] = msgspec.field(default_factory=default_metrics)
    allow_status_codes: list[str] | None = None
    udp_packet_size: float = 0
    use_tcp: bool = False
    hostname_in_prefix: bool = False
    consumer_identifier_default: ConsumerId = "custom_id"
    service_identifier_default: ServiceId = "service_name_or_host"
    workspace_identifier_default: WorkspaceId = "workspace_id"
    # deprecated in Kong 3.x (replaced by queue.*); retry_count no longer does anything there
    retry_count: int | None = None
    queue_size: int | None = None
    flush_timeout: float | None = None
    tag_style: Literal["dogstatsd", "influxdb", "librato", "signalfx"] | None = None
    queue: QueueConfig = msgspec.field(default_factory=QueueConfig)

    def __post_init__(self) -> None:
        check_host("host", self.host)
        check_port("port", self.port)
        for i, m in enumerate(self.metrics):
            check_one_of(f"metrics[{i}].name", m.name, METRIC_NAMES)
            check_one_of(f"metrics[{i}].stat_type", m.stat_type, STAT_TYPE_NAMES)
            check_one_of(f"metrics[{i}].consumer_identifier", m.consumer_identifier, CONSUMER_IDS)
            check_one_of(f"metrics[{i}].service_identifier", m.service_identifier, SERVICE_IDS)
            check_one_of(f"metrics[{i}].workspace_identifier", m.workspace_identifier, WORKSPACE_IDS)
            if m.stat_type is None:
                raise field_error(f"metrics[{i}].stat_type", "field required for entity check")
            check_gt(f"metrics[{i}].sample_rate", m.sample_rate, 0)
            if m.stat_type in ("counter", "gauge") and m.sample_rate is None:
                raise field_error(f"metrics[{i}].sample_rate", "required field missing")
        for i, r in enumerate(self.allow_status_codes or ()):
            if not _STATUS_RANGE.match(r):
                raise field_error(f"allow_status_codes[{i}]", f"invalid value: {r}")
        check_between("udp_packet_size", self.udp_packet_size, 0, 65507)
        if self.queue_size is not None:
            self.queue.max_batch_size = self.queue_size
        if self.flush_timeout is not None:
            self.queue.max_coalescing_delay = self.flush_timeout


def _num(v: Any) -> str:
    """Lua's tostring of a number (5 -> "5", 0.5 -> "0.5")."""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _dots(s: str) -> str:
    return s.replace(".", "_")


_CONSUMER = {
    "consumer_id": lambda c: c.get("id"),
    "custom_id": lambda c: c.get("custom_id"),
    "username": lambda c: c.get("username"),
}
_SERVICE = {
    "service_id": lambda s: s.get("id"),
    "service_name": lambda s: s.get("name"),
    "service_host": lambda s: s.get("host"),
    "service_name_or_host": lambda s: s.get("name") or s.get("host"),
}


class Statsd(Plugin):
    name = "statsd"
    PRIORITY = 11
    Config = StatsdConfig

    def __init__(self, config: StatsdConfig, env: PluginEnv) -> None:
        super().__init__(config, env)
        self._hostname = _dots(socket.gethostname())
        prefix = config.prefix
        if config.hostname_in_prefix and config.tag_style is None:
            prefix = f"{prefix}.node.{self._hostname}"
        self._prefix = prefix
        self._ranges = None
        if config.allow_status_codes is not None:
            self._ranges = []
            for r in config.allow_status_codes:
                m = _SPLIT_RANGE.search(r)
                if m:
                    self._ranges.append((int(m.group(1)), int(m.group(2))))
        self._key = ("statsd", config.host, config.port, config.use_tcp)

    def _make(self, loop: Any) -> Sender:
        c = self.config
        # Kong's TCP statsd socket timeout is a fixed 1 s (statsd_logger.lua)
        return Sender("tcp" if c.use_tcp else "udp", (c.host, c.port), loop, timeout_ms=1000, name="statsd")

    def _allowed(self, status: int) -> bool:
        if self._ranges is None:
            return True
        return any(lo <= status <= hi for lo, hi in self._ranges)

    # ----------------------------------------------------------------------- lines
    def lines(self, entry: dict[str, Any]) -> list[str]:
        conf = self.config
        out: list[str] = []
        status = entry["response"]["status"]
        consumer = entry.get("consumer") or {}
        service = entry.get("service")
        route = entry.get("route") or {}
        lat = entry["latencies"]
        values = {
            "request_size": ("request.size", entry["request"]["size"]),
            "response_size": ("response.size", entry["response"]["size"]),
            "latency": ("latency", lat["request"]),
            "upstream_latency": ("upstream_latency", lat["proxy"]),
            "kong_latency": ("kong_latency", lat["kong"]),
            "request_count": ("request.count", 1),
        }
        tagged = conf.tag_style is not None
        for m in conf.metrics:
            kind = STAT_TYPES[m.stat_type or "counter"]
            rate = m.sample_rate
            cid = _CONSUMER[m.consumer_identifier or conf.consumer_identifier_default](consumer) if consumer else None
            sid_f = _SERVICE[m.service_identifier or conf.service_identifier_default]
            tags = None
            scope = ""
            if tagged:
                tags = self._tags(service, route, status, cid, sid_f)
            else:
                if service:
                    sname = sid_f(service)
                    scope = "service." + (_dots(str(sname)) if sname else "unnamed")
                else:
                    scope = "global.unmatched"
            name = m.name
            if name in values:
                stat, value = values[name]
                if value is None or value == -1:
                    continue
                out.append(self._line(stat if tagged else f"{scope}.{stat}", value, kind, rate, tags))
                continue
            if tagged or name == "shdict_usage":
                continue  # Kong skips the per-user/per-status metrics in tag mode
            if name == "status_count":
                out.append(self._line(f"{scope}.status.{status}", 1, kind, rate, None))
            elif name == "unique_users" and cid:
                out.append(self._line(f"{scope}.user.uniques", cid, kind, None, None))
            elif name == "request_per_user" and cid:
                out.append(self._line(f"{scope}.user.{cid}.request.count", 1, kind, rate, None))
            elif name == "status_count_per_user" and cid:
                out.append(self._line(f"{scope}.user.{cid}.status.{status}", 1, kind, rate, None))
            elif name == "status_count_per_workspace":
                out.append(self._line(f"{scope}.workspace.{WORKSPACE}.status.{status}", 1, kind, rate, None))
            elif name == "status_count_per_user_per_route" and cid and route.get("id"):
                out.append(self._line(f"route.{route['id']}.user.{cid}.status.{status}", 1, kind, rate, None))
        return out

    def _tags(self, service: Any, route: dict[str, Any], status: Any, cid: Any, sid_f: Any) -> list[tuple[str, str]] | None:
        sid = sid_f(service) if service else None
        if not sid:
            return None  # Kong: no service, no tags
        tags = [("service", str(sid))]
        rname = route.get("name") or route.get("id")
        if rname:
            tags.append(("route", str(rname)))
        tags.append(("workspace", WORKSPACE))
        if cid:
            tags.append(("consumer", str(cid)))
        tags.append(("node", self._hostname))
        if status is not None:
            tags.append(("status", str(status)))
        return tags

    def _line(self, stat: str, value: Any, kind: str, rate: float | None, tags: list[tuple[str, str]] | None) -> str:
        r = f"|@{_num(rate)}" if rate is not None and rate != 1 else ""
        p = self._prefix
        v = _num(value)
        style = self.config.tag_style
        if tags is None or style is None:
            return f"{p}.{stat}:{v}|{kind}{r}"
        if style == "dogstatsd":
            return f"{p}.{stat}:{v}|{kind}{r}|#" + ",".join(f"{k}:{x}" for k, x in tags)
        joined = ",".join(f"{k}={x}" for k, x in tags)
        if style == "influxdb":
            return f"{p}.{stat},{joined}:{v}|{kind}{r}"
        if style == "librato":
            return f"{p}.{stat}#{joined}:{v}|{kind}{r}"
        return f"{p}.{stat}[{joined}]:{v}|{kind}{r}"

    def packets(self, lines: list[str]) -> list[bytes]:
        """Datagrams (or TCP writes) for one request's lines (statsd_logger.lua send_statsd)."""
        conf = self.config
        if conf.use_tcp:
            return [("".join(x + "\n" for x in lines)).encode()] if lines else []
        size = int(conf.udp_packet_size)
        if size <= 0:
            return [x.encode() for x in lines]
        out: list[bytes] = []
        buf: list[str] = []
        used = 0
        for x in lines:
            if buf and used + len(x) > size:
                out.append("\n".join(buf).encode())
                buf, used = [], 0
            buf.append(x)
            used += len(x) + 1
        if buf:
            out.append("\n".join(buf).encode())
        return out

    # ------------------------------------------------------------------------- log
    def log(self, ctx: Any) -> None:
        res = ctx.response
        if not self._allowed(res.status if res is not None else 0):
            return None
        lines = self.lines(serialize(ctx))
        if self.config.queue.max_batch_size > 1:
            b = sender_for(("statsd-batch", id(self)), self._make_batcher)
            if b is not None:
                b.put(lines)
            return None
        s = sender_for(self._key, self._make)
        if s is None:
            return None
        for p in self.packets(lines):
            s.put(p)
        return None

    def _make_batcher(self, loop: Any) -> _Batcher:
        return _Batcher(self, loop)


class _Batcher:
    """Kong's queue for statsd: up to ``max_batch_size`` requests' lines, gathered for at most
    ``max_coalescing_delay`` seconds, are packed together (statsd's send_entries_to_upstream_server
    writes a whole batch through one logger, so UDP packets span requests)."""

    def __init__(self, plugin: Statsd, loop: Any) -> None:
        self.plugin = plugin
        self.loop = loop
        self.q: asyncio.Queue[list[str]] = asyncio.Queue(plugin.config.queue.max_entries)
        self.dropped = 0
        self.task = loop.create_task(self._run())

    def put(self, lines: list[str]) -> None:
        try:
            self.q.put_nowait(lines)
        except asyncio.QueueFull:
            self.dropped += 1

    async def _run(self) -> None:
        qc = self.plugin.config.queue
        while True:
            batch = list(await self.q.get())
            n = 1
            deadline = self.loop.time() + qc.max_coalescing_delay
            while n < qc.max_batch_size:
                left = deadline - self.loop.time()
                if left <= 0:
                    break
                try:
                    batch += await asyncio.wait_for(self.q.get(), left)
                except asyncio.TimeoutError:
                    break
                n += 1
            s = sender_for(self.plugin._key, self.plugin._make)
            if s is not None:
                for p in self.plugin.packets(batch):
                    s.put(p)
