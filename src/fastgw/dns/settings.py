"""Kong's DNS settings (kong.conf `dns_*`), their validation and their CLI options.

Rules:
- Every field carries Kong's name and default (kong.conf.default, "DNS RESOLVER" section);
  a value that Kong would reject is rejected here with one line naming the setting.
- `dns_no_sync` is not offered: queries for the same name and type are always coalesced
  (Kong's default, dns_no_sync = off); asking for `on` is an error, never ignored.
- The process-wide default (configure()) is what a Gateway built without explicit settings
  uses; forked workers inherit it. Without configure(), KONG_DNS_* environment variables
  apply, as Kong reads them.
"""
from __future__ import annotations

import argparse
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

#: record types dns_order may name (Kong: LAST, SRV, A, AAAA, CNAME)
ORDER_TYPES = ("LAST", "SRV", "A", "AAAA", "CNAME")

DEFAULT_ORDER = ("LAST", "SRV", "A", "CNAME")   # Kong's dns_order
DEFAULT_STALE_TTL = 3600.0     # s, Kong 3.6+ dns_stale_ttl
DEFAULT_NOT_FOUND_TTL = 30.0   # s, dns_not_found_ttl (empty answers and NXDOMAIN)
DEFAULT_ERROR_TTL = 1.0        # s, dns_error_ttl (SERVFAIL, timeouts, refusals)
DEFAULT_CACHE_SIZE = 10000     # entries, dns_cache_size (LRU)
DEFAULT_HOSTSFILE = "/etc/hosts"
# Per-server query timeout and attempts when resolv.conf says nothing: Kong's DNS client
# defaults (timeout 2000 ms, retrans 5); glibc's resolver uses 5 s x 2.
DEFAULT_TIMEOUT = 2.0          # s
DEFAULT_ATTEMPTS = 5
# A TTL of 0 asks for a lookup per request; Kong then re-resolves on every request and
# re-checks the TTL every 60 s. fastgw never resolves on the request path: such names are
# re-resolved every MIN_REFRESH seconds instead.
MIN_REFRESH = 1.0              # s

_CONF_KEYS = ("dns_resolver", "dns_hostsfile", "dns_order", "dns_valid_ttl", "dns_stale_ttl",
              "dns_not_found_ttl", "dns_error_ttl", "dns_cache_size", "dns_no_sync")


class DnsSettingsError(ValueError):
    """A bad dns_* value; str(e) is one line naming the setting."""


@dataclass(frozen=True)
class DnsSettings:
    """How fastgw resolves target and service hostnames (Kong's `dns_*` settings).

    resolvers: (ip, port) nameservers; empty = the nameservers of /etc/resolv.conf.
    """
    resolvers: tuple[tuple[str, int], ...] = ()
    hostsfile: str = DEFAULT_HOSTSFILE
    order: tuple[str, ...] = DEFAULT_ORDER
    valid_ttl: float | None = None
    stale_ttl: float = DEFAULT_STALE_TTL
    not_found_ttl: float = DEFAULT_NOT_FOUND_TTL
    error_ttl: float = DEFAULT_ERROR_TTL
    cache_size: int = DEFAULT_CACHE_SIZE
    # not kong.conf settings (Kong reads them from resolv.conf `options`): for embedding/tests
    timeout: float | None = None       # None: resolv.conf `options timeout:` or DEFAULT_TIMEOUT
    attempts: int | None = None        # None: resolv.conf `options attempts:` or DEFAULT_ATTEMPTS
    resolv_conf: str = "/etc/resolv.conf"

    def __post_init__(self) -> None:
        _check_order(self.order)
        for name, v in (("dns_stale_ttl", self.stale_ttl), ("dns_not_found_ttl",
                        self.not_found_ttl), ("dns_error_ttl", self.error_ttl)):
            if v < 0:
                raise DnsSettingsError(f"{name}: must be >= 0, got {v:g}")
        if self.valid_ttl is not None and self.valid_ttl <= 0:
            raise DnsSettingsError(f"dns_valid_ttl: must be > 0, got {self.valid_ttl:g}")
        if self.cache_size < 1:
            raise DnsSettingsError(f"dns_cache_size: must be >= 1, got {self.cache_size}")
        if self.timeout is not None and self.timeout <= 0:
            raise DnsSettingsError(f"dns timeout: must be > 0, got {self.timeout:g}")
        if self.attempts is not None and self.attempts < 1:
            raise DnsSettingsError(f"dns attempts: must be >= 1, got {self.attempts}")

    @classmethod
    def from_conf(cls, conf: Mapping[str, Any], base: DnsSettings | None = None) -> DnsSettings:
        """Settings from kong.conf-style keys (dns_resolver, dns_order, ...; strings or
        values). Keys that are not dns_* are ignored; an unknown dns_* key is an error."""
        kw: dict[str, Any] = {}
        for key, raw in conf.items():
            if not key.startswith("dns_"):
                continue
            if key not in _CONF_KEYS:
                raise DnsSettingsError(f"{key}: unknown DNS setting (fastgw knows: "
                                       f"{', '.join(_CONF_KEYS)})")
            if raw is None or (isinstance(raw, str) and raw.strip() == ""):
                continue
            if key == "dns_resolver":
                kw["resolvers"] = parse_resolvers(raw)
            elif key == "dns_hostsfile":
                kw["hostsfile"] = str(raw)
            elif key == "dns_order":
                kw["order"] = parse_order(raw)
            elif key == "dns_cache_size":
                kw["cache_size"] = _int(key, raw)
            elif key == "dns_no_sync":
                if str(raw).strip().lower() not in ("off", "false", "0", "no"):
                    raise DnsSettingsError("dns_no_sync: only 'off' is supported (fastgw "
                                           "always coalesces queries for the same name)")
            else:
                kw[key[4:]] = _seconds(key, raw)
        return replace(base or cls(), **kw)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DnsSettings:
        """Kong's KONG_DNS_* environment variables (KONG_DNS_RESOLVER, ...)."""
        env = os.environ if env is None else env
        conf = {k[5:].lower(): v for k, v in env.items() if k.startswith("KONG_DNS_")}
        return cls.from_conf(conf)


