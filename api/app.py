"""Assembles the API process: create_app()."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime

from litestar import Litestar, Router
from redis.asyncio import Redis

from api.auth import require_key
from api.availability import AvailabilityController
from api.bookings import BookingController, BookingRequestController
from api.dependencies import dependencies
from api.docs import docs_router
from api.errors import EXCEPTION_HANDLERS
from api.health import HealthController
from api.openapi import allow_every_method, openapi_config, refine
from api.providers import ProviderController
from api.runtime import ApiRuntime, utc_now
from api.strict_input import StrictInput, strict_request
from api.webhooks import WebhookDeliveryController, WebhookEndpointController
from infra.settings import Settings


def create_app(
    settings: Settings | None = None,
    redis: Redis | None = None,
    clock: Callable[[], datetime] | None = None,
) -> Litestar:
    settings = settings or Settings.from_env()

    runtime = ApiRuntime(settings, redis, clock or utc_now)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await runtime.start()
        app.state.runtime = runtime  # for tests and operators; handlers get dependencies
        try:
            yield
        finally:
            await runtime.stop()

    v1 = Router(
        path="/v1",
        guards=[require_key(runtime.keys), strict_request],
        route_handlers=[
            ProviderController,
            AvailabilityController,
            BookingController,
            BookingRequestController,
            WebhookEndpointController,
            WebhookDeliveryController,
        ],
        security=[{"bearer": []}],
    )
    app = Litestar(
        route_handlers=[v1, HealthController, docs_router()],
        dependencies=dependencies(runtime),
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[StrictInput(settings.max_body_bytes)],
        lifespan=[lifespan],
        request_max_body_size=settings.max_body_bytes,
        openapi_config=openapi_config(),
        before_send=[allow_every_method],
        debug=False,
    )
    refine(app.openapi_schema)
    return app
