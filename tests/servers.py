"""Real servers on 127.0.0.1 for tests and benchmarks: nginx, redis-server, an echo upstream, fastgw.

Import from any test module as ``from servers import ...`` (tests/conftest.py puts tests/ on
sys.path and wraps the common ones as pytest fixtures). bench/run.py imports it too.

Rules of this module:
- Every server binds 127.0.0.1 only, on a port from ``free_port()`` (or one you pass).
- Every helper is a context manager; ``start()`` returns self, ``stop()`` is idempotent and also
  runs at interpreter exit for anything left running. Child processes are started in their own
  session and stopped with SIGTERM, then SIGKILL to their process group after a timeout (so
  nginx/fastgw worker processes never outlive a test).
- Nothing is written outside a private temp dir (``.tmpdir``), so everything runs as root
  without touching /var or /etc. Each process's output goes to ``.log_path``; ``log_text()``
  reads it and start failures raise with its tail.

API (everything else in this file is private):

    free_port() -> int                      # a port that was free on 127.0.0.1 a moment ago
    wait_port(port, timeout=10.0, proc=None)
    wait_until(predicate, timeout=5.0) -> value   # polls; raises TimeoutError
    find_binary(name) -> str | None         # PATH plus /usr/sbin, /usr/local/sbin, /sbin
    pattern_bytes(n, offset=0) -> bytes     # the deterministic body bytes served by /big and size=N
    http_get(url, headers=None, timeout=5.0) -> (status, headers: list, body: bytes)

    NginxUpstream(servers=1, big_size=1 MiB, body="hello\\n", workers=1, master_process=True,
                  keepalive_timeout=60, keepalive_requests=10000)
        .port / .ports (one per server block) / .url(path, i=0) / .big_size
        every server block serves:
          /            (and any other path) 200 `body`, text/plain
          /info        200 "$request_method $request_uri $http_host\\n"
          /big         `big_size` bytes of pattern_bytes(), Content-Length, application/octet-stream
          /status/NNN  that status (NGINX_STATUSES); 3xx redirect to "/", 204/304 without body
        and adds `X-Server-Port: <port>` to every response (which target answered).
    NginxProcess(http_conf, ports, workers=1, master_process=True)   # any nginx config
    HAProxyProcess(cfg_text, ports)                                  # haproxy -db -f cfg

    RedisServer()  .port / .url / .client(**redis_kwargs) -> redis.Redis / .async_client()

    EchoUpstream(port=0, idle_timeout=None)    # asyncio HTTP/1.1 server in a background thread
        .port / .url(path) / .requests -> list[EchoRequest] / .clear()
        .connections_total / .connections_open / .errors (unexpected server-side exceptions)
        .set_default(Behaviour) / .on(path_prefix, Behaviour) / .queue(*Behaviour)
        .wait_requests(n, timeout=5.0) -> list[EchoRequest]
        stop() then start() serves again on the same port (a target that goes down and comes back).
      Which Behaviour answers a request, first match wins:
        1. the request header  X-Echo: status=503; delay=0.5; size=1000; chunked=1 ...
           (keys are Behaviour field names; headers=Name:value,Name2:value)
        2. the next queued Behaviour (.queue(), consumed one per request, any path)
        3. the longest path prefix registered with .on()
        4. the default (.set_default(), initially Behaviour()).
      Default answer: 200 application/json echo of the request:
        {"method","target","path","query","version","headers":[[name,value],...],
         "body_len","body_sha256","body" (latin-1 text if <= 64 KiB else null),"conn_id","port"}
      Every response carries `X-Echo-Conn: <connection number>` (upstream keep-alive reuse).

    Behaviour(status=200, delay=0.0, body_delay=0.0, reset="", garbage=False, size=None,
              chunked=False, close=False, expect="continue", early=(), headers=())
        delay        seconds to wait after reading the request, before the head (hang: 3600)
        body_delay   seconds to wait between the head and the body
        reset        "before_headers": read the request, then TCP RST, no response at all
                     "mid_body": send the head and half the body, then TCP RST
        garbage      answer with bytes that are not HTTP, then close
        size         stream `size` bytes of pattern_bytes() instead of the JSON echo
                     (generated in 64 KiB pieces with flow control: never held in memory)
        chunked      frame the body with Transfer-Encoding: chunked instead of Content-Length
        close        send Connection: close and close after the response
        expect       for "Expect: 100-continue": "continue" sends 100 then reads the body;
                     "final" answers `status` at once without reading the body, then closes;
                     "ignore" sends nothing and waits for the body
        early        1xx statuses (e.g. (103,)) sent before the final response
        headers      extra response headers, ((name, value), ...)
      HEAD gets the head only (Content-Length as for GET); 204, 304 and 1xx never get a body.

    FastgwProcess(config: dict | str | PathLike, workers=1, extra_args=(), start_timeout=20.0,
                  wait_admin=False, env=None, command=None)
        runs `sys.executable -m fastgw run -c FILE --listen 127.0.0.1:P --admin-listen
        127.0.0.1:A --workers N *extra_args` (`command` replaces `sys.executable -m fastgw`);
        a dict is written as YAML, a str as the file's text, a path is used as is. .port / .admin_port / .url(path) / .admin_url(path) / .pid /
        .send_signal(sig) / .returncode / stop(timeout=10.0) -> returncode / log_text()

    EchoRequest fields: method, target, version, headers (list of (name, value) as received),
        body (bytes, None when larger than MAX_KEPT_BODY), body_len, body_sha256, complete
        (the whole body arrived), conn_id, index_on_conn, peer_port, raw_head;
        .path / .query / .header(name) / .header_all(name)
"""
from __future__ import annotations

