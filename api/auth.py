"""API keys: who is calling, and may they do this."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from cachetools import TTLCache
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Guard

from api.errors import NotAuthenticated
from domain.errors import Forbidden
from domain.model import ApiClient
from domain.ports import UnitOfWork
from domain.use_cases.clients import authenticate, hash_key

# Keys are looked up on every request; a known key is remembered for API_KEY_CACHE_SECONDS
# (half a second by default), so a revoked key is refused by every API process within that
# time, and the database sees about two lookups per active key per second per process.
DEFAULT_TTL_SECONDS = 0.5
KnownClients = TTLCache[str, ApiClient]


def known_clients(ttl: float = DEFAULT_TTL_SECONDS) -> KnownClients:
    return TTLCache(maxsize=10_000, ttl=ttl)


class KnownKeys:
    """Who holds a key: looked up through `reader`, a known key remembered briefly.

    Concurrent requests with a key that is not remembered share one lookup, so a busy key
    costs one query per TTL however many requests arrive when its entry expires.
    """

    def __init__(self, reader: Callable[[], UnitOfWork], known: KnownClients) -> None:
        self._reader = reader
        self._known = known  # by the key's hash
        self._looking: dict[str, asyncio.Future[ApiClient | None]] = {}

    async def client_for(self, key: str) -> ApiClient | None:
        cache_key = hash_key(key)
        client = self._known.get(cache_key)
        if client is not None:
            return client
        pending = self._looking.get(cache_key)
        if pending is not None:
            return await asyncio.shield(pending)
        lookup = asyncio.ensure_future(self._look_up(key, cache_key))
        self._looking[cache_key] = lookup  # the lookup removes itself when it ends
        return await asyncio.shield(lookup)

    async def _look_up(self, key: str, cache_key: str) -> ApiClient | None:
        try:
            client = await authenticate(key, self._reader())
        finally:
            self._looking.pop(cache_key, None)
        if client is not None:
            self._known[cache_key] = client
        return client


def require_key(keys: KnownKeys) -> Guard:
    """The guard of every /v1 route: a known bearer key, or 401."""

    # A closure, not a bound method: Litestar deep-copies routers, and their guards with
    # them; a function is copied as itself, so every copy shares the one `keys`.
    async def guard(
        connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler
    ) -> None:
        header = connection.headers.get("authorization", "")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise NotAuthenticated("Send an API key as `Authorization: Bearer <key>`.")
        client = await keys.client_for(key.strip())
        if client is None:
            raise NotAuthenticated("This API key is not known.")
        connection.state.client = client

    return guard


async def require_admin(
    connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler
) -> None:
    client: ApiClient = connection.state.client
    if not client.is_admin:
        raise Forbidden("This needs an admin key.")


def current_client(request: ASGIConnection[Any, Any, Any, Any]) -> ApiClient:
    client: ApiClient = request.state.client
    return client
