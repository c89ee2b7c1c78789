"""`fastgw run | check | version`.

Process model (`fastgw run --workers N`):
- N == 1: one process runs the proxy, the Admin API and (without -c) the demo upstreams on one
  uvloop loop.
- N > 1: a master process creates what must be shared (the shared-memory rate-limit and metrics
  tables) and forks N workers. Each worker has its own uvloop loop and its own listening socket
  on the same port (SO_REUSEPORT: the kernel spreads connections). The master runs the Admin
  API and owns the configuration: every accepted change is validated (compiled) in the master,
  then sent to every worker over a pipe; each worker compiles and swaps it and answers with its
  config hash, which GET /status reports. A worker that dies is restarted with the current
  configuration.
- The CLI (not the library) installs uvloop and the signal handlers: SIGTERM/SIGINT drain and
  exit, SIGHUP reloads the -c file.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import struct
import sys
import time
from importlib import resources
from typing import Any

from fastgw import __version__

log = logging.getLogger("fastgw")


def _default_config_path() -> str:
    return str(resources.files("fastgw").joinpath("default.yml"))


def _load(path: str) -> Any:
    from fastgw.config.declarative import load_file
    from fastgw.config.gcpause import gc_paused

    with gc_paused():
        return load_file(path)


def _prefork() -> None:
    """Create the tables workers must share, before any fork."""
    from fastgw.plugins import prometheus, rate_limiting

    rate_limiting.init_shared()
    prometheus.init_shared()


# ------------------------------------------------------------------------------------------
# single process

async def _serve_single(args: argparse.Namespace, config_path: str, demo: bool,
                        config: Any) -> None:
    from fastgw.gateway import Gateway

    loop = asyncio.get_running_loop()
    demo_servers = []
    if demo:
        from fastgw.demo import start_demo_upstreams

        demo_servers = await start_demo_upstreams()
    gw = Gateway(config, limits=_limits(args), freeze_gc=True)
    await gw.start(args.listen, args.admin_listen, admin_token=args.admin_token,
                   persist_path=args.persist, config_source=None if demo else config_path)
    if args.status_listen:
        await gw.start_status(args.status_listen)
    _announce(args, gw.address)
    stop = asyncio.Event()

    reload_file = _reloader(config_path, gw, gw.update, demo)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, reload_file)
    watcher = None if demo else loop.create_task(watch_file(config_path, reload_file))
    await stop.wait()
    if watcher is not None:
        watcher.cancel()
    log.info("shutting down: draining in-flight requests")
    await gw.stop()
    for s in demo_servers:
        s.close()


#: how often the -c file is checked for changes (seconds); nginx/Kong need a signal, fastgw
#: also reloads on its own when the file changes (and keeps the running config if it is bad)
WATCH_INTERVAL = 1.0


def _file_state(path: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


async def watch_file(path: str, on_change: Any, interval: float = WATCH_INTERVAL) -> None:
    """Call on_change() when the file's mtime, size or inode changes (editors that replace
    the file, `cp`, atomic renames). A vanished file changes nothing."""
    last = _file_state(path)
    while True:
        await asyncio.sleep(interval)
        cur = _file_state(path)
        if cur is not None and cur != last:
            last = cur
            on_change()


def _reloader(path: str, gw: Any, apply: Any, demo: bool) -> Any:
    """The SIGHUP / file-change handler: load the file and apply it through the Admin API's
    store when there is one (so GET /config shows it), else `apply`. A bad file is logged and
    changes nothing. The embedded demo config has no file: nothing to reload.
    The file is read and validated on a worker thread (proxying goes on); the compile and the
    swap run on the loop. Reloads run one at a time, in the order they were asked for."""
    from fastgw.config.errors import ConfigError
    from fastgw.config.gcpause import gc_paused
    from fastgw.config.model import check_integrity
    from fastgw.config.reuse import reuse_unchanged

    lock = asyncio.Lock()

    def prepare(running: Any) -> Any:   # on a worker thread
        new = _load(path)
        if running is None:
            return new
        with gc_paused():
            errors = check_integrity(new)
            if errors:
                raise ConfigError(errors, source=path)
            return reuse_unchanged(new, running)

    async def reload_async() -> None:
        async with lock:
            loop = asyncio.get_running_loop()
            try:
                store = gw.store
                new = await loop.run_in_executor(
                    None, prepare, store.config if store is not None else None)
                if store is not None:
                    store.replace(new, checked=True)
                else:
                    apply(new)
                log.info("reloaded %s", path)
            except Exception as e:  # noqa: BLE001 - report every failure, keep running config
                log.error("reload of %s failed, running configuration kept:\n%s", path, e)

    def reload_file() -> None:
        if not demo:
            asyncio.get_running_loop().create_task(reload_async())

    return reload_file


def _announce(args: argparse.Namespace, address: Any) -> None:
    print(f"fastgw {__version__}: proxy on http://{address[0]}:{address[1]}"
          + (f", admin on http://{args.admin_listen}" if args.admin_listen else ""),
          file=sys.stderr, flush=True)


def _limits(args: argparse.Namespace) -> dict[str, int]:
    return {}


# ------------------------------------------------------------------------------------------
# master + workers

FRAME = struct.Struct("!I")


def _send(fd: int, payload: bytes) -> None:
    data = FRAME.pack(len(payload)) + payload
    while data:
        n = os.write(fd, data)
        data = data[n:]


class _FrameReader:
    def __init__(self) -> None:
        self.buf = b""

    def feed(self, data: bytes) -> list[bytes]:
        self.buf += data
        out = []
        while len(self.buf) >= 4:
            (n,) = FRAME.unpack_from(self.buf)
            if len(self.buf) < 4 + n:
                break
            out.append(self.buf[4:4 + n])
            self.buf = self.buf[4 + n:]
        return out


def _worker_main(args: argparse.Namespace, config_json: bytes, rfd: int, wfd: int,
                 index: int) -> None:
    """A forked worker: its own loop, its own SO_REUSEPORT listener, configs from the pipe."""
    import orjson
    import uvloop

    from fastgw.config.delta import apply_delta
    from fastgw.config.gcpause import gc_paused
    from fastgw.config.model import decode_config
    from fastgw.gateway import Gateway

    async def main() -> None:
        loop = asyncio.get_running_loop()
        gw = Gateway(decode_config(config_json), limits=_limits(args),
                     node_id=f"worker-{index}", freeze_gc=True)
        await gw.start(args.listen, None, reuse_port=True)
        stop = asyncio.Event()
        reader = _FrameReader()

        def report() -> None:
            st = gw.status()
            _send(wfd, orjson.dumps({"worker": index, "pid": os.getpid(), **st}))

        def on_pipe() -> None:
            try:
                data = os.read(rfd, 1 << 20)
            except BlockingIOError:
                return
            if not data:
                stop.set()
                return
            for frame in reader.feed(data):
                try:
                    with gc_paused():
                        # a delta against the config this worker runs (fastgw.config.delta)
                        new = apply_delta(gw.config, frame)
                    gw.update(new)
                except Exception as e:  # noqa: BLE001 - master validated it
                    # a delta that does not apply means this worker diverged: exit, and the
                    # master restarts it with the full current configuration
                    log.error("worker %d: config update failed, restarting: %s", index, e)
                    os._exit(3)
                report()

        os.set_blocking(rfd, False)
        loop.add_reader(rfd, on_pipe)
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, lambda: None)  # the master decides
        loop.add_signal_handler(signal.SIGHUP, lambda: None)
        report()

        async def heartbeat() -> None:
            while not stop.is_set():
                await asyncio.sleep(0.5)
                report()

        hb = loop.create_task(heartbeat())
        await stop.wait()
        hb.cancel()
        await gw.stop()

    uvloop.run(main())


class Master:
    """Owns the configuration and the Admin API; forks and supervises the workers."""

    def __init__(self, args: argparse.Namespace, config_path: str, demo: bool) -> None:
        self.args = args
        self.config_path = config_path
        self.demo = demo
        self.workers: dict[int, dict[str, Any]] = {}   # index -> {pid, wfd, rfd, status}
        self.config_json = b""   # the full encoded config, made when a worker needs it
        self.config: Any = None   # what every worker runs (after the frames sent so far)
        self.stopping = False

    def _config_bytes(self, config: Any) -> bytes:
        from fastgw.config.model import encode_config

        return encode_config(config)

    def spawn(self, index: int) -> None:
        if not self.config_json:
            self.config_json = self._config_bytes(self.config)
        to_w_r, to_w_w = os.pipe()
        from_w_r, from_w_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(to_w_w)
            os.close(from_w_r)
            for w in self.workers.values():
                for fd in (w["wfd"], w["rfd"]):
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            code = 0
            try:
                _worker_main(self.args, self.config_json, to_w_r, from_w_w, index)
            except BaseException:  # noqa: BLE001 - a worker must never return into the master
                logging.getLogger("fastgw").exception("worker %d crashed", index)
                code = 1
            os._exit(code)
        os.close(to_w_r)
        os.close(from_w_w)
        self.workers[index] = {"pid": pid, "wfd": to_w_w, "rfd": from_w_r, "status": {},
                               "reader": _FrameReader()}

    def run(self, config: Any) -> None:
        import uvloop

        self.config = config
        self.config_json = self._config_bytes(config)
        _prefork()
        for i in range(self.args.workers):
            self.spawn(i)
        uvloop.run(self.main(config))

    async def main(self, config: Any) -> None:
        import orjson

        from fastgw.gateway import Gateway

        loop = asyncio.get_running_loop()
        demo_servers = []
        if self.demo:
            from fastgw.demo import start_demo_upstreams

            demo_servers = await start_demo_upstreams()
        # The master's own Gateway validates every change by compiling it (no listener).
        self.gw = gw = Gateway(config, active_health=False, freeze_gc=True)
        gw._extra_status = self.worker_status
        await gw.start(("127.0.0.1", 0))
        gw.server.close()

        def apply(new: Any) -> None:
            from fastgw.config.delta import encode_delta

            gw.update(new)                       # raises ConfigError: nothing is sent
            # workers get what changed (one entity for an Admin API write); a worker
            # (re)started later gets the whole current config, encoded then
            delta = encode_delta(self.config, new)
            self.config = new
            self.config_json = b""
            for w in self.workers.values():
                _send(w["wfd"], delta)

        if self.args.admin_listen:
            await gw.start_admin(self.args.admin_listen, token=self.args.admin_token,
                                 persist_path=self.args.persist,
                                 config_source=None if self.demo else self.config_path,
                                 apply=apply)
        if self.args.status_listen:
            await gw.start_status(self.args.status_listen)
        for w in self.workers.values():
            self._watch(loop, w)
        _announce(self.args, tuple(_split(self.args.listen)))
        stop = asyncio.Event()

        reload_file = _reloader(self.config_path, gw, apply, self.demo)
        def on_child() -> None:
            while True:
                try:
                    pid, status = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    return
                if pid == 0:
                    return
                for i, w in list(self.workers.items()):
                    if w["pid"] == pid:
                        loop.remove_reader(w["rfd"])
                        os.close(w["rfd"])
                        os.close(w["wfd"])
                        del self.workers[i]
                        if not self.stopping:
                            log.error("worker %d (pid %d) died; restarting", i, pid)
                            self.spawn(i)
                            self._watch(loop, self.workers[i])
                if self.stopping and not self.workers:
                    stop.set()

        async def reap() -> None:
            # uvloop keeps SIGCHLD for itself: poll for dead workers instead
            while True:
                on_child()
                await asyncio.sleep(0.2)

        reaper = loop.create_task(reap())
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.add_signal_handler(signal.SIGHUP, reload_file)
        watcher = None if self.demo else loop.create_task(
            watch_file(self.config_path, reload_file))
        await stop.wait()
        reaper.cancel()
        if watcher is not None:
            watcher.cancel()
        self.stopping = True
        for w in list(self.workers.values()):
            try:
                os.kill(w["pid"], signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 15
        while self.workers and time.monotonic() < deadline:
            on_child()
            await asyncio.sleep(0.05)
        for w in self.workers.values():
            try:
                os.kill(w["pid"], signal.SIGKILL)
            except ProcessLookupError:
                pass
        await gw.stop(timeout=1)
        for s in demo_servers:
            s.close()
        del orjson

    def _watch(self, loop: asyncio.AbstractEventLoop, w: dict[str, Any]) -> None:
        import orjson

        def on_data() -> None:
            try:
                data = os.read(w["rfd"], 1 << 16)
            except OSError:
                data = b""
            if not data:
                loop.remove_reader(w["rfd"])
                return
            for frame in w["reader"].feed(data):
                w["status"] = orjson.loads(frame)

        loop.add_reader(w["rfd"], on_data)

    def worker_status(self) -> dict[str, Any]:
        ws = [w["status"] for _, w in sorted(self.workers.items())]
        total: dict[str, Any] = {k: sum(s.get(k, 0) for s in ws) for k in (
            "connections_active", "connections_accepted", "connections_handled",
            "total_requests", "requests_active")}
        total["workers"] = ws
        return total


def _split(listen: str) -> tuple[str, int]:
    from fastgw.gateway import parse_listen

    return parse_listen(listen)


# ------------------------------------------------------------------------------------------

def cmd_run(args: argparse.Namespace) -> int:
    from fastgw.config.errors import ConfigError

    demo = args.config is None
    config_path = args.config or _default_config_path()
    try:
        config = _load(config_path)   # once: validated here, then served
    except ConfigError as e:
        print(f"fastgw: invalid configuration {config_path}:\n{e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"fastgw: cannot read {config_path}: {e}", file=sys.stderr)
        return 1
    if args.admin_listen and not args.admin_token:
        host = _split(args.admin_listen)[0]
        if host not in ("127.0.0.1", "localhost", "::1"):
            print("fastgw: refusing a non-loopback --admin-listen without --admin-token",
                  file=sys.stderr)
            return 2
    if args.workers > 1:
        Master(args, config_path, demo).run(config)
        return 0
    import uvloop

    _prefork()
    uvloop.run(_serve_single(args, config_path, demo, config))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from fastgw.config.errors import ConfigError

    try:
        config = _load(args.file)
    except ConfigError as e:
        print(f"{args.file}: invalid\n{e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"{args.file}: {e}", file=sys.stderr)
        return 1
    # compile it too: regexes, balancers and plugin configs are checked there
    from fastgw.gateway import Gateway

    async def compile_it() -> None:
        gw = Gateway(config, active_health=False)
        await gw.start(("127.0.0.1", 0))
        await gw.stop(timeout=0.1)

    try:
        asyncio.run(compile_it())
    except ConfigError as e:
        print(f"{args.file}: invalid\n{e}", file=sys.stderr)
        return 1
    counts = {k: len(getattr(config, k)) for k in (
        "services", "routes", "upstreams", "targets", "consumers", "plugins")}
    print(f"{args.file}: ok — " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fastgw", description="Kong-compatible API gateway")
    sub = parser.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="run the gateway")
    run.add_argument("-c", "--config", help="Kong declarative file (YAML or JSON); "
                     "default: the embedded demo configuration")
    run.add_argument("--listen", default="127.0.0.1:8000", help="proxy listener host:port")
    run.add_argument("--admin-listen", default="127.0.0.1:8001",
                     help="Admin API listener host:port ('off' to disable)")
    run.add_argument("--admin-token", default=os.environ.get("FASTGW_ADMIN_TOKEN"),
                     help="required as Kong-Admin-Token header on every Admin API call")
    run.add_argument("--persist", help="write Admin API changes to this declarative file")
    run.add_argument("--status-listen", default=None,
                     help="Kong's status listener host:port: GET /status and /metrics only")
    run.add_argument("--workers", type=int, default=1, help="worker processes (SO_REUSEPORT)")
    run.add_argument("--log-level", default=os.environ.get("FASTGW_LOG_LEVEL", "info"))
    chk = sub.add_parser("check", help="validate a declarative file")
    chk.add_argument("file")
    sub.add_parser("version", help="print the version")
    args = parser.parse_args(argv)
    if args.cmd == "version":
        print(f"fastgw {__version__}")
        return 0
    logging.basicConfig(level=getattr(args, "log_level", "info").upper(),
                        format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s")
    if args.cmd == "check":
        return cmd_check(args)
    if args.admin_listen == "off":
        args.admin_listen = None
    if args.workers < 1:
        parser.error("--workers must be >= 1")
    return cmd_run(args)


if __name__ == "__main__":
    sys.exit(main())
