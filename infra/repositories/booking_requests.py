"""Booking requests: the accepted, not yet decided (or decided) asks to book, reschedule, cancel."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, Row, bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from domain.errors import DuplicateKey
from domain.ids import made_within
from domain.model import BookingRequest, RequestKind, RequestStatus
from domain.ports import Outcome
from infra.idempotency import BY_KEY, insert_with_key
from infra.repositories.base import REQUESTS, Statements, relaxed

_REQUEST_BY_ID = select(REQUESTS).where(REQUESTS.c.id == bindparam("id"))
# An id that carries its creation time (domain.ids) names the one partition to read.
_REQUEST_BY_TIMED_ID = _REQUEST_BY_ID.where(
    REQUESTS.c.created_at >= bindparam("made_from"), REQUESTS.c.created_at < bindparam("made_until")
)
_INSERT_REQUEST = insert(REQUESTS).returning(REQUESTS.c.seq)
# With its creation time a request is found in one partition; by id alone, in every one.
_FINISH_REQUEST = update(REQUESTS).where(
    REQUESTS.c.id == bindparam("request_id"),
    REQUESTS.c.created_at == bindparam("request_created_at"),
)


def _among(requests: Collection[BookingRequest]) -> tuple[ColumnElement[bool], ...]:
    """These requests, by id and within their creation times (so one or two partitions)."""
    created = [r.created_at for r in requests]
    return (
        REQUESTS.c.id.in_([r.id for r in requests]),
        REQUESTS.c.created_at.between(min(created), max(created)),
    )


def _request(row: Row[Any]) -> BookingRequest:
    payload = row.payload
    return BookingRequest(
        id=row.id,
        seq=row.seq,
        client_id=row.client_id,
        kind=RequestKind(row.kind),
        provider_id=row.provider_id,
        booking_id=row.booking_id,
        start=row.start_at,
        status=RequestStatus(row.status),
        created_at=row.created_at,
        customer_id=payload.get("customer_id"),
        metadata=payload.get("metadata") or {},
        reason=payload.get("reason"),
        http_request_id=payload.get("http_request_id"),
        callback_url=row.callback_url,
        idempotency_key=row.idempotency_key,
        fingerprint=row.fingerprint,
        error_code=row.error_code,
        error_message=row.error_message,
        attempts=row.attempts,
        completed_at=row.completed_at,
    )


class SqlBookingRequestRepository:
    def __init__(self, connection: Statements) -> None:
        self._db = connection

    async def add(self, request: BookingRequest, keys_since: datetime) -> BookingRequest:
        """Record the request; its Idempotency-Key must be free or taken before `keys_since`."""
        payload: dict[str, Any] = {}
        if request.customer_id is not None:
            payload["customer_id"] = request.customer_id
        if request.metadata:
            payload["metadata"] = request.metadata
        if request.reason is not None:
            payload["reason"] = request.reason
        if request.http_request_id is not None:
            payload["http_request_id"] = request.http_request_id
        values = {
            "id": request.id,
            "client_id": request.client_id,
            "kind": request.kind.value,
            "provider_id": request.provider_id,
            "booking_id": request.booking_id,
            "start_at": request.start,
            "payload": payload,
            "status": request.status.value,
            "idempotency_key": request.idempotency_key,
            "fingerprint": request.fingerprint,
            "callback_url": request.callback_url,
            "attempts": 0,
            "created_at": request.created_at,
        }
        try:
            seq = -1
            if request.idempotency_key is not None:
                seq = await insert_with_key(self._db, values, keys_since)
            if seq == -1:
                seq = await self._db.scalar(_INSERT_REQUEST, values)
        except IntegrityError:
            raise DuplicateKey("a request with this Idempotency-Key already exists") from None
        assert seq is not None
        return dataclasses.replace(request, seq=seq)

    async def get(self, request_id: UUID) -> BookingRequest | None:
        window = made_within(request_id)
        if window is None:  # an id from before ids carried their time: every partition
            row = (await self._db.execute(_REQUEST_BY_ID, {"id": request_id})).first()
        else:
            params = {"id": request_id, "made_from": window[0], "made_until": window[1]}
            row = (await self._db.execute(_REQUEST_BY_TIMED_ID, params)).first()
        return None if row is None else _request(row)

    async def by_idempotency_key(
        self, client_id: UUID, key: str, since: datetime
    ) -> BookingRequest | None:
        """The request holding the key, unless the key was taken before `since`."""
        params = {"client_id": client_id, "key": key, "keys_since": since}
        row = (await self._db.execute(BY_KEY, params)).first()
        return None if row is None else _request(row)

    async def pending_for_providers(
        self, provider_ids: Collection[UUID], limit: int
    ) -> list[BookingRequest]:
        """The oldest pending requests of these providers (for each, its oldest come first)."""
        if not provider_ids:
            return []
        query = (
            select(REQUESTS)
            .where(
                REQUESTS.c.provider_id.in_(list(provider_ids)),
                REQUESTS.c.status == RequestStatus.PENDING.value,
            )
            .order_by(REQUESTS.c.seq)
            .limit(limit)
        )
        return [_request(row) for row in (await self._db.execute(query)).all()]

    async def still_pending(self, requests: Collection[BookingRequest]) -> list[BookingRequest]:
        """Those of the requests still pending, locked, oldest first."""
        if not requests:
            return []
        query = (
            select(REQUESTS)
            .where(*_among(requests), REQUESTS.c.status == RequestStatus.PENDING.value)
            .order_by(REQUESTS.c.seq)
            .with_for_update()
        )
        return [_request(row) for row in (await self._db.execute(query)).all()]

    async def count_attempts(self, requests: Collection[BookingRequest]) -> None:
        """Count one more attempt at each of the requests (one statement)."""
        if requests:
            statement = update(REQUESTS).where(*_among(requests))
            await self._db.execute(
                relaxed(statement, self._db).values(attempts=REQUESTS.c.attempts + 1)
            )

    async def count_attempt(self, provider_id: UUID) -> BookingRequest | None:
        """Count one more attempt at the provider's oldest pending request (one statement)."""
        oldest = (
            select(REQUESTS.c.seq, REQUESTS.c.created_at)
            .where(
                REQUESTS.c.provider_id == provider_id,
                REQUESTS.c.status == RequestStatus.PENDING.value,
            )
            .order_by(REQUESTS.c.seq)
            .limit(1)
            .subquery()
        )
        statement = relaxed(
            update(REQUESTS).where(
                REQUESTS.c.seq == oldest.c.seq, REQUESTS.c.created_at == oldest.c.created_at
            ),
            self._db,
        )
        row = (
            await self._db.execute(
                statement.values(attempts=REQUESTS.c.attempts + 1).returning(*REQUESTS.c)
            )
        ).first()
        return None if row is None else _request(row)

    async def finish_many(self, outcomes: Sequence[tuple[BookingRequest, Outcome]]) -> None:
        """Record how requests ended (one statement, executed for each)."""
        if not outcomes:
            return
        # One statement shape for all: a missing booking id keeps the row's own.
        await self._db.execute(
            _FINISH_REQUEST.values(
                status=bindparam("status"),
                booking_id=func.coalesce(
                    bindparam("new_booking_id", type_=REQUESTS.c.booking_id.type),
                    REQUESTS.c.booking_id,
                ),
                error_code=bindparam("error_code"),
                error_message=bindparam("error_message"),
                completed_at=bindparam("completed_at"),
            ),
            [
                {
                    "request_id": request.id,
                    "request_created_at": request.created_at,
                    "status": outcome.status.value,
                    "new_booking_id": outcome.booking_id,
                    "error_code": outcome.error_code,
                    "error_message": outcome.error_message,
                    "completed_at": outcome.completed_at,
                }
                for request, outcome in outcomes
            ],
        )

    async def stale_pending(self, older_than: datetime, limit: int) -> list[tuple[UUID, UUID]]:
        """(provider, newest pending request) for providers with a request pending too long.

        Reads the pending rows only (the partial index of pending requests), and takes each
        provider's newest among them in the same pass: no lookup back into the record.
        """
        newest_first = func.row_number().over(
            partition_by=REQUESTS.c.provider_id, order_by=REQUESTS.c.seq.desc()
        )
        stale = (
            select(REQUESTS.c.provider_id, REQUESTS.c.id, newest_first.label("n"))
            .where(
                REQUESTS.c.status == RequestStatus.PENDING.value,
                REQUESTS.c.created_at < older_than,
            )
            .subquery()
        )
        rows = await self._db.execute(
            select(stale.c.provider_id, stale.c.id).where(stale.c.n == 1).limit(limit)
        )
        return [(row.provider_id, row.id) for row in rows]