def parse_resolvers(raw: Any) -> tuple[tuple[str, int], ...]:
    """`ip[:port]` entries, comma separated (IPv6 as `[::1]:53` or bare `::1`)."""
    items = raw if isinstance(raw, (list, tuple)) else str(raw).split(",")
    out = []
    for item in items:
        s = str(item).strip()
        if not s:
            continue
        host, port = s, 53
        if s.startswith("["):
            host, _, rest = s[1:].partition("]")
            if rest:
                if not rest.startswith(":"):
                    raise DnsSettingsError(f"dns_resolver: bad entry {s!r} (expected ip[:port])")
                port = _port(s, rest[1:])
        elif s.count(":") == 1:
            host, _, p = s.partition(":")
            port = _port(s, p)
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise DnsSettingsError(f"dns_resolver: {s!r} is not ip[:port] (nameservers "
                                   "are IP addresses)") from None
        out.append((host, port))
    if not out:
        raise DnsSettingsError("dns_resolver: no nameserver given")
    return tuple(out)


def parse_order(raw: Any) -> tuple[str, ...]:
    items = raw if isinstance(raw, (list, tuple)) else str(raw).split(",")
    order = tuple(str(x).strip().upper() for x in items if str(x).strip())
    _check_order(order)
    return order


def _check_order(order: tuple[str, ...]) -> None:
    if not order:
        raise DnsSettingsError("dns_order: must name at least one record type")
    for t in order:
        if t not in ORDER_TYPES:
            raise DnsSettingsError(f"dns_order: unknown record type {t!r} (expected a list "
                                   f"of {', '.join(ORDER_TYPES)})")
    if len(set(order)) != len(order):
        raise DnsSettingsError(f"dns_order: duplicate record type in {','.join(order)}")
    if order == ("LAST",) or order == ("CNAME",) or set(order) <= {"LAST", "CNAME"}:
        raise DnsSettingsError("dns_order: must name at least one of SRV, A, AAAA")


def _port(entry: str, p: str) -> int:
    if not p.isdigit() or not 0 < int(p) <= 65535:
        raise DnsSettingsError(f"dns_resolver: bad port in {entry!r}")
    return int(p)


def _seconds(key: str, raw: Any) -> float:
    try:
        v = float(raw)
    except (TypeError, ValueError):
        raise DnsSettingsError(f"{key}: expected a number of seconds, got {raw!r}") from None
    return v


def _int(key: str, raw: Any) -> int:
    try:
        return int(str(raw).strip())
    except ValueError:
        raise DnsSettingsError(f"{key}: expected an integer, got {raw!r}") from None


# -- process-wide default and the CLI ------------------------------------------------------
_configured: DnsSettings | None = None


def default_settings() -> DnsSettings:
    """configure()'d settings, else the KONG_DNS_* environment, else Kong's defaults."""
    return _configured if _configured is not None else DnsSettings.from_env()


def configure(settings: DnsSettings | None) -> None:
    """Set the process-wide default (None: back to the environment)."""
    global _configured
    _configured = settings


class _Option(argparse.Action):
    """Applies one --dns-* option to the process default as it is parsed: a bad value is
    argparse's one-line usage error (exit 2), and the CLI needs no call after parsing."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        try:
            configure(DnsSettings.from_conf({self.dest: values}, default_settings()))
        except DnsSettingsError as e:
            raise argparse.ArgumentError(self, str(e)) from None
        setattr(namespace, self.dest, values)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Kong's dns_* settings as CLI options (--dns-resolver host:port, ...). Each option, when
    given, updates the process default (configure()) over the KONG_DNS_* environment."""
    g = parser.add_argument_group("DNS (Kong's dns_* settings; default: KONG_DNS_* env)")
    opt = {"action": _Option}
    g.add_argument("--dns-resolver", metavar="IP[:PORT],...", **opt,
                   help="nameservers to query (default: those of /etc/resolv.conf)")
    g.add_argument("--dns-hostsfile", metavar="PATH", **opt,
                   help="hosts file (default /etc/hosts)")
    g.add_argument("--dns-order", metavar="TYPES", **opt,
                   help="record types to try, in order (default LAST,SRV,A,CNAME)")
    g.add_argument("--dns-valid-ttl", metavar="S", **opt,
                   help="override every record's TTL")
    g.add_argument("--dns-stale-ttl", metavar="S", **opt,
                   help="keep serving a record this long past its TTL while lookups fail "
                        "(default 3600)")
    g.add_argument("--dns-not-found-ttl", metavar="S", **opt,
                   help="cache empty answers and NXDOMAIN this long (default 30)")
    g.add_argument("--dns-error-ttl", metavar="S", **opt,
                   help="cache other failures this long (default 1)")
    g.add_argument("--dns-cache-size", metavar="N", **opt,
                   help="cached answers (default 10000)")
