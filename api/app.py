"""Assembles the API process: create_app()."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime

from litestar import Litestar, Router
from litestar.middleware import DefineMiddleware
from redis.asyncio import Redis

from api.auth import require_key
from api.availability import AvailabilityController
from api.bookings import BookingController, BookingRequestController
from api.dependencies import dependencies
from api.docs import docs_router
from api.errors import EXCEPTION_HANDLERS
from api.health import HealthController
from api.metrics import HttpMetricsMiddleware, MetricsController
from api.openapi import allow_every_method, openapi_config, refine
from api.providers import ProviderController
from api.rate_limits import RateLimitMiddleware
from api.request_ids import RequestIdMiddleware
from api.runtime import ApiRuntime, utc_now
from api.strict_input import StrictInput, strict_request
from api.webhooks import WebhookDeliveryController, WebhookEndpointController
from infra.metrics import record_http_request
from infra.rate_limits import RedisRateLimiter
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

    limits = (
        [
            DefineMiddleware(
                RateLimitMiddleware,
                limiter=RedisRateLimiter(settings.redis_url, settings.rate_limit_per_minute),
            )
        ]
        if settings.rate_limit_per_minute
        else []
    )
    v1 = Router(
        path="/v1",
        guards=[require_key(runtime.keys), strict_request],
        middleware=limits,
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
        route_handlers=[v1, HealthController, MetricsController, docs_router()],
        dependencies=dependencies(runtime),
        exception_handlers=EXCEPTION_HANDLERS,
        # Outermost first: every line logged for a request carries its id, and the metrics
        # see the final status, 429s included.
        middleware=[
            RequestIdMiddleware,
            DefineMiddleware(HttpMetricsMiddleware, record=record_http_request),
            StrictInput(settings.max_body_bytes),
        ],
        lifespan=[lifespan],
        request_max_body_size=settings.max_body_bytes,
        openapi_config=openapi_config(),
        before_send=[allow_every_method],
        debug=False,
        logging_config=None,  # infra.logs configures the process; Litestar's would replace it
    )
    refine(app.openapi_schema)
    return app
