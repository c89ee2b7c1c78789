"""RunPlan: what `fastgw run` / `start` will do, derived from Settings and checked up front.

Everything an operator can get wrong is checked here, before any socket or process exists, and
reported as one SettingsError line: listen addresses, the declarative file (readable, UTF-8,
valid), the admin token rule, settings of features not in this build.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from fastgw.conf.settings import Settings, SettingsError

#: listen flags fastgw understands without the TLS/HTTP2 listener support (Kong's
#: `reuseport`: fastgw's workers always share the port with SO_REUSEPORT)
PLAIN_LISTEN_FLAGS = frozenset({"reuseport"})
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def demo_config_path() -> str:
    return str(resources.files("fastgw").joinpath("default.yml"))


@dataclass
class RunPlan:
    settings: Settings
    listen: tuple[str, int]          # the first proxy listener (announce, port probes)
    admin_listen: tuple[str, int] | None
    status_listen: tuple[str, int] | None
    config_path: str | None          # the declarative file (None: string or demo)
    config_text: str | None          # declarative_config_string
    demo: bool
    config: Any = None               # the loaded fastgw Config
    access_log: str = "off"          # a path, "stdout" or "off"
    access_log_format: str = "combined"
    error_log: str | None = None     # None: stderr
    dashboard_listen: tuple[str, int] | None = None
    # parser/proxy limits for Gateway(limits=...): filled by the CLI from the limits flags
    limits: dict[str, int] = field(default_factory=dict)
    # every proxy listener (fastgw.listeners: ssl, http2, reuseport, backlog flags)
    listen_specs: list[Any] = field(default_factory=list)
    ssl_cert: str | None = None      # the TLS listeners' default certificate (PEM file)
    ssl_cert_key: str | None = None

    @property
    def listen_value(self) -> str:
        """Every proxy listener as one Kong listen value (what Gateway.start takes)."""
        from fastgw.listeners import format_spec

        return ", ".join(format_spec(sp) for sp in self.listen_specs)

    @property
    def tls(self) -> bool:
        return any(sp.ssl for sp in self.listen_specs)
    database: Any = None             # fastgw.cluster.pg.db.Dsn in database mode, else None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def workers(self) -> int:
        return self.settings.workers

    @property
    def config_source(self) -> str:
        """For the startup log and GET /config's source."""
        if self.database is not None:
            return f"the database {self.database.describe()}"
        if self.demo:
            return "the built-in DEMO configuration (no declarative_config given)"
        if self.config_path:
            return f"{self.config_path} ({self.settings.source('declarative_config')})"
        return f"declarative_config_string ({self.settings.source('declarative_config_string')})"


def parse_listen_value(key: str, values: list[str], source: str) -> tuple[str, int] | None:
    """Kong's `host:port [flags]` list -> the one plain listener fastgw serves, or None (off)."""
    from fastgw.gateway import parse_listen

    if not values:
        return None
    if len(values) > 1:
        raise SettingsError(f"{key} ({source}): {len(values)} listeners given; several "
                            "listeners per kind are not supported yet")
    addr, *flags = values[0].split()
    for f in flags:
        if f not in PLAIN_LISTEN_FLAGS:
            raise SettingsError(f"{key} ({source}): listen flag {f!r} is not supported yet")
    try:
        host, port = parse_listen(addr)
    except ValueError as e:
        raise SettingsError(f"{key} ({source}): bad address {addr!r}: expected host:port "
                            f"({_why(e)})") from None
    if not 0 <= port <= 65535:
        raise SettingsError(f"{key} ({source}): port {port} out of range 0..65535")
    if host == "0.0.0.0" or host == "*":
        host = "0.0.0.0"
    return host, port


def parse_proxy_listen(values: list[str], source: str) -> list[Any]:
    """Kong's proxy_listen (a list of `host:port [ssl] [http2] [reuseport] [backlog=N]`)."""
    from fastgw.listeners import ListenError, parse_listen_values

    try:
        return parse_listen_values(values, "off") if values else []
    except ListenError as e:
        raise SettingsError(f"proxy_listen ({source}): {e}") from None


def _why(e: Exception) -> str:
    msg = str(e)
    return "the port is not a number" if "invalid literal" in msg else msg


