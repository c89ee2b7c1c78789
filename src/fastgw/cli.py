"""fastgw's command line: Kong's verbs on Kong's configuration surface.

  fastgw run      the gateway in the foreground (this process; --workers N forks N workers)
  fastgw start    the same in the background, in a prefix directory with a pid file
  fastgw stop     fast shutdown (SIGTERM: in-flight requests get up to 10 s)
  fastgw quit     graceful shutdown (SIGQUIT: in-flight requests finish; --timeout then kill)
  fastgw reload   re-read the declarative configuration (SIGHUP)
  fastgw health   is the node in the prefix running and answering
  fastgw check    validate a kong.conf (and the declarative file it names) or a declarative file
  fastgw version  print the version
  fastgw migrations bootstrap|up|status   the PostgreSQL schema (database mode)
  fastgw config db_import FILE | db_export [FILE]   a declarative file into / out of it

Node settings (see fastgw.conf): defaults < --conf kong.conf < KONG_<KEY> < FASTGW_<KEY> <
flags. Rules: every user mistake is one line on stderr and a non-zero exit, never a traceback;
the library installs no signal handlers or loop policy, this module does.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from typing import Any

from fastgw import __version__, dns
from fastgw.limits import add_arguments as add_limit_arguments, from_args as limits_from_args

log = logging.getLogger("fastgw")

#: exit status for a configuration or startup error (Kong exits 1 on every error)
EXIT_ERROR = 1

ENV_HELP = """\
node settings, lowest to highest precedence:
  built-in defaults < --conf FILE (kong.conf format) < KONG_<KEY> < FASTGW_<KEY> < flags
