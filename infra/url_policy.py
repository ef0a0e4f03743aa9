"""Whether a webhook or callback URL may be called: public http(s) targets only, by default."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from cachetools import TTLCache

_RESOLVE_TIMEOUT_SECONDS = 2.0

# A host's addresses, as DNS gave them, for a minute.
ResolvedHosts = TTLCache[str, list[str]]


def resolved_hosts() -> ResolvedHosts:
    return TTLCache(maxsize=10_000, ttl=60)


# A host and port to its addresses, when not the system's resolver (infra.dns.HostResolver).
Resolve = Callable[[str, int], Awaitable[list[str]]]


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def _addresses(host: str, port: int, resolved: ResolvedHosts) -> list[str]:
    cached = resolved.get(host)
    if cached is not None:
        return cached
    loop = asyncio.get_running_loop()
    infos = await asyncio.wait_for(
        loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), _RESOLVE_TIMEOUT_SECONDS
    )
    addresses = resolved[host] = sorted({str(info[4][0]) for info in infos})
    return addresses


def _form_problem(url: str) -> str | None:
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        return "must be an absolute http:// or https:// URL"
    if parts.username or parts.password:
        return "must not carry credentials"
    return None


def is_public_address(address: str) -> bool:
    """Whether an address may be called: global unicast, not loopback, private, link-local..."""
    return _is_public(address)


async def _resolve(
    host: str, port: int, resolved: ResolvedHosts, resolve: Resolve | None = None
) -> list[str] | str | None:
    """The host's addresses; a reason it cannot be called; or None if DNS could not say."""
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    try:
        if resolve is not None:
            return await resolve(host, port)
        return await _addresses(host, port, resolved)
    except socket.gaierror as exc:
        # A passing DNS failure is not the client's fault; delivery will look again.
        return None if exc.errno == socket.EAI_AGAIN else f"host {host!r} does not resolve"
    except TimeoutError:
        return None


async def target_problem(
    url: str, allow_private: bool, resolved: ResolvedHosts, resolve: Resolve | None = None
) -> str | None:
    """Why `url` may not be called, or None. Delivery checks again: DNS answers change."""
    problem = _form_problem(url)
    if problem is not None or allow_private:
        return problem
    parts = urlsplit(url)
    assert parts.hostname is not None
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = await _resolve(parts.hostname, port, resolved, resolve)
    if addresses is None or isinstance(addresses, str):
        return addresses
    if not all(_is_public(address) for address in addresses):
        return f"host {parts.hostname!r} resolves to a loopback, private or link-local address"
    return None
