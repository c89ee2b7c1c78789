"""Smoke test of an installed fastgw wheel (run by wheels/build.sh inside the arm64 root, under
qemu; also runs as is on any host): import, parse a request, and, when the CLI exists, run the
gateway and proxy one request to a tiny upstream on 127.0.0.1, over plain HTTP and over TLS;
drive one HTTP/2 exchange through the compiled nghttp2 binding (the vendored libnghttp2).

Usage: python smoke_test.py [--require-proxy]
Rules:
- Standard library plus fastgw only; every socket is on 127.0.0.1; every wait is bounded.
- fastgw must come from site-packages (the wheel), never from a source tree.
- Prints one line per step and "SMOKE OK"; exits non-zero on the first failure. The proxy step is
  skipped (and says so) while the package has no `fastgw.cli`, unless --require-proxy is given.
"""
from __future__ import annotations

import http.server
import importlib
import ssl
import importlib.util
import os
import platform
import socket
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

HOST = "127.0.0.1"
START_TIMEOUT = 120.0  # seconds: emulated startup (qemu) imports slowly
REQUEST_TIMEOUT = 30.0


def step(msg: str) -> None:
    print(f"[smoke] {msg}", flush=True)


def check_import() -> None:
    import fastgw

    site = Path(sysconfig.get_paths()["purelib"]).resolve()
    origin = Path(fastgw.__file__).resolve()
    assert site in origin.parents, f"fastgw imported from {origin}, not from {site}"
    core = Path(origin).parent / "_core"
    exts = sorted(p.name.split(".", 1)[0] for p in core.glob("*.so"))
    assert exts, f"no compiled modules in {core}"
    for name in exts:
        importlib.import_module(f"fastgw._core.{name}")
    left = sorted(p.name for p in core.iterdir() if p.suffix in (".c", ".pyx", ".html"))
    assert not left, f"sources shipped: {left}"
    step(f"import fastgw {getattr(fastgw, '__version__', '?')} on {platform.machine()} "
         f"(Python {platform.python_version()}) from {origin.parent}; "
         f"compiled modules: {', '.join(exts)}")


def check_parse() -> None:
    from fastgw._core import http_parser as hp

    p = hp.RequestParser()
    raw = (b"POST /svc/items?id=7 HTTP/1.1\r\nHost: example.test\r\n"
           b"Transfer-Encoding: chunked\r\nX-Trace: a\r\n\r\n"
           b"5\r\nhello\r\n0\r\n\r\n")
    events = []
    for i in range(0, len(raw), 7):  # split points inside the head and the chunks
        events += p.feed(raw[i:i + 7])
    req = events[0]
    assert isinstance(req, hp.Request), events
    assert (req.method, req.target, req.version) == (b"POST", b"/svc/items?id=7", (1, 1)), req
    headers = {k.lower(): v for k, v in req.headers}
    assert headers[b"host"] == b"example.test" and headers[b"x-trace"] == b"a", req.headers
    body = b"".join(e.data for e in events if isinstance(e, hp.Data))
    assert body == b"hello", events
    assert isinstance(events[-1], hp.EndOfMessage), events
    # a smuggling shape is refused with the status to answer
    bad = hp.RequestParser()
    try:
        bad.feed(b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
    except hp.HttpParseError as e:
        assert e.status == 400, e.status
    else:
        raise AssertionError("duplicate Content-Length accepted")
    step(f"http_parser: {req.method.decode()} {req.target.decode()} with chunked body "
         f"{body!r}; duplicate Content-Length -> 400")


class _Upstream(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        body = f"upstream saw {self.path} host={self.headers.get('Host')}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Upstream", "smoke")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen, deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"fastgw exited with {proc.returncode} before listening")
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"fastgw did not listen on {port} within {START_TIMEOUT} s")


