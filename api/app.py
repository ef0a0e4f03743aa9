"""Assembles the API process: create_app()."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from litestar import Litestar, MediaType, Request, Router, get
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from redis.asyncio import Redis

from api.auth import require_key
from api.availability import AvailabilityController
from api.bookings import BookingController, BookingRequestController
from api.dependencies import dependencies
from api.errors import EXCEPTION_HANDLERS
from api.health import HealthController
from api.providers import ProviderController
from api.runtime import ApiRuntime, utc_now
from api.strict_input import StrictInput, strict_request
from api.webhooks import WebhookDeliveryController, WebhookEndpointController
from infra.settings import Settings

_SWAGGER = SwaggerRenderPlugin(path="/swagger")


@get("/docs", include_in_schema=False, media_type=MediaType.HTML)
async def docs(request: Request[Any, Any, Any]) -> bytes:
    """Interactive API docs (Swagger UI) over /schema/openapi.json."""
    return _SWAGGER.render(request, request.app.openapi_schema.to_schema())


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
    return Litestar(
        route_handlers=[v1, HealthController, docs],
        dependencies=dependencies(runtime),
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[StrictInput(settings.max_body_bytes)],
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
