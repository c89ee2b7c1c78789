"""host:port parsing, once for the whole code base (listen addresses, targets, Host values).

Rules: IPv6 literals are bracketed ("[::1]:8000"); the brackets are kept in `host` only when
`keep_brackets` (a Host header value compares with them, a socket address does not). A port
must be all digits within 0..65535, else ValueError; a missing port is `default_port`.
"""
from __future__ import annotations

__all__ = ["split_host_port"]


def split_host_port(value: str, default_port: int = -1, *,
                    keep_brackets: bool = False) -> tuple[str, int]:
    """'example.com:8080' -> ('example.com', 8080); '[::1]:80' -> ('::1', 80);
    'example.com' -> ('example.com', default_port); '::1' (bare IPv6) -> ('::1', default_port)."""
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            raise ValueError(f"unclosed '[' in {value!r}")
        host = value[:end + 1] if keep_brackets else value[1:end]
        rest = value[end + 1:]
        if not rest:
            return host, default_port
        if not rest.startswith(":"):
            raise ValueError(f"expected ':port' after ']' in {value!r}")
        return host, _port(rest[1:], value)
    if value.count(":") != 1:
        # no port, or a bare IPv6 address (which cannot carry one)
        return value, default_port
    host, _, port = value.partition(":")
    return host, _port(port, value)


def _port(text: str, value: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise ValueError(f"invalid port {text!r} in {value!r}")
    return int(text)
