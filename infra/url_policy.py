"""Whether a webhook or callback URL may be called: public http(s) targets only, by default.

Every refusal gives the same text (`REFUSED`): telling an unknown host from one with a private
address would let a client map internal host names through our error messages.
"""

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


REFUSED = (
    "is not a URL this service will call: give an absolute http:// or https:// URL, "
    "without credentials or surrounding spaces, whose host is a public address"
)

_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries, for the forms that route to it.

    IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d), NAT64 (64:ff9b::/96 and the
    local-use 64:ff9b:1::/48, address in the last 32 bits), 6to4 (2002:AABB:CCDD::/48) and
    Teredo (2001::/32, the client address obfuscated in the last 32 bits).
    """
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if any(ip in network for network in _NAT64) or (
        ip in _IPV4_COMPATIBLE and int(ip) > 1  # :: and ::1 are themselves, not IPv4
    ):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _is_public(address: str) -> bool:
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(
        address.split("%", 1)[0]
    )
    if isinstance(ip, ipaddress.IPv6Address):
        inner = embedded_ipv4(ip)
        if inner is not None:
            if ip.teredo is not None:
                # The Teredo server must be public too; both decide where packets go.
                server = ip.teredo[0]
                if not (server.is_global and not server.is_multicast):
                    return False
            ip = inner
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
    # Whitespace or control characters anywhere: urlsplit strips some of them silently, and a
    # URL stored with them would not be the one that was checked.
    if any(c.isspace() or ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in url):
        return REFUSED
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError:
        return REFUSED
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        return REFUSED
    if parts.username or parts.password:
        return REFUSED
    return None


def is_public_address(address: str) -> bool:
    """Whether an address may be called: global unicast, not loopback, private, link-local...

    An IPv6 address that embeds an IPv4 one (mapped, compatible, NAT64, 6to4, Teredo) is judged
    by the IPv4 address it routes to; a %zone suffix is ignored.
    """
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
        return None if exc.errno == socket.EAI_AGAIN else REFUSED
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
        return REFUSED
    return None
