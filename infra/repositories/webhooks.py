"""SQL for webhooks: endpoints, the outbox's publishing side, deliveries and their attempts."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Row, Table, bindparam, delete, insert, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite

from domain.ports import (
    AttemptRecord,
    DueDelivery,
    NewDelivery,
    OutboxEvent,
    Page,
)
from domain.webhooks import (
    CALLBACK_TARGET,
    DeliveryAttempt,
    DeliveryStatus,
    EndpointStatus,
    WebhookDelivery,
    WebhookEndpoint,
    envelope,
)
from infra.repositories.base import CLIENTS, EVENTS, REQUESTS, Statements
from infra.repositories.pages import cursor_position, encode_cursor, keyset_page
from infra.tables import WebhookAttemptRow, WebhookDeliveryRow, WebhookEndpointRow

ENDPOINTS: Table = WebhookEndpointRow.__table__  # type: ignore[assignment]
DELIVERIES: Table = WebhookDeliveryRow.__table__  # type: ignore[assignment]
ATTEMPTS: Table = WebhookAttemptRow.__table__  # type: ignore[assignment]

_ERROR_CHARS = 500

_RECORD_DELIVERY = (
    update(DELIVERIES)
    .where(DELIVERIES.c.id == bindparam("delivery_id"))
    .values(
        status=bindparam("status"),
        attempts=bindparam("attempts"),
        next_attempt_at=bindparam("next_attempt_at"),
        last_status_code=bindparam("last_status_code"),
        last_error=bindparam("last_error"),
        updated_at=bindparam("now"),
    )
)


def _endpoint(row: Row[Any]) -> WebhookEndpoint:
    return WebhookEndpoint(
        id=row.id,
        client_id=row.client_id,
        url=row.url,
        events=tuple(row.events),
        description=row.description,
        status=EndpointStatus(row.status),
        secret=row.secret,
        created_at=row.created_at,
        updated_at=row.updated_at,
        previous_secret=row.previous_secret,
        previous_secret_until=row.previous_secret_until,
        failing_since=row.failing_since,
        disabled_reason=row.disabled_reason,
    )


def _endpoint_values(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {
        "id": endpoint.id,
        "client_id": endpoint.client_id,
        "url": endpoint.url,
        "events": list(endpoint.events),
        "description": endpoint.description,
        "status": endpoint.status.value,
        "secret": endpoint.secret,
        "created_at": endpoint.created_at,
        "updated_at": endpoint.updated_at,
        "previous_secret": endpoint.previous_secret,
        "previous_secret_until": endpoint.previous_secret_until,
        "failing_since": endpoint.failing_since,
        "disabled_reason": endpoint.disabled_reason,
    }


def _delivery(row: Row[Any]) -> WebhookDelivery:
    return WebhookDelivery(
        id=row.id,
        event_id=row.event_id,
        event_type=row.event_type,
        endpoint_id=row.endpoint_id,
        client_id=row.client_id,
        status=DeliveryStatus(row.status),
        attempts=row.attempts,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        next_attempt_at=row.next_attempt_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class SqlWebhookRepository:
    def __init__(self, connection: Statements) -> None:
        self._db = connection

    def _insert(self, table: Table) -> Any:
        # ON CONFLICT DO NOTHING, in the dialect at hand.
        if self._db.dialect.name == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    # -- endpoints ---------------------------------------------------------------------
    async def add_endpoint(self, endpoint: WebhookEndpoint) -> None:
        await self._db.execute(insert(ENDPOINTS).values(**_endpoint_values(endpoint)))

    async def get_endpoint(self, endpoint_id: UUID) -> WebhookEndpoint | None:
        row = (
            await self._db.execute(select(ENDPOINTS).where(ENDPOINTS.c.id == endpoint_id))
        ).first()
        return None if row is None else _endpoint(row)

    async def list_endpoints(
        self, client_id: UUID | None, limit: int, cursor: str | None
    ) -> Page[WebhookEndpoint]:
        query = select(ENDPOINTS)
        if client_id is not None:
            query = query.where(ENDPOINTS.c.client_id == client_id)
        return await keyset_page(
            self._db,
            query,
            (ENDPOINTS.c.created_at, ENDPOINTS.c.id),
            limit,
            cursor,
            _endpoint,
            lambda e: (e.created_at, e.id),
        )

    async def update_endpoint(self, endpoint: WebhookEndpoint) -> None:
        values = _endpoint_values(endpoint)
        del values["id"], values["client_id"], values["created_at"]
        await self._db.execute(
            update(ENDPOINTS).where(ENDPOINTS.c.id == endpoint.id).values(**values)
        )

    async def delete_endpoint(self, endpoint_id: UUID, now: datetime) -> None:
        await self._db.execute(
            update(DELIVERIES)
            .where(
                DELIVERIES.c.endpoint_id == endpoint_id,
                DELIVERIES.c.status == DeliveryStatus.PENDING.value,
            )
            .values(
                status=DeliveryStatus.FAILED.value,
                next_attempt_at=None,
                last_error="endpoint deleted",
                updated_at=now,
            )
        )
        await self._db.execute(delete(ENDPOINTS).where(ENDPOINTS.c.id == endpoint_id))

    # -- deliveries, as clients see them ----------------------------------------------
    async def get_delivery(self, delivery_id: UUID) -> WebhookDelivery | None:
        row = (
            await self._db.execute(select(DELIVERIES).where(DELIVERIES.c.id == delivery_id))
        ).first()
        return None if row is None else _delivery(row)

    async def list_deliveries(
        self, endpoint_id: UUID, status: DeliveryStatus | None, limit: int, cursor: str | None
    ) -> Page[WebhookDelivery]:
        # Newest first: a receiver's owner looks for what happened lately.
        query = (
            select(DELIVERIES)
            .where(DELIVERIES.c.endpoint_id == endpoint_id)
            .order_by(DELIVERIES.c.created_at.desc(), DELIVERIES.c.id.desc())
        )
        if status is not None:
            query = query.where(DELIVERIES.c.status == status.value)
        if cursor:
            moment, last_id = cursor_position(cursor)
            query = query.where(
                tuple_(DELIVERIES.c.created_at, DELIVERIES.c.id) < tuple_(moment, last_id)
            )
        rows = (await self._db.execute(query.limit(limit + 1))).all()
        items = [_delivery(row) for row in rows[:limit]]
        next_cursor = (
            encode_cursor(items[-1].created_at.isoformat(), str(items[-1].id))
            if len(rows) > limit
            else None
        )
        return Page(items, next_cursor)

    async def attempts(self, delivery_id: UUID) -> list[DeliveryAttempt]:
        rows = (
            await self._db.execute(
                select(ATTEMPTS)
                .where(ATTEMPTS.c.delivery_id == delivery_id)
                .order_by(ATTEMPTS.c.attempt, ATTEMPTS.c.id)
            )
        ).all()
        return [
            DeliveryAttempt(
                delivery_id=row.delivery_id,
                attempt=row.attempt,
                started_at=row.started_at,
                duration_ms=row.duration_ms,
                status_code=row.status_code,
                error=row.error,
                response_body=row.response_body,
            )
            for row in rows
        ]

    async def requeue(self, delivery_id: UUID, now: datetime) -> None:
        await self._db.execute(
            update(DELIVERIES)
            .where(DELIVERIES.c.id == delivery_id)
            .values(
                status=DeliveryStatus.PENDING.value,
                attempts=0,
                next_attempt_at=now,
                updated_at=now,
            )
        )

    async def replay(self, endpoint: WebhookEndpoint, since: datetime, now: datetime) -> int:
        owner_is_admin = (
            await self._db.scalar(select(CLIENTS.c.role).where(CLIENTS.c.id == endpoint.client_id))
        ) == "admin"
        query = select(EVENTS.c.id, EVENTS.c.type, EVENTS.c.created_at).where(
            EVENTS.c.created_at >= since
        )
        if not owner_is_admin:
            query = query.where(EVENTS.c.client_id == endpoint.client_id)
        events = [e for e in (await self._db.execute(query)).all() if endpoint.subscribes(e.type)]
        if not events:
            return 0
        target = str(endpoint.id)
        ids = [e.id for e in events]
        # Existing deliveries start over; the others are made.
        await self._db.execute(
            update(DELIVERIES)
            .where(DELIVERIES.c.target == target, DELIVERIES.c.event_id.in_(ids))
            .values(
                status=DeliveryStatus.PENDING.value,
                attempts=0,
                next_attempt_at=now,
                endpoint_id=endpoint.id,
                url=endpoint.url,
                updated_at=now,
            )
        )
        await self.add_deliveries(
            [
                NewDelivery(
                    event_id=e.id,
                    event_type=e.type,
                    event_created_at=e.created_at,
                    target=target,
                    endpoint_id=endpoint.id,
                    client_id=endpoint.client_id,
                    url=endpoint.url,
                )
                for e in events
            ],
            now,
        )
        return len(events)

    # -- publishing ----------------------------------------------------------------------
    async def unpublished(self, limit: int) -> list[OutboxEvent]:
        query = (
            select(
                EVENTS.c.id,
                EVENTS.c.type,
                EVENTS.c.client_id,
                EVENTS.c.created_at,
                EVENTS.c.sequence,
                EVENTS.c.payload,
                REQUESTS.c.callback_url,
            )
            .select_from(EVENTS.outerjoin(REQUESTS, REQUESTS.c.id == EVENTS.c.request_id))
            .where(EVENTS.c.published_at.is_(None))
            .order_by(EVENTS.c.created_at)
            .limit(limit)
            .with_for_update(of=EVENTS, skip_locked=True)
        )
        return [
            OutboxEvent(
                id=row.id,
                type=row.type,
                client_id=row.client_id,
                created_at=row.created_at,
                sequence=row.sequence,
                data=row.payload,
                callback_url=row.callback_url,
            )
            for row in (await self._db.execute(query)).all()
        ]

    async def enabled_endpoints(self) -> list[tuple[WebhookEndpoint, bool]]:
        query = (
            select(ENDPOINTS, CLIENTS.c.role)
            .join(CLIENTS, CLIENTS.c.id == ENDPOINTS.c.client_id)
            .where(ENDPOINTS.c.status == EndpointStatus.ENABLED.value)
        )
        return [(_endpoint(row), row.role == "admin") for row in await self._db.execute(query)]

    async def add_deliveries(self, deliveries: Sequence[NewDelivery], now: datetime) -> None:
        if not deliveries:
            return
        statement = self._insert(DELIVERIES).on_conflict_do_nothing(
            index_elements=["event_id", "target"]
        )
        await self._db.execute(
            statement,
            [
                {
                    "id": uuid.uuid4(),
                    "event_id": d.event_id,
                    "event_type": d.event_type,
                    "event_created_at": d.event_created_at,
                    "target": d.target,
                    "endpoint_id": d.endpoint_id,
                    "client_id": d.client_id,
                    "url": d.url,
                    "status": DeliveryStatus.PENDING.value,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
                for d in deliveries
            ],
        )

    async def mark_published(self, event_ids: Collection[str], now: datetime) -> None:
        if event_ids:
            await self._db.execute(
                update(EVENTS).where(EVENTS.c.id.in_(list(event_ids))).values(published_at=now)
            )

    # -- delivering ----------------------------------------------------------------------
    async def claim_due(
        self, now: datetime, lease_until: datetime, limit: int, busy_targets: Collection[str]
    ) -> list[DueDelivery]:
        due = (
            select(DELIVERIES.c.id)
            .where(
                DELIVERIES.c.status == DeliveryStatus.PENDING.value,
                DELIVERIES.c.next_attempt_at <= now,
            )
            .order_by(DELIVERIES.c.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        if busy_targets:
            due = due.where(DELIVERIES.c.target.not_in(list(busy_targets)))
        claimed = (
            await self._db.execute(
                update(DELIVERIES)
                .where(DELIVERIES.c.id.in_(due.scalar_subquery()))
                .values(next_attempt_at=lease_until)
                .returning(DELIVERIES.c.id)
            )
        ).all()
        if not claimed:
            return []
        details = (
            select(
                DELIVERIES.c.id,
                DELIVERIES.c.event_id,
                DELIVERIES.c.event_type,
                DELIVERIES.c.event_created_at,
                DELIVERIES.c.target,
                DELIVERIES.c.endpoint_id,
                DELIVERIES.c.url,
                DELIVERIES.c.attempts,
                EVENTS.c.type,
                EVENTS.c.created_at,
                EVENTS.c.sequence,
                EVENTS.c.payload,
                ENDPOINTS.c.url.label("endpoint_url"),
                ENDPOINTS.c.status.label("endpoint_status"),
                ENDPOINTS.c.secret,
                ENDPOINTS.c.previous_secret,
                ENDPOINTS.c.previous_secret_until,
                CLIENTS.c.signing_secret,
            )
            .select_from(
                DELIVERIES.join(EVENTS, EVENTS.c.id == DELIVERIES.c.event_id)
                .outerjoin(ENDPOINTS, ENDPOINTS.c.id == DELIVERIES.c.endpoint_id)
                .join(CLIENTS, CLIENTS.c.id == DELIVERIES.c.client_id)
            )
            .where(DELIVERIES.c.id.in_([row.id for row in claimed]))
        )
        bodies: dict[str, dict[str, Any]] = {}
        result = []
        for row in await self._db.execute(details):
            body = bodies.get(row.event_id)
            if body is None:
                body = bodies[row.event_id] = envelope(
                    row.event_id, row.type, row.created_at, row.sequence, row.payload
                )
            sendable = None
            secrets: tuple[str, ...]
            if row.target == CALLBACK_TARGET:
                url, secrets = row.url, (row.signing_secret,)
            else:
                url = row.endpoint_url or row.url
                secrets = (row.secret,) if row.secret else ()
                if (
                    row.previous_secret
                    and row.previous_secret_until is not None
                    and now < row.previous_secret_until
                ):
                    secrets = (*secrets, row.previous_secret)
                if row.endpoint_status is None:
                    sendable = "endpoint deleted"
                elif row.endpoint_status != EndpointStatus.ENABLED.value:
                    sendable = "endpoint disabled"
            result.append(
                DueDelivery(
                    id=row.id,
                    event_id=row.event_id,
                    event_type=row.type,
                    event_created_at=row.created_at,
                    target=row.target,
                    endpoint_id=row.endpoint_id,
                    url=url,
                    attempts=row.attempts,
                    secrets=secrets,
                    body=body,
                    sendable=sendable,
                )
            )
        return result

    async def record(
        self, records: Sequence[AttemptRecord], now: datetime, disable_failing_since: datetime
    ) -> None:
        if not records:
            return
        await self._db.execute(
            _RECORD_DELIVERY,
            [
                {
                    "delivery_id": r.delivery.id,
                    "status": r.verdict.status.value,
                    "attempts": r.delivery.attempts + 1,
                    "next_attempt_at": r.verdict.next_attempt_at,
                    "last_status_code": r.result.status_code,
                    "last_error": None if r.result.error is None else r.result.error[:_ERROR_CHARS],
                    "now": now,
                }
                for r in records
            ],
        )
        await self._db.execute(
            insert(ATTEMPTS),
            [
                {
                    "delivery_id": r.delivery.id,
                    "attempt": r.delivery.attempts + 1,
                    "started_at": r.result.started_at,
                    "duration_ms": r.result.duration_ms,
                    "status_code": r.result.status_code,
                    "error": None if r.result.error is None else r.result.error[:_ERROR_CHARS],
                    "response_body": r.result.response_body,
                }
                for r in records
            ],
        )
        await self._track_endpoints(records, now, disable_failing_since)

    async def _track_endpoints(
        self, records: Sequence[AttemptRecord], now: datetime, disable_failing_since: datetime
    ) -> None:
        sent = [r for r in records if r.delivery.endpoint_id and r.delivery.sendable is None]
        succeeded = {r.delivery.endpoint_id for r in sent if r.result.succeeded}
        failed = {r.delivery.endpoint_id for r in sent if not r.result.succeeded} - succeeded
        gone = {r.delivery.endpoint_id for r in sent if r.verdict.disable_endpoint}
        column = ENDPOINTS.c
        if succeeded:
            await self._db.execute(
                update(ENDPOINTS)
                .where(column.id.in_(list(succeeded)), column.failing_since.is_not(None))
                .values(failing_since=None)
            )
        if failed:
            await self._db.execute(
                update(ENDPOINTS)
                .where(column.id.in_(list(failed)), column.failing_since.is_(None))
                .values(failing_since=now)
            )
            await self._db.execute(
                update(ENDPOINTS)
                .where(
                    column.id.in_(list(failed)),
                    column.status == EndpointStatus.ENABLED.value,
                    column.failing_since <= disable_failing_since,
                )
                .values(
                    status=EndpointStatus.DISABLED.value,
                    disabled_reason="no successful delivery for too long",
                    updated_at=now,
                )
            )
        if gone:
            await self._db.execute(
                update(ENDPOINTS)
                .where(column.id.in_(list(gone)), column.status == EndpointStatus.ENABLED.value)
                .values(
                    status=EndpointStatus.DISABLED.value,
                    disabled_reason="the receiver answered 410 Gone",
                    updated_at=now,
                )
            )
