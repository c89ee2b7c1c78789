"""Settings: defaults < kong.conf file < KONG_* env < FASTGW_* env < CLI flags.

Kong's precedence (kong/conf_loader/init.lua: environment variables override the file, the file
overrides kong_defaults.lua); fastgw puts its own FASTGW_<KEY> above KONG_<KEY> and the CLI's
flags above everything. Every value remembers where it came from (`Settings.source(key)`), so
the startup log can say it.

Rules:
- A bad value is a SettingsError naming the key and where it came from; nothing is guessed.
- Unknown and inert keys are warnings (`Settings.warnings`), one per key, naming it.
- PENDING keys (keys.py) set to a non-default value fail at `check_supported()`.
"""
from __future__ import annotations

import ipaddress
import os
from typing import Any, Mapping

from fastgw.conf.keys import (APPLIED, HEADER_TOKENS, INERT, LOG_LEVELS, PENDING,
                              PENDING_FEATURE)
from fastgw.conf.kongconf import ConfFileError, read_conf_file

ENV_PREFIXES = ("KONG_", "FASTGW_")   # later wins
_TRUE = {"on", "true", "yes", "1"}
_FALSE = {"off", "false", "no", "0"}
#: Kong's nginx_worker_processes upper bound is the machine; fastgw caps at 512 (nginx has no
#: cap; more workers than this on one host is certainly a typo)
MAX_WORKERS = 512


class SettingsError(Exception):
    """A node setting that cannot be used; the message names the key and its source."""


class Settings:
    """The resolved node configuration (see module doc)."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.sources: dict[str, str] = {}
        self.warnings: list[str] = []
        self.conf_path: str | None = None

    def __getattr__(self, key: str) -> Any:
        try:
            return self.__dict__["values"][key]
        except KeyError:
            raise AttributeError(key) from None

    def source(self, key: str) -> str:
        return self.sources.get(key, "default")

    def set(self, key: str, raw: Any, source: str) -> None:
        self.values[key] = _convert(key, raw, source)
        self.sources[key] = source

    # -- derived views --------------------------------------------------------------------
    @property
    def workers(self) -> int:
        w = self.values.get("nginx_main_worker_processes")
        return w if w is not None else self.values["nginx_worker_processes"]

    @property
    def log_level_name(self) -> str:
        return LOG_LEVELS[self.values["log_level"]]

    def header_enabled(self, name: str) -> bool:
        """Kong's `headers`: server_tokens = Server + Via; latency_tokens = the latency ones."""
        tokens = self.values["headers"]
        if "off" in tokens:
            return False
        name = name.lower()
        if name in tokens:
            return True
        if name in ("server", "via"):
            return "server_tokens" in tokens
        if name in ("x-kong-proxy-latency", "x-kong-upstream-latency",
                    "x-kong-response-latency", "x-kong-admin-latency"):
            return "latency_tokens" in tokens
        return False

    def check_supported(self) -> None:
        """Fail on settings that belong to features this build does not have."""
        db = self.values["database"]
        if db not in ("off", "postgres") and not str(db).startswith(("postgres://",
                                                                       "postgresql://")):
            raise SettingsError(f"database = {db!r} ({self.source('database')}): "
                                "expected 'off', 'postgres' or postgres://user@host:port/db")
        for key, (_, default) in PENDING.items():
            if key in self.sources and self.values[key] != _convert(key, default, "default"):
                if key.startswith("pg_") and db == "off":
                    continue   # Kong ignores the pg_* keys with database off
                feature = next((v for k, v in PENDING_FEATURE.items() if key.startswith(k)),
                               key)
                raise SettingsError(f"{key} ({self.source(key)}) is not supported yet "
                                    f"({feature})")

    def describe(self) -> str:
        """One line for the startup log: where the configuration came from."""
        parts = [f"node settings: {self.conf_path or 'no kong.conf'}"]
        env = sorted({s for s in self.sources.values() if s.startswith("env ")})
        if env:
            parts.append(", ".join(env))
        return "; ".join(parts)


def headers_mask(tokens: list[str], upstream: list[str] | None = None) -> int:
    """Kong's `headers` (and `headers_upstream`) tokens -> fastgw._core.accesslog HEADER_BITS
    (server_tokens: Server and Via; latency_tokens: the latency headers; off: none)."""
    from fastgw._core.accesslog import HEADER_BITS, UPSTREAM_HEADER_BITS

    mask = 0
    for t in upstream or ():
        mask |= UPSTREAM_HEADER_BITS.get(t.lower(), 0)
    tokens = [t.lower() for t in tokens]
    if "off" in tokens:
        return mask
    for t in tokens:
        if t == "server_tokens":
            mask |= HEADER_BITS["server"] | HEADER_BITS["via"]
        elif t == "latency_tokens":
            mask |= (HEADER_BITS["x-kong-proxy-latency"] | HEADER_BITS["x-kong-upstream-latency"]
                     | HEADER_BITS["x-kong-response-latency"])
        elif t in HEADER_BITS:
            mask |= HEADER_BITS[t]
        elif t != "x-kong-admin-latency":   # the Admin API's own header: not the proxy's
            raise SettingsError(f"headers: unknown header token {t!r}")
    return mask


