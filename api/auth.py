"""API keys: who is calling, and may they do this."""

from __future__ import annotations

import time
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from api.context import AppContext
from api.errors import NotAuthenticated
from domain.errors import Forbidden
from domain.model import ApiClient
from domain.use_cases.clients import authenticate, hash_key

# Keys are looked up on every request; a known key is remembered briefly, so the database
# sees one lookup per key per minute instead of one per request.
_KNOWN_TTL_SECONDS = 60.0
_known: dict[str, tuple[ApiClient, float]] = {}


async def _client_for(key: str, context: AppContext) -> ApiClient | None:
    cache_key = hash_key(key)
    hit = _known.get(cache_key)
    now = time.monotonic()
    if hit is not None and hit[1] > now:
        return hit[0]
    client = await authenticate(key, context.reader())
    if client is not None:
        if len(_known) > 10_000:
            _known.clear()
        _known[cache_key] = (client, now + _KNOWN_TTL_SECONDS)
    return client


async def require_key(
    connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler
) -> None:
    """Guard of every /v1 route: a known bearer key, or 401."""
    header = connection.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise NotAuthenticated("Send an API key as `Authorization: Bearer <key>`.")
    context: AppContext = connection.app.state.context
    client = await _client_for(key.strip(), context)
    if client is None:
        raise NotAuthenticated("This API key is not known.")
    connection.state.client = client


async def require_admin(
    connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler
) -> None:
    client: ApiClient = connection.state.client
    if not client.is_admin:
        raise Forbidden("This needs an admin key.")


def current_client(request: ASGIConnection[Any, Any, Any, Any]) -> ApiClient:
    client: ApiClient = request.state.client
    return client