keys read (as KONG_<KEY> or FASTGW_<KEY>, e.g. KONG_PROXY_LISTEN=127.0.0.1:9000):
  proxy_listen admin_listen status_listen admin_gui_listen (the dashboard)  host:port|off
  declarative_config declarative_config_string   (without either: the built-in demo)
  database (off, postgres or postgres://user@host:port/db) pg_host pg_port pg_user
  pg_password pg_database pg_timeout database_cache (the last config, for restarts)
  log_level (debug info notice warn error crit)  nginx_worker_processes (N or auto)
  trusted_ips real_ip_header real_ip_recursive   (who may set the client address)
  headers (server_tokens latency_tokens x-kong-request-id ... off) headers_upstream
  proxy_access_log (path, stdout or off) proxy_access_log_format (combined, json)
  proxy_error_log prefix node_id
  admin_token (FASTGW_ADMIN_TOKEN) admin_persist trace_key      (fastgw's own keys)
  ssl_cert ssl_cert_key admin_ssl_* status_ssl_*: not supported yet (an error when set)
other Kong keys are accepted with a warning that names them.
defaults: run logs access lines to stdout and errors to stderr; start writes
<prefix>/logs/access.log and <prefix>/logs/error.log (prefix default ~/.fastgw).
"""

#: flag dest -> settings key
FLAG_KEYS = {
    "config": "declarative_config", "listen": "proxy_listen", "admin_listen": "admin_listen",
    "status_listen": "status_listen", "admin_token": "admin_token", "persist": "admin_persist",
    "workers": "nginx_worker_processes", "log_level": "log_level", "prefix": "prefix",
    "access_log": "proxy_access_log", "access_log_format": "proxy_access_log_format",
    "error_log": "proxy_error_log", "trusted_ips": "trusted_ips",
    "real_ip_header": "real_ip_header", "real_ip_recursive": "real_ip_recursive",
    "headers": "headers", "trace_key": "trace_key", "dashboard_listen": "admin_gui_listen",
    "ssl_cert": "ssl_cert", "ssl_cert_key": "ssl_cert_key",
    "database": "database", "database_cache": "database_cache",
}


def _add_node_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", help="Kong declarative file (YAML or JSON) "
                   "[declarative_config]; without one: the built-in demo")
    p.add_argument("--conf", help="a kong.conf-format file of node settings")
    p.add_argument("-p", "--prefix", help="prefix directory (pid file, logs) [prefix]")
    p.add_argument("--listen", action="append",
                   help="proxy listeners, Kong's syntax: host:port [ssl] [http2] [reuseport] "
                   "[backlog=N], comma-separated, repeatable [proxy_listen] "
                   "(default 127.0.0.1:8000, 127.0.0.1:8443 ssl http2)")
    p.add_argument("--ssl-cert", help="PEM certificate of the TLS listeners [ssl_cert] "
                   "(default: a self-signed one made at start)")
    p.add_argument("--ssl-cert-key", help="its PEM key [ssl_cert_key]")
    p.add_argument("--admin-listen", help="Admin API host:port or off [admin_listen] "
                   "(default 127.0.0.1:8001)")
    p.add_argument("--admin-token", help="required as Kong-Admin-Token on every Admin API "
                   "call [admin_token]")
    p.add_argument("--persist", help="write Admin API changes to this declarative file "
                   "[admin_persist]")
    p.add_argument("--status-listen", help="Kong's status listener host:port: GET /status "
                   "and /metrics only [status_listen]")
    p.add_argument("--workers", help="worker processes, N or auto [nginx_worker_processes]")
    p.add_argument("--log-level", help="debug|info|notice|warn|error|crit [log_level]")
    p.add_argument("--dashboard-listen", help="the dashboard page host:port "
                   "[admin_gui_listen] (default off)")
    p.add_argument("--access-log", help="PATH, stdout or off [proxy_access_log]")
    p.add_argument("--access-log-format", help="combined or json [proxy_access_log_format]")
    p.add_argument("--error-log", help="PATH for the error log [proxy_error_log]")
    p.add_argument("--trusted-ips", help="comma-separated CIDRs of trusted proxies "
                   "[trusted_ips]")
    p.add_argument("--real-ip-header", help="header with the client address when the peer "
                   "is trusted [real_ip_header] (default X-Real-IP)")
    p.add_argument("--real-ip-recursive", help="on|off [real_ip_recursive]")
    p.add_argument("--headers", help="Kong's headers setting, comma-separated [headers]")
    _add_database_flags(p)
    p.add_argument("--trace-key", help="the X-Fastgw-Trace value that asks for a trace "
                   "besides the admin token [trace_key]")
    add_limit_arguments(p)
    dns.add_arguments(p)


def _add_database_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--database", help="off (DB-less, the default), postgres (the pg_* "
                   "settings) or postgres://user[:password]@host:port/db [database]")
    p.add_argument("--database-cache", help="file holding the last configuration read from "
                   "the database, used when it is down at startup [database_cache] "
                   "(default <prefix>/database_cache.json)")


def build_parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(prog="fastgw", description="Kong-compatible API gateway",
                                     epilog=ENV_HELP, formatter_class=fmt)
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name, text in (("run", "run the gateway in the foreground"),
                       ("start", "start the gateway in the background (prefix + pid file)")):
        p = sub.add_parser(name, help=text, epilog=ENV_HELP, formatter_class=fmt)
        _add_node_flags(p)
    for name, text in (("stop", "stop the node in the prefix (fast: 10 s drain)"),
                       ("quit", "stop the node gracefully (in-flight requests finish)"),
                       ("reload", "reload the node's declarative configuration"),
                       ("health", "check that the node in the prefix is running")):
        p = sub.add_parser(name, help=text)
        p.add_argument("-p", "--prefix", help="prefix directory (default: KONG_PREFIX, "
                       "FASTGW_PREFIX or ~/.fastgw)")
        if name == "quit":
            p.add_argument("--wait", type=float, default=0.0,
                           help="seconds to wait before starting the shutdown")
            p.add_argument("--timeout", type=float, default=None,
                           help="seconds to wait for a graceful exit, then kill (10)")
    chk = sub.add_parser("check", help="validate a kong.conf or a declarative file")
    chk.add_argument("file")
    from fastgw.cluster.pg.cli import add_parsers

    add_parsers(sub, _add_database_flags)
    ver = sub.add_parser("version", help="print the version")
    ver.add_argument("-a", "--all", action="store_true", help="also the dependencies")
    return parser


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    out = {key: getattr(args, dest, None) for dest, key in FLAG_KEYS.items()}
    if isinstance(out["proxy_listen"], list):   # --listen repeated: one comma-separated list
        out["proxy_listen"] = ", ".join(out["proxy_listen"])
    return out


def _settings(args: argparse.Namespace) -> Any:
    from fastgw.conf import load_settings

    return load_settings(getattr(args, "conf", None), flags=_flags(args))


def _setup_logging(level: str, path: str | None) -> None:
    handler: logging.Handler
    if path and path not in ("stderr", "/dev/stderr"):
        handler = logging.FileHandler(path)
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(
        "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def fail(message: str) -> int:
    print(f"fastgw: {message}", file=sys.stderr, flush=True)
    return EXIT_ERROR


def cmd_run(args: argparse.Namespace) -> int:
    from fastgw.conf.plan import make_plan

    s = _settings(args)
    plan = make_plan(s, access_log_default="logs/access.log" if s.prefix else "stdout",
                     error_log_default=None)
    try:
        plan.limits = limits_from_args(args)
        if plan.tls or plan.ssl_cert or plan.ssl_cert_key:
            # checks the files, or makes the self-signed default once, before any worker
            # forks, so every worker serves the same default certificate
            from fastgw.tls import load_default_pairs

            load_default_pairs(plan.ssl_cert, plan.ssl_cert_key)
    except ValueError as e:
        return fail(str(e))
    if s.prefix:
        from fastgw.daemon import prepare_prefix, running_pid

        prepare_prefix(s.prefix)
        other = running_pid(s.prefix)
        if other is not None and other != os.getpid():
            return fail(f"fastgw is already running in {s.prefix} (pid {other})")
    _setup_logging(s.log_level_name, plan.error_log)
    if plan.database is not None:
        from fastgw.cluster.pg.runtime import prepare

        prepare(plan)
    import uvloop

    if plan.workers > 1:
        from fastgw.master import Master

        Master(plan).run()
        return 0
    from fastgw.serve import prefork, serve_single

    prefork()
    uvloop.run(serve_single(plan))
    return 0


def cmd_start(args: argparse.Namespace, argv: list[str]) -> int:
    from fastgw.conf.plan import make_plan
    from fastgw.daemon import DEFAULT_PREFIX, start

    s = _settings(args)
    prefix = os.path.abspath(s.prefix or DEFAULT_PREFIX)
    s.set("prefix", prefix, s.source("prefix"))
    make_plan(s, access_log_default="logs/access.log",
              error_log_default=None)   # every mistake reported here, in the foreground
    run_argv = _strip_prefix(argv[1:])
    pid = start(prefix, run_argv)
    print(f"fastgw started (pid {pid}) in {prefix}")
    return 0


def _strip_prefix(argv: list[str]) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a in ("-p", "--prefix"):
            skip = True
        elif not a.startswith("--prefix="):
            out.append(a)
    return out


def _prefix(args: argparse.Namespace) -> str:
    from fastgw.daemon import DEFAULT_PREFIX

    return os.path.abspath(args.prefix or os.environ.get("FASTGW_PREFIX")
                           or os.environ.get("KONG_PREFIX") or DEFAULT_PREFIX)


def cmd_signal(args: argparse.Namespace) -> int:
    from fastgw import daemon

    prefix = _prefix(args)
    if args.cmd == "stop":
        daemon.stop(prefix)
        print("fastgw stopped")
    elif args.cmd == "quit":
        timeout = daemon.QUIT_TIMEOUT if args.timeout is None else args.timeout
        if daemon.quit_(prefix, args.wait, timeout):
            print("fastgw stopped (gracefully)")
        else:
            print(f"fastgw: timeout after {timeout:g}s, stopped forcefully", file=sys.stderr)
    elif args.cmd == "reload":
        daemon.reload(prefix)
        print("fastgw reloaded")
    else:
        info = daemon.health(prefix)
        extra = f", admin {info['admin']}" if info.get("admin") else ""
        print(f"fastgw is healthy at {prefix} (pid {info['pid']}, proxy "
              f"{info.get('proxy', '?')}{extra})")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """A kong.conf (Kong's `kong check`): its settings and the declarative file it names; any
    other file: a declarative file (Kong's `kong config parse`), compiled as the proxy would."""
    from fastgw.conf import load_settings
    from fastgw.conf.plan import RunPlan, load_declarative, make_plan

    path = args.file
    if _looks_like_kong_conf(path):
        s = load_settings(path)   # with KONG_* / FASTGW_* applied, as the node would
        plan = make_plan(s, access_log_default="off", error_log_default=None)
        for w in s.warnings:
            print(f"warning: {w}", file=sys.stderr)
        config = plan.config
        what = f"{path}: ok (kong.conf); declarative config: {plan.config_source}"
        if plan.database is not None:   # the configuration is in the database: not read here
            print(f"{path}: ok (kong.conf); configuration in {plan.database.describe()}")
            return 0
    else:
        from fastgw.conf.settings import Settings

        plan = RunPlan(settings=Settings(), listen=("127.0.0.1", 0), admin_listen=None,
                       status_listen=None, config_path=path, config_text=None, demo=False)
        config = load_declarative(plan)
        what = f"{path}: ok"
    _compile(config, path)
    counts = {k: len(getattr(config, k)) for k in (
        "services", "routes", "upstreams", "targets", "consumers", "plugins")}
    print(f"{what} — " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    return 0


def _looks_like_kong_conf(path: str) -> bool:
    if path.endswith((".yml", ".yaml", ".json")):
        return False
    if path.endswith(".conf"):
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    return b"_format_version" not in head and not head.lstrip().startswith((b"{", b"["))


def _compile(config: Any, path: str) -> None:
    # regexes, balancers and plugin configs are checked when compiled
    from fastgw.conf.settings import SettingsError
    from fastgw.config.errors import ConfigError
    from fastgw.gateway import Gateway

    async def compile_it() -> None:
        gw = Gateway(config, active_health=False)
        await gw.start(("127.0.0.1", 0))
        await gw.stop(timeout=0.1)

    try:
        asyncio.run(compile_it())
    except ConfigError as e:
        raise SettingsError(f"{path}: invalid\n{e}") from None


def cmd_version(args: argparse.Namespace) -> int:
    print(f"fastgw {__version__}")
    if args.all:
        import platform
        from importlib import metadata

        info = {"python": platform.python_version()}
        for dep in ("uvloop", "msgspec", "orjson", "Cython"):
            try:
                info[dep] = metadata.version(dep)
            except metadata.PackageNotFoundError:
                info[dep] = None
        print(json.dumps(info))
    return 0


def main(argv: list[str] | None = None) -> int:
    from fastgw.conf.settings import SettingsError
    from fastgw.daemon import DaemonError

    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    try:
        if args.cmd == "version":
            return cmd_version(args)
        if args.cmd == "check":
            return cmd_check(args)
        if args.cmd == "run":
            return cmd_run(args)
        if args.cmd == "start":
            return cmd_start(args, argv)
        if args.cmd in ("migrations", "config"):
            from fastgw.cluster.pg.cli import run_command

            return run_command(args, _settings(args))
        return cmd_signal(args)
    except (SettingsError, DaemonError) as e:
        return fail(str(e))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
