"""Pause CPython's cycle collector while a configuration is read, validated and compiled.

Loading 100,000 entities allocates millions of containers in a burst; each full collection
on the way scans all of them, so the collector took 70 % of a 10k-entity YAML load and, from
a worker thread, held the GIL for 300+ ms at a time (a stalled proxy loop). Nothing built
there is cyclic garbage worth collecting mid-load, so the collector is paused for the burst
and resumed after (``gc_paused()``; nested and concurrent uses count, the last one resumes).
The CLI then freezes what the compile kept (Gateway ``freeze_gc``).
"""
from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0
_was_enabled = False


@contextmanager
def gc_paused() -> Iterator[None]:
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()
