"""Receivers' host names to addresses: with the system's resolver, or with DNS servers named
in the settings (`WEBHOOK_DNS_SERVERS`), which the SSRF checks then rely on alone."""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.resolver
from cachetools import TTLCache

_TIMEOUT_SECONDS = 2.0
_CACHE_LIMIT = 10_000


def _nameserver(spec: str) -> dns.nameserver.Do53Nameserver:
    host, port = spec, 53
    if spec.startswith("["):  # [v6]:port
        host, _, rest = spec[1:].partition("]")
        port = int(rest.removeprefix(":") or 53)
    elif spec.count(":") == 1:
        host, _, raw = spec.partition(":")
        port = int(raw)
    return dns.nameserver.Do53Nameserver(host, port)


class HostResolver:
    """Addresses of a host; answers are reused for `cache_seconds` (0: never).

    Raises `socket.gaierror` (EAI_NONAME) for a name that does not exist and `TimeoutError`
    when no answer came in time.
    """

    def __init__(self, servers: tuple[str, ...] = (), cache_seconds: float = 0.0) -> None:
        self._cache: TTLCache[tuple[str, int], list[str]] | None = (
            TTLCache(maxsize=_CACHE_LIMIT, ttl=cache_seconds) if cache_seconds > 0 else None
        )
        self._dns: dns.asyncresolver.Resolver | None = None
        if servers:
            resolver = dns.asyncresolver.Resolver(configure=False)
            resolver.nameservers = [_nameserver(s) for s in servers]
            resolver.lifetime = _TIMEOUT_SECONDS
            self._dns = resolver

    async def addresses(self, host: str, port: int) -> list[str]:
        try:
            return [str(ipaddress.ip_address(host))]
        except ValueError:
            pass
        cache = self._cache
        if cache is not None and (host, port) in cache:
            return cache[(host, port)]
        found = await (self._ask_servers(host) if self._dns else self._ask_system(host, port))
        if cache is not None:
            cache[(host, port)] = found
        return found

    async def _ask_system(self, host: str, port: int) -> list[str]:
        loop = asyncio.get_running_loop()
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), _TIMEOUT_SECONDS
        )
        return sorted({str(info[4][0]) for info in infos})

    async def _ask_servers(self, host: str) -> list[str]:
        assert self._dns is not None
        found: list[str] = []
        missing = 0
        for kind in ("A", "AAAA"):
            try:
                answer = await self._dns.resolve(host, kind, search=False)
            except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.resolver.NoNameservers):
                missing += 1
                continue
            except dns.exception.Timeout:
                raise TimeoutError(f"no DNS answer for {host!r}") from None
            found.extend(str(record) for record in answer)
        if not found:
            raise socket.gaierror(socket.EAI_NONAME, f"{host!r} does not resolve")
        return sorted(set(found))
