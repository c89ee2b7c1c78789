"""syslog: send each request's Kong log entry to the local syslog daemon (Kong
kong/plugins/syslog, which calls syslog(3) through lsyslog).

The severity follows the response status (``server_errors_severity`` for 5xx,
``client_errors_severity`` for 4xx, ``successful_severity`` otherwise) and the entry is sent
only when that severity is at least as urgent as ``log_level``. The datagram is what glibc's
syslog(3) writes for ``openlog("kong", 0, facility)``: ``<PRI>Mmm dd hh:mm:ss kong: <json>``
(RFC 3164 4.1), to the unix socket ``/dev/log``, off the request path (_net_sender.py).
"""

from __future__ import annotations

import time
from typing import Any, Literal

import msgspec
import orjson

from ._kong_schema import reject_lua
from ._net_sender import Sender, sender_for
from .base import Plugin, PluginEnv
from .log_serializer import serialize

# Where syslog(3) writes (glibc _PATH_LOG).
SYSLOG_SOCKET = "/dev/log"
SENDER_NAME = "kong"

Severity = Literal["debug", "info", "notice", "warning", "err", "crit", "alert", "emerg"]
Facility = Literal[
    "auth", "authpriv", "cron", "daemon", "ftp", "kern", "lpr", "mail", "news", "syslog", "user",
    "uucp", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
]

# RFC 5424 6.2.1 numeric severities and facilities (the values of <syslog.h>).
SEVERITIES = {"debug": 7, "info": 6, "notice": 5, "warning": 4, "err": 3, "crit": 2, "alert": 1, "emerg": 0}
FACILITIES = {
    "kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7,
    "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11, "local0": 16, "local1": 17, "local2": 18,
    "local3": 19, "local4": 20, "local5": 21, "local6": 22, "local7": 23,
}


class SyslogConfig(msgspec.Struct, forbid_unknown_fields=True):
    log_level: Severity = "info"
    successful_severity: Severity = "info"
    client_errors_severity: Severity = "info"
    server_errors_severity: Severity = "info"
    facility: Facility = "user"
    custom_fields_by_lua: dict[str, str] | None = None

    def __post_init__(self) -> None:
        reject_lua("custom_fields_by_lua", self.custom_fields_by_lua)


def syslog_line(facility: str, severity: str, message: bytes, now: float) -> bytes:
    t = time.localtime(now)
    stamp = time.strftime("%b ", t) + f"{t.tm_mday:2d}" + time.strftime(" %H:%M:%S", t)
    pri = FACILITIES[facility] * 8 + SEVERITIES[severity]
    return f"<{pri}>{stamp} {SENDER_NAME}: ".encode() + message


class Syslog(Plugin):
    name = "syslog"
    PRIORITY = 4
    Config = SyslogConfig

    def __init__(self, config: SyslogConfig, env: PluginEnv) -> None:
        super().__init__(config, env)
        self._max = SEVERITIES[config.log_level]

    def _make(self, loop: Any) -> Sender:
        return Sender("unix_dgram", SYSLOG_SOCKET, loop, name="syslog")

    def log(self, ctx: Any) -> None:
        conf = self.config
        entry = serialize(ctx)
        status = entry["response"]["status"] or 0
        if status >= 500:
            severity = conf.server_errors_severity
        elif status >= 400:
            severity = conf.client_errors_severity
        else:
            severity = conf.successful_severity
        if SEVERITIES[severity] > self._max:
            return None
        s = sender_for(("syslog", SYSLOG_SOCKET), self._make)
        if s is not None:
            s.put(syslog_line(conf.facility, severity, orjson.dumps(entry), ctx.now))
        return None
