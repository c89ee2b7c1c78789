"""fastgw: a Kong-compatible API gateway with a compiled hot path.

Embedding: ``from fastgw import Gateway`` (see fastgw.gateway); test helpers in
``fastgw.testing``. Names are imported lazily so ``import fastgw`` stays cheap and the CLI's
``fastgw version`` does not load the proxy core.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastgw._core.messages import VERSION as __version__

if TYPE_CHECKING:  # pragma: no cover
    from fastgw import testing
    from fastgw.config.errors import ConfigError
    from fastgw.gateway import Gateway

_LAZY = {
    "Gateway": ("fastgw.gateway", "Gateway"),
    "ConfigError": ("fastgw.config.errors", "ConfigError"),
    "testing": ("fastgw.testing", None),
}


def __getattr__(name: str) -> Any:
    spec = _LAZY.get(name)
    if spec is None:
        raise AttributeError(f"module 'fastgw' has no attribute {name!r}")
    import importlib

    mod = importlib.import_module(spec[0])
    value = mod if spec[1] is None else getattr(mod, spec[1])
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_LAZY))


__all__ = ["Gateway", "ConfigError", "testing", "__version__"]
