"""Webhook endpoints and their deliveries: register, change, rotate, replay, retry, read."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated
from uuid import UUID

import msgspec
from litestar import Controller, Response, delete, get, patch, post
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED, HTTP_204_NO_CONTENT

from api.common import Cursor, Limit, PageBody, parse_id
from api.dependencies import CallbackCheck, Injected
from api.errors import READ_PROBLEMS, WRITE_PROBLEMS
from domain.commands import CreateWebhookEndpoint, UpdateWebhookEndpoint
from domain.errors import FieldError, ValidationFailed
from domain.model import ApiClient
from domain.ports import Notifier, UnitOfWork
from domain.use_cases import webhooks as use_cases
from domain.webhooks import DeliveryAttempt, DeliveryStatus, WebhookDelivery, WebhookEndpoint

Url = Annotated[
    str, msgspec.Meta(min_length=1, max_length=2048, examples=["https://example.org/hooks"])
]
EventTypes = Annotated[
    list[Annotated[str, msgspec.Meta(max_length=64)]],
    msgspec.Meta(max_length=20, examples=[["booking.confirmed", "booking.cancelled"], ["*"]]),
]
Description = Annotated[str, msgspec.Meta(max_length=1000)]


class EndpointCreate(msgspec.Struct):
    url: Url
    events: EventTypes
    description: Description | None = None


class EndpointPatch(msgspec.Struct):
    url: Url | None = None
    events: EventTypes | None = None
    description: Description | None = None
    status: Annotated[str, msgspec.Meta(max_length=16, examples=["enabled"])] | None = None


class EndpointBody(msgspec.Struct):
    id: UUID
    url: str
    events: list[str]
    description: str | None
    status: str
    disabled_reason: str | None
    created_at: datetime
    updated_at: datetime


class EndpointWithSecret(msgspec.Struct):
    """The endpoint as created or rotated: the only time its `secret` is shown."""

    id: UUID
    url: str
    events: list[str]
    description: str | None
    status: str
    secret: str
    created_at: datetime
    updated_at: datetime
    previous_secret_expires_at: datetime | None = None


class DeliveryBody(msgspec.Struct):
    id: UUID
    event_id: str
    event_type: str
    endpoint_id: UUID | None
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    created_at: datetime
    updated_at: datetime


class AttemptBody(msgspec.Struct):
    attempt: int
    started_at: datetime
    duration_ms: int
    status_code: int | None
    error: str | None
    response_body: str | None


class DeliveryWithAttempts(msgspec.Struct):
    delivery: DeliveryBody
    attempts: list[AttemptBody]


class ReplayBody(msgspec.Struct):
    endpoint_id: UUID
    since: datetime
    queued: int


def endpoint_body(endpoint: WebhookEndpoint) -> EndpointBody:
    return EndpointBody(
        id=endpoint.id,
        url=endpoint.url,
        events=list(endpoint.events),
        description=endpoint.description,
        status=endpoint.status.value,
        disabled_reason=endpoint.disabled_reason,
        created_at=endpoint.created_at,
        updated_at=endpoint.updated_at,
    )


def _with_secret(endpoint: WebhookEndpoint) -> EndpointWithSecret:
    return EndpointWithSecret(
        id=endpoint.id,
        url=endpoint.url,
        events=list(endpoint.events),
        description=endpoint.description,
        status=endpoint.status.value,
        secret=endpoint.secret,
        created_at=endpoint.created_at,
        updated_at=endpoint.updated_at,
        previous_secret_expires_at=endpoint.previous_secret_until,
    )


def delivery_body(delivery: WebhookDelivery) -> DeliveryBody:
    return DeliveryBody(
        id=delivery.id,
        event_id=delivery.event_id,
        event_type=delivery.event_type,
        endpoint_id=delivery.endpoint_id,
        status=delivery.status.value,
        attempts=delivery.attempts,
        last_status_code=delivery.last_status_code,
        last_error=delivery.last_error,
        next_attempt_at=delivery.next_attempt_at,
        created_at=delivery.created_at,
        updated_at=delivery.updated_at,
    )


def _attempt_body(attempt: DeliveryAttempt) -> AttemptBody:
    return AttemptBody(
        attempt=attempt.attempt,
        started_at=attempt.started_at,
        duration_ms=attempt.duration_ms,
        status_code=attempt.status_code,
        error=attempt.error,
        response_body=attempt.response_body,
    )


def _parse_since(raw: str) -> datetime:
    try:
        since = datetime.fromisoformat(raw)
    except ValueError:
        since = None
    if since is None or since.tzinfo is None:
        raise ValidationFailed(
            [FieldError("since", f"{raw[:64]!r} is not an RFC 3339 date-time with an offset")]
        )
    return since


def _parse_status(raw: str | None) -> DeliveryStatus | None:
    if raw is None:
        return None
    try:
        return DeliveryStatus(raw)
    except ValueError:
        raise ValidationFailed(
            [FieldError("status", "must be one of pending, succeeded, failed")]
        ) from None


class WebhookEndpointController(Controller):
    path = "/webhook-endpoints"
    tags = ["webhooks"]

    @post("/", responses=WRITE_PROBLEMS)
    async def create(
        self,
        data: JSONBody[EndpointCreate],
        uow: Injected[UnitOfWork],
        now: Injected[datetime],
        callback_check: Injected[CallbackCheck],
        client: Injected[ApiClient],
    ) -> Response[EndpointWithSecret]:
        """Register an endpoint; the answer shows its signing secret, once."""
        endpoint = await use_cases.create_endpoint(
            CreateWebhookEndpoint(data.url, data.events, data.description),
            client,
            uow,
            now,
            callback_check,
        )
        return Response(
            _with_secret(endpoint),
            status_code=201,
            headers={"Location": f"/v1/webhook-endpoints/{endpoint.id}"},
        )

    @get("/", responses=READ_PROBLEMS)
    async def list_all(
        self,
        reader: Injected[UnitOfWork],
        client: Injected[ApiClient],
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> PageBody[EndpointBody]:
        """Your endpoints (an admin key: everyone's)."""
        page = await use_cases.list_endpoints(client, reader, limit, cursor)
        return PageBody([endpoint_body(e) for e in page.items], page.next_cursor)

    @get("/{endpoint_id:str}", summary="Get a webhook endpoint", responses=READ_PROBLEMS)
    async def get_one(
        self,
        endpoint_id: FromPath[str],
        reader: Injected[UnitOfWork],
        client: Injected[ApiClient],
    ) -> EndpointBody:
        """One of your webhook endpoints (admin key: anyone's), with its URL, subscribed
        event types and status; the signing secret is shown only when created or rotated."""
        endpoint = await use_cases.get_endpoint(
            parse_id(endpoint_id, "webhook endpoint"), client, reader
        )
        return endpoint_body(endpoint)

    @patch("/{endpoint_id:str}", responses=WRITE_PROBLEMS)
    async def change(
        self,
        endpoint_id: FromPath[str],
        data: JSONBody[EndpointPatch],
        uow: Injected[UnitOfWork],
        now: Injected[datetime],
        callback_check: Injected[CallbackCheck],
        client: Injected[ApiClient],
    ) -> EndpointBody:
        """Change url, events, description; `"status": "enabled"` re-enables it."""
        endpoint = await use_cases.update_endpoint(
            UpdateWebhookEndpoint(
                parse_id(endpoint_id, "webhook endpoint"),
                url=data.url,
                events=data.events,
                description=data.description,
                status=data.status,
            ),
            client,
            uow,
            now,
            callback_check,
        )
        return endpoint_body(endpoint)

    @delete("/{endpoint_id:str}", status_code=HTTP_204_NO_CONTENT, responses=READ_PROBLEMS)
    async def remove(
        self,
        endpoint_id: FromPath[str],
        uow: Injected[UnitOfWork],
        now: Injected[datetime],
        client: Injected[ApiClient],
    ) -> None:
        """Delete an endpoint; its pending deliveries end `failed`."""
        await use_cases.delete_endpoint(parse_id(endpoint_id, "webhook endpoint"), client, uow, now)

    @post("/{endpoint_id:str}/rotate-secret", status_code=HTTP_200_OK, responses=WRITE_PROBLEMS)
    async def rotate_secret(
        self,
        endpoint_id: FromPath[str],
        uow: Injected[UnitOfWork],
        now: Injected[datetime],
        secret_overlap: Injected[timedelta],
        client: Injected[ApiClient],
    ) -> EndpointWithSecret:
        """A new secret; the old one keeps signing beside it for a while (24 h by default)."""
        endpoint = await use_cases.rotate_secret(
            parse_id(endpoint_id, "webhook endpoint"),
            client,
            uow,
            now,
            secret_overlap,
        )
        return _with_secret(endpoint)

    @post("/{endpoint_id:str}/replay", status_code=HTTP_202_ACCEPTED, responses=WRITE_PROBLEMS)
    async def replay(
        self,
        endpoint_id: FromPath[str],
        uow: Injected[UnitOfWork],
        now: Injected[datetime],
        notifier: Injected[Notifier],
        client: Injected[ApiClient],
        since: Annotated[
            str, QueryParameter(max_length=64, description="RFC 3339; events since then.")
        ],
    ) -> ReplayBody:
        """Queue again every event the endpoint subscribes to since `since`."""
        ident = parse_id(endpoint_id, "webhook endpoint")
        moment = _parse_since(since)
        queued = await use_cases.replay(ident, moment, client, uow, now)
        await notifier.events_recorded()  # wakes a webhook worker
        return ReplayBody(endpoint_id=ident, since=moment, queued=queued)

    @get(
        "/{endpoint_id:str}/deliveries",
        summary="List an endpoint's deliveries",
        responses=READ_PROBLEMS,
    )
    async def deliveries(
        self,
        endpoint_id: FromPath[str],
        reader: Injected[UnitOfWork],
        client: Injected[ApiClient],
        limit: Limit = 50,
        cursor: Cursor = None,
        status: Annotated[
            str | None,
            QueryParameter(max_length=16, description="pending, succeeded or failed."),
        ] = None,
    ) -> PageBody[DeliveryBody]:
        """The endpoint's deliveries, newest first, each with its event, status, attempts,
        last status code and next attempt; `status` keeps only pending, succeeded or failed."""
        page = await use_cases.list_deliveries(
            parse_id(endpoint_id, "webhook endpoint"),
            client,
            reader,
            _parse_status(status),
            limit,
            cursor,
        )
        return PageBody([delivery_body(d) for d in page.items], page.next_cursor)


class WebhookDeliveryController(Controller):
    path = "/webhook-deliveries"
    tags = ["webhooks"]

    @get("/{delivery_id:str}", summary="Get a delivery and its attempts", responses=READ_PROBLEMS)
    async def get_one(
        self,
        delivery_id: FromPath[str],
        reader: Injected[UnitOfWork],
        client: Injected[ApiClient],
    ) -> DeliveryWithAttempts:
        """One delivery of an event to one of your endpoints or callback URLs, with the log of
        every attempt: when, the status code, how long it took and the start of the answer."""
        delivery, attempts = await use_cases.delivery_attempts(
            parse_id(delivery_id, "webhook delivery"), client, reader
        )
        return DeliveryWithAttempts(delivery_body(delivery), [_attempt_body(a) for a in attempts])

    @post("/{delivery_id:str}/retry", status_code=HTTP_202_ACCEPTED, responses=WRITE_PROBLEMS)
    async def retry(
        self,
        delivery_id: FromPath[str],
        uow: Injected[UnitOfWork],
        now: Injected[datetime],
        notifier: Injected[Notifier],
        client: Injected[ApiClient],
    ) -> DeliveryBody:
        """Send it again now, with a fresh schedule of attempts."""
        delivery = await use_cases.retry_delivery(
            parse_id(delivery_id, "webhook delivery"), client, uow, now
        )
        await notifier.events_recorded()  # wakes a webhook worker
        return delivery_body(delivery)
