"""Accepting booking, reschedule and cancel requests, and reading them back.

Accepting records the request (pending) and commits before anything is enqueued; the worker
that owns the provider's partition decides it later. Only checks that need no other booking
are made here, so they can fail fast with a 422.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from domain.booking_rules import check_start, resolve_start
from domain.commands import RequestBooking, RequestCancel, RequestReschedule
from domain.errors import Conflict, DomainError, DuplicateKey, NotFound
from domain.ids import time_ordered_id
from domain.model import (
    ApiClient,
    Booking,
    BookingRequest,
    Provider,
    RequestKind,
    RequestStatus,
)
from domain.ports import (
    BookingFilter,
    Notifier,
    Page,
    ProviderCatalog,
    UnitOfWork,
    WakeupQueue,
)


@dataclass(frozen=True, slots=True)
class Accepted:
    request: BookingRequest
    created: bool  # False when an Idempotency-Key replay returned the original
    zone: str  # the provider's zone, for showing times when the client named none
    booking: Booking | None = None  # a replayed request's booking, once it succeeded


@dataclass(frozen=True, slots=True)
class Intake:
    """Who is asking, and what accepting a request needs besides the request itself."""

    client: ApiClient
    key: str | None  # the Idempotency-Key, if one was sent
    uow: UnitOfWork
    queue: WakeupQueue
    catalog: ProviderCatalog
    now: datetime
    keys_since: datetime  # keys taken before this no longer replay (IDEMPOTENCY_KEY_HOURS)
    http_request_id: str | None = None  # carried with the request into the worker's logs
    # Told of each request accepted (not of a replay), after its commit: the API counts them.
    on_accepted: Callable[[BookingRequest], None] | None = None


def fingerprint(kind: RequestKind, **fields: object) -> str:
    """What makes two requests "the same body" for Idempotency-Key, whatever their spelling."""
    canonical = json.dumps(
        {"kind": kind.value, **fields}, sort_keys=True, default=str, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


async def _checked_start(
    intake: Intake, provider_id: UUID, start: datetime, zone: ZoneInfo | None
) -> tuple[datetime, str]:
    """`start` as an instant after every check that needs no other booking, and the zone.

    The provider comes from the catalog (recently committed, not locked): the worker makes
    every check again when it decides, so these only spare the client a round trip.
    """
    catalog, now = intake.catalog, intake.now
    provider = await catalog.provider(provider_id)
    if provider is None:
        raise NotFound(f"provider {provider_id} not found")
    rules = provider.rules
    instant = resolve_start(start, zone or rules.zone)
    day = instant.astimezone(rules.zone).date()
    check_start(rules, await catalog.intervals(provider, day), instant, now, now)
    return instant, provider.timezone


async def _own_booking(uow: UnitOfWork, client: ApiClient, booking_id: UUID) -> Booking:
    booking = await uow.bookings.get(booking_id)
    if booking is None or not (client.is_admin or booking.client_id == client.id):
        raise NotFound(f"booking {booking_id} not found")
    return booking


# Builds the checked request and names the zone its times are shown in.
Prepare = Callable[[], Awaitable[tuple[BookingRequest, str]]]


async def _accept(prepare: Prepare, print_: str, intake: Intake) -> Accepted:
    """Record the request and wake its worker after commit; replay the original for a known key.

    The request is prepared (checked against the catalog, its booking read) before the
    accepting transaction opens, so no connection is held meanwhile: the catalog loads what
    it lacks through a pooled connection of its own, and requests each holding one while
    waiting for another would stall the API once the pool ran out. A refusal waits until the
    key is known not to replay: a replay answers the original whatever the checks say now.
    """
    client, key, uow, queue = intake.client, intake.key, intake.uow, intake.queue
    prepared: tuple[BookingRequest, str] | None = None
    try:
        prepared = await prepare()
    except DomainError as refused:
        if key is None:
            raise
        refusal = refused
    for _ in range(2):
        async with uow:
            if key is not None:
                existing = await uow.requests.by_idempotency_key(client.id, key, intake.keys_since)
                if existing is not None:
                    if existing.fingerprint != print_:
                        raise Conflict(
                            "this Idempotency-Key was already used with a different request body"
                        )
                    provider = await uow.providers.get(existing.provider_id)
                    zone = provider.timezone if provider else "UTC"
                    # The original as GET shows it now: a succeeded one with its booking.
                    booking = (
                        await uow.bookings.get(existing.booking_id)
                        if existing.status is RequestStatus.SUCCEEDED and existing.booking_id
                        else None
                    )
                    return Accepted(existing, created=False, zone=zone, booking=booking)
            if prepared is None:
                raise refusal
            built, zone = prepared
            try:
                request = await uow.requests.add(built, intake.keys_since)
            except DuplicateKey:
                continue  # a concurrent request with the same key committed first: replay it
            uow.after_commit(partial(queue.wake, request.provider_id, request.id))
            await uow.commit()
            if intake.on_accepted is not None:
                intake.on_accepted(request)
            return Accepted(request, created=True, zone=zone)
    raise Conflict(
        "a request with this Idempotency-Key is being accepted; retry"
    )  # pragma: no cover


def _pending(
    intake: Intake, kind: RequestKind, provider_id: UUID, print_: str, **fields: Any
) -> BookingRequest:
    return BookingRequest(
        # Its creation time in the id: a lookup by id reads one partition of the record.
        id=time_ordered_id(intake.now),
        seq=0,
        client_id=intake.client.id,
        kind=kind,
        provider_id=provider_id,
        status=RequestStatus.PENDING,
        created_at=intake.now,
        idempotency_key=intake.key,
        fingerprint=print_,
        http_request_id=intake.http_request_id,
        **fields,
    )


def _zone_name(start: datetime, zone: ZoneInfo | None) -> str | None:
    # Only a start without an offset is read in the request's zone.
    return zone.key if zone is not None and start.tzinfo is None else None


def _start_key(start: datetime) -> str:
    """A start as the same body for Idempotency-Key: an instant, however its offset is written
    (`14:00:00Z` and `09:00:00-05:00` are one start); a wall-clock time without an offset as
    written (with the request's zone beside it in the fingerprint)."""
    return start.astimezone(UTC).isoformat() if start.tzinfo is not None else start.isoformat()


async def request_booking(
    new: RequestBooking,
    intake: Intake,
) -> Accepted:
    print_ = fingerprint(
        RequestKind.BOOK,
        provider_id=new.provider_id,
        start=_start_key(new.start),
        zone=_zone_name(new.start, new.zone),
        customer_id=new.customer_id,
        callback_url=new.callback_url,
        metadata=dict(new.metadata or {}),
    )

    async def prepare() -> tuple[BookingRequest, str]:
        start, zone = await _checked_start(intake, new.provider_id, new.start, new.zone)
        return _pending(
            intake,
            RequestKind.BOOK,
            new.provider_id,
            print_,
            booking_id=None,
            start=start,
            customer_id=new.customer_id,
            metadata=dict(new.metadata or {}),
            callback_url=new.callback_url,
        ), zone

    return await _accept(prepare, print_, intake)


async def request_reschedule(
    new: RequestReschedule,
    intake: Intake,
) -> Accepted:
    print_ = fingerprint(
        RequestKind.RESCHEDULE,
        booking_id=new.booking_id,
        start=_start_key(new.start),
        zone=_zone_name(new.start, new.zone),
    )

    async def prepare() -> tuple[BookingRequest, str]:
        async with intake.uow as uow:
            booking = await _own_booking(uow, intake.client, new.booking_id)
        start, zone = await _checked_start(intake, booking.provider_id, new.start, new.zone)
        return _pending(
            intake,
            RequestKind.RESCHEDULE,
            booking.provider_id,
            print_,
            booking_id=booking.id,
            start=start,
        ), zone

    return await _accept(prepare, print_, intake)


async def request_cancel(
    new: RequestCancel,
    intake: Intake,
) -> Accepted:
    print_ = fingerprint(RequestKind.CANCEL, booking_id=new.booking_id, reason=new.reason)

    async def prepare() -> tuple[BookingRequest, str]:
        async with intake.uow as uow:
            booking = await _own_booking(uow, intake.client, new.booking_id)
        return _pending(
            intake,
            RequestKind.CANCEL,
            booking.provider_id,
            print_,
            booking_id=booking.id,
            start=None,
            reason=new.reason,
        ), "UTC"  # a cancel names no time

    return await _accept(prepare, print_, intake)


@dataclass(frozen=True, slots=True)
class RequestView:
    request: BookingRequest
    booking: Booking | None  # once the request succeeded
    zone: str  # the provider's zone, for showing times when the client named none


@dataclass(frozen=True, slots=True)
class BookingView:
    booking: Booking
    zone: str


async def _reveal(notifier: Notifier, providers: Iterable[Provider]) -> None:
    """Before a client sees a decided booking, move the provider's availability cache on.

    The worker does this right after its commit, but a client polling PostgreSQL may see the
    commit first. Raising the version here means no client is offered a slot whose booking
    it has already seen succeed.
    """
    for provider in providers:
        await notifier.availability_changed(provider.id, provider.version)


async def view_request(
    request_id: UUID, client: ApiClient, uow: UnitOfWork, notifier: Notifier
) -> RequestView:
    async with uow:
        request = await uow.requests.get(request_id)
        if request is None or not (client.is_admin or request.client_id == client.id):
            raise NotFound(f"booking request {request_id} not found")
        succeeded = request.status is RequestStatus.SUCCEEDED
        booking = (
            await uow.bookings.get(request.booking_id) if succeeded and request.booking_id else None
        )
        provider = await uow.providers.get(request.provider_id)
    if succeeded and provider is not None:
        await _reveal(notifier, [provider])
    return RequestView(request, booking, provider.timezone if provider else "UTC")


async def view_booking(
    booking_id: UUID, client: ApiClient, uow: UnitOfWork, notifier: Notifier
) -> BookingView:
    async with uow:
        booking = await _own_booking(uow, client, booking_id)
        provider = await uow.providers.get(booking.provider_id)
    assert provider is not None  # bookings keep their provider (foreign key)
    await _reveal(notifier, [provider])
    return BookingView(booking, provider.timezone)


async def list_bookings(
    where: BookingFilter,
    client: ApiClient,
    uow: UnitOfWork,
    notifier: Notifier,
    limit: int,
    cursor: str | None,
) -> Page[BookingView]:
    if not client.is_admin:
        where = dataclasses.replace(where, client_id=client.id)
    async with uow:
        page = await uow.bookings.list(where, limit, cursor)
        providers = await uow.providers.get_many({b.provider_id for b in page.items})
    await _reveal(notifier, providers.values())
    return Page(
        [BookingView(b, providers[b.provider_id].timezone) for b in page.items], page.next_cursor
    )
