"""Config changes as splices, for the master to ship to its workers.

A change is, per entity type whose list is not the same object, one splice: the new list is
``old[:start] + items + old[end:]``, with the common head and tail found by identity (the
store keeps unchanged entity objects, fastgw.config.reuse keeps them across a replace). An
Admin API write is therefore one entity on the wire, whatever the size of the config; a
worker decodes only that entity and applies it to the config it runs, which is the one the
master sent before (frames are applied in order). ``encode_delta``/``apply_delta`` are the
two ends; a worker starts from the full ``model.encode_config`` form.
"""
from __future__ import annotations

from typing import Any

import msgspec

from fastgw.config.model import ENTITY_CLASSES, ENTITY_TYPES, Config


class Splice(msgspec.Struct, array_like=True, frozen=True):
    etype: str
    start: int
    end: int
    items: msgspec.Raw      # msgpack list of the entity type's Structs


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(list[Splice])
_ITEMS = {t: msgspec.msgpack.Decoder(list[ENTITY_CLASSES[t]]) for t in ENTITY_TYPES}


def splice(a: list[Any], b: list[Any]) -> tuple[int, int, list[Any]] | None:
    """(start, end, items) with b == a[:start] + items + a[end:] by identity, the common head
    and tail as long as they go; None when every element is the same object."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] is b[i]:
        i += 1
    if i == len(a) == len(b):
        return None
    j = 0
    while j < n - i and a[len(a) - 1 - j] is b[len(b) - 1 - j]:
        j += 1
    return i, len(a) - j, b[i:len(b) - j]


def splices(old: Config, new: Config) -> list[tuple[str, int, int, list[Any]]]:
    out = []
    for etype in ENTITY_TYPES:
        a, b = getattr(old, etype), getattr(new, etype)
        if a is b:
            continue
        sp = splice(a, b)
        if sp is not None:
            out.append((etype, *sp))
    return out


def encode_delta(old: Config, new: Config) -> bytes:
    return _ENCODER.encode([Splice(t, s, e, msgspec.Raw(_ENCODER.encode(items)))
                            for t, s, e, items in splices(old, new)])


def apply_delta(config: Config, data: bytes) -> Config:
    """The config `data` (from encode_delta(config', new) with config' == config) describes.
    Raises ValueError when a splice does not fit `config`."""
    changes: dict[str, list[Any]] = {}
    for sp in _DECODER.decode(data):
        if sp.etype not in _ITEMS:
            raise ValueError(f"unknown entity type {sp.etype!r}")
        cur = getattr(config, sp.etype)
        if not 0 <= sp.start <= sp.end <= len(cur):
            raise ValueError(f"{sp.etype}: splice [{sp.start}:{sp.end}] outside {len(cur)}")
        changes[sp.etype] = [*cur[:sp.start], *_ITEMS[sp.etype].decode(sp.items), *cur[sp.end:]]
    return msgspec.structs.replace(config, **changes) if changes else config