def make_plan(s: Settings, *, access_log_default: str, error_log_default: str | None,
              load: bool = True) -> RunPlan:
    s.check_supported()
    specs = parse_proxy_listen(s.proxy_listen, s.source("proxy_listen"))
    if not specs:
        raise SettingsError("proxy_listen is off: fastgw needs a proxy listener")
    listen = (specs[0].host, specs[0].port)
    if len(s.ssl_cert) > 1 or len(s.ssl_cert) != len(s.ssl_cert_key):
        raise SettingsError("ssl_cert / ssl_cert_key: give one certificate and its key")
    admin = parse_listen_value("admin_listen", s.admin_listen, s.source("admin_listen"))
    status = parse_listen_value("status_listen", s.status_listen, s.source("status_listen"))
    gui = parse_listen_value("admin_gui_listen", s.admin_gui_listen,
                             s.source("admin_gui_listen"))
    if gui is not None and not s.admin_token and gui[0] not in _LOOPBACK:
        raise SettingsError(f"admin_gui_listen ({s.source('admin_gui_listen')}): refusing a "
                            "non-loopback dashboard without an admin token")
    if admin is not None and not s.admin_token and admin[0] not in _LOOPBACK:
        raise SettingsError(f"admin_listen ({s.source('admin_listen')}): refusing a "
                            "non-loopback admin listener without an admin token "
                            "(--admin-token or FASTGW_ADMIN_TOKEN)")
    path, text = s.declarative_config, s.declarative_config_string
    database = None
    if s.database != "off":
        from fastgw.cluster.pg.runtime import plan_database

        database = plan_database(s)
        if path or text:
            raise SettingsError("declarative_config is for database = off; with a database "
                                "import the file once: fastgw config db_import FILE")
        if s.admin_persist:
            raise SettingsError(f"admin_persist ({s.source('admin_persist')}) is for database "
                                "= off: with a database every change is stored there")
    if path and text:
        raise SettingsError("declarative_config and declarative_config_string are both set; "
                            "choose one")
    demo = not path and not text and database is None
    prefix = s.prefix
    access = s.proxy_access_log or access_log_default
    error = s.proxy_error_log or error_log_default
    if prefix:
        access = _under(prefix, access)
        error = _under(prefix, error) if error else None
    plan = RunPlan(settings=s, listen=listen, admin_listen=admin, status_listen=status,
                   config_path=path if path else (None if text else demo_config_path()),
                   config_text=text, demo=demo, access_log=access,
                   access_log_format=s.proxy_access_log_format, error_log=error,
                   dashboard_listen=gui, listen_specs=specs,
                   ssl_cert=s.ssl_cert[0] if s.ssl_cert else None,
                   ssl_cert_key=s.ssl_cert_key[0] if s.ssl_cert_key else None,
                   database=database)
    if plan.demo:
        plan.config_path = demo_config_path()
    if database is not None:
        plan.config_path = None   # the configuration is read from the database (cli.cmd_run)
    elif load:
        plan.config = load_declarative(plan)
    return plan


def _under(prefix: str, path: str) -> str:
    # Kong resolves relative log paths against the prefix (logs/access.log)
    if path in ("off", "stdout", "stderr") or path.startswith("/"):
        return {"/dev/stdout": "stdout", "/dev/stderr": "stderr"}.get(path, path)
    return os.path.join(prefix, path)


#: the biggest declarative file read (Kong has no limit; 64 MiB is ~200k entities, far beyond
#: what one node serves; a bigger file is a mistake and is refused before parsing)
MAX_DECLARATIVE_BYTES = 64 << 20


def load_declarative(plan: RunPlan) -> Any:
    """The declarative config, with every failure as one SettingsError (never a traceback)."""
    from fastgw.config.declarative import load_text
    from fastgw.config.errors import ConfigError

    if plan.config_text is not None and plan.config_path is None:
        src, data = "declarative_config_string", plan.config_text.encode()
    else:
        src = str(plan.config_path)
        try:
            with open(src, "rb") as f:
                data = f.read(MAX_DECLARATIVE_BYTES + 1)
        except OSError as e:
            raise SettingsError(f"cannot read declarative config {src}: {e.strerror}") from None
        if len(data) > MAX_DECLARATIVE_BYTES:
            raise SettingsError(f"{src}: larger than {MAX_DECLARATIVE_BYTES} bytes")
    if b"\x00" in data:
        raise SettingsError(f"{src}: binary data (NUL bytes), not a YAML or JSON file")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SettingsError(f"{src}: not valid UTF-8 (byte {e.start})") from None
    try:
        return load_text(data, source=src)
    except ConfigError as e:
        raise SettingsError(f"invalid declarative config {e}") from None
