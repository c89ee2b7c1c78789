"""The hosts file (/etc/hosts or dns_hostsfile), read once per resolver, as Kong does.

Kong's DNS client loads the file at start and answers A/AAAA lookups for its names from it
before asking any nameserver; so does fastgw. Names are case-insensitive; the first line that
names a host gives its addresses of each family, later lines add more (glibc keeps them all).
A missing or unreadable file is an empty table (Kong logs and goes on likewise).
"""
from __future__ import annotations

import ipaddress
import logging

log = logging.getLogger("fastgw.dns")

# A hosts file larger than this is not read (glibc reads any size; 16 MiB is far above any
# real /etc/hosts, including ad-block lists of ~100k lines).
MAX_HOSTS_FILE = 16 * 1024 * 1024  # bytes


class HostsTable:
    """name -> ([IPv4 addresses], [IPv6 addresses]) in file order."""

    def __init__(self, entries: dict[str, tuple[list[str], list[str]]] | None = None) -> None:
        self.entries = entries or {}

    @classmethod
    def load(cls, path: str) -> HostsTable:
        try:
            with open(path, "rb") as f:
                data = f.read(MAX_HOSTS_FILE + 1)
        except OSError as e:
            log.warning("hosts file %s not read: %s", path, e)
            return cls()
        if len(data) > MAX_HOSTS_FILE:
            log.warning("hosts file %s larger than %d bytes: not read", path, MAX_HOSTS_FILE)
            return cls()
        return cls.parse(data.decode("utf-8", "replace"))

    @classmethod
    def parse(cls, text: str) -> HostsTable:
        entries: dict[str, tuple[list[str], list[str]]] = {}
        for line in text.splitlines():
            fields = line.split("#", 1)[0].split()
            if len(fields) < 2:
                continue
            try:
                ip = ipaddress.ip_address(fields[0].split("%", 1)[0])
            except ValueError:
                continue
            for name in fields[1:]:
                v4, v6 = entries.setdefault(name.lower().rstrip("."), ([], []))
                lst = v4 if ip.version == 4 else v6
                if str(ip) not in lst:
                    lst.append(str(ip))
        return cls(entries)

    def lookup(self, name: str) -> tuple[list[str], list[str]] | None:
        return self.entries.get(name.lower().rstrip("."))
