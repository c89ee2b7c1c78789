"""Kong's process verbs on a prefix directory: start (background), stop, quit, reload, health.

The prefix holds what nginx keeps in Kong's prefix (kong/cmd/utils/nginx_signals.lua):
  <prefix>/pids/fastgw.pid   the pid of the running `fastgw run` (master) process
  <prefix>/fastgw.json       its listen addresses (for `health` and for people)
  <prefix>/logs/error.log    stderr of a `start`ed node; logs/access.log the access log

Rules:
- The running node writes and removes its own pid file (`fastgw run -p PREFIX` does too), so
  `stop` works on any node started with a prefix. A pid file whose process is gone is stale:
  removed, and the node counts as not running.
- Signals are nginx's: TERM stop (drain up to 10 s), QUIT graceful, HUP reload.
- Every failure is one line and a non-zero exit from the cli.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

#: Kong's default prefix is /usr/local/kong (root-owned); fastgw's is per user
DEFAULT_PREFIX = os.path.join(os.path.expanduser("~"), ".fastgw")
#: how long `start` waits for the node to bind and announce itself (Kong: none, nginx -t first)
START_TIMEOUT = 30.0
#: `stop` waits this long for the node to exit after SIGTERM before SIGKILL (drain 10 s + exit)
STOP_TIMEOUT = 20.0
#: `quit --timeout` default (Kong: 10 s), then the node is killed
QUIT_TIMEOUT = 10.0


class DaemonError(Exception):
    """A verb that cannot do its job; the message is the one line the cli prints."""


def pid_path(prefix: str) -> str:
    return os.path.join(prefix, "pids", "fastgw.pid")


def state_path(prefix: str) -> str:
    return os.path.join(prefix, "fastgw.json")


def prepare_prefix(prefix: str) -> None:
    for sub in ("", "logs", "pids"):
        try:
            os.makedirs(os.path.join(prefix, sub), exist_ok=True)
        except OSError as e:
            raise DaemonError(f"cannot create prefix directory {prefix}: {e.strerror}") from None


def write_runtime(prefix: str, info: dict[str, Any]) -> None:
    """Called by the running node once it listens: pid file + state, atomically each."""
    prepare_prefix(prefix)
    for path, data in ((state_path(prefix), json.dumps(info, indent=1)),
                       (pid_path(prefix), f"{os.getpid()}\n")):
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            f.write(data)
        os.replace(tmp, path)


def clear_runtime(prefix: str) -> None:
    """Called by the node on exit: remove its pid file (only if it is still ours)."""
    if read_pid(prefix) == os.getpid():
        for path in (pid_path(prefix), state_path(prefix)):
            try:
                os.unlink(path)
            except OSError:
                pass


def read_pid(prefix: str) -> int | None:
    try:
        with open(pid_path(prefix)) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours (the `start` tests' own process) is not running
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def running_pid(prefix: str) -> int | None:
    """The pid of the node running in prefix, or None (a stale pid file is removed)."""
    pid = read_pid(prefix)
    if pid is None:
        return None
    if _alive(pid):
        return pid
    try:
        os.unlink(pid_path(prefix))
    except OSError:
        pass
    return None


def _require(prefix: str) -> int:
    pid = running_pid(prefix)
    if pid is None:
        raise DaemonError(f"fastgw is not running in {prefix}")
    return pid


def start(prefix: str, run_argv: list[str], timeout: float = START_TIMEOUT) -> int:
    """`fastgw run -p prefix ...` in the background; returns its pid once it listens."""
    if running_pid(prefix) is not None:
        raise DaemonError(f"fastgw is already running in {prefix}")
    prepare_prefix(prefix)
    err_path = os.path.join(prefix, "logs", "error.log")
    try:
        err = open(err_path, "ab")
    except OSError as e:
        raise DaemonError(f"cannot open {err_path}: {e.strerror}") from None
    offset = err.tell()
    with err, open(os.devnull, "rb") as null:
        proc = subprocess.Popen([sys.executable, "-m", "fastgw", "run", "-p", prefix,
                                 *run_argv], stdin=null, stdout=err, stderr=err,
                                start_new_session=True, close_fds=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DaemonError(f"fastgw failed to start: {_tail(err_path, offset)}")
        if read_pid(prefix) == proc.pid:
            return proc.pid
        time.sleep(0.05)
    proc.kill()
    raise DaemonError(f"fastgw did not start within {timeout:.0f}s; see {err_path}")


def _tail(path: str, offset: int) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            lines = [ln for ln in f.read().decode("utf-8", "replace").splitlines()
                     if ln.strip()]
    except OSError:
        lines = []
    errors = [ln for ln in lines if ln.startswith("fastgw:") or "ERROR" in ln]
    return (errors or lines or ["(no output)"])[-1].removeprefix("fastgw: ")


def _wait_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return not _alive(pid)


def stop(prefix: str, timeout: float = STOP_TIMEOUT) -> None:
    pid = _require(prefix)
    os.kill(pid, signal.SIGTERM)
    if not _wait_exit(pid, timeout):
        os.kill(pid, signal.SIGKILL)
        _wait_exit(pid, 5.0)
    _drop_stale(prefix, pid)


def quit_(prefix: str, wait: float = 0.0, timeout: float = QUIT_TIMEOUT) -> bool:
    """Graceful: in-flight requests finish. False when the timeout forced a kill."""
    pid = _require(prefix)
    if wait > 0:
        time.sleep(wait)
    os.kill(pid, signal.SIGQUIT)
    graceful = _wait_exit(pid, timeout)
    if not graceful:
        os.kill(pid, signal.SIGKILL)
        _wait_exit(pid, 5.0)
    _drop_stale(prefix, pid)
    return graceful


def _drop_stale(prefix: str, pid: int) -> None:
    if read_pid(prefix) == pid:
        for path in (pid_path(prefix), state_path(prefix)):
            try:
                os.unlink(path)
            except OSError:
                pass


def reload(prefix: str) -> None:
    os.kill(_require(prefix), signal.SIGHUP)


def health(prefix: str, timeout: float = 3.0) -> dict[str, Any]:
    """The node's pid and, when it has an Admin API, its GET /status answer."""
    import urllib.error
    import urllib.request

    pid = _require(prefix)
    try:
        with open(state_path(prefix)) as f:
            info = json.load(f)
    except (OSError, ValueError):
        info = {}
    out: dict[str, Any] = {"pid": pid, **info}
    admin = info.get("admin")
    if admin:
        req = urllib.request.Request(f"http://{admin}/status")
        token = info.get("admin_token_required") and os.environ.get("FASTGW_ADMIN_TOKEN")
        if token:
            req.add_header("Kong-Admin-Token", token)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                out["status"] = json.loads(r.read())
        except urllib.error.HTTPError as e:
            out["status"] = {"http_status": e.code}   # it answers (401 without the token)
        except (OSError, ValueError) as e:
            raise DaemonError(f"fastgw (pid {pid}) in {prefix} is not answering on its "
                              f"Admin API {admin}: {e}") from None
    return out
