"""The proxy's limits from Python and the command line.

``Gateway(limits={"max_head": 16384})`` or ``Gateway(limits=Limits(...))``;
``fastgw run --limit max_head=16384 --limit client_body_timeout=30000``. Every name, its
default and its precedent (nginx, HAProxy, Envoy) is in ``fastgw._core.consts`` /
``fastgw._core.proxy.LIMITS``; timeouts are milliseconds, booleans take true/false/on/off.

Rules: a bad name or value is one clear error naming the limit (argparse's usage error on the
CLI, ValueError from Python); nothing here runs per request.
"""
from __future__ import annotations

import argparse
from typing import Any, Mapping

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from fastgw._core.proxy import Limits

__all__ = ["make", "parse_item", "add_arguments", "from_args", "names"]

_TRUE = {"1", "true", "on", "yes"}
_FALSE = {"0", "false", "off", "no"}


def names() -> list[str]:
    """Every limit's name."""
    from fastgw._core.proxy import LIMITS

    return list(LIMITS)


def make(limits: "Limits | Mapping[str, Any] | None") -> "Limits":
    """A Limits from a Limits, a mapping of names to values, or None (the defaults)."""
    from fastgw._core.proxy import Limits

    if limits is None:
        return Limits()
    if isinstance(limits, Limits):
        return limits
    return Limits(**dict(limits))


def parse_item(text: str) -> tuple[str, int | bool]:
    """'NAME=VALUE' -> (name, value) with the value typed as the limit wants it."""
    from fastgw._core.proxy import LIMITS

    name, sep, raw = text.partition("=")
    name = name.strip().replace("-", "_")
    if not sep:
        raise ValueError(f"expected NAME=VALUE, got {text!r}")
    spec = LIMITS.get(name)
    if spec is None:
        raise ValueError(f"unknown limit {name!r} (known: {', '.join(LIMITS)})")
    raw = raw.strip().lower()
    if spec[0] == "bool":
        if raw in _TRUE:
            return name, True
        if raw in _FALSE:
            return name, False
        raise ValueError(f"limit {name}: expected true or false, got {raw!r}")
    try:
        return name, int(raw.replace("_", ""))
    except ValueError:
        raise ValueError(f"limit {name}: expected an integer, got {raw!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--limit NAME=VALUE`` (repeatable) to a CLI parser (the compiled core is only
    imported when the values are read: ``fastgw version`` stays cheap)."""
    parser.add_argument("--limit", action="append", default=[], metavar="NAME=VALUE",
                        help="set a proxy limit (repeatable), e.g. max_head=16384 or "
                             "client_body_timeout=30000 (ms); names in fastgw.limits")


def from_args(ns: argparse.Namespace) -> dict[str, int | bool]:
    """The limits given on the command line, validated (ValueError names the bad limit)."""
    values = dict(parse_item(t) for t in getattr(ns, "limit", None) or [])
    make(values)
    return values
