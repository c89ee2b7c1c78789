"""`fastgw run` in one process: the proxy, the Admin API and (for the demo) the demo upstreams
on one uvloop loop; plus what the master process shares (file watching, reloads, startup line).

Signals (nginx's, as Kong's verbs send them): SIGTERM / SIGINT drain and exit, SIGQUIT drains
without a deadline (`fastgw quit` enforces its own), SIGHUP reloads the declarative file.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
from typing import Any, Callable

from fastgw import __version__
from fastgw.conf.plan import RunPlan, load_declarative
from fastgw.conf.settings import SettingsError

log = logging.getLogger("fastgw")

#: how often the declarative file is checked for changes (seconds); nginx/Kong need a signal,
#: fastgw also reloads on its own when the file changes (and keeps the running config if bad)
WATCH_INTERVAL = 1.0
#: a graceful quit waits this long for in-flight requests at most (Kong `kong quit --timeout`
#: default 10 s); `fastgw quit --timeout` kills after its own deadline
QUIT_DRAIN_TIMEOUT = 3600.0


def prefork() -> None:
    """Create the tables workers must share, before any fork."""
    from fastgw.plugins import prometheus, rate_limiting

    rate_limiting.init_shared()
    prometheus.init_shared()


def bind_error(what: str, addr: tuple[str, int], e: OSError) -> SettingsError:
    # uvloop puts its own sentence in strerror: say it the way the kernel does
    why = os.strerror(e.errno) if e.errno else str(e)
    return SettingsError(f"cannot listen on {addr[0]}:{addr[1]} ({what}): {why}")


async def start_control_listeners(plan: RunPlan, gw: Any,
                                  apply: Callable[[Any], None] | None = None
                                  ) -> tuple[str, int] | None:
    """The Admin API and status listeners the plan asks for; returns the Admin API's address
    (None without one). `apply` is how the master hands accepted configs to its workers."""
    admin_addr = None
    if plan.admin_listen:
        try:
            await gw.start_admin(plan.admin_listen, token=plan.settings.admin_token,
                                 persist_path=plan.settings.admin_persist,
                                 config_source=None if plan.demo else plan.config_path,
                                 apply=apply, store=gw.store)
        except OSError as e:
            raise bind_error("admin_listen", plan.admin_listen, e) from None
        admin_addr = (plan.admin_listen[0], gw.admin.port)
    if plan.status_listen:
        try:
            await gw.start_status(plan.status_listen)
        except OSError as e:
            raise bind_error("status_listen", plan.status_listen, e) from None
    return admin_addr


async def start_demo(enabled: bool) -> list[Any]:
    """The demo upstreams the embedded default config routes to (none unless `enabled`)."""
    if not enabled:
        return []
    from fastgw.demo import DEMO_PORTS, start_demo_upstreams

    try:
        return await start_demo_upstreams()
    except OSError as e:
        raise bind_error("demo upstreams", ("127.0.0.1", DEMO_PORTS[0]), e) from None


def probe_bind(what: str, addr: tuple[str, int]) -> int:
    """Bind without SO_REUSEPORT and close: fails when any process holds the port, including
    one that would share it with SO_REUSEPORT (workers of another fastgw). Returns the port
    (the kernel's choice for port 0)."""
    family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is not "held"
        s.bind(addr)
        return s.getsockname()[1]
    except OSError as e:
        raise bind_error(what, addr, e) from None
    finally:
        s.close()


def announce(plan: RunPlan, address: tuple[str, int], admin: Any = None) -> None:
    """The startup lines on stderr: addresses, where the configuration came from, and a loud
    banner when it is the built-in demo."""
    admin_s = f", admin on http://{admin[0]}:{admin[1]}" if admin else ""
    if plan.dashboard_listen:
        admin_s += f", dashboard on http://{plan.dashboard_listen[0]}:{plan.dashboard_listen[1]}/"
    print(f"fastgw {__version__}: proxy on http://{address[0]}:{address[1]}{admin_s}",
          file=sys.stderr, flush=True)
    s = plan.settings
    print(f"fastgw: {s.describe()}; declarative config: {plan.config_source}; "
          f"access log: {plan.access_log} ({plan.access_log_format})",
          file=sys.stderr, flush=True)
    if plan.demo:
        bar = "!" * 78
        print(f"{bar}\n!!! fastgw is serving its BUILT-IN DEMO configuration: no "
              "declarative_config\n!!! (-c FILE, KONG_DECLARATIVE_CONFIG or declarative_config "
              f"in kong.conf) was given.\n{bar}", file=sys.stderr, flush=True)
        log.warning("serving the built-in demo configuration")
    for w in s.warnings:
        log.warning("%s", w)
    if s.prefix:
        from fastgw.daemon import write_runtime

        write_runtime(s.prefix, {
            "proxy": f"{address[0]}:{address[1]}",
            "admin": f"{admin[0]}:{admin[1]}" if admin else None,
            "admin_token_required": bool(s.admin_token), "workers": plan.workers,
            "access_log": plan.access_log, "version": __version__})


def unpublish(plan: RunPlan) -> None:
    """Remove the pid file the node wrote in its prefix (announce)."""
    if plan.settings.prefix:
        from fastgw.daemon import clear_runtime

        clear_runtime(plan.settings.prefix)


def _file_state(path: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


async def watch_file(path: str, on_change: Callable[[], None],
                     interval: float = WATCH_INTERVAL) -> None:
    """Call on_change() when the file's mtime, size or inode changes (editors that replace
    the file, `cp`, atomic renames). A vanished file changes nothing."""
    last = _file_state(path)
    while True:
        await asyncio.sleep(interval)
        cur = _file_state(path)
        if cur is not None and cur != last:
            last = cur
            on_change()


def reloader(plan: RunPlan, gw: Any, apply: Callable[[Any], None]) -> Callable[[], None]:
    """The SIGHUP / file-change handler: load the file and apply it through the Admin API's
    store when there is one (so GET /config shows it), else `apply`. A bad file is logged and
    changes nothing. The demo and declarative_config_string have no file: nothing to reload."""
    def reload_file() -> None:
        if plan.demo or plan.config_path is None:
            log.info("reload: no declarative file to reload")
            return
        try:
            new = load_declarative(plan)
            if gw.store is not None:
                gw.store.replace(new)
            else:
                apply(new)
            log.info("reloaded %s", plan.config_path)
        except Exception as e:  # noqa: BLE001 - report every failure, keep running config
            log.error("reload of %s failed, running configuration kept: %s",
                      plan.config_path, e)

    return reload_file


def check_access_log(plan: RunPlan) -> None:
    """Fail before serving (and before forking) when the access log cannot be opened."""
    from fastgw.accesslog import open_target

    if plan.access_log == "off":
        return
    try:
        os.close(open_target(plan.access_log))
    except OSError as e:
        raise SettingsError(f"cannot open access log {plan.access_log}: "
                            f"{e.strerror or e}") from None


def make_gateway(plan: RunPlan, config: Any, *, proxy: bool = True, **kw: Any) -> Any:
    """The Gateway the plan describes; `proxy` False for the master's validating instance
    (no access log). The access log writer, when on, is `gw.access_log_writer`."""
    from fastgw.accesslog import AccessLogWriter
    from fastgw.gateway import Gateway

    s = plan.settings
    writer = None
    if proxy and plan.access_log != "off":
        writer = AccessLogWriter(plan.access_log, plan.access_log_format).start()
    gw = Gateway(config, trusted_ips=tuple(ip for ip in s.trusted_ips if ip != "unix:"),
                 real_ip_header=s.real_ip_header, real_ip_recursive=s.real_ip_recursive,
                 node_id=kw.pop("node_id", None) or s.node_id, headers=s.headers,
                 headers_upstream=s.headers_upstream,
                 trace_keys=[k for k in (s.admin_token, s.trace_key) if k] if proxy else (),
                 access_log=writer.buffer if writer is not None else None,
                 limits=plan.limits, ssl_cert=plan.ssl_cert, ssl_cert_key=plan.ssl_cert_key,
                 freeze_gc=True, **kw)
    gw.access_log_writer = writer
    return gw


async def stop_gateway(gw: Any, timeout: float) -> None:
    await gw.stop(timeout=timeout)
    if gw.access_log_writer is not None:
        gw.access_log_writer.close()


async def start_dashboard(plan: RunPlan, gw: Any,
                          traffic: Callable[[], dict[str, Any]]) -> Any:
    """The dashboard listener (admin_gui_listen), reading the Admin API in-process."""
    from fastgw.admin.app import AdminAPI
    from fastgw.admin.dashboard import start_dashboard as start
    from fastgw.config.store import ConfigStore

    assert plan.dashboard_listen is not None
    store = gw.store or ConfigStore(gw.config, gw.update, None)
    try:
        return await start(AdminAPI(store, gw), *plan.dashboard_listen,
                           token=plan.settings.admin_token, traffic=traffic)
    except OSError as e:
        raise bind_error("admin_gui_listen", plan.dashboard_listen, e) from None


def local_traffic(gw: Any) -> Callable[[], dict[str, Any]]:
    def traffic() -> dict[str, Any]:
        core = gw.core
        out = core.traffic.snapshot() if core is not None else {}
        out["requests_total"] = gw.status().get("total_requests", 0)
        if gw.access_log_writer is not None:
            out["access_log"] = gw.access_log_writer.stats()
        return out

    return traffic


async def serve_single(plan: RunPlan) -> None:
    loop = asyncio.get_running_loop()
    demo_servers = await start_demo(plan.demo)
    check_access_log(plan)
    gw = make_gateway(plan, plan.config)
    try:
        await gw.start(plan.listen_value, None)
    except OSError as e:
        await stop_gateway(gw, 0)
        raise bind_error("proxy_listen", plan.listen, e) from None
    if plan.database is not None:
        from fastgw.cluster.pg.runtime import attach

        attach(plan, gw, gw.update)
    try:
        admin_addr = await start_control_listeners(plan, gw)
        dashboard = None
        if plan.dashboard_listen:
            dashboard = await start_dashboard(plan, gw, local_traffic(gw))
    except SettingsError:
        await stop_gateway(gw, 0)
        await detach_database(plan)
        raise
    announce(plan, gw.address, admin_addr)
    loop.add_signal_handler(signal.SIGUSR1, reopen_logs(gw.access_log_writer))
    drain = await wait_for_stop_signal(loop, reloader(plan, gw, gw.update),
                                       None if plan.demo or plan.config_path is None
                                       else plan.config_path)
    log.info("shutting down: draining in-flight requests")
    if dashboard is not None:
        dashboard.close()
    await detach_database(plan)
    await stop_gateway(gw, drain)
    for s in demo_servers:
        s.close()
    unpublish(plan)


async def detach_database(plan: RunPlan) -> None:
    if plan.database is not None:
        from fastgw.cluster.pg.runtime import detach

        await detach(plan)


def reopen_logs(*writers: Any) -> Callable[[], None]:
    """SIGUSR1 (nginx's "reopen log files", for logrotate): the access log is reopened."""
    def reopen() -> None:
        for w in writers:
            if w is not None:
                try:
                    w.reopen()
                except OSError as e:
                    log.error("reopening access log %s failed: %s", w.target, e)
        log.info("log files reopened")

    return reopen


async def wait_for_stop_signal(loop: asyncio.AbstractEventLoop, reload_file: Callable[[], None],
                               watch_path: str | None) -> float:
    """Install the signal handlers and wait; returns the drain timeout the signal asks for."""
    from fastgw.gateway import DEFAULT_DRAIN_TIMEOUT

    stop = asyncio.Event()
    drain = [DEFAULT_DRAIN_TIMEOUT]

    def quit_() -> None:
        drain[0] = QUIT_DRAIN_TIMEOUT
        stop.set()

    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGQUIT, quit_)
    loop.add_signal_handler(signal.SIGHUP, reload_file)
    watcher = None if watch_path is None else loop.create_task(watch_file(watch_path,
                                                                          reload_file))
    await stop.wait()
    if watcher is not None:
        watcher.cancel()
    return drain[0]
