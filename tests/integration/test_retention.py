"""`booking prune`: old data leaves, work still to do and the record stay."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, insert, select, text

from cli.main import main
from infra.partitions import ensure_partitions
from infra.tables import (
    BookingRequestRow,
    BookingRow,
    EventRow,
    IdempotencyKeyRow,
    WebhookAttemptRow,
    WebhookDeliveryRow,
)
from tests.conftest import (
    TestDatabase,
)
from tests.integration.rows import add_client_and_provider, request_row

MONTHS = 24  # two years of data, a month apart
OLD_MONTHS = 10  # those older than the default 400 days: 421, 451, ... 691 days old


NOW = datetime.now(UTC)


def _two_years(engine: Engine) -> dict[str, Any]:
    """A month-by-month history, plus old rows that are work still to do."""
    ensure_partitions(engine, NOW - timedelta(days=31 * (MONTHS + 1)), NOW)
    ancient = NOW - timedelta(days=700)
    keep: dict[str, Any] = {}
    with engine.begin() as db:
        client, provider = add_client_and_provider(db, ancient)
        for month in range(MONTHS):
            created = NOW - timedelta(days=2 + 30 * month)
            start = created + timedelta(days=1)
            booking, request = uuid.uuid4(), uuid.uuid4()
            db.execute(
                insert(BookingRow).values(**_booking(booking, client, provider, start, created))
            )
            db.execute(
                insert(BookingRequestRow).values(
                    **request_row(request, client, provider, created, "succeeded"),
                    booking_id=booking,
                    idempotency_key=f"key-{month}",
                )
            )
            event = _event(request, client, created, published=True)
            db.execute(insert(EventRow).values(**event))
            delivery = _delivery(event["id"], client, created, "succeeded")
            db.execute(insert(WebhookDeliveryRow).values(**delivery))
            db.execute(insert(WebhookAttemptRow).values(**_attempt(delivery["id"], created)))
        # Work still to do, however old, and bookings still ahead.
        keep["pending_request"] = uuid.uuid4()
        db.execute(
            insert(BookingRequestRow).values(
                **request_row(keep["pending_request"], client, provider, ancient, "pending")
            )
        )
        unpublished = _event(keep["pending_request"], client, ancient, published=False)
        keep["unpublished_event"] = unpublished["id"]
        db.execute(insert(EventRow).values(**unpublished))
        keep["pending_delivery"] = uuid.uuid4()
        db.execute(
            insert(WebhookDeliveryRow)
            .values(
                **_delivery(unpublished["id"], client, ancient, "pending"),
            )
            .values(id=keep["pending_delivery"])
        )
        # Its attempts stay with it, however old.
        attempt = _attempt(keep["pending_delivery"], ancient)
        db.execute(insert(WebhookAttemptRow).values(**attempt))
        keep["future_booking"] = uuid.uuid4()
        db.execute(
            insert(BookingRow).values(
                **_booking(
                    keep["future_booking"], client, provider, NOW + timedelta(days=30), ancient
                )
            )
        )
    return keep


def _booking(
    ident: uuid.UUID, client: uuid.UUID, provider: uuid.UUID, start: datetime, created: datetime
) -> dict[str, Any]:
    return {
        "id": ident,
        "client_id": client,
        "provider_id": provider,
        "customer_id": "p",
        "start_at": start,
        "end_at": start + timedelta(minutes=30),
        "blocked_from": start,
        "blocked_until": start + timedelta(minutes=30),
        "status": "confirmed",
        "metadata_": {},
        "created_at": created,
        "updated_at": created,
    }


def _event(
    request: uuid.UUID, client: uuid.UUID, created: datetime, published: bool
) -> dict[str, Any]:
    return {
        "id": f"evt_{uuid.uuid4().hex}",
        "type": "booking.confirmed",
        "request_id": request,
        "booking_id": None,
        "client_id": client,
        "payload": {},
        "created_at": created,
        "published_at": created if published else None,
    }


def _delivery(event_id: str, client: uuid.UUID, created: datetime, status: str) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "event_id": event_id,
        "endpoint_id": None,
        "client_id": client,
        "url": "https://example.com/hook",
        "status": status,
        "attempts": 1,
        "created_at": created,
        "updated_at": created,
    }


def _attempt(delivery: uuid.UUID, started: datetime) -> dict[str, Any]:
    return {
        "delivery_id": delivery,
        "attempt": 1,
        "started_at": started,
        "duration_ms": 12,
        "status_code": 500,
        "error": None,
        "response_body": "try again",
    }


def _prune(
    fresh: TestDatabase,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    *flags: str,
) -> dict[str, int]:
    monkeypatch.setenv("DATABASE_URL", fresh.url)
    monkeypatch.setenv("RETENTION_DAYS", "400")
    monkeypatch.setenv("IDEMPOTENCY_KEY_HOURS", "24")
    capsys.readouterr()
    assert main(["prune", "--json", *flags]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1, lines
    counts: dict[str, int] = json.loads(lines[0])
    return counts


def _count(engine: Engine, table: Any) -> int:
    with engine.connect() as db:
        return int(db.execute(select(func.count()).select_from(table)).scalar_one())


EXPECTED = {
    "webhook_attempts": OLD_MONTHS,
    "webhook_deliveries": OLD_MONTHS,
    "events": OLD_MONTHS,
    "booking_requests": OLD_MONTHS,
    "idempotency_keys": MONTHS,  # every key is two days old or more
}


def test_prune_removes_what_is_older_than_retention_and_keeps_work_and_bookings(
    fresh: TestDatabase,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    keep = _two_years(engine)
    before = {
        t: _count(engine, t)
        for t in (
            BookingRequestRow,
            EventRow,
            WebhookDeliveryRow,
            WebhookAttemptRow,
            BookingRow,
            IdempotencyKeyRow,
        )
    }

    assert _prune(fresh, monkeypatch, capsys, "--dry-run") == EXPECTED
    assert {t: _count(engine, t) for t in before} == before  # a dry run removes nothing

    assert _prune(fresh, monkeypatch, capsys) == EXPECTED
    assert _count(engine, BookingRequestRow) == MONTHS + 1 - OLD_MONTHS
    assert _count(engine, EventRow) == MONTHS + 1 - OLD_MONTHS
    assert _count(engine, WebhookDeliveryRow) == MONTHS + 1 - OLD_MONTHS
    assert _count(engine, WebhookAttemptRow) == MONTHS + 1 - OLD_MONTHS
    assert _count(engine, BookingRow) == MONTHS + 1  # bookings are the record
    assert _count(engine, IdempotencyKeyRow) == 0
    with engine.connect() as db:
        oldest = db.execute(
            select(func.min(BookingRequestRow.created_at)).where(
                BookingRequestRow.status != "pending"
            )
        ).scalar_one()
        assert oldest > NOW - timedelta(days=400)
        kept = db.execute(
            select(BookingRequestRow.status).where(BookingRequestRow.id == keep["pending_request"])
        ).scalar_one()
        assert kept == "pending"
        assert db.execute(
            select(EventRow.id).where(EventRow.id == keep["unpublished_event"])
        ).scalar_one()
        assert db.execute(
            select(WebhookDeliveryRow.id).where(WebhookDeliveryRow.id == keep["pending_delivery"])
        ).scalar_one()
        assert db.execute(
            select(WebhookAttemptRow.id).where(
                WebhookAttemptRow.delivery_id == keep["pending_delivery"]
            )
        ).scalar_one()
        assert db.execute(
            select(BookingRow.id).where(BookingRow.id == keep["future_booking"])
        ).scalar_one()
        if fresh.backend == "postgresql":
            # Months wholly past the cutoff went as partitions, except the one holding the
            # pending request (its other rows went in batches).
            names = set(
                db.execute(
                    text(
                        "SELECT relname FROM pg_class"
                        " WHERE relname LIKE 'booking_requests_p%' AND relkind = 'r'"
                    )
                ).scalars()
            )
            month_of_pending = (NOW - timedelta(days=700)).strftime("booking_requests_p%Y%m")
            assert month_of_pending in names
            assert (NOW - timedelta(days=600)).strftime("booking_requests_p%Y%m") not in names
            assert (NOW - timedelta(days=300)).strftime("booking_requests_p%Y%m") in names

    assert _prune(fresh, monkeypatch, capsys) == dict.fromkeys(EXPECTED, 0)
