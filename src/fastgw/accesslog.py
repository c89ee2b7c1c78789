"""The access log's writer: a thread that takes the compiled buffer (fastgw._core.accesslog)
every FLUSH_INTERVAL and writes it out, so a slow disk or a full stdout pipe never blocks the
event loop (the buffer fills and further lines are dropped and counted instead).

Targets: a path (opened O_APPEND, so several workers can share one file: each write() of whole
lines lands intact), "stdout", "stderr", or "off" (no AccessLog at all: zero cost).
"""
from __future__ import annotations

import logging
import os
import threading

from fastgw._core.accesslog import AccessLog

log = logging.getLogger("fastgw")

#: how often the writer takes the buffer (seconds); nginx flushes a buffered access_log every
#: `flush=` (no default) or when the buffer is full
FLUSH_INTERVAL = 0.1


def open_target(target: str) -> int:
    """A writable fd for the target (OSError with the path on failure)."""
    if target in ("stdout", "/dev/stdout"):
        return os.dup(1)
    if target in ("stderr", "/dev/stderr"):
        return os.dup(2)
    parent = os.path.dirname(target)
    if parent:
        os.makedirs(parent, exist_ok=True)
    return os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)


class AccessLogWriter:
    """Owns one AccessLog buffer and the thread that drains it into `target`."""

    def __init__(self, target: str, fmt: str = "combined") -> None:
        self.target = target
        self.buffer = AccessLog(fmt)
        self.fd = open_target(target)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fastgw-access-log",
                                        daemon=True)
        self.write_errors = 0

    def start(self) -> "AccessLogWriter":
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(FLUSH_INTERVAL):
            self.flush()
        self.flush()

    def flush(self) -> None:
        data = self.buffer.take()
        view = memoryview(data)
        while view:
            try:
                n = os.write(self.fd, view)   # releases the GIL: the loop keeps running
            except InterruptedError:
                continue
            except OSError as e:
                self.write_errors += 1
                if self.write_errors == 1:
                    log.error("access log %s: write failed: %s", self.target, e.strerror)
                return
            view = view[n:]

    def reopen(self) -> None:
        """After log rotation (nginx: SIGUSR1)."""
        old, self.fd = self.fd, open_target(self.target)
        os.close(old)

    def stats(self) -> dict[str, int]:
        return {"lines": self.buffer.lines, "dropped": self.buffer.dropped,
                "pending_bytes": self.buffer.pending, "write_errors": self.write_errors}

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5.0)
        os.close(self.fd)
