"""Plugin registry: name -> Plugin class, and config validation with paths.

Built-ins are imported lazily on first lookup (``fastgw.plugins.<name with _>``), so a gateway
that uses two plugins imports two modules. User plugins come from :func:`register` or from the
``fastgw.plugins`` entry point group (each entry point loads a Plugin subclass); entry points
are scanned once, on the first lookup of a name that is neither registered nor built in.
"""

from __future__ import annotations

import importlib
import logging
import re
import threading
from typing import Any

import msgspec

from .base import Plugin

__all__ = ["register", "get", "names", "validate_config", "PluginConfigError", "BUILTIN_NAMES"]

log = logging.getLogger("fastgw.plugins")

# Kong's names of the bundled plugins (module = fastgw.plugins.<name, '-' -> '_'>).
BUILTIN_NAMES: tuple[str, ...] = (
    "acl",
    "basic-auth",
    "bot-detection",
    "canary",
    "correlation-id",
    "cors",
    "file-log",
    "hmac-auth",
    "http-log",
    "ip-restriction",
    "jwt",
    "key-auth",
    "oauth2",
    "opentelemetry",
    "post-function",
    "pre-function",
    "prometheus",
    "proxy-cache",
    "rate-limiting",
    "redirect",
    "request-size-limiting",
    "request-termination",
    "request-transformer",
    "response-ratelimiting",
    "response-transformer",
    "session",
    "statsd",
    "syslog",
    "tcp-log",
    "udp-log",
    "zipkin",
)

_registry: dict[str, type[Plugin]] = {}
_lock = threading.Lock()
_entry_points_loaded = False

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


class PluginConfigError(ValueError):
    """Invalid plugin config. ``errors`` lists ``(path, message)`` pairs with paths relative to
    the plugin entity, e.g. ``("config.minute", "Expected `int`, got `str`")``."""

    def __init__(self, name: str, errors: list[tuple[str, str]]) -> None:
        self.plugin = name
        self.errors = errors
        super().__init__("; ".join(f"{p}: {m}" for p, m in errors))


def register(cls: type[Plugin]) -> type[Plugin]:
    """Register a user plugin class (usable as a decorator). Re-registering a name replaces it."""
    if not (isinstance(cls, type) and issubclass(cls, Plugin)):
        raise TypeError(f"{cls!r} is not a fastgw.plugins.Plugin subclass")
    if not cls.name or not _NAME_RE.match(cls.name):
        raise ValueError(f"plugin class {cls.__name__} needs a `name` like 'my-plugin', got {cls.name!r}")
    if not (isinstance(cls.Config, type) and issubclass(cls.Config, msgspec.Struct)):
        raise TypeError(f"{cls.__name__}.Config must be a msgspec.Struct subclass")
    if not isinstance(cls.PRIORITY, int):
        raise TypeError(f"{cls.__name__}.PRIORITY must be an int")
    with _lock:
        _registry[cls.name] = cls
    return cls


def _import_builtin(name: str) -> type[Plugin] | None:
    modname = f"{__package__}.{name.replace('-', '_')}"
    module = importlib.import_module(modname)
    for obj in vars(module).values():
        if isinstance(obj, type) and issubclass(obj, Plugin) and obj is not Plugin and obj.name == name:
            return obj
    raise ImportError(f"{modname} defines no Plugin subclass named {name!r}")


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    from importlib.metadata import entry_points

    for ep in entry_points(group="fastgw.plugins"):
        try:
            cls = ep.load()
            if cls.name in _registry:
                continue  # an explicit register() wins over an installed entry point
            register(cls)
        except Exception:
            log.exception("failed to load plugin entry point %s", ep.name)


def get(name: str) -> type[Plugin] | None:
    """The Plugin class for ``name`` or None. Imports a built-in on first use."""
    cls = _registry.get(name)
    if cls is not None:
        return cls
    if name in BUILTIN_NAMES:
        cls = _import_builtin(name)
        if cls is not None:
            with _lock:
                cls = _registry.setdefault(name, cls)
        return cls
    _load_entry_points()
    return _registry.get(name)


def names() -> list[str]:
    """Every available plugin name: built-ins, registered and entry-point plugins."""
    _load_entry_points()
    return sorted(set(BUILTIN_NAMES) | set(_registry))


_AT_RE = re.compile(r"^(.*?) - at `\$(.*)`$", re.S)
_UNKNOWN_RE = re.compile(r"^Object contains unknown field `([^`]*)`$")
_MISSING_RE = re.compile(r"^Object missing required field `([^`]*)`$")


def _error_path(msg: str) -> tuple[str, str]:
    """msgspec's "<message> - at `$.a.b[0]`" -> ("config.a.b[0]", "<message>")."""
    path = ""
    m = _AT_RE.match(msg)
    if m:
        msg, path = m.group(1), m.group(2)
    u = _UNKNOWN_RE.match(msg)
    if u:  # name the unknown field itself, as Kong's "unknown field" error does
        path = f"{path}.{u.group(1)}"
        msg = "unknown field"
    r = _MISSING_RE.match(msg)
    if r:  # Kong: "required field missing" at the field's own path
        path = f"{path}.{r.group(1)}"
        msg = "required field missing"
    return "config" + path, msg


def validate_config(name: str, raw: Any) -> Any:
    """Decode ``raw`` (dict or None) into the plugin's Config, applying Kong's defaults.

    Raises :class:`PluginConfigError` with ``(path, message)`` pairs; an unknown plugin name is
    reported at path ``name``.
    """
    cls = get(name)
    if cls is None:
        raise PluginConfigError(name, [("name", f"plugin '{name}' not enabled; is it installed?")])
    if isinstance(raw, cls.Config):
        return raw
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise PluginConfigError(name, [("config", f"expected a record, got {type(raw).__name__}")])
    try:
        return msgspec.convert(raw, cls.Config, strict=False)
    except msgspec.ValidationError as e:
        raise PluginConfigError(name, [_error_path(str(e))]) from None
