"""The non-blocking DNS resolver with Kong's cache semantics (kong/resty/dns/client.lua).

Rules:
- Never on the request path: fastgw.dns.discovery calls resolve() from its own task; the
  proxy only ever sees addresses.
- Queries go out through dnspython's asyncio resolver (UDP, TCP on truncation) to the
  nameservers of dns_resolver or /etc/resolv.conf (its search list, ndots, timeout and
  attempts). dnspython keeps no cache of its own here: the one cache is this module's, so TTLs,
  dns_valid_ttl and the stale rules below are the only ones in force.
- Cache: one entry per (name, record type), LRU-bounded (dns_cache_size). An answer with
  records lives for its TTL (the smallest of its records, or dns_valid_ttl, at least
  MIN_REFRESH); an empty answer or NXDOMAIN for dns_not_found_ttl; any other failure (SERVFAIL,
  REFUSED, timeout) for dns_error_ttl.
- Stale: when a refresh fails, in any of those ways, records last seen less than
  dns_stale_ttl past their expiry keep being served (and the failure is logged); the entry is
  re-queried after the failure's TTL. Past the stale window the failure stands.
- Order (dns_order): LAST (the type that last answered for this name), then the listed types;
  the first type with records wins. CNAME: the name's CNAME target is resolved with the other
  types. SRV targets are resolved to addresses with the A/AAAA types of the order.
- The hosts file and IP literals answer before any query, forever (Kong reads the file once).
- Concurrent lookups of the same (name, type) share one query.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastgw.dns.hosts import HostsTable
from fastgw.dns.settings import (DEFAULT_ATTEMPTS, DEFAULT_TIMEOUT, MIN_REFRESH,
                                 DnsSettings)

log = logging.getLogger("fastgw.dns")

# Kong's error strings (lua-resty-dns / kong.resty.dns.client), also logged
ERR_NAME = "dns server error: 3 name error"
ERR_EMPTY = "dns client error: 101 empty record received"
ERR_SERVFAIL = "dns server error: 2 server failure"
ERR_REFUSED = "dns server error: 5 refused"
ERR_TIMEOUT = "dns client error: timeout"
# CNAME chains followed through dns_order's CNAME step (glibc follows 16 in one answer;
# Kong's client recurses without a bound, guarded by its cache)
MAX_CNAME_DEPTH = 8

_RCODE_ERR = {2: ERR_SERVFAIL, 3: ERR_NAME, 5: ERR_REFUSED}


@dataclass(frozen=True)
class Address:
    """One resolved address. SRV answers bring port, weight, priority and the record's
    target name; A/AAAA answers leave them None (the balancer uses the target's)."""
    ip: str
    port: int | None = None
    weight: int | None = None
    priority: int | None = None
    srv_name: str | None = None
    split: int = 1           # SRV: how many addresses the record's target resolved to


@dataclass(frozen=True)
class Resolution:
    """What a name resolves to now. `error` with addresses: they are stale (last good)."""
    name: str
    addresses: tuple[Address, ...]
    rtype: str                       # "A", "AAAA", "SRV", or "" when nothing is known
    error: str | None = None
    not_found: bool = False          # the failure is NXDOMAIN or an empty answer
    refresh_at: float = math.inf     # when discovery resolves it again (resolver clock)

    @property
    def ok(self) -> bool:
        return bool(self.addresses)


@dataclass
class _Entry:
    records: tuple[Any, ...]   # A/AAAA: ips; SRV: (priority, weight, port, target); CNAME: target
    expire: float              # fresh until then (error entries: re-query after)
    stale_until: float         # records may be served until then while refreshes fail
    error: str | None = None
    not_found: bool = False


class QueryResult:
    __slots__ = ("records", "ttl", "error", "not_found")

    def __init__(self, records: tuple[Any, ...] = (), ttl: float = 0.0,
                 error: str | None = None, not_found: bool = False) -> None:
        self.records = records
        self.ttl = ttl
        self.error = error
        self.not_found = not_found


class DnspythonBackend:
    """Sends queries with dnspython's asyncio resolver (no cache, no threads)."""

    def __init__(self, settings: DnsSettings) -> None:
        import dns.asyncresolver
        import dns.nameserver

        r = dns.asyncresolver.Resolver(configure=False)
        timeout, attempts = DEFAULT_TIMEOUT, DEFAULT_ATTEMPTS
        try:
            r.read_resolv_conf(settings.resolv_conf)
            timeout, attempts = _resolv_conf_options(settings.resolv_conf, timeout, attempts)
        except Exception as e:  # missing/unreadable: only dns_resolver can help then
            if not settings.resolvers:
                log.warning("%s not usable (%s) and no dns_resolver set: every lookup fails",
                            settings.resolv_conf, e)
        if settings.resolvers:
            r.nameservers = [dns.nameserver.Do53Nameserver(ip, port)
                             for ip, port in settings.resolvers]
        r.timeout = settings.timeout if settings.timeout is not None else timeout
        r.lifetime = r.timeout * (settings.attempts if settings.attempts is not None
                                  else attempts)
        r.cache = None
        self.resolver = r

    @property
    def nameservers(self) -> list[str]:
        return [str(ns) for ns in self.resolver.nameservers]

    async def query(self, name: str, rtype: str) -> QueryResult:
        import dns.exception
        import dns.resolver

        try:
            ans = await self.resolver.resolve(name, rtype, raise_on_no_answer=False,
                                              search=True)
        except dns.resolver.NXDOMAIN:
            return QueryResult(error=ERR_NAME, not_found=True)
        except dns.resolver.NoNameservers as e:
            return QueryResult(error=_servers_error(e))
        except dns.exception.Timeout:
            return QueryResult(error=ERR_TIMEOUT)
        except dns.resolver.NoResolverConfiguration:
            return QueryResult(error="dns client error: no nameservers")
        except dns.exception.DNSException as e:
            return QueryResult(error=f"dns client error: {e}")
        except OSError as e:
            return QueryResult(error=f"dns client error: {e}")
        if ans.rrset is None or len(ans.rrset) == 0:
            return QueryResult(error=ERR_EMPTY, not_found=True)
        ttl = float(ans.rrset.ttl)
        if rtype in ("A", "AAAA"):
            recs: tuple[Any, ...] = tuple(sorted({r.address for r in ans.rrset}))
        elif rtype == "SRV":
            recs = tuple(sorted({(r.priority, r.weight, r.port, r.target.to_text(True))
                                 for r in ans.rrset}))
        else:  # CNAME
            recs = (ans.rrset[0].target.to_text(True),)
        return QueryResult(recs, ttl)


def _servers_error(e: Any) -> str:
    # NoNameservers carries (server, tcp, port, exception, response) per server tried
    for item in e.kwargs.get("errors", ()) or ():
        resp = item[4] if len(item) > 4 else None
        if resp is not None and resp.rcode() in _RCODE_ERR:
            return _RCODE_ERR[resp.rcode()]
        exc = item[3] if len(item) > 3 else None
        if exc is not None and "timed out" in str(exc).lower():
            return ERR_TIMEOUT
    return ERR_SERVFAIL


def _resolv_conf_options(path: str, timeout: float, attempts: int) -> tuple[float, int]:
    # dnspython reads `options timeout:` but not `attempts:` (resolv.conf(5))
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read(65536)
    except OSError:
        return timeout, attempts
    for m in re.finditer(r"^\s*options\s+(.*)$", text, re.M):
        for opt in m.group(1).split():
            k, _, v = opt.partition(":")
            if k == "timeout" and v.isdigit() and int(v) > 0:
                timeout = float(v)
            elif k == "attempts" and v.isdigit() and int(v) > 0:
                attempts = int(v)
    return timeout, attempts


class Resolver:
    """Kong's DNS client semantics over a query backend; `clock` gives `now` in seconds."""

    def __init__(self, settings: DnsSettings | None = None, *, backend: Any = None,
                 clock: Callable[[], float] = time.monotonic,
                 hosts: HostsTable | None = None) -> None:
        self.settings = settings if settings is not None else DnsSettings()
        self.backend = backend if backend is not None else DnspythonBackend(self.settings)
        self.clock = clock
        self.hosts = hosts if hosts is not None else HostsTable.load(self.settings.hostsfile)
        self._cache: OrderedDict[tuple[str, str], _Entry] = OrderedDict()
        self._inflight: dict[tuple[str, str], asyncio.Future[_Entry]] = {}
        self._last: dict[str, str] = {}
        self.queries = 0   # sent to the backend (tests and /status)

    # -- one (name, type) -----------------------------------------------------------------
    async def query(self, name: str, rtype: str) -> _Entry:
        key = (name, rtype)
        e = self._cache.get(key)
        if e is not None and self.clock() < e.expire:
            self._cache.move_to_end(key)
            return e
        fut = self._inflight.get(key)
        if fut is not None:
            return await asyncio.shield(fut)
        fut = asyncio.get_running_loop().create_future()
        self._inflight[key] = fut
        try:
            self.queries += 1
            res = await self.backend.query(name, rtype)
            entry = self._store(key, res, self._cache.get(key))
            fut.set_result(entry)
            return entry
        except asyncio.CancelledError:
            fut.cancel()  # discovery stopping: coalesced waiters are cancelled too
            raise
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # retrieved: coalesced waiters see it, nobody else must
            raise
        finally:
            del self._inflight[key]

    def _store(self, key: tuple[str, str], res: QueryResult, old: _Entry | None) -> _Entry:
        s = self.settings
        now = self.clock()
        if res.records:
            ttl = s.valid_ttl if s.valid_ttl is not None else res.ttl
            expire = now + max(ttl, MIN_REFRESH)
            entry = _Entry(res.records, expire, expire + s.stale_ttl)
            if old is not None and old.error is not None and old.records:
                log.info("dns: %s %s resolves again (%s)", key[0], key[1],
                         ", ".join(map(str, res.records)))
        else:
            ttl = s.not_found_ttl if res.not_found else s.error_ttl
            retry = now + max(ttl, MIN_REFRESH if ttl > 0 else 0.0)
            if old is not None and old.records and now < old.stale_until:
                entry = _Entry(old.records, min(retry, old.stale_until), old.stale_until,
                               res.error, res.not_found)
                # logged once per outage, not once per retry (every dns_error_ttl)
                lvl = logging.WARNING if old.error is None else logging.DEBUG
                log.log(lvl, "dns: %s %s lookup failed (%s): serving the last good answer "
                        "for up to %.0fs more", key[0], key[1], res.error,
                        old.stale_until - now)
            else:
                entry = _Entry((), retry, retry, res.error, res.not_found)
                if old is not None and old.records:
                    log.error("dns: %s %s lookup failed (%s) and the last good answer is "
                              "past dns_stale_ttl: dropped", key[0], key[1], res.error)
                else:  # the name-level outcome is logged by discovery when it changes
                    log.debug("dns: %s %s lookup failed: %s", key[0], key[1], res.error)
        self._cache[key] = entry
        self._cache.move_to_end(key)
        while len(self._cache) > s.cache_size:
            self._cache.popitem(last=False)
        return entry

    # -- a name -----------------------------------------------------------------------------
    async def resolve(self, name: str) -> Resolution:
        """The addresses of `name` (never raises for DNS failures: see Resolution.error)."""
        return await self._resolve(name.rstrip(".").lower(), tuple(self.settings.order), 0)

    def static(self, name: str) -> Resolution | None:
        """An IP literal's or a hosts-file name's Resolution (no query), else None."""
        try:
            ip = ipaddress.ip_address(name)
        except ValueError:
            pass
        else:
            return Resolution(name, (Address(str(ip)),), "A" if ip.version == 4 else "AAAA")
        entry = self.hosts.lookup(name)
        if entry is not None:
            v4, v6 = entry
            order = self.settings.order
            # Kong: hosts names answer as A first (their LAST type), AAAA when only v6
            if v4 and ("A" in order or not v6):
                return Resolution(name, tuple(Address(ip) for ip in v4), "A")
            if v6:
                return Resolution(name, tuple(Address(ip) for ip in v6), "AAAA")
        return None

    async def _resolve(self, name: str, order: tuple[str, ...], depth: int) -> Resolution:
        st = self.static(name)
        if st is not None:
            return st
        types = [t for t in order if t != "LAST"]
        last = self._last.get(name)
        if "LAST" in order and last in types:
            types.remove(last)
            types.insert(0, last)
        failures: list[_Entry] = []
        for rtype in types:
            if rtype == "CNAME":
                if depth >= MAX_CNAME_DEPTH:
                    continue
                e = await self.query(name, "CNAME")
                if e.records:
                    sub = await self._resolve(e.records[0],
                                              tuple(t for t in order if t != "LAST"), depth + 1)
                    if sub.ok:
                        self._last[name] = "CNAME"
                        return Resolution(name, sub.addresses, sub.rtype, sub.error,
                                          refresh_at=min(e.expire, sub.refresh_at))
                    failures.append(_Entry((), sub.refresh_at, 0.0, sub.error, sub.not_found))
                else:
                    failures.append(e)
                continue
            e = await self.query(name, rtype)
            if not e.records:
                failures.append(e)
                continue
            self._last[name] = rtype
            if rtype == "SRV":
                res = await self._srv(name, e, order, depth)
                if res.ok:
                    return res
                failures.append(_Entry((), res.refresh_at, 0.0, res.error, res.not_found))
                continue
            return Resolution(name, tuple(Address(ip) for ip in e.records), rtype, e.error,
                              e.not_found, e.expire)
        not_found = all(f.not_found for f in failures)
        error = next((f.error for f in failures if not f.not_found), None) or \
            next((f.error for f in failures if f.error), ERR_NAME)
        return Resolution(name, (), "", error, not_found,
                          min((f.expire for f in failures), default=self.clock() + MIN_REFRESH))

    async def _srv(self, name: str, e: _Entry, order: tuple[str, ...], depth: int
                   ) -> Resolution:
        # Kong resolves each SRV target with its own lookup (toip); only the records of the
        # best (lowest) priority whose targets resolve are used, as Kong does
        ip_order = tuple(t for t in order if t in ("A", "AAAA", "CNAME")) or ("A",)
        refresh = e.expire
        by_prio: dict[int, list[Address]] = {}
        errors: list[Resolution] = []
        for prio, weight, port, target in e.records:
            sub = await self._resolve(target.rstrip(".").lower(), ip_order, depth + 1)
            refresh = min(refresh, sub.refresh_at)
            if not sub.ok:
                errors.append(sub)
                log.warning("dns: SRV %s target %s does not resolve: %s", name, target,
                            sub.error)
                continue
            n = len(sub.addresses)
            for a in sub.addresses:
                by_prio.setdefault(prio, []).append(
                    Address(a.ip, port, weight, prio, target.rstrip("."), n))
        if not by_prio:
            err = errors[0] if errors else None
            return Resolution(name, (), "", err.error if err else ERR_EMPTY,
                              err.not_found if err else True, refresh)
        best = by_prio[min(by_prio)]
        return Resolution(name, tuple(best), "SRV", e.error, e.not_found, refresh)