import asyncio
import atexit
import contextlib
import dataclasses
import errno
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import weakref
from http import HTTPStatus
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence, TypeVar

HOST = "127.0.0.1"  # the only address any helper binds or connects to
STOP_TIMEOUT = 5.0  # seconds between SIGTERM and SIGKILL for helper processes
START_ATTEMPTS = 3  # free_port() can race with another test grabbing the port: retry that case
MAX_KEPT_BODY = 1 << 20  # EchoUpstream keeps request bodies up to 1 MiB; beyond, length + hash only
ECHO_BODY_IN_JSON = 64 << 10  # request bodies up to 64 KiB are echoed back as text
IO_CHUNK = 64 << 10  # piece size for generated bodies (what nginx's output_buffers use)
NGINX_STATUSES = (200, 201, 202, 204, 301, 302, 304, 307, 308, 400, 401, 403, 404, 405, 408,
                  409, 413, 418, 429, 500, 501, 502, 503, 504)

T = TypeVar("T")


# ---------------------------------------------------------------------------------- small helpers

def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 when asked (the kernel's pick for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 10.0, proc: subprocess.Popen | None = None) -> None:
    """Block until 127.0.0.1:port accepts a connection; fail early if `proc` exits meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before port {port} opened")
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listening on {HOST}:{port} after {timeout}s") from None
            time.sleep(0.02)


def wait_until(predicate: Callable[[], T], timeout: float = 5.0, interval: float = 0.01) -> T:
    """Poll `predicate` until it returns something truthy; return it, or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout}s")
        time.sleep(interval)


def find_binary(name: str) -> str | None:
    """The path of `name`, also looking in the sbin dirs a non-root PATH often lacks."""
    found = shutil.which(name)
    if found:
        return found
    for d in ("/usr/sbin", "/usr/local/sbin", "/sbin"):
        p = os.path.join(d, name)
        if os.access(p, os.X_OK):
            return p
    return None


