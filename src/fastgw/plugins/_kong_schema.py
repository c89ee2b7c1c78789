"""Kong schema typedefs shared by the plugins added for Kong parity (not a plugin).

Each helper raises :func:`fastgw.plugins.base.field_error` with Kong's own wording, so a bad
config names the field's path (``config.trigger``) and says what Kong says.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from urllib.parse import urlsplit

from .base import field_error

# kong/tools/utils.lua validate_header_name: letters, digits, '-' and '_'.
_HEADER_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


def check_header_name(field: str, value: str | None) -> None:
    if value is not None and not _HEADER_NAME.match(value):
        raise field_error(
            field, f"bad header name '{value}', allowed characters are A-Z, a-z, 0-9, '_', and '-'"
        )


def check_between(field: str, value: float | None, lo: float, hi: float) -> None:
    if value is not None and not lo <= value <= hi:
        raise field_error(field, f"value should be between {_num(lo)} and {_num(hi)}")


def check_gt(field: str, value: float | None, bound: float) -> None:
    if value is not None and not value > bound:
        raise field_error(field, f"value must be greater than {_num(bound)}")


def check_len_min(field: str, values: Sequence[object] | str | None, n: int) -> None:
    if values is not None and len(values) < n:
        raise field_error(field, f"length must be at least {n}")


def check_port(field: str, value: int | None) -> None:
    check_between(field, value, 0, 65535)


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else str(v)


def check_url(field: str, value: str | None) -> None:
    """Kong's typedefs.url: a host is required first, then a scheme."""
    if value is None:
        return
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise field_error(field, "invalid url") from None
    if not parts.hostname:
        raise field_error(field, "missing host in url")
    if not parts.scheme:
        raise field_error(field, "missing scheme in url")


_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62}))*\.?$")


def check_host(field: str, value: str | None) -> None:
    """Kong's typedefs.host: an IP or a host name, without a port."""
    if value is None:
        return
    v = value[1:-1] if value.startswith("[") and value.endswith("]") else value
    try:
        ipaddress.ip_address(v)
        return
    except ValueError:
        pass
    host, sep, port = value.rpartition(":")
    if sep and port.isdigit() and _HOSTNAME.match(host):
        raise field_error(field, "must not have a port")
    if not _HOSTNAME.match(value):
        raise field_error(field, f"invalid value: {value}")


def reject_lua(field: str, value: object) -> None:
    """Kong's lua_code fields run Lua from the config; fastgw runs no code from config data."""
    if value is not None:
        raise field_error(
            field,
            "Lua code is not supported: fastgw never runs code taken from the configuration "
            "(set log fields with a plugin calling ctx.set_serialize_value instead)",
        )


def check_one_of(field: str, value: str | None, options: Sequence[str]) -> None:
    """Kong's one_of, with its wording (for fields inside arrays and optional fields, where the
    config model's generic message would not list the choices)."""
    if value is not None and value not in options:
        raise field_error(field, "expected one of: " + ", ".join(options))
