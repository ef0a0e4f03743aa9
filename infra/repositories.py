"""All SQL lives here. Repositories take a connection and return domain objects, never rows.

Statements are SQLAlchemy Core on the mapped tables; the ones on hot paths are built once, with
bound parameters, so a request pays for executing them and not for building them.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import uuid
from collections.abc import Collection, Iterable, Sequence
from datetime import date, datetime
from typing import Any, Protocol
from uuid import UUID

from sqlalchemy import (
    CursorResult,
    Dialect,
    Executable,
    Row,
    Table,
    Update,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from domain.availability import Span
from domain.errors import BadRequest, Conflict, DuplicateKey
from domain.events import Event, event_payload
from domain.model import (
    ApiClient,
    Booking,
    BookingRequest,
    BookingStatus,
    Provider,
    RequestKind,
    RequestStatus,
    Role,
    ScheduleOverride,
)
from domain.ports import BookingFilter, NewApiClient, Outcome, Page
from domain.schedule import (
    WEEKDAYS,
    Interval,
    WeeklySchedule,
    format_wall_time,
    parse_wall_time,
)
from infra.tables import (
    ApiClientRow,
    BookingRequestRow,
    BookingRow,
    EventRow,
    ProviderRow,
    ScheduleOverrideRow,
)


class Statements(Protocol):
    """Where repositories send their SQL: a connection, or one taken at first use."""

    @property
    def dialect(self) -> Dialect: ...
    async def execute(self, statement: Executable, parameters: Any = None) -> CursorResult[Any]: ...
    async def scalar(self, statement: Executable, parameters: Any = None) -> Any: ...


PROVIDERS: Table = ProviderRow.__table__  # type: ignore[assignment]
OVERRIDES: Table = ScheduleOverrideRow.__table__  # type: ignore[assignment]
BOOKINGS: Table = BookingRow.__table__  # type: ignore[assignment]
REQUESTS: Table = BookingRequestRow.__table__  # type: ignore[assignment]
CLIENTS: Table = ApiClientRow.__table__  # type: ignore[assignment]
EVENTS: Table = EventRow.__table__  # type: ignore[assignment]


_PROVIDER_BY_ID = select(PROVIDERS).where(PROVIDERS.c.id == bindparam("id"))
_BOOKING_BY_ID = select(BOOKINGS).where(BOOKINGS.c.id == bindparam("id"))
_REQUEST_BY_ID = select(REQUESTS).where(REQUESTS.c.id == bindparam("id"))
_REQUEST_BY_KEY = select(REQUESTS).where(
    REQUESTS.c.client_id == bindparam("client_id"),
    REQUESTS.c.idempotency_key == bindparam("key"),
)
_CLIENT_BY_KEY_HASH = select(CLIENTS.c.id, CLIENTS.c.name, CLIENTS.c.role).where(
    CLIENTS.c.key_hash == bindparam("key_hash")
)
_OVERRIDES_BETWEEN = select(OVERRIDES.c.day, OVERRIDES.c.intervals).where(
    OVERRIDES.c.provider_id == bindparam("provider_id"),
    OVERRIDES.c.day >= bindparam("first"),
    OVERRIDES.c.day <= bindparam("last"),
)
_INSERT_REQUEST = insert(REQUESTS).returning(REQUESTS.c.seq)
_UPDATE_BOOKING = update(BOOKINGS).where(BOOKINGS.c.id == bindparam("booking_id"))
_FINISH_REQUEST = update(REQUESTS).where(REQUESTS.c.id == bindparam("request_id"))


def _relaxed(statement: Update, db: Statements) -> Update:
    """`statement`, committing without waiting for the disk where PostgreSQL allows it.

    For attempt counts: losing one in a database crash costs one extra retry at most.
    set_config(..., true) lasts for the statement's own transaction, and PostgreSQL reads
    synchronous_commit when that transaction commits; as an uncorrelated subquery it runs
    once, before anything else.
    """
    if db.dialect.name != "postgresql":
        return statement
    relaxed = select(func.set_config("synchronous_commit", "off", True))
    return statement.where(relaxed.scalar_subquery() == "off")


def encode_cursor(*parts: str) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int) -> list[str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        parts = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise BadRequest("`cursor` is not a cursor this API gave out") from None
    if (
        not isinstance(parts, list)
        or len(parts) != arity
        or not all(isinstance(p, str) for p in parts)
    ):
        raise BadRequest("`cursor` is not a cursor this API gave out")
    return parts


def _cursor_position(cursor: str) -> tuple[datetime, UUID]:
    moment, ident = decode_cursor(cursor, 2)
    try:
        return datetime.fromisoformat(moment), UUID(ident)
    except ValueError:
        raise BadRequest("`cursor` is not a cursor this API gave out") from None


def intervals_to_json(intervals: Sequence[Interval]) -> list[dict[str, str]]:
    return [{"start": format_wall_time(i.start), "end": format_wall_time(i.end)} for i in intervals]


def intervals_from_json(raw: Sequence[dict[str, str]]) -> tuple[Interval, ...]:
    # Stored values were checked on the way in; only the representation changes here.
    return tuple(
        Interval(parse_wall_time(i["start"], is_end=False), parse_wall_time(i["end"], is_end=True))
        for i in raw
    )


def week_to_json(week: WeeklySchedule) -> dict[str, Any]:
    return {name: intervals_to_json(day) for name, day in week.as_names().items()}


def week_from_json(raw: dict[str, Any]) -> WeeklySchedule:
    return WeeklySchedule(days=tuple(intervals_from_json(raw.get(name, [])) for name in WEEKDAYS))


# Provider rows repeat a lot (every availability read, every booking); their parsed weekly
# schedules are kept per (id, version), which changes whenever the hours do.
_WEEK_CACHE: dict[tuple[UUID, int], WeeklySchedule] = {}
_WEEK_CACHE_LIMIT = 10_000


def _provider(row: ProviderRow | Row[Any]) -> Provider:
    key = (row.id, row.version)
    weekly = _WEEK_CACHE.get(key)
    if weekly is None:
        if len(_WEEK_CACHE) >= _WEEK_CACHE_LIMIT:
            _WEEK_CACHE.clear()
        weekly = _WEEK_CACHE[key] = week_from_json(row.weekly_schedule)
    return Provider(
        id=row.id,
        name=row.name,
        timezone=row.timezone,
        slot_minutes=row.slot_minutes,
        weekly=weekly,
        buffer_before_minutes=row.buffer_before_minutes,
        buffer_after_minutes=row.buffer_after_minutes,
        min_notice_minutes=row.min_notice_minutes,
        max_advance_days=row.max_advance_days,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _provider_values(provider: Provider) -> dict[str, Any]:
    return {
        "name": provider.name,
        "timezone": provider.timezone,
        "slot_minutes": provider.slot_minutes,
        "weekly_schedule": week_to_json(provider.weekly),
        "buffer_before_minutes": provider.buffer_before_minutes,
        "buffer_after_minutes": provider.buffer_after_minutes,
        "min_notice_minutes": provider.min_notice_minutes,
        "max_advance_days": provider.max_advance_days,
        "version": provider.version,
        "updated_at": provider.updated_at,
    }


class SqlProviderRepository:
    def __init__(self, connection: Statements) -> None:
        self._db = connection

    async def get(self, provider_id: UUID) -> Provider | None:
        row = (await self._db.execute(_PROVIDER_BY_ID, {"id": provider_id})).first()
        return None if row is None else _provider(row)

    async def get_many(self, provider_ids: Iterable[UUID]) -> dict[UUID, Provider]:
        wanted = list(provider_ids)
        if not wanted:
            return {}
        rows = await self._db.execute(select(PROVIDERS).where(ProviderRow.id.in_(wanted)))
        return {row.id: _provider(row) for row in rows}

    async def add(self, provider: Provider) -> None:
        try:
            await self._db.execute(
                insert(PROVIDERS).values(
                    id=provider.id, created_at=provider.created_at, **_provider_values(provider)
                )
            )
        except IntegrityError:
            raise Conflict(f"provider {provider.id} already exists") from None

    async def update(self, provider: Provider) -> None:
        await self._db.execute(
            update(PROVIDERS)
            .where(ProviderRow.id == provider.id)
            .values(**_provider_values(provider))
        )

    async def list(self, limit: int, cursor: str | None) -> Page[Provider]:
        query = select(PROVIDERS).order_by(ProviderRow.created_at, ProviderRow.id)
        if cursor:
            moment, last_id = _cursor_position(cursor)
            query = query.where(
                or_(
                    ProviderRow.created_at > moment,
                    and_(ProviderRow.created_at == moment, ProviderRow.id > last_id),
                )
            )
        rows = (await self._db.execute(query.limit(limit + 1))).all()
        items = [_provider(row) for row in rows[:limit]]
        next_cursor = (
            encode_cursor(items[-1].created_at.isoformat(), str(items[-1].id))
            if len(rows) > limit
            else None
        )
        return Page(items, next_cursor)

    async def bump_versions(self, provider_ids: Collection[UUID]) -> dict[UUID, int]:
        if not provider_ids:
            return {}
        rows = await self._db.execute(
            update(PROVIDERS)
            .where(PROVIDERS.c.id.in_(sorted(provider_ids)))
            .values(version=PROVIDERS.c.version + 1)
            .returning(PROVIDERS.c.id, PROVIDERS.c.version)
        )
        return {row.id: int(row.version) for row in rows}


class SqlOverrideRepository:
    def __init__(self, connection: Statements) -> None:
        self._db = connection

    async def between(
        self, provider_id: UUID, first: date, last: date
    ) -> dict[date, tuple[Interval, ...]]:
        params = {"provider_id": provider_id, "first": first, "last": last}
        rows = await self._db.execute(_OVERRIDES_BETWEEN, params)
        return {row.day: intervals_from_json(row.intervals["intervals"]) for row in rows}

    async def on_days(
        self, provider_ids: Collection[UUID], days: Collection[date]
    ) -> dict[tuple[UUID, date], tuple[Interval, ...]]:
        if not provider_ids or not days:
            return {}
        rows = await self._db.execute(
            select(OVERRIDES.c.provider_id, OVERRIDES.c.day, OVERRIDES.c.intervals).where(
                OVERRIDES.c.provider_id.in_(list(provider_ids)), OVERRIDES.c.day.in_(list(days))
            )
        )
        return {
            (row.provider_id, row.day): intervals_from_json(row.intervals["intervals"])
            for row in rows
        }

    async def put(self, override: ScheduleOverride) -> None:
        values = {
            "intervals": {"intervals": intervals_to_json(override.intervals)},
            "updated_at": datetime.now().astimezone(),
        }
        changed = await self._db.execute(
            update(OVERRIDES)
            .where(
                ScheduleOverrideRow.provider_id == override.provider_id,
                ScheduleOverrideRow.day == override.day,
            )
            .values(**values)
        )
        if changed.rowcount == 0:
            await self._db.execute(
                insert(OVERRIDES).values(
                    provider_id=override.provider_id, day=override.day, **values
                )
            )

    async def delete(self, provider_id: UUID, day: date) -> bool:
        result = await self._db.execute(
            delete(OVERRIDES).where(
                ScheduleOverrideRow.provider_id == provider_id, ScheduleOverrideRow.day == day
            )
        )
        return bool(result.rowcount)


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
        query = select(BOOKINGS).order_by(BookingRow.start_at, BookingRow.id)
        conditions = []
        if where.client_id is not None:
            conditions.append(BookingRow.client_id == where.client_id)
        if where.provider_id is not None:
            conditions.append(BookingRow.provider_id == where.provider_id)
        if where.customer_id is not None:
            conditions.append(BookingRow.customer_id == where.customer_id)
        if where.status is not None:
            conditions.append(BookingRow.status == where.status.value)
        if where.start_from is not None:
            conditions.append(BookingRow.start_at >= where.start_from)
        if where.start_before is not None:
            conditions.append(BookingRow.start_at < where.start_before)
        if cursor:
            moment, last_id = _cursor_position(cursor)
            conditions.append(
                or_(
                    BookingRow.start_at > moment,
                    and_(BookingRow.start_at == moment, BookingRow.id > last_id),
                )
            )
        rows = (await self._db.execute(query.where(*conditions).limit(limit + 1))).all()
        items = [_booking(row) for row in rows[:limit]]
        next_cursor = (
            encode_cursor(items[-1].start.isoformat(), str(items[-1].id))
            if len(rows) > limit
            else None
        )
        return Page(items, next_cursor)


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

    async def add(self, request: BookingRequest) -> BookingRequest:
        payload: dict[str, Any] = {}
        if request.customer_id is not None:
            payload["customer_id"] = request.customer_id
        if request.metadata:
            payload["metadata"] = request.metadata
        if request.reason is not None:
            payload["reason"] = request.reason
        try:
            seq = await self._db.scalar(
                _INSERT_REQUEST,
                {
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
                },
            )
        except IntegrityError:
            raise DuplicateKey("a request with this Idempotency-Key already exists") from None
        assert seq is not None
        return dataclasses.replace(request, seq=seq)

    async def get(self, request_id: UUID) -> BookingRequest | None:
        row = (await self._db.execute(_REQUEST_BY_ID, {"id": request_id})).first()
        return None if row is None else _request(row)

    async def by_idempotency_key(self, client_id: UUID, key: str) -> BookingRequest | None:
        params = {"client_id": client_id, "key": key}
        row = (await self._db.execute(_REQUEST_BY_KEY, params)).first()
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

    async def pending_by_ids(self, request_ids: Collection[UUID]) -> list[BookingRequest]:
        """Those of the requests still pending, locked, oldest first."""
        if not request_ids:
            return []
        query = (
            select(REQUESTS)
            .where(
                REQUESTS.c.id.in_(list(request_ids)),
                REQUESTS.c.status == RequestStatus.PENDING.value,
            )
            .order_by(REQUESTS.c.seq)
            .with_for_update()
        )
        return [_request(row) for row in (await self._db.execute(query)).all()]

    async def count_attempts(self, request_ids: Collection[UUID]) -> None:
        """Count one more attempt at each of the requests (one statement)."""
        if request_ids:
            statement = update(REQUESTS).where(REQUESTS.c.id.in_(list(request_ids)))
            await self._db.execute(
                _relaxed(statement, self._db).values(attempts=REQUESTS.c.attempts + 1)
            )

    async def count_attempt(self, provider_id: UUID) -> tuple[UUID, int] | None:
        """Count one more attempt at the provider's oldest pending request (one statement)."""
        oldest = (
            select(REQUESTS.c.seq)
            .where(
                REQUESTS.c.provider_id == provider_id,
                REQUESTS.c.status == RequestStatus.PENDING.value,
            )
            .order_by(REQUESTS.c.seq)
            .limit(1)
            .scalar_subquery()
        )
        statement = _relaxed(update(REQUESTS).where(REQUESTS.c.seq == oldest), self._db)
        row = (
            await self._db.execute(
                statement.values(attempts=REQUESTS.c.attempts + 1).returning(
                    REQUESTS.c.id, REQUESTS.c.attempts
                )
            )
        ).first()
        return None if row is None else (row.id, row.attempts)

    async def finish_many(self, outcomes: Sequence[tuple[UUID, Outcome]]) -> None:
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
                    "request_id": request_id,
                    "status": outcome.status.value,
                    "new_booking_id": outcome.booking_id,
                    "error_code": outcome.error_code,
                    "error_message": outcome.error_message,
                    "completed_at": outcome.completed_at,
                }
                for request_id, outcome in outcomes
            ],
        )

    async def stale_pending(self, older_than: datetime, limit: int) -> list[tuple[UUID, UUID]]:
        """(provider, newest pending request) for providers with a request pending too long."""
        newest = (
            select(func.max(BookingRequestRow.seq).label("seq"))
            .where(
                BookingRequestRow.status == RequestStatus.PENDING.value,
                BookingRequestRow.created_at < older_than,
            )
            .group_by(BookingRequestRow.provider_id)
            .limit(limit)
            .subquery()
        )
        rows = await self._db.execute(
            select(BookingRequestRow.provider_id, BookingRequestRow.id).join(
                newest, BookingRequestRow.seq == newest.c.seq
            )
        )
        return [(row.provider_id, row.id) for row in rows]


