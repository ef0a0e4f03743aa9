"""Whether a webhook or callback URL may be called: public http(s) targets only, by default."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from urllib.parse import urlsplit

_RESOLVE_TIMEOUT_SECONDS = 2.0
_CACHE_SECONDS = 60.0
_resolved: dict[str, tuple[float, list[str]]] = {}


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def _addresses(host: str, port: int) -> list[str]:
    cached = _resolved.get(host)
    now = time.monotonic()
    if cached is not None and cached[0] > now:
        return cached[1]
    loop = asyncio.get_running_loop()
    infos = await asyncio.wait_for(
        loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), _RESOLVE_TIMEOUT_SECONDS
    )
    addresses = sorted({str(info[4][0]) for info in infos})
    if len(_resolved) > 10_000:
        _resolved.clear()
    _resolved[host] = (now + _CACHE_SECONDS, addresses)
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


async def _resolve(host: str, port: int) -> list[str] | str | None:
    """The host's addresses; a reason it cannot be called; or None if DNS could not say."""
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    try:
        return await _addresses(host, port)
    except socket.gaierror as exc:
        # A passing DNS failure is not the client's fault; delivery will look again.
        return None if exc.errno == socket.EAI_AGAIN else f"host {host!r} does not resolve"
    except TimeoutError:
        return None


async def target_problem(url: str, allow_private: bool) -> str | None:
    """Why `url` may not be called, or None. Delivery checks again: DNS answers change."""
    problem = _form_problem(url)
    if problem is not None or allow_private:
        return problem
    parts = urlsplit(url)
    assert parts.hostname is not None
    resolved = await _resolve(
        parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
    )
    if resolved is None or isinstance(resolved, str):
        return resolved
    if not all(_is_public(address) for address in resolved):
        return f"host {parts.hostname!r} resolves to a loopback, private or link-local address"
    return None
