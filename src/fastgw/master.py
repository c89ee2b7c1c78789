"""`fastgw run --workers N` (N > 1): a master process and N forked workers.

The master creates what must be shared (the shared-memory rate-limit and metrics tables) and
forks N workers. Each worker has its own uvloop loop and its own listening socket on the same
port (SO_REUSEPORT: the kernel spreads connections). Before forking, the master binds the port
once WITHOUT SO_REUSEPORT (serve.probe_bind): a port another process holds is a startup error,
never a silent split of the traffic. The master runs the Admin API and owns the configuration:
every accepted change is validated (compiled) in the master, then sent to every worker over a
pipe; each worker compiles and swaps it and answers with its config hash, which GET /status
reports. A worker that dies is restarted with the current configuration.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import struct
import time
from typing import Any

from fastgw.conf.plan import RunPlan
from fastgw.serve import (QUIT_DRAIN_TIMEOUT, announce, check_access_log,
                          detach_database, make_gateway, prefork, probe_bind, reloader,
                          reopen_logs, start_control_listeners, start_dashboard, start_demo,
                          stop_gateway, unpublish, wait_for_stop_signal)

log = logging.getLogger("fastgw")

#: how long after its drain deadline a worker may take to exit before SIGKILL (seconds)
WORKER_EXIT_GRACE = 5.0

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


def _worker_main(plan: RunPlan, config_json: bytes, rfd: int, wfd: int, index: int) -> None:
    """A forked worker: its own loop, its own SO_REUSEPORT listener, configs from the pipe."""
    import orjson
    import uvloop

    from fastgw.config.delta import apply_delta
    from fastgw.config.gcpause import gc_paused
    from fastgw.config.model import decode_config
    from fastgw.gateway import DEFAULT_DRAIN_TIMEOUT

    async def main() -> None:
        loop = asyncio.get_running_loop()
        gw = make_gateway(plan, decode_config(config_json), node_id=f"worker-{index}")
        await gw.start(plan.listen_value, None, reuse_port=True)
        if gw.tracer is not None:
            gw.tracer.outbox = []   # finished traces ride the heartbeat to the master
        stop = asyncio.Event()
        reader = _FrameReader()

        def report() -> None:
            st = gw.status()
            traffic = gw.core.traffic.snapshot() if gw.core is not None else None
            if traffic is not None and gw.access_log_writer is not None:
                traffic["access_log"] = gw.access_log_writer.stats()
            traces = gw.tracer.take_outbox() if gw.tracer is not None else []
            _send(wfd, orjson.dumps({"worker": index, "pid": os.getpid(), **st,
                                     "traffic": traffic, "traces": traces}))

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
        drain = [DEFAULT_DRAIN_TIMEOUT]

        def quit_() -> None:
            drain[0] = QUIT_DRAIN_TIMEOUT
            stop.set()

        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGQUIT, quit_)
        loop.add_signal_handler(signal.SIGINT, lambda: None)  # the master decides
        loop.add_signal_handler(signal.SIGUSR1, reopen_logs(gw.access_log_writer))
        loop.add_signal_handler(signal.SIGHUP, lambda: None)
        report()

        async def heartbeat() -> None:
            while not stop.is_set():
                await asyncio.sleep(0.5)
                report()

        hb = loop.create_task(heartbeat())
        await stop.wait()
        hb.cancel()
        await stop_gateway(gw, drain[0])

    uvloop.run(main())


class Master:
    """Owns the configuration and the Admin API; forks and supervises the workers."""

    def __init__(self, plan: RunPlan) -> None:
        self.plan = plan
        self.demo = plan.demo
        self.workers: dict[int, dict[str, Any]] = {}   # index -> {pid, wfd, rfd, status}
        self.config_json = b""   # the full encoded config, made when a worker needs it
        self.config: Any = None   # what every worker runs (after the frames sent so far)
        self.stopping = False
        self.dashboard: Any = None
        from fastgw.debug.trace import Tracer

        self.traces = Tracer([])

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
                _worker_main(self.plan, self.config_json, to_w_r, from_w_w, index)
            except BaseException:  # noqa: BLE001 - a worker must never return into the master
                logging.getLogger("fastgw").exception("worker %d crashed", index)
                code = 1
            os._exit(code)
        os.close(to_w_r)
        os.close(from_w_w)
        self.workers[index] = {"pid": pid, "wfd": to_w_w, "rfd": from_w_r, "status": {},
                               "reader": _FrameReader()}

    def run(self) -> None:
        import uvloop

        config = self.config = self.plan.config
        # refuse a port another process holds (SO_REUSEPORT would share it silently); port 0
        # becomes the kernel's choice, which every worker then binds
        plan = self.plan
        plan.listen_specs = [sp.with_port(probe_bind("proxy_listen", (sp.host, sp.port)))
                             for sp in plan.listen_specs]
        plan.listen = (plan.listen_specs[0].host, plan.listen_specs[0].port)
        check_access_log(self.plan)
        prefork()
        for i in range(self.plan.workers):
            self.spawn(i)
        uvloop.run(self.main(config))

    async def main(self, config: Any) -> None:
        import orjson

        loop = asyncio.get_running_loop()
        demo_servers = await start_demo(self.demo)
        # The master's own Gateway validates every change by compiling it (no listener).
        self.gw = gw = make_gateway(self.plan, config, proxy=False, active_health=False)
        # the workers' finished traces, for GET /debug/traces/{id} on the master's Admin API
        gw.tracer = self.traces
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

        plan = self.plan
        if plan.database is not None:
            from fastgw.cluster.pg.runtime import attach

            attach(plan, gw, apply)
        try:
            admin_addr = await start_control_listeners(plan, gw, apply)
            if plan.dashboard_listen:
                self.dashboard = await start_dashboard(plan, gw, self.traffic)
        except Exception:
            self._kill_workers()
            raise
        for w in self.workers.values():
            self._watch(loop, w)
        announce(plan, plan.listen, admin_addr)
        loop.add_signal_handler(signal.SIGUSR1, lambda: self._signal_workers(signal.SIGUSR1))
        stop = asyncio.Event()

        reload_file = reloader(plan, gw, apply)
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
        drain = await wait_for_stop_signal(
            loop, reload_file, None if self.demo or plan.config_path is None
            else plan.config_path)
        reaper.cancel()
        self.stopping = True
        await detach_database(plan)
        # the workers drain as the master was asked to (SIGQUIT: no deadline of their own)
        sig = signal.SIGQUIT if drain == QUIT_DRAIN_TIMEOUT else signal.SIGTERM
        self._signal_workers(sig)
        deadline = time.monotonic() + drain + WORKER_EXIT_GRACE
        while self.workers and time.monotonic() < deadline:
            on_child()
            await asyncio.sleep(0.05)
        self._signal_workers(signal.SIGKILL)
        if self.dashboard is not None:
            self.dashboard.close()
        await gw.stop(timeout=1)
        for s in demo_servers:
            s.close()
        unpublish(plan)
        del orjson

    def _signal_workers(self, sig: int) -> None:
        for w in list(self.workers.values()):
            try:
                os.kill(w["pid"], sig)
            except ProcessLookupError:
                pass

    def _kill_workers(self) -> None:
        self.stopping = True
        self._signal_workers(signal.SIGKILL)

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
                st = orjson.loads(frame)
                for tr in st.pop("traces", None) or ():
                    self.traces.store(tr)
                w["status"] = st

        loop.add_reader(w["rfd"], on_data)

    def traffic(self) -> dict[str, Any]:
        """The workers' traffic counters, summed (each reports its own every heartbeat)."""
        from fastgw._core.traffic import merge

        ws = [w["status"] for w in self.workers.values()]
        out = merge(s["traffic"] for s in ws if s.get("traffic"))
        out["requests_total"] = sum(s.get("total_requests", 0) for s in ws)
        logs = [s["traffic"]["access_log"] for s in ws
                if s.get("traffic") and "access_log" in s["traffic"]]
        if logs:
            out["access_log"] = {k: sum(x[k] for x in logs) for k in logs[0]}
        return out

    def worker_status(self) -> dict[str, Any]:
        ws = [{k: v for k, v in w["status"].items() if k != "traffic"}
              for _, w in sorted(self.workers.items())]
        total: dict[str, Any] = {k: sum(s.get(k, 0) for s in ws) for k in (
            "connections_active", "connections_accepted", "connections_handled",
            "total_requests", "requests_active")}
        total["workers"] = ws
        return total


