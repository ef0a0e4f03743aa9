"""Sends signed webhook deliveries with aiohttp, many at once, only to checked addresses.

Each delivery resolves its host (through `HostResolver`, answers reused a few seconds) and
checks every address with `url_policy` before anything is sent. The connector's resolver
then answers only with those checked addresses, so the connection goes to the very address
that was checked: there is no second lookup a DNS rebinding could answer differently. TLS
still verifies the certificate against the host name (SNI and Host are the name).
"""

from __future__ import annotations

import socket
import time
from datetime import datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import aiohttp
import msgspec
from aiohttp.abc import AbstractResolver, ResolveResult
from cachetools import LRUCache, TTLCache
from standardwebhooks.webhooks import Webhook

from domain.ports import DueDelivery
from domain.webhooks import AttemptResult
from infra.dns import HostResolver
from infra.url_policy import is_public_address, resolved_hosts, target_problem

RESPONSE_BODY_LIMIT = 1024  # bytes of a receiver's answer kept in the attempt log
_USER_AGENT = "booking-webhooks/1"
_CACHE_LIMIT = 10_000


class _CheckedAddresses(AbstractResolver):
    """The connector's resolver: answers only with addresses a delivery has just checked."""

    def __init__(self) -> None:
        self.checked: dict[str, list[str]] = {}

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        addresses = self.checked.get(host)
        if not addresses:
            raise OSError(f"{host!r} was not checked before connecting")
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in addresses
        ]

    async def close(self) -> None:
        return None


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """`Retry-After` as seconds from now: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max((parsedate_to_datetime(value) - now).total_seconds(), 0.0)
    except (TypeError, ValueError):
        return None


class AiohttpWebhookSender:
    def __init__(
        self,
        resolver: HostResolver,
        timeout_seconds: float,
        allow_private: bool,
        max_connections: int,
        recheck_seconds: float = 0.0,
    ) -> None:
        self._resolver = resolver
        # A URL checked within `recheck_seconds` is not checked again (the resolver keeps its
        # answers as long): at a thousand deliveries a second, checking costs a tenth.
        self._checked_urls: TTLCache[str, bool] | None = (
            TTLCache(maxsize=_CACHE_LIMIT, ttl=recheck_seconds) if recheck_seconds > 0 else None
        )
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._timeout_seconds = timeout_seconds
        self._allow_private = allow_private
        self._max_connections = max_connections
        self._checked = _CheckedAddresses()
        self._unused = resolved_hosts()  # target_problem resolves nothing when told "allow"
        self._session: aiohttp.ClientSession | None = None
        self._signers: LRUCache[str, Webhook] = LRUCache(maxsize=_CACHE_LIMIT)
        self._bodies: LRUCache[str, bytes] = LRUCache(maxsize=_CACHE_LIMIT)

    async def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                resolver=self._checked,
                use_dns_cache=False,  # every new connection asks the checked addresses
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                headers={"User-Agent": _USER_AGENT},
                auto_decompress=False,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _signer(self, secret: str) -> Webhook:
        signer = self._signers.get(secret)
        if signer is None:
            signer = self._signers[secret] = Webhook(secret)
        return signer

    def _body(self, delivery: DueDelivery) -> bytes:
        body = self._bodies.get(delivery.event_id)
        if body is None:
            body = self._bodies[delivery.event_id] = msgspec.json.encode(delivery.body)
        return body

    async def _refusal(self, url: str) -> str | None:
        """Why this URL must not be called now, or None once its addresses are checked."""
        checked = self._checked_urls
        if checked is not None and url in checked:
            return None
        refusal = await self._check(url)
        if refusal is None and checked is not None:
            checked[url] = True
        return refusal

    async def _check(self, url: str) -> str | None:
        problem = await target_problem(url, True, self._unused)  # its form only
        if problem is not None:
            return problem
        parts = urlsplit(url)
        host = parts.hostname
        assert host is not None
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            addresses = await self._resolver.addresses(host, port)
        except (OSError, TimeoutError) as exc:
            return f"cannot resolve {host!r}: {exc}"
        if not self._allow_private and not all(is_public_address(a) for a in addresses):
            return f"{host!r} resolves to a loopback, private or link-local address"
        self._checked.checked[host] = addresses
        return None

    async def send(self, delivery: DueDelivery, now: datetime) -> AttemptResult:
        started = time.perf_counter()

        def took() -> int:
            return int((time.perf_counter() - started) * 1000)

        refusal = await self._refusal(delivery.url)
        if refusal is not None:
            return AttemptResult(now, took(), error=f"refused: {refusal}", refused=True)
        body = self._body(delivery)
        text = body.decode()
        signatures = " ".join(
            self._signer(secret).sign(delivery.event_id, now, text) for secret in delivery.secrets
        )
        headers = {
            "Content-Type": "application/json",
            "webhook-id": delivery.event_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signatures,
        }
        session = await self._open()
        try:
            async with session.post(
                delivery.url, data=body, headers=headers, allow_redirects=False
            ) as response:
                answer = await response.content.read(RESPONSE_BODY_LIMIT)
                return AttemptResult(
                    now,
                    took(),
                    status_code=response.status,
                    response_body=answer.decode("utf-8", errors="replace"),
                    retry_after_seconds=retry_after_seconds(
                        response.headers.get("Retry-After"), now
                    ),
                )
        except TimeoutError:
            return AttemptResult(now, took(), error=f"timed out after {self._timeout_seconds}s")
        except aiohttp.ClientError as exc:
            return AttemptResult(now, took(), error=_describe(exc))
        except OSError as exc:
            return AttemptResult(now, took(), error=_describe(exc))


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"
