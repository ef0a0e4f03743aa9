"""Bookings: the confirmed (and cancelled) appointments."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Row, bindparam, insert, select, update

from domain.availability import Span
from domain.model import Booking, BookingStatus
from domain.ports import BookingFilter, Page
from infra.repositories.base import BOOKINGS, Statements
from infra.repositories.pages import keyset_page

_BOOKING_BY_ID = select(BOOKINGS).where(BOOKINGS.c.id == bindparam("id"))
_UPDATE_BOOKING = update(BOOKINGS).where(BOOKINGS.c.id == bindparam("booking_id"))


def _booking(row: Row[Any]) -> Booking:
    return Booking(
        id=row.id,
        client_id=row.client_id,
        provider_id=row.provider_id,
        customer_id=row.customer_id,
        start=row.start_at,
        end=row.end_at,
        blocked=Span(row.blocked_from, row.blocked_until),
        status=BookingStatus(row.status),
        metadata=row.metadata,
        created_at=row.created_at,
        updated_at=row.updated_at,
        cancelled_at=row.cancelled_at,
        cancel_reason=row.cancel_reason,
    )


def _booking_values(booking: Booking) -> dict[str, Any]:
    return {
        "customer_id": booking.customer_id,
        "start_at": booking.start,
        "end_at": booking.end,
        "blocked_from": booking.blocked.start,
        "blocked_until": booking.blocked.end,
        "status": booking.status.value,
        "metadata": booking.metadata,
        "updated_at": booking.updated_at,
        "cancelled_at": booking.cancelled_at,
        "cancel_reason": booking.cancel_reason,
    }


def _starts(booking: Booking) -> tuple[datetime, UUID]:
    return booking.start, booking.id


class SqlBookingRepository:
    def __init__(self, connection: Statements) -> None:
        self._db = connection

    async def get(self, booking_id: UUID) -> Booking | None:
        row = (await self._db.execute(_BOOKING_BY_ID, {"id": booking_id})).first()
        return None if row is None else _booking(row)

    async def get_many(self, booking_ids: Iterable[UUID]) -> dict[UUID, Booking]:
        wanted = list(booking_ids)
        if not wanted:
            return {}
        rows = await self._db.execute(select(BOOKINGS).where(BOOKINGS.c.id.in_(wanted)))
        return {row.id: _booking(row) for row in rows}

    async def confirmed_spans(
        self, provider_ids: Collection[UUID], window: Span
    ) -> dict[UUID, list[tuple[UUID, Span]]]:
        """Per provider, the spans its confirmed bookings block within `window`."""
        found: dict[UUID, list[tuple[UUID, Span]]] = {p: [] for p in provider_ids}
        if not provider_ids:
            return found
        rows = await self._db.execute(
            select(
                BOOKINGS.c.id,
                BOOKINGS.c.provider_id,
                BOOKINGS.c.blocked_from,
                BOOKINGS.c.blocked_until,
            ).where(
                BOOKINGS.c.provider_id.in_(list(provider_ids)),
                BOOKINGS.c.status == BookingStatus.CONFIRMED.value,
                BOOKINGS.c.blocked_from < window.end,
                BOOKINGS.c.blocked_until > window.start,
            )
        )
        for row in rows:
            found[row.provider_id].append((row.id, Span(row.blocked_from, row.blocked_until)))
        return found

    async def add_many(self, bookings: Sequence[Booking]) -> None:
        if bookings:
            await self._db.execute(
                insert(BOOKINGS),
                [
                    {
                        "id": b.id,
                        "client_id": b.client_id,
                        "provider_id": b.provider_id,
                        "created_at": b.created_at,
                        **_booking_values(b),
                    }
                    for b in bookings
                ],
            )

    async def update_many(self, bookings: Sequence[Booking]) -> None:
        if bookings:
            await self._db.execute(
                _UPDATE_BOOKING, [{"booking_id": b.id, **_booking_values(b)} for b in bookings]
            )

    async def list(self, where: BookingFilter, limit: int, cursor: str | None) -> Page[Booking]:
        conditions = []
        if where.client_id is not None:
            conditions.append(BOOKINGS.c.client_id == where.client_id)
        if where.provider_id is not None:
            conditions.append(BOOKINGS.c.provider_id == where.provider_id)
        if where.customer_id is not None:
            conditions.append(BOOKINGS.c.customer_id == where.customer_id)
        if where.status is not None:
            conditions.append(BOOKINGS.c.status == where.status.value)
        if where.start_from is not None:
            conditions.append(BOOKINGS.c.start_at >= where.start_from)
        if where.start_before is not None:
            conditions.append(BOOKINGS.c.start_at < where.start_before)
        query = select(BOOKINGS).where(*conditions)
        order = (BOOKINGS.c.start_at, BOOKINGS.c.id)
        return await keyset_page(self._db, query, order, limit, cursor, _booking, _starts)
