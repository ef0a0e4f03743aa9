"""The record: typed SQLAlchemy tables. Instants are stored in UTC (`timestamptz` on PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, ExcludeConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """An aware instant in, an aware UTC instant out, on every backend (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; pass an aware instant")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Json = JSON().with_variant(JSONB(), "postgresql")
# On SQLite a BIGINT key is not the rowid alias, so it would not count up by itself.
SeqKey = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: Json}


class ApiClientRow(Base):
    __tablename__ = "api_clients"

    id: Mapped[UUID] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    signing_secret: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]  # a revoked key is refused; the row stays for history

    __table_args__ = (CheckConstraint("role IN ('admin', 'client')", name="role"),)


class ProviderRow(Base):
    __tablename__ = "providers"

    id: Mapped[UUID] = mapped_column(primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))
    slot_minutes: Mapped[int] = mapped_column(Integer)
    weekly_schedule: Mapped[dict[str, Any]]
    buffer_before_minutes: Mapped[int] = mapped_column(Integer)
    buffer_after_minutes: Mapped[int] = mapped_column(Integer)
    min_notice_minutes: Mapped[int] = mapped_column(Integer)
    max_advance_days: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (
        CheckConstraint("slot_minutes BETWEEN 1 AND 1440", name="slot_minutes"),
        Index("ix_providers_created_at_id", "created_at", "id"),
    )


class ScheduleOverrideRow(Base):
    __tablename__ = "schedule_overrides"

    provider_id: Mapped[UUID] = mapped_column(
        ForeignKey("providers.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    intervals: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime]


class BookingRow(Base):
    __tablename__ = "bookings"

    id: Mapped[UUID] = mapped_column(primary_key=True)
    client_id: Mapped[UUID] = mapped_column(ForeignKey("api_clients.id"))
    provider_id: Mapped[UUID] = mapped_column(ForeignKey("providers.id"))
    customer_id: Mapped[str | None] = mapped_column(String(255))
    start_at: Mapped[datetime]
    end_at: Mapped[datetime]
    blocked_from: Mapped[datetime]
    blocked_until: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    cancelled_at: Mapped[datetime | None]
    cancel_reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        CheckConstraint("status IN ('confirmed', 'cancelled')", name="status"),
        CheckConstraint("blocked_from < blocked_until", name="blocked_span"),
        # Every list reads (filter..., start_at, id) in order from one of these, and a page
        # resumes with the row comparison (start_at, id) > (:m, :x) as its index condition.
        Index("ix_bookings_start_at_id", "start_at", "id"),
        Index("ix_bookings_client_id_start_at_id", "client_id", "start_at", "id"),
        Index("ix_bookings_provider_id_start_at_id", "provider_id", "start_at", "id"),
        Index("ix_bookings_customer_id_start_at_id", "customer_id", "start_at", "id"),
        # Confirmed spans reaching into a window: the cost follows the window, not the history.
        Index(
            "ix_bookings_confirmed_until",
            "provider_id",
            "blocked_until",
            postgresql_where=text("status = 'confirmed'"),
            sqlite_where=text("status = 'confirmed'"),
        ),
        # The last line against double booking: no two confirmed blocked spans of one provider
        # overlap. SQLite has no such constraint; there the write lock serialises deciders.
        ExcludeConstraint(
            (text("provider_id"), "="),
            (text("tstzrange(blocked_from, blocked_until)"), "&&"),
            name="ex_bookings_no_overlap",
            using="gist",
            where=text("status = 'confirmed'"),
        ).ddl_if(dialect="postgresql"),
    )


class BookingRequestRow(Base):
    """Partitioned by month of `created_at` on PostgreSQL (infra/partitions.py).

    There the unique keys also hold `created_at` (`ux_booking_requests_seq`, `_id`); an
    Idempotency-Key is unique through `idempotency_keys`.
    """

    __tablename__ = "booking_requests"

    seq: Mapped[int] = mapped_column(SeqKey, primary_key=True, autoincrement=True)
    id: Mapped[UUID] = mapped_column(unique=True)
    client_id: Mapped[UUID] = mapped_column(ForeignKey("api_clients.id"))
    kind: Mapped[str] = mapped_column(String(16))
    provider_id: Mapped[UUID]
    booking_id: Mapped[UUID | None]
    start_at: Mapped[datetime | None]
    payload: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16))
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    fingerprint: Mapped[str | None] = mapped_column(String(64))
    callback_url: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    created_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]

    __table_args__ = (
        CheckConstraint("kind IN ('book', 'reschedule', 'cancel')", name="kind"),
        CheckConstraint("status IN ('pending', 'succeeded', 'rejected', 'failed')", name="status"),
        Index("ix_booking_requests_provider_id_status_seq", "provider_id", "status", "seq"),
        Index("ix_booking_requests_created_at", "created_at"),
        Index("ix_booking_requests_booking_id", "booking_id"),
        Index(
            "ix_booking_requests_pending",
            "seq",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
    )


class EventRow(Base):
    """The outbox: written with the change it describes, published after commit.

    Partitioned by month of `created_at` on PostgreSQL, like booking_requests.
    """

    __tablename__ = "events"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    request_id: Mapped[UUID | None]
    booking_id: Mapped[UUID | None]
    client_id: Mapped[UUID | None]
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    published_at: Mapped[datetime | None]
    # Grows with every event of a booking (the accept order of the request behind it).
    sequence: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (
        Index("ix_events_created_at", "created_at"),
        Index(
            "ix_events_unpublished",
            "created_at",
            postgresql_where=text("published_at IS NULL"),
            sqlite_where=text("published_at IS NULL"),
        ),
    )


class IdempotencyKeyRow(Base):
    """Which request holds a client's Idempotency-Key; replays for IDEMPOTENCY_KEY_HOURS.

    A trigger on booking_requests makes every insert with a key hold it (migration 0004).
    """

    __tablename__ = "idempotency_keys"

    client_id: Mapped[UUID] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_id: Mapped[UUID]
    request_created_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(index=True)


class WebhookEndpointRow(Base):
    __tablename__ = "webhook_endpoints"

    id: Mapped[UUID] = mapped_column(primary_key=True)
    client_id: Mapped[UUID] = mapped_column(ForeignKey("api_clients.id"))
    url: Mapped[str] = mapped_column(Text)
    events: Mapped[dict[str, Any]]
    description: Mapped[str | None] = mapped_column(Text)
    secret: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    previous_secret: Mapped[str | None] = mapped_column(String(100))
    previous_secret_until: Mapped[datetime | None]
    failing_since: Mapped[datetime | None]
    disabled_reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        CheckConstraint("status IN ('enabled', 'disabled')", name="status"),
        Index("ix_webhook_endpoints_client_id", "client_id"),
        Index("ix_webhook_endpoints_created_at_id", "created_at", "id"),
    )


