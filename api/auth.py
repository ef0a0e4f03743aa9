"""API keys: who is calling, and may they do this."""

from __future__ import annotations

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

# Keys are looked up on every request; a known key is remembered briefly, so the database
# sees one lookup per key per minute instead of one per request.
KnownClients = TTLCache[str, ApiClient]


def known_clients() -> KnownClients:
    return TTLCache(maxsize=10_000, ttl=60)


class KnownKeys:
    """Who holds a key: looked up through `reader`, a known key remembered briefly."""

    def __init__(self, reader: Callable[[], UnitOfWork], known: KnownClients) -> None:
        self._reader = reader
        self._known = known  # by the key's hash

    async def client_for(self, key: str) -> ApiClient | None:
        cache_key = hash_key(key)
        client = self._known.get(cache_key)
        if client is not None:
            return client
        client = await authenticate(key, self._reader())
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
