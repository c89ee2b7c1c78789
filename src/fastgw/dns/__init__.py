"""Service discovery by DNS: Kong's resolver settings, cache and re-resolution.

- settings: DnsSettings (Kong's dns_* settings), the CLI options and the process default.
- hosts: the hosts file table.
- resolver: Resolver, the cache with Kong's TTL/stale rules over dnspython's asyncio client.
- discovery: Discovery, the task that keeps the active configuration's names resolved and
  reports changes (fastgw.config.snapshot rebuilds the balancers).
"""
from fastgw.dns.discovery import Discovery
from fastgw.dns.resolver import Address, Resolution, Resolver
from fastgw.dns.settings import (DnsSettings, DnsSettingsError, add_arguments, configure,
                                 default_settings)

__all__ = ["Address", "Discovery", "DnsSettings", "DnsSettingsError", "Resolution",
           "Resolver", "add_arguments", "configure", "default_settings"]