class WebhookDeliveryRow(Base):
    __tablename__ = "webhook_deliveries"

    id: Mapped[UUID] = mapped_column(primary_key=True)
    # No foreign key: events are partitioned, and retention removes old ones first.
    event_id: Mapped[str] = mapped_column(String(40))
    endpoint_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="SET NULL")
    )
    client_id: Mapped[UUID] = mapped_column(ForeignKey("api_clients.id"))
    url: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    next_attempt_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # "callback", or the endpoint's id (kept when the endpoint is deleted and endpoint_id
    # cleared): a delivery is unique per (event, target), so publishing twice adds nothing.
    target: Mapped[str] = mapped_column(String(40), server_default=text("''"))
    event_type: Mapped[str] = mapped_column(String(64), server_default=text("''"))
    event_created_at: Mapped[datetime | None]

    __table_args__ = (
        CheckConstraint("status IN ('pending', 'succeeded', 'failed')", name="status"),
        Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_endpoint_id_created_at", "endpoint_id", "created_at"),
        Index("uq_webhook_deliveries_event_id_target", "event_id", "target", unique=True),
        Index(
            "ix_webhook_deliveries_due",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        Index("ix_webhook_deliveries_created_at", "created_at"),
    )


class WebhookAttemptRow(Base):
    """One attempt at a delivery: what the receiver answered, or why nothing came back."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(SeqKey, primary_key=True, autoincrement=True)
    delivery_id: Mapped[UUID]
    attempt: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime]
    duration_ms: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    response_body: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_webhook_attempts_delivery_id_attempt", "delivery_id", "attempt"),
        # Retention finds old attempts through it.
        Index("ix_webhook_attempts_started_at", "started_at"),
    )
