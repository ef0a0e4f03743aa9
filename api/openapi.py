"""The OpenAPI document's frame (info, security, tags) and what OPTIONS answers."""

from __future__ import annotations

from functools import cache

from litestar import Litestar
from litestar.datastructures import MutableScopeHeaders
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import (
    Components,
    Link,
    OpenAPI,
    OpenAPIHeader,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Parameter,
    Reference,
    Schema,
    SecurityScheme,
    Tag,
)
from litestar.routes import HTTPRoute
from litestar.types import Message, Scope

from api.docs import REDOC, SWAGGER

DESCRIPTION = """\
Providers with weekly hours in their own time zone, availability that is exact across
daylight-saving changes, and bookings decided by workers: a booking, reschedule or cancel is
answered `202 Accepted` with a booking request to poll (`Location`), which ends `succeeded`,
`rejected` (with a code) or, rarely, `failed`.

Every `/v1` operation needs `Authorization: Bearer <api key>`. Errors are RFC 9457 problem
details whose `type` is `urn:booking:problem:<code>`; docs/usage.md lists every code.
"""

TAGS = [
    Tag(name="providers", description="Providers, their weekly hours and date overrides."),
    Tag(name="availability", description="Bookable slots, in the caller's time zone."),
    Tag(
        name="bookings",
        description="Booking, rescheduling and cancelling (each a request to poll), and reading.",
    ),
    Tag(name="operations", description="Liveness and readiness probes; no key needed."),
]


def openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="Booking API",
        version="1.0.0",
        description=DESCRIPTION,
        path="/schema",
        render_plugins=[JsonRenderPlugin(), SWAGGER, REDOC],
        use_handler_docstrings=True,  # each handler's docstring is its description
        tags=TAGS,
        components=Components(
            security_schemes={
                "bearer": SecurityScheme(
                    type="http",
                    scheme="bearer",
                    description=(
                        "An API key from `booking keys create`: role `admin` manages providers "
                        "and reads everything, role `client` books and reads its own."
                    ),
                )
            }
        ),
    )


@cache
def _methods_by_path(app: Litestar) -> dict[str, str]:
    return {
        route.path_format: ", ".join(sorted(route.methods))
        for route in app.routes
        if isinstance(route, HTTPRoute)
    }


async def allow_every_method(message: Message, scope: Scope) -> None:
    """OPTIONS answers `Allow` with every method of the path.

    Litestar's own OPTIONS handler names only the methods of the first handler registered on a
    path (`/v1/providers` said `OPTIONS, POST` although GET is there too).
    """
    if message["type"] != "http.response.start" or scope.get("method") != "OPTIONS":
        return
    methods = _methods_by_path(scope["app"]).get(scope.get("path_template", ""))
    if methods:
        MutableScopeHeaders.from_message(message)["Allow"] = methods


# Links: how a client (or a stateful test) gets from one answer to the next operation.
_FROM_PROVIDER = {"provider_id": "$response.body#/id"}
_LINKS: dict[str, dict[str, dict[str, Link]]] = {
    "createProvider": {
        "201": {
            "GetProvider": Link(operation_id="getProvider", parameters=_FROM_PROVIDER),
            "GetAvailability": Link(operation_id="getAvailability", parameters=_FROM_PROVIDER),
            "BookThisProvider": Link(
                operation_id="requestBooking",
                request_body={"provider_id": "$response.body#/id"},
                description="Book one of this provider's slots (its `start` from availability).",
            ),
            "ChangeProvider": Link(operation_id="updateProvider", parameters=_FROM_PROVIDER),
            "SetOverride": Link(operation_id="putOverride", parameters=_FROM_PROVIDER),
            "ListOverrides": Link(operation_id="listOverrides", parameters=_FROM_PROVIDER),
        }
    },
    "putProviderSchedule": {
        "200": {
            "BookThisProvider": Link(
                operation_id="requestBooking", request_body={"provider_id": "$response.body#/id"}
            ),
        }
    },
    "requestBooking": {
        "202": {
            "PollRequest": Link(
                operation_id="getBookingRequest",
                parameters={"request_id": "$response.body#/id"},
                description="Poll the request until it is decided.",
            )
        }
    },
    "getBookingRequest": {
        "200": {
            "GetBooking": Link(
                operation_id="getBooking", parameters={"booking_id": "$response.body#/booking_id"}
            ),
            "RescheduleBooking": Link(
                operation_id="requestReschedule",
                parameters={"booking_id": "$response.body#/booking_id"},
            ),
            "CancelBooking": Link(
                operation_id="requestCancel",
                parameters={"booking_id": "$response.body#/booking_id"},
            ),
        }
    },
    "getBooking": {
        "200": {
            "RescheduleBooking": Link(
                operation_id="requestReschedule", parameters={"booking_id": "$response.body#/id"}
            ),
            "CancelBooking": Link(
                operation_id="requestCancel", parameters={"booking_id": "$response.body#/id"}
            ),
        }
    },
}
for _target in ("requestReschedule", "requestCancel"):
    _LINKS[_target] = {"202": dict(_LINKS["requestBooking"]["202"])}

_RETRY_AFTER = OpenAPIHeader(
    schema=Schema(type=OpenAPIType.INTEGER, minimum=0),
    description="Seconds to wait before trying again.",
    required=True,
)


def refine(document: OpenAPI) -> OpenAPI:
    """What Litestar's generator cannot say: links, Retry-After, one shared zone-name schema."""
    zone = Reference(ref="#/components/schemas/ZoneName")
    for item in (document.paths or {}).values():
        for method in ("get", "put", "post", "delete", "options", "head", "patch", "trace"):
            operation: Operation | None = getattr(item, method)
            if operation is None:
                continue
            for parameter in operation.parameters or []:
                if isinstance(parameter, Parameter) and parameter.name == "Timezone":
                    parameter.schema = zone
            for status, response in (operation.responses or {}).items():
                if not isinstance(response, OpenAPIResponse):
                    continue
                if status in {"429", "503"}:
                    response.headers = {**(response.headers or {}), "Retry-After": _RETRY_AFTER}
                links = _LINKS.get(operation.operation_id or "", {}).get(status)
                if links:
                    response.links = {**(response.links or {}), **links}
    schemas = document.components.schemas if document.components else None
    if schemas:
        _complete_body_schemas(schemas)
    return document


def _complete_body_schemas(schemas: dict[str, Schema]) -> None:
    zone_name = "An IANA time zone name, as the tz database spells it (`America/New_York`)."
    schemas["ZoneName"].description = zone_name
    # msgspec refuses unknown week days (forbid_unknown_fields); say so.
    schemas["WeekBody"].additional_properties = False
    # Litestar drops `minimum: 0` from optional fields: the patch takes the create's bounds.
    create, patch = schemas["ProviderCreate"].properties, schemas["ProviderPatch"].properties
    for name, field in (patch or {}).items():
        full = (create or {}).get(name)
        if isinstance(field, Schema) and isinstance(full, Schema) and full.minimum is not None:
            field.minimum = full.minimum
