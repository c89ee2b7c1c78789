"""Carry unchanged entities of the running Config into a replacement (POST /config, reload).

``reuse_unchanged(new, old)`` returns ``new`` with every entity equal to the running one of
the same id replaced by the running object, and every list whose entities all carried over
replaced by the running list. Content is unchanged (msgspec ``==`` is field by field); what
changes is identity, which the snapshot compiler and the hash cache check first: a replace that
keeps most of the file compiles and hashes only what differs, and the old and the new copy of
an unchanged entity are not both kept alive. Runs on any thread (reads two immutable Configs).
"""
from __future__ import annotations

from typing import Any

import msgspec

from fastgw.config.model import ENTITY_TYPES, Config


def reuse_unchanged(new: Config, old: Config) -> Config:
    from fastgw.config.delta import splice

    changes: dict[str, Any] = {}
    for etype in ENTITY_TYPES:
        items = getattr(new, etype)
        prev = getattr(old, etype)
        if items is prev or not items or not prev:
            continue
        # the common head and tail are the same objects already: look only at the middle
        sp = splice(prev, items)
        if sp is None:
            changes[etype] = prev
            continue
        start, end, middle = sp
        by_id = {e.id: e for e in prev[start:end]}
        out = []
        swapped = 0
        for e in middle:
            o = by_id.get(e.id)
            if o is not None and o is not e and o == e:
                out.append(o)
                swapped += 1
            else:
                out.append(e)
        if swapped == len(middle) == end - start and all(
                a is b for a, b in zip(out, prev[start:end])):
            changes[etype] = prev
        elif swapped:
            changes[etype] = [*items[:start], *out, *items[start + len(middle):]]
        # else: nothing to carry over; `items` stays the list it is (the store's own list,
        # which the next change compares by identity)
    return msgspec.structs.replace(new, **changes) if changes else new
