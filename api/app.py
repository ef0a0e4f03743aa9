"""Assembles the API process: create_app()."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from litestar import Litestar, MediaType, Request, Router, get
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from redis.asyncio import Redis

from api.auth import current_client, require_key
from api.availability import AvailabilityController
from api.bookings import BookingController, BookingRequestController
from api.context import AppContext
from api.errors import EXCEPTION_HANDLERS
from api.health import HealthController
from api.providers import ProviderController
from infra.availability_cache import RedisAvailabilityCache
from infra.database import make_engine
from infra.notifications import CompletionListener, RedisNotifier
from infra.provider_catalog import CachedProviderCatalog
from infra.queue import RedisWakeupQueue
from infra.redis_client import redis_client
from infra.settings import Settings
from infra.unit_of_work import SqlDatabase

log = logging.getLogger(__name__)

_SWAGGER = SwaggerRenderPlugin(path="/swagger")


@get("/docs", include_in_schema=False, media_type=MediaType.HTML)
async def docs(request: Request[Any, Any, Any]) -> bytes:
    """Interactive API docs (Swagger UI) over /schema/openapi.json."""
    return _SWAGGER.render(request, request.app.openapi_schema.to_schema())


def provide_context(state: State) -> AppContext:
    context: AppContext = state.context
    return context


def create_app(
    settings: Settings | None = None,
    redis: Redis | None = None,
    clock: Callable[[], datetime] | None = None,
) -> Litestar:
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        database = SqlDatabase(make_engine(settings.database_url, settings.database_pool_size))
        client = redis or redis_client(settings.redis_url)
        completions = CompletionListener(client)
        availability_cache = RedisAvailabilityCache(client)
        app.state.context = AppContext(
            settings=settings,
            database=database,
            redis=client,
            notifier=RedisNotifier(client),
            queue=RedisWakeupQueue(client, settings.booking_partitions),
            completions=completions,
            availability_cache=availability_cache,
            catalog=CachedProviderCatalog(database, client),
            **({"clock": clock} if clock else {}),
        )
        await completions.start()
        try:
            yield
        finally:
            await completions.stop()
            if redis is None:
                await client.aclose()
            await database.dispose()

    v1 = Router(
        path="/v1",
        guards=[require_key],
        route_handlers=[
            ProviderController,
            AvailabilityController,
            BookingController,
            BookingRequestController,
        ],
        security=[{"bearer": []}],
    )
    return Litestar(
        route_handlers=[v1, HealthController, docs],
        dependencies={
            "context": Provide(provide_context, sync_to_thread=False),
            "client": Provide(current_client, sync_to_thread=False),
        },
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=[lifespan],
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="Booking API",
            version="1.0.0",
            description=(
                "Providers, DST-correct availability and bookings decided by partitioned "
                "workers. Errors are RFC 9457 problem details."
            ),
            path="/schema",
            render_plugins=[JsonRenderPlugin(), _SWAGGER],
            components=Components(
                security_schemes={
                    "bearer": SecurityScheme(type="http", scheme="bearer", description="API key")
                }
            ),
        ),
        debug=False,
    )