def check_proxy() -> None:
    upstream = http.server.ThreadingHTTPServer((HOST, 0), _Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    up_port = upstream.server_address[1]
    tmp = tempfile.TemporaryDirectory(prefix="fastgw-smoke-")
    conf = Path(tmp.name) / "kong.yml"
    conf.write_text(
        '_format_version: "3.0"\n'
        "services:\n"
        "- name: smoke\n"
        f"  url: http://{HOST}:{up_port}\n"
        "  routes:\n"
        "  - name: smoke\n"
        "    paths: [\"/smoke\"]\n"
    )
    port, admin, tls_port = _free_port(), _free_port(), _free_port()
    log = open(Path(tmp.name) / "fastgw.log", "w+b")
    # the CLI contract used by tests/servers.py FastgwProcess
    argv = [sys.executable, "-m", "fastgw", "run", "-c", str(conf), "--listen", f"{HOST}:{port}",
            "--listen", f"{HOST}:{tls_port} ssl", "--admin-listen", f"{HOST}:{admin}", "--workers", "1"]
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=tmp.name)
    try:
        _wait_port(port, proc, time.monotonic() + START_TIMEOUT)
        with urllib.request.urlopen(f"http://{HOST}:{port}/smoke/x?y=1",
                                    timeout=REQUEST_TIMEOUT) as r:
            status, body, via = r.status, r.read(), r.headers.get("X-Upstream")
        assert status == 200 and via == "smoke", (status, via, body)
        # Kong defaults: strip_path=true drops the matched /smoke prefix; preserve_host=false
        # sends the upstream's own host
        assert body == f"upstream saw /x?y=1 host={HOST}:{up_port}".encode(), body
        step(f"proxy: GET /smoke/x?y=1 via fastgw :{port} -> upstream :{up_port}: "
             f"{status} {body.decode()!r}")
        _wait_port(tls_port, proc, time.monotonic() + START_TIMEOUT)
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE  # the self-signed default
        with urllib.request.urlopen(f"https://{HOST}:{tls_port}/smoke/t", context=ctx,
                                    timeout=REQUEST_TIMEOUT) as r:
            status, body = r.status, r.read()
        assert status == 200 and body.startswith(b"upstream saw /t"), (status, body)
        step(f"proxy over TLS: GET https://{HOST}:{tls_port}/smoke/t -> {status}")
    except BaseException:
        log.seek(0)
        sys.stderr.write(log.read().decode(errors="replace")[-4000:])
        raise
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        upstream.shutdown()
        upstream.server_close()
        log.close()
        tmp.cleanup()


def check_h2() -> None:
    """One request/response through fastgw._core.h2 with hand-made frames (stdlib only)."""
    from fastgw._core import h2

    def frame(kind: int, flags: int, sid: int, payload: bytes) -> bytes:
        return len(payload).to_bytes(3, "big") + bytes([kind, flags]) + \
            sid.to_bytes(4, "big") + payload

    # HPACK static table (RFC 7541 appendix A): :method GET, :path /, :scheme https, then
    # :authority "a" as a literal with an indexed name
    block = b"\x82\x84\x87\x41\x01a"
    conn = h2.H2Connection()
    events = conn.receive(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0, b"")
                          + frame(1, 0x5, 1, block))
    req = [e for e in events if e[0] == h2.EV_REQUEST]
    assert req and req[0][2][:3] == [(b":method", b"GET"), (b":path", b"/"),
                                     (b":scheme", b"https")], events
    conn.send_response(1, 204, [], end_stream=True)
    out = conn.data_to_send()
    assert out and out[3] == 4, out[:16]   # the server's SETTINGS first
    step(f"h2 (libnghttp2): HEADERS in -> {len(req[0][2])} fields, "
         f"response frames out: {len(out)} bytes")


def main() -> int:
    os.chdir(tempfile.gettempdir())  # never import from a source checkout in the cwd
    check_import()
    check_parse()
    check_h2()
    if importlib.util.find_spec("fastgw.cli") and importlib.util.find_spec("fastgw.__main__"):
        check_proxy()
        step("proxy step: ran")
    elif "--require-proxy" in sys.argv:
        raise AssertionError("fastgw.cli / fastgw.__main__ missing and --require-proxy given")
    else:
        step("proxy step: SKIPPED (the package has no fastgw.cli / fastgw.__main__ yet)")
    print("SMOKE OK", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
