"""file-log: append one JSON line per request to a file (Kong), without blocking the loop.

The log phase serialises the entry (Kong's log format, see log_serializer.py) and hands the
bytes to a writer thread (one per path per process, shared by every plugin instance and config
snapshot that logs to that path). The thread drains everything queued, writes it with one
``write`` and flushes; with ``reopen`` it opens and closes the file for every batch (log
rotation by renaming the file, as Kong's ``reopen``). The file is opened
``O_WRONLY|O_CREAT|O_APPEND`` mode 0644, as Kong.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from typing import Any

import msgspec
import orjson

from .base import Plugin, PluginEnv, field_error
from .log_serializer import serialize

log = logging.getLogger("fastgw.plugins")

# Lines held in memory per path when the disk is slower than the traffic; past it lines are
# dropped and counted (Kong's queue max_entries default is 10000).
MAX_PENDING_LINES = 100_000


class _Flush:
    __slots__ = ("event",)

    def __init__(self) -> None:
        self.event = threading.Event()


class FileWriter:
    """One background thread appending lines to one path."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.reopen = False
        self.dropped = 0
        self._q: queue.Queue[Any] = queue.Queue(MAX_PENDING_LINES)
        self._fd: int | None = None
        self._thread = threading.Thread(target=self._run, name=f"fastgw-file-log:{path}", daemon=True)
        self._thread.start()

    def write(self, line: bytes) -> None:
        try:
            self._q.put_nowait(line)
        except queue.Full:
            self.dropped += 1

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything queued before this call is written (tests, shutdown)."""
        marker = _Flush()
        self._q.put(marker)
        return marker.event.wait(timeout)

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def _run(self) -> None:
        while True:
            item = self._q.get()
            batch: list[bytes] = []
            markers: list[_Flush] = []
            while True:
                if isinstance(item, _Flush):
                    markers.append(item)
                else:
                    batch.append(item)
                try:
                    item = self._q.get_nowait()
                except queue.Empty:
                    break
            if batch:
                self._write(b"".join(batch))
            for m in markers:
                m.event.set()

    def _write(self, data: bytes) -> None:
        try:
            if self._fd is None or self.reopen:
                if self._fd is not None:
                    os.close(self._fd)
                self._fd = self._open()
            view = memoryview(data)
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
        except OSError as e:
            log.error("[file-log] failed to write to %s: %s", self.path, e)
            if self._fd is not None:
                try:
                    os.close(self._fd)
                except OSError:
                    pass
                self._fd = None


_writers: dict[str, FileWriter] = {}
_writers_lock = threading.Lock()
_writers_pid = os.getpid()


def writer_for(path: str) -> FileWriter:
    global _writers_pid
    with _writers_lock:
        if os.getpid() != _writers_pid:  # forked worker: threads did not survive the fork
            _writers.clear()
            _writers_pid = os.getpid()
        w = _writers.get(path)
        if w is None:
            w = _writers[path] = FileWriter(path)
        return w


class FileLogConfig(msgspec.Struct, forbid_unknown_fields=True):
    # File to append to (required).
    path: str
    # Reopen the file for every write batch (log rotation), default False.
    reopen: bool = False

    def __post_init__(self) -> None:
        # Kong's typedefs.path-like check: a non-empty path without control characters.
        if not self.path or any(ord(ch) < 32 for ch in self.path) or self.path.endswith("/"):
            raise field_error("path", "not a valid filename")


class FileLog(Plugin):
    name = "file-log"
    PRIORITY = 9
    Config = FileLogConfig

    def __init__(self, config: FileLogConfig, env: PluginEnv) -> None:
        super().__init__(config, env)
        self._path = os.path.abspath(config.path)

    @property
    def writer(self) -> FileWriter:
        return writer_for(self._path)

    def log(self, ctx: Any) -> None:
        w = writer_for(self._path)
        if self.config.reopen:
            w.reopen = True
        w.write(orjson.dumps(serialize(ctx)) + b"\n")
        return None