# Byte i of every generated body is i % 251: a prime period, so a dropped, duplicated or
# reordered piece shows up as a mismatch (a power-of-two period would hide 64 KiB shifts).
_PERIOD = 251
_BLOCK = bytes(i % _PERIOD for i in range(_PERIOD * ((IO_CHUNK // _PERIOD) + 2)))


def pattern_bytes(n: int, offset: int = 0) -> bytes:
    """Bytes offset..offset+n of the endless pattern served by /big and Behaviour(size=N)."""
    out = bytearray()
    pos = offset
    end = offset + n
    while pos < end:
        start = pos % _PERIOD
        take = min(end - pos, len(_BLOCK) - start)
        out += _BLOCK[start:start + take]
        pos += take
    return bytes(out)


def _iter_pattern(n: int) -> Iterable[bytes]:
    pos = 0
    while pos < n:
        take = min(IO_CHUNK, n - pos)
        start = pos % _PERIOD
        yield _BLOCK[start:start + take]
        pos += take


def http_get(url: str, headers: dict[str, str] | None = None,
             timeout: float = 5.0) -> tuple[int, list[tuple[str, str]], bytes]:
    """One GET with http.client (a real third-party-free client); returns status, headers, body."""
    u = urllib.parse.urlsplit(url)
    if u.hostname != HOST:
        raise ValueError(f"tests only talk to {HOST}, not {u.hostname}")
    conn = http.client.HTTPConnection(HOST, u.port, timeout=timeout)
    try:
        conn.request("GET", (u.path or "/") + (f"?{u.query}" if u.query else ""),
                     headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.getheaders(), resp.read()
    finally:
        conn.close()


# ------------------------------------------------------------------------------ child processes

_LIVE: "weakref.WeakSet[_Stoppable]" = weakref.WeakSet()


class _Stoppable:
    def stop(self) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError


@atexit.register
def _stop_leftovers() -> None:
    # A test that forgot stop(), or a Ctrl-C between start and the with-block: never leave a
    # server (and its workers) running after the interpreter is gone.
    for obj in list(_LIVE):
        with contextlib.suppress(Exception):
            obj.stop()


class ManagedProcess(_Stoppable):
    """A child process in its own session, output to a log file in a private temp dir."""

    name = "proc"

    def __init__(self) -> None:
        self.tmpdir = Path(tempfile.mkdtemp(prefix=f"fastgw-{self.name}-"))
        self.log_path = self.tmpdir / f"{self.name}.log"
        self.proc: subprocess.Popen | None = None
        self._log_file: Any = None

    # -- lifecycle
    def _spawn(self, argv: Sequence[str], env: dict[str, str] | None = None) -> None:
        self._log_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=self._log_file,
            stderr=subprocess.STDOUT, cwd=self.tmpdir, env=env,
            start_new_session=True,  # its own process group: stop() can reach its workers
        )
        _LIVE.add(self)

    def _wait_ports(self, ports: Iterable[int], timeout: float) -> None:
        try:
            for p in ports:
                wait_port(p, timeout, self.proc)
        except (RuntimeError, TimeoutError) as e:
            self._terminate()
            raise RuntimeError(f"{self.name} did not start: {e}\n--- {self.log_path}:\n"
                               f"{self.log_tail()}") from None

    def _address_in_use(self) -> bool:
        text = self.log_text()
        return "Address already in use" in text or f"[Errno {errno.EADDRINUSE}]" in text

    def _terminate(self, timeout: float = STOP_TIMEOUT) -> int | None:
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        # SIGKILL whatever is left in the group we created (workers whose master is gone, or a
        # master that ignored SIGTERM). The group id is the pid of the process we started.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        _LIVE.discard(self)
        return proc.returncode

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM, then SIGKILL to the group after `timeout`; returns the exit code."""
        return self._terminate(timeout)

    def cleanup(self) -> None:
        """Stop and delete the temp dir (logs included)."""
        self.stop()
        shutil.rmtree(self.tmpdir, ignore_errors=True)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def returncode(self) -> int | None:
        return self.proc.poll() if self.proc else None

    def send_signal(self, sig: int) -> None:
        assert self.proc is not None, "not started"
        self.proc.send_signal(sig)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def __enter__(self: T) -> T:
        if getattr(self, "proc", None) is None:
            try:
                self.start()  # type: ignore[attr-defined]
            except BaseException:
                self.cleanup()  # type: ignore[attr-defined]  # the error carries the log tail
                raise
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None and exc_type is not KeyboardInterrupt:
            sys.stderr.write(f"--- {self.name} log ({self.log_path}):\n{self.log_tail()}\n")
        self.cleanup()


# ------------------------------------------------------------------------------------- nginx

def nginx_conf(tmpdir: Path, http_conf: str, workers: int = 1, master_process: bool = True,
               worker_connections: int = 4096) -> str:
    """A complete nginx.conf around `http_conf` with every path inside `tmpdir`."""
    t = str(tmpdir)
    # As root the workers would switch to "nobody" and fail to read the 0700 temp dir.
    user = "user root;\n" if os.geteuid() == 0 else ""
    return f"""\
daemon off;
master_process {"on" if master_process else "off"};
worker_processes {workers};
pid {t}/nginx.pid;
error_log {t}/error.log warn;
{user}events {{ worker_connections {worker_connections}; }}
http {{
    access_log off;
    client_body_temp_path {t}/client_body;
    proxy_temp_path {t}/proxy;
    fastcgi_temp_path {t}/fastcgi;
    uwsgi_temp_path {t}/uwsgi;
    scgi_temp_path {t}/scgi;
    default_type text/plain;
{http_conf}
}}
"""


class NginxProcess(ManagedProcess):
    """nginx with a given http{} body; the caller picks the ports and lists them to wait on."""

    name = "nginx"

    def __init__(self, http_conf: str, ports: Sequence[int], workers: int = 1,
                 master_process: bool = True, start_timeout: float = 10.0,
                 worker_connections: int = 4096) -> None:
        super().__init__()
        self.worker_connections = worker_connections
        self.http_conf = http_conf
        self.ports = list(ports)
        self.workers = workers
        self.master_process = master_process
        self.start_timeout = start_timeout
        self.binary = find_binary("nginx")

    @property
    def port(self) -> int:
        return self.ports[0]

    def url(self, path: str = "/", i: int = 0) -> str:
        return f"http://{HOST}:{self.ports[i]}{path}"

    def _write_conf(self) -> Path:
        conf = self.tmpdir / "nginx.conf"
        conf.write_text(nginx_conf(self.tmpdir, self.http_conf, self.workers, self.master_process,
                                   self.worker_connections))
        return conf

    def start(self) -> "NginxProcess":
        if self.binary is None:
            raise FileNotFoundError("nginx not found (apt-get install nginx-light)")
        conf = self._write_conf()
        # -e: nginx opens its compiled-in error log before reading the config; point it here.
        self._spawn([self.binary, "-p", f"{self.tmpdir}/", "-c", str(conf),
                     "-e", str(self.tmpdir / "error.log")])
        self._wait_ports(self.ports, self.start_timeout)
        return self

    def log_text(self) -> str:
        parts = [super().log_text()]
        with contextlib.suppress(FileNotFoundError):
            parts.append((self.tmpdir / "error.log").read_text(errors="replace"))
        return "\n".join(p for p in parts if p)


def _nginx_quote(text: str) -> str:
    if "$" in text:
        raise ValueError("nginx `return` text cannot contain a literal '$'")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


class NginxUpstream(NginxProcess):
    """A real nginx backend: fixed body, /info, /big, /status/NNN on `servers` ports."""

    name = "nginx-upstream"

    def __init__(self, servers: int = 1, big_size: int = 1 << 20, body: str = "hello\n",
                 workers: int = 1, master_process: bool = True, keepalive_timeout: int = 60,
                 keepalive_requests: int = 10000, start_timeout: float = 10.0) -> None:
        super().__init__("", [], workers, master_process, start_timeout)
        self.servers = servers
        self.big_size = big_size
        self.body = body
        self.keepalive_timeout = keepalive_timeout
        self.keepalive_requests = keepalive_requests
        self._quoted_body = _nginx_quote(body)

    def _server_block(self, port: int) -> str:
        statuses = []
        for code in NGINX_STATUSES:
            if code in (204, 304):
                action = f"return {code};"
            elif 300 <= code < 400:
                action = f"return {code} /;"
            else:
                action = f'return {code} "status {code}\\n";'
            statuses.append(f"        location = /status/{code} {{ {action} }}")
        status_lines = "\n".join(statuses)
        return f"""\
    server {{
        listen {HOST}:{port} backlog=4096;
        keepalive_timeout {self.keepalive_timeout}s;
        keepalive_requests {self.keepalive_requests};
        add_header X-Server-Port $server_port always;
        location / {{ return 200 {self._quoted_body}; }}
        location = /info {{ return 200 "$request_method $request_uri $http_host\\n"; }}
        location = /big {{
            alias {self.tmpdir}/big.bin;
            default_type application/octet-stream;
        }}
{status_lines}
    }}
"""

    def start(self) -> "NginxUpstream":
        big = self.tmpdir / "big.bin"
        if not big.exists():
            with open(big, "wb") as f:
                for piece in _iter_pattern(self.big_size):
                    f.write(piece)
        for attempt in range(START_ATTEMPTS):
            self.ports = [free_port() for _ in range(self.servers)]
            self.http_conf = "".join(self._server_block(p) for p in self.ports)
            try:
                super().start()
                return self
            except RuntimeError:
                if attempt + 1 < START_ATTEMPTS and self._address_in_use():
                    (self.tmpdir / "error.log").unlink(missing_ok=True)
                    continue
                raise
        raise AssertionError("unreachable")


# ----------------------------------------------------------------------------------- haproxy

class HAProxyProcess(ManagedProcess):
    """haproxy in the foreground (-db) with a given config text."""

    name = "haproxy"

    def __init__(self, cfg: str, ports: Sequence[int], start_timeout: float = 10.0) -> None:
        super().__init__()
        self.cfg = cfg
        self.ports = list(ports)
        self.start_timeout = start_timeout
        self.binary = find_binary("haproxy")

    @property
    def port(self) -> int:
        return self.ports[0]

    def url(self, path: str = "/") -> str:
        return f"http://{HOST}:{self.port}{path}"

    def start(self) -> "HAProxyProcess":
        if self.binary is None:
            raise FileNotFoundError("haproxy not found (apt-get install haproxy)")
        cfg = self.tmpdir / "haproxy.cfg"
        cfg.write_text(self.cfg)
        self._spawn([self.binary, "-db", "-f", str(cfg)])
        self._wait_ports(self.ports, self.start_timeout)
        return self


# ------------------------------------------------------------------------------------- redis

class RedisServer(ManagedProcess):
    """redis-server on 127.0.0.1 without persistence."""

    name = "redis"

    def __init__(self, port: int | None = None, start_timeout: float = 10.0) -> None:
        super().__init__()
        self._fixed_port = port
        self.port = port or 0
        self.start_timeout = start_timeout
        self.binary = find_binary("redis-server")

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self) -> "RedisServer":
        if self.binary is None:
            raise FileNotFoundError("redis-server not found (apt-get install redis-server)")
        for attempt in range(START_ATTEMPTS):
            self.port = self._fixed_port or free_port()
            self._spawn([self.binary, "--port", str(self.port), "--bind", HOST, "--save", "",
                         "--appendonly", "no", "--dir", str(self.tmpdir), "--daemonize", "no",
                         "--logfile", ""])
            try:
                self._wait_ports([self.port], self.start_timeout)
            except RuntimeError:
                if attempt + 1 < START_ATTEMPTS and not self._fixed_port and self._address_in_use():
                    continue
                raise
            # The port opens before redis finishes loading; PING answers only when it is ready.
            wait_until(self._ping, self.start_timeout, 0.02)
            return self
        raise AssertionError("unreachable")

    def _ping(self) -> bool:
        try:
            with self.client(socket_timeout=1) as c:
                return bool(c.ping())
        except Exception:
            return False

    def client(self, **kwargs: Any) -> Any:
        """A redis.Redis (sync) client for this server; kwargs go to redis.Redis."""
        import redis

        return redis.Redis(host=HOST, port=self.port, **kwargs)

    def async_client(self, **kwargs: Any) -> Any:
        """A redis.asyncio.Redis client for this server (create it inside the loop using it)."""
        import redis.asyncio

        return redis.asyncio.Redis(host=HOST, port=self.port, **kwargs)


# ------------------------------------------------------------------------------------ fastgw

class FastgwProcess(ManagedProcess):
    """`python -m fastgw run` on free loopback ports with a given declarative config."""

    name = "fastgw"

    def __init__(self, config: dict | str | os.PathLike, workers: int = 1,
                 extra_args: Sequence[str] = (), start_timeout: float = 20.0,
                 wait_admin: bool = False, env: dict[str, str] | None = None,
                 command: Sequence[str] | None = None) -> None:
        super().__init__()
        self.command = list(command) if command else [sys.executable, "-m", "fastgw"]
        self.workers = workers
        self.extra_args = list(extra_args)
        self.start_timeout = start_timeout
        self.wait_admin = wait_admin
        self.env = env
        self.port = 0
        self.admin_port = 0
        if isinstance(config, os.PathLike):
            self.config_path = Path(config)
        else:
            self.config_path = self.tmpdir / "kong.yml"
            if isinstance(config, dict):
                import yaml

                text = yaml.safe_dump(config, sort_keys=False)
            else:
                text = config
            self.config_path.write_text(text)

    def argv(self) -> list[str]:
        return [*self.command, "run", "-c", str(self.config_path),
                "--listen", f"{HOST}:{self.port}", "--admin-listen", f"{HOST}:{self.admin_port}",
                "--workers", str(self.workers), *self.extra_args]

    def start(self) -> "FastgwProcess":
        env = dict(os.environ if self.env is None else self.env)
        env.setdefault("PYTHONUNBUFFERED", "1")  # the log file shows output as it happens
        for attempt in range(START_ATTEMPTS):
            self.port, self.admin_port = free_port(), free_port()
            self._spawn(self.argv(), env)
            try:
                self._wait_ports([self.port, self.admin_port] if self.wait_admin else [self.port],
                                 self.start_timeout)
                return self
            except RuntimeError:
                if attempt + 1 < START_ATTEMPTS and self._address_in_use():
                    continue
                raise
        raise AssertionError("unreachable")

    def url(self, path: str = "/") -> str:
        return f"http://{HOST}:{self.port}{path}"

    def admin_url(self, path: str = "/") -> str:
        return f"http://{HOST}:{self.admin_port}{path}"

    def stop(self, timeout: float = 10.0) -> int | None:
        return self._terminate(timeout)


# ------------------------------------------------------------------------------ echo upstream

@dataclasses.dataclass(frozen=True)
class Behaviour:
    """How EchoUpstream answers one request (see the module docstring)."""

    status: int = 200
    delay: float = 0.0
    body_delay: float = 0.0
    reset: str = ""  # "", "before_headers", "mid_body"
    garbage: bool = False
    size: int | None = None
    chunked: bool = False
    close: bool = False
    expect: str = "continue"  # "continue", "final", "ignore"
    early: tuple[int, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.reset not in ("", "before_headers", "mid_body"):
            raise ValueError(f"reset must be '', 'before_headers' or 'mid_body', not {self.reset!r}")
        if self.expect not in ("continue", "final", "ignore"):
            raise ValueError(f"expect must be 'continue', 'final' or 'ignore', not {self.expect!r}")

    @classmethod
    def parse(cls, spec: str) -> "Behaviour":
        """From an X-Echo header value: 'status=503; size=10; chunked=1; headers=A:1,B:2'."""
        kw: dict[str, Any] = {}
        types = {f.name: f.type for f in dataclasses.fields(cls)}
        for item in spec.split(";"):
            if not item.strip():
                continue
            key, _, val = item.partition("=")
            key, val = key.strip(), val.strip()
            if key not in types:
                raise ValueError(f"unknown X-Echo key {key!r}")
            if key in ("status", "size"):
                kw[key] = int(val)
            elif key in ("delay", "body_delay"):
                kw[key] = float(val)
            elif key in ("garbage", "chunked", "close"):
                kw[key] = val.lower() in ("1", "true", "yes", "")
            elif key == "early":
                kw[key] = tuple(int(v) for v in val.split(",") if v)
            elif key == "headers":
                kw[key] = tuple(tuple(h.split(":", 1)) for h in val.split(",") if h)
            else:
                kw[key] = val
        return cls(**kw)


@dataclasses.dataclass
class EchoRequest:
    """One request as EchoUpstream received it (filled in as the body arrives)."""

    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    raw_head: bytes
    conn_id: int
    index_on_conn: int
    peer_port: int
    body: bytes | None = b""
    body_len: int = 0
    body_sha256: str = ""
    complete: bool = False

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> str:
        return self.target.split("?", 1)[1] if "?" in self.target else ""

    def header(self, name: str) -> str | None:
        """The first value of header `name` (case-insensitive), or None."""
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    def header_all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]


class _BadRequest(Exception):
    pass


class EchoUpstream(_Stoppable):
    """A scriptable HTTP/1.1 upstream (stdlib asyncio, own loop in a daemon thread)."""

    def __init__(self, port: int = 0, idle_timeout: float | None = None) -> None:
        self.port = port
        self.idle_timeout = idle_timeout
        self._requests: list[EchoRequest] = []
        self._lock = threading.Lock()
        self._default = Behaviour()
        self._paths: dict[str, Behaviour] = {}
        self._queue: list[Behaviour] = []
        self.connections_total = 0
        self.connections_open = 0
        self.errors: list[str] = []  # unexpected exceptions while serving (normally empty)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task] = set()

    # -- public API
    def url(self, path: str = "/") -> str:
        return f"http://{HOST}:{self.port}{path}"

    @property
    def requests(self) -> list[EchoRequest]:
        with self._lock:
            return list(self._requests)

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()

    def set_default(self, behaviour: Behaviour) -> None:
        self._default = behaviour

    def on(self, path_prefix: str, behaviour: Behaviour) -> None:
        """Answer requests whose path starts with `path_prefix` (longest prefix wins)."""
        with self._lock:
            self._paths[path_prefix] = behaviour

    def queue(self, *behaviours: Behaviour) -> None:
        """The next len(behaviours) requests, on any path, get these in order."""
        with self._lock:
            self._queue.extend(behaviours)

    def wait_requests(self, n: int, timeout: float = 5.0) -> list[EchoRequest]:
        """Wait until at least `n` requests have arrived (heads parsed); return them all."""
        return wait_until(lambda: len(self._requests) >= n and self.requests, timeout)

    def start(self) -> "EchoUpstream":
        if self._thread is not None:
            return self
        ready = threading.Event()
        errors: list[BaseException] = []
        loop = asyncio.new_event_loop()
        self._loop = loop

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                self._server = loop.run_until_complete(asyncio.start_server(
                    self._handle, HOST, self.port, limit=1 << 20, reuse_address=True))
                self.port = self._server.sockets[0].getsockname()[1]
            except BaseException as e:  # reported to start()'s caller
                errors.append(e)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self._shutdown())
                loop.close()

        self._thread = threading.Thread(target=run, name=f"echo-upstream-{self.port}", daemon=True)
        self._thread.start()
        ready.wait(10)
        if errors:
            self._thread.join()
            self._thread = None
            raise errors[0]
        _LIVE.add(self)
        return self

    def stop(self) -> None:
        """Close the listener and every connection (abruptly); the port can be reused by start()."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        with contextlib.suppress(RuntimeError):  # loop already closed
            loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        self._thread = None
        _LIVE.discard(self)

    def __enter__(self) -> "EchoUpstream":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- server side (runs in the echo thread)
    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for w in list(self._writers):
            w.transport.abort()
        for t in list(self._tasks):
            t.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    def _pick(self, req: EchoRequest) -> Behaviour:
        spec = req.header("x-echo")
        if spec is not None:
            return Behaviour.parse(spec)
        with self._lock:
            if self._queue:
                return self._queue.pop(0)
            best = None
            for prefix in self._paths:
                if req.path.startswith(prefix) and (best is None or len(prefix) > len(best)):
                    best = prefix
            if best is not None:
                return self._paths[best]
        return self._default

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        self.connections_total += 1
        self.connections_open += 1
        conn_id = self.connections_total
        peer_port = writer.get_extra_info("peername")[1]
        index = 0
        try:
            while True:
                if not await self._serve_one(reader, writer, conn_id, index, peer_port):
                    break
                index += 1
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                asyncio.TimeoutError):
            pass
        except asyncio.CancelledError:
            pass
        except Exception as e:  # a bug here or an unexpected input: keep it for the test to see
            self.errors.append(f"conn {conn_id}: {type(e).__name__}: {e}")
            writer.transport.abort()
        finally:
            self.connections_open -= 1
            self._writers.discard(writer)
            self._tasks.discard(task)
            if not writer.transport.is_closing():
                writer.close()

    async def _serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                         conn_id: int, index: int, peer_port: int) -> bool:
        """Serve one request; False when the connection is to be closed."""
        read_head = reader.readuntil(b"\r\n\r\n")
        try:
            if self.idle_timeout is not None:
                head = await asyncio.wait_for(read_head, self.idle_timeout)
            else:
                head = await read_head
        except asyncio.IncompleteReadError:
            return False  # clean close between requests
        try:
            req = self._parse_head(head, conn_id, index, peer_port)
        except _BadRequest:
            writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()
            return False
        with self._lock:
            self._requests.append(req)
        try:
            beh = self._pick(req)
        except ValueError as e:  # a malformed X-Echo header: say why
            msg = str(e).encode()
            writer.write(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n"
                         b"Content-Length: %d\r\n\r\n%b" % (len(msg), msg))
            await writer.drain()
            return False

        expects = (req.header("expect") or "").lower() == "100-continue"
        if expects and beh.expect == "final":
            await self._respond(writer, req, beh, keep_alive=False, close=False)
            # Lingering close: closing with the unread body in our receive buffer would make
            # the kernel send RST, which can destroy the response before the peer reads it.
            writer.write_eof()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._discard(reader), 2.0)
            return False
        if expects and beh.expect == "continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await writer.drain()
        until_close = await self._read_body(reader, req)

        if beh.delay:
            await asyncio.sleep(beh.delay)
        if beh.reset == "before_headers":
            await self._rst(writer)
            return False
        if beh.garbage:
            writer.write(b"\x00\x01 this is not HTTP \xff\r\n\r\n")
            await writer.drain()
            writer.close()
            return False
        conn_hdr = (req.header("connection") or "").lower()
        keep_alive = (not beh.close and not until_close and "close" not in conn_hdr
                      and (req.version == "HTTP/1.1" or "keep-alive" in conn_hdr))
        return await self._respond(writer, req, beh, keep_alive)

    @staticmethod
    def _parse_head(head: bytes, conn_id: int, index: int, peer_port: int) -> EchoRequest:
        lines = head[:-4].split(b"\r\n")
        parts = lines[0].split(b" ")
        if len(parts) != 3:
            raise _BadRequest
        headers = []
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep:
                raise _BadRequest
            headers.append((name.decode("latin-1"), value.strip(b" \t").decode("latin-1")))
        return EchoRequest(method=parts[0].decode("latin-1"), target=parts[1].decode("latin-1"),
                           version=parts[2].decode("latin-1"), headers=headers, raw_head=head,
                           conn_id=conn_id, index_on_conn=index, peer_port=peer_port)

    async def _read_body(self, reader: asyncio.StreamReader, req: EchoRequest) -> bool:
        """Read the request body as framed; True if it was delimited by the connection's end."""
        hasher = hashlib.sha256()
        kept = bytearray()

        def take(data: bytes) -> None:
            hasher.update(data)
            req.body_len += len(data)
            if req.body_len <= MAX_KEPT_BODY:
                kept.extend(data)

        te = ",".join(req.header_all("transfer-encoding")).lower()
        until_close = False
        if te:
            if te.replace(" ", "").split(",")[-1] == "chunked":
                while True:
                    size_line = await reader.readuntil(b"\r\n")
                    try:
                        size = int(size_line.split(b";", 1)[0].strip(), 16)
                    except ValueError:
                        raise ConnectionResetError("bad chunk size") from None
                    if size == 0:
                        while (await reader.readuntil(b"\r\n")) != b"\r\n":
                            pass  # trailer fields
                        break
                    while size:
                        data = await reader.read(min(size, IO_CHUNK))
                        if not data:
                            raise asyncio.IncompleteReadError(b"", size)
                        take(data)
                        size -= len(data)
                    await reader.readexactly(2)
            else:
                until_close = True
                while data := await reader.read(IO_CHUNK):
                    take(data)
        else:
            cl = req.header("content-length")
            remaining = int(cl) if cl and cl.strip().isdigit() else 0
            while remaining:
                data = await reader.read(min(remaining, IO_CHUNK))
                if not data:
                    req.body = bytes(kept) if req.body_len <= MAX_KEPT_BODY else None
                    req.body_sha256 = hasher.hexdigest()
                    raise asyncio.IncompleteReadError(b"", remaining)
                take(data)
                remaining -= len(data)
        req.body = bytes(kept) if req.body_len <= MAX_KEPT_BODY else None
        req.body_sha256 = hasher.hexdigest()
        req.complete = True
        return until_close

    @staticmethod
    async def _discard(reader: asyncio.StreamReader) -> None:
        while await reader.read(IO_CHUNK):
            pass

    async def _respond(self, writer: asyncio.StreamWriter, req: EchoRequest, beh: Behaviour,
                       keep_alive: bool, close: bool = True) -> bool:
        for code in beh.early:
            writer.write(f"HTTP/1.1 {code} {_reason(code)}\r\n\r\n".encode())
        status = beh.status
        no_body = status in (204, 304) or 100 <= status < 200
        if beh.size is not None:
            body_len = beh.size
            body: bytes | None = None
        else:
            body = json.dumps(self._echo_doc(req)).encode()
            body_len = len(body)
        head = [f"HTTP/1.1 {status} {_reason(status)}",
                f"X-Echo-Conn: {req.conn_id}",
                f"Content-Type: {'application/octet-stream' if body is None else 'application/json'}"]
        if not no_body:
            head.append("Transfer-Encoding: chunked" if beh.chunked else f"Content-Length: {body_len}")
        if not keep_alive:
            head.append("Connection: close")
        head += [f"{k}: {v}" for k, v in beh.headers]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        await writer.drain()
        if req.method == "HEAD" or no_body:
            if not keep_alive and close:
                writer.close()
            return keep_alive
        if beh.body_delay:
            await asyncio.sleep(beh.body_delay)
        limit = body_len // 2 if beh.reset == "mid_body" else body_len
        sent = 0
        pieces = _iter_pattern(body_len) if body is None else (
            body[i:i + IO_CHUNK] for i in range(0, body_len, IO_CHUNK))
        for piece in pieces:
            if sent + len(piece) > limit:
                piece = piece[:limit - sent]
            if piece:
                writer.write(b"%x\r\n%b\r\n" % (len(piece), piece) if beh.chunked else piece)
                await writer.drain()  # flow control: a slow reader pauses generation
            sent += len(piece)
            if sent >= limit:
                break
        if beh.reset == "mid_body":
            await self._rst(writer)
            return False
        if beh.chunked:
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        if not keep_alive and close:
            writer.close()
        return keep_alive

    @staticmethod
    async def _rst(writer: asyncio.StreamWriter) -> None:
        """Close with a TCP RST (SO_LINGER 0) after what was written has left our buffer."""
        transport = writer.transport
        for _ in range(200):  # <= 2 s for the loop's buffer to reach the kernel
            if transport.get_write_buffer_size() == 0:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.02)  # let loopback deliver it before the RST discards the rest
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()

    def _echo_doc(self, req: EchoRequest) -> dict[str, Any]:
        body = req.body if req.body is not None and len(req.body) <= ECHO_BODY_IN_JSON else None
        return {"method": req.method, "target": req.target, "path": req.path, "query": req.query,
                "version": req.version, "headers": [list(h) for h in req.headers],
                "body_len": req.body_len, "body_sha256": req.body_sha256,
                "body": body.decode("latin-1") if body is not None else None,
                "conn_id": req.conn_id, "port": self.port}


def _reason(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return "Unknown"
