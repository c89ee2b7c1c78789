"""Listener specifications: Kong's `proxy_listen` / `admin_listen` / `status_listen` values.

A value is a comma-separated list of `host:port [flag ...]` entries (kong.conf.default,
`proxy_listen = 0.0.0.0:8000 reuseport backlog=16384, 0.0.0.0:8443 http2 ssl reuseport
backlog=16384`), or `off`. The CLI option may be repeated; the entries add up.

Rules:
- Every flag fastgw does not implement is an error naming the flag and the entry, never
  silently dropped (Kong's other flags: proxy_protocol, deferred, bind, ipv6only,
  so_keepalive).
- `http2`: until HTTP/2 to clients is implemented the flag is accepted and the listener
  serves HTTP/1.1 only; ALPN offers `http/1.1` alone, so no client is told `h2` works
  (RFC 7301 3.2: the server selects only a protocol it speaks). `describe()` and the start
  log line say so.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

#: listen(2) backlog when `backlog=N` is not given (nginx: 511 on Linux; the value fastgw
#: has always used). Kong's template sets 16384 explicitly in proxy_listen.
DEFAULT_BACKLOG = 1024
#: the largest backlog accepted (Linux caps at net.core.somaxconn; nginx accepts any int)
MAX_BACKLOG = 65535

#: Kong's defaults (kong.conf.default proxy_listen), on loopback as fastgw's other defaults
DEFAULT_PROXY_LISTEN = "127.0.0.1:8000, 127.0.0.1:8443 ssl http2"

SUPPORTED_FLAGS = ("ssl", "http2", "reuseport", "backlog=N")
_KONG_FLAGS_NOT_SUPPORTED = ("proxy_protocol", "deferred", "bind", "ipv6only", "so_keepalive")

#: HTTP/2 to clients is not served yet: the flag is accepted and means nothing more than this
HTTP2_SERVED = False

_BACKLOG_RE = re.compile(r"^backlog=(\d+)$")


class ListenError(ValueError):
    """A bad listen value; the message names the entry and what is wrong with it."""


@dataclass(frozen=True)
class ListenSpec:
    host: str
    port: int
    ssl: bool = False
    http2: bool = False
    reuseport: bool = False
    backlog: int = DEFAULT_BACKLOG

    @property
    def alpn(self) -> tuple[str, ...]:
        """ALPN protocols offered on this listener (RFC 7301), in preference order."""
        if self.http2 and HTTP2_SERVED:
            return ("h2", "http/1.1")
        return ("http/1.1",)

    @property
    def scheme(self) -> str:
        return "https" if self.ssl else "http"

    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def describe(self) -> str:
        """For logs: `https://127.0.0.1:8443 (http2 flag: HTTP/1.1 only, HTTP/2 not served)`."""
        out = f"{self.scheme}://{self.address()}"
        if self.http2 and not HTTP2_SERVED:
            out += " (http2 flag: HTTP/2 is not implemented yet, serving HTTP/1.1 only)"
        return out

    def with_port(self, port: int) -> ListenSpec:
        return ListenSpec(self.host, port, self.ssl, self.http2, self.reuseport, self.backlog)


def _parse_address(addr: str, entry: str) -> tuple[str, int]:
    if addr.startswith("["):
        host, sep, rest = addr[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise ListenError(f"invalid listen address {entry!r}: expected [ipv6]:port")
        port_s = rest[1:]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ListenError(f"invalid listen address {entry!r}: {host!r} is not an "
                              "IPv6 address") from None
    else:
        host, sep, port_s = addr.rpartition(":")
        if not sep:
            raise ListenError(f"invalid listen address {entry!r}: expected host:port")
        if ":" in host:
            raise ListenError(f"invalid listen address {entry!r}: write IPv6 addresses "
                              "as [addr]:port")
        host = host or "127.0.0.1"  # ':8000': loopback, as fastgw always read it
    if not port_s.isdigit() or not 0 <= int(port_s) <= 65535:
        raise ListenError(f"invalid listen address {entry!r}: port must be an integer "
                          "between 0 and 65535")
    if host == "*":  # nginx/Kong spelling of "every address"
        host = "0.0.0.0"
    return host, int(port_s)


def parse_listen(value: str | tuple[str, int] | ListenSpec) -> list[ListenSpec]:
    """Kong's listen syntax -> one ListenSpec per entry (`off` -> []). Raises ListenError."""
    if isinstance(value, ListenSpec):
        return [value]
    if isinstance(value, tuple):
        return [ListenSpec(str(value[0]), int(value[1]))]
    if not isinstance(value, str):
        raise ListenError(f"invalid listen value {value!r}: expected a string")
    if value.strip() == "off":
        return []
    out: list[ListenSpec] = []
    for entry in value.split(","):
        entry = entry.strip()
        if not entry:
            raise ListenError(f"invalid listen value {value!r}: empty entry")
        words = entry.split()
        host, port = _parse_address(words[0], entry)
        flags: dict[str, object] = {}
        for w in words[1:]:
            m = _BACKLOG_RE.match(w)
            if w in ("ssl", "http2", "reuseport"):
                flags[w] = True
            elif m:
                n = int(m.group(1))
                if not 1 <= n <= MAX_BACKLOG:
                    raise ListenError(f"invalid backlog in {entry!r}: must be between 1 and "
                                      f"{MAX_BACKLOG}")
                flags["backlog"] = n
            elif w.split("=")[0] in _KONG_FLAGS_NOT_SUPPORTED:
                raise ListenError(f"listen flag {w!r} in {entry!r} is not supported by fastgw "
                                  f"(supported: {', '.join(SUPPORTED_FLAGS)})")
            else:
                raise ListenError(f"unknown listen flag {w!r} in {entry!r} "
                                  f"(supported: {', '.join(SUPPORTED_FLAGS)})")
        out.append(ListenSpec(host, port, **flags))  # type: ignore[arg-type]
    seen: set[tuple[str, int]] = set()
    for s in out:
        if s.port and (s.host, s.port) in seen:
            raise ListenError(f"listen address {s.address()} given twice")
        seen.add((s.host, s.port))
    return out


def parse_listen_values(values: list[str] | str | None, default: str) -> list[ListenSpec]:
    """A repeated CLI option: every value's entries, in order; `default` when none given."""
    if values is None or values == []:
        values = [default]
    if isinstance(values, str):
        values = [values]
    out: list[ListenSpec] = []
    for v in values:
        out.extend(parse_listen(v))
    return out


def join_listen_values(values: list[str] | str | None, default: str) -> str:
    """A repeated CLI option as ONE listen value (validated): what Gateway.start takes."""
    specs = parse_listen_values(values, default)
    if not specs:
        return "off"
    return ", ".join(format_spec(s) for s in specs)


def format_spec(s: ListenSpec) -> str:
    words = [s.address()]
    if s.ssl:
        words.append("ssl")
    if s.http2:
        words.append("http2")
    if s.reuseport:
        words.append("reuseport")
    if s.backlog != DEFAULT_BACKLOG:
        words.append(f"backlog={s.backlog}")
    return " ".join(words)


__all__ = ["ListenSpec", "ListenError", "parse_listen", "parse_listen_values",
           "join_listen_values", "format_spec", "DEFAULT_PROXY_LISTEN", "DEFAULT_BACKLOG"]