def load_settings(conf_path: str | None = None, environ: Mapping[str, str] | None = None,
                  flags: Mapping[str, Any] | None = None) -> Settings:
    """defaults < conf file < KONG_* < FASTGW_* < flags (flags: key -> value, None = unset)."""
    environ = os.environ if environ is None else environ
    s = Settings()
    for key, (_, default) in {**APPLIED, **PENDING}.items():
        s.values[key] = _convert(key, default, "default")
    if conf_path:
        try:
            raw = read_conf_file(conf_path)
        except ConfFileError as e:
            raise SettingsError(str(e)) from None
        s.conf_path = conf_path
        for key, value in raw.items():
            _apply(s, key, value, f"file {conf_path}", f"{conf_path}: {key}")
    for prefix in ENV_PREFIXES:
        for name in sorted(environ):
            if not name.startswith(prefix):
                continue
            key = name[len(prefix):].lower()
            _apply(s, key, environ[name], f"env {name}", name)
    for key, value in (flags or {}).items():
        if value is not None:
            s.set(key, value, "flag")
    return s


def _apply(s: Settings, key: str, value: str, source: str, where: str) -> None:
    if key in APPLIED or key in PENDING:
        s.set(key, value, source)
    elif key in INERT:
        s.warnings.append(f"{where}: Kong setting {key} has no effect in fastgw; ignored")
    else:
        s.warnings.append(f"{where}: unknown setting {key}; ignored")


def _convert(key: str, raw: Any, source: str) -> Any:
    kind = (APPLIED.get(key) or PENDING[key])[0]
    if not isinstance(raw, str):
        return _check(key, raw, source)
    v = raw.strip()
    if v.upper() == "NONE" or (v == "" and kind != "list"):
        value: Any = None
    elif kind == "str":
        value = v
    elif kind == "int":
        try:
            value = int(v)
        except ValueError:
            raise SettingsError(f"{key} ({source}): expected an integer, got {v!r}") from None
    elif kind == "bool":
        low = v.lower()
        if low not in _TRUE and low not in _FALSE:
            raise SettingsError(f"{key} ({source}): expected on or off, got {v!r}")
        value = low in _TRUE
    elif kind == "workers":
        if v == "auto":
            value = os.cpu_count() or 1
        else:
            try:
                value = int(v)
            except ValueError:
                raise SettingsError(f"{key} ({source}): expected a number of workers or "
                                    f"'auto', got {v!r}") from None
    elif kind in ("list", "listen"):
        value = [p.strip() for p in v.split(",") if p.strip()]
        if kind == "listen" and value == ["off"]:
            value = []
    else:  # pragma: no cover - a kind missing above is a bug in keys.py
        raise AssertionError(kind)
    if value is None and kind in ("list", "listen"):
        value = []
    if value is None and key in APPLIED and APPLIED[key][1] is not None and kind != "str":
        value = APPLIED[key][1]
    return _check(key, value, source)


def _check(key: str, value: Any, source: str) -> Any:
    """Per-key validation of a converted value."""
    if key == "log_level" and value is not None:
        value = str(value).lower()
        if value not in LOG_LEVELS:
            raise SettingsError(f"log_level ({source}): unknown level {value!r}; expected one "
                                f"of {', '.join(LOG_LEVELS)}")
    elif key in ("nginx_worker_processes", "nginx_main_worker_processes") and value is not None:
        if not isinstance(value, int) or not 1 <= value <= MAX_WORKERS:
            raise SettingsError(f"{key} ({source}): workers must be 1..{MAX_WORKERS}, "
                                f"got {value!r}")
    elif key == "trusted_ips":
        for ip in value:
            if ip == "unix:":
                continue
            try:
                ipaddress.ip_network(ip, strict=False)
            except ValueError:
                raise SettingsError(f"trusted_ips ({source}): {ip!r} is not an IP address "
                                    "or CIDR") from None
    elif key == "real_ip_header" and value is not None:
        if value.lower() == "proxy_protocol":
            raise SettingsError(f"real_ip_header ({source}): proxy_protocol is not supported "
                                "yet")
    elif key == "headers":
        value = [t.lower() for t in value]
        for t in value:
            if t not in HEADER_TOKENS:
                raise SettingsError(f"headers ({source}): unknown header token {t!r}; "
                                    f"expected any of {', '.join(sorted(HEADER_TOKENS))}")
        if "off" in value and len(value) > 1:
            raise SettingsError(f"headers ({source}): 'off' cannot be combined with others")
    elif key == "headers_upstream":
        value = [t.lower() for t in value]
        for t in value:
            if t not in ("x-kong-request-id", "off"):
                raise SettingsError(f"headers_upstream ({source}): unknown header token {t!r}; "
                                    "expected x-kong-request-id or off")
    elif key == "proxy_access_log_format" and value not in ("combined", "json"):
        raise SettingsError(f"proxy_access_log_format ({source}): expected combined or json, "
                            f"got {value!r}")
    return value