class SqlApiClientRepository:
    def __init__(self, connection: Statements) -> None:
        self._db = connection

    async def by_key_hash(self, key_hash: str) -> ApiClient | None:
        row = (await self._db.execute(_CLIENT_BY_KEY_HASH, {"key_hash": key_hash})).first()
        return None if row is None else ApiClient(row.id, row.name, Role(row.role))

    async def add(self, new: NewApiClient) -> None:
        await self._db.execute(
            insert(CLIENTS).values(
                id=new.client.id,
                name=new.client.name,
                role=new.client.role.value,
                key_hash=new.key_hash,
                signing_secret=new.signing_secret,
                created_at=datetime.now().astimezone(),
            )
        )


class SqlEventRepository:
    def __init__(self, connection: Statements) -> None:
        self._db = connection

    async def add_many(self, events: Sequence[Event], created_at: datetime) -> None:
        if not events:
            return
        await self._db.execute(
            insert(EVENTS),
            [
                {
                    "id": f"evt_{uuid.uuid4().hex}",
                    "type": event.type,
                    "request_id": event.request.id,
                    "booking_id": event.booking.id if event.booking else None,
                    "client_id": event.request.client_id,
                    "payload": event_payload(event),
                    "created_at": created_at,
                }
                for event in events
            ],
        )
