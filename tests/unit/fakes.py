"""In-memory fakes of the ports (domain/ports.py), so the use cases run alone: no database, no
Redis, no event loop other than the test's.

`FakeDatabase` keeps the committed state. A unit of work works on a copy and puts it back on
commit; leaving the block without committing drops the copy (a rollback) and the effects it
collected. A single writer's one write commits at once, like the SQL one's autocommit. A
test can make writes fail for chosen requests (`poison`), as a bug or a crash would.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from types import TracebackType
from typing import Self
from uuid import UUID

from domain.availability import Span
from domain.errors import DuplicateKey
from domain.events import Event
from domain.model import (
    ApiClient,
    Booking,
    BookingRequest,
    BookingStatus,
    Provider,
    RequestStatus,
    ScheduleOverride,
)
from domain.ports import AfterCommit, BookingFilter, NewApiClient, Outcome, Page
from domain.schedule import Interval


class Poisoned(Exception):
    """What deciding a poisoned request raises, as a bug in the decision would."""


@dataclass
class State:
    providers: dict[UUID, Provider] = field(default_factory=dict)
    overrides: dict[tuple[UUID, date], tuple[Interval, ...]] = field(default_factory=dict)
    bookings: dict[UUID, Booking] = field(default_factory=dict)
    requests: dict[UUID, BookingRequest] = field(default_factory=dict)
    clients: dict[str, ApiClient] = field(default_factory=dict)  # by key hash
    events: list[tuple[Event, datetime]] = field(default_factory=list)
    next_seq: int = 1


class Writes:
    """Counts writes; a single writer allows one."""

    def __init__(self, limit: int | None) -> None:
        self.limit, self.count = limit, 0

    def __call__(self) -> None:
        self.count += 1
        if self.limit is not None and self.count > self.limit:
            raise RuntimeError("a single-write unit of work was asked for a second write")


class FakeProviders:
    def __init__(self, state: State, write: Writes) -> None:
        self._s, self._write = state, write

    async def get(self, provider_id: UUID) -> Provider | None:
        return self._s.providers.get(provider_id)

    async def get_many(self, provider_ids: Iterable[UUID]) -> dict[UUID, Provider]:
        return {p: self._s.providers[p] for p in provider_ids if p in self._s.providers}

    async def add(self, provider: Provider) -> None:
        self._write()
        self._s.providers[provider.id] = provider

    async def update(self, provider: Provider) -> None:
        self._write()
        self._s.providers[provider.id] = provider

    async def list(self, limit: int, cursor: str | None) -> Page[Provider]:
        ordered = sorted(self._s.providers.values(), key=lambda p: (p.created_at, p.id))
        return Page(ordered[:limit], None)

    async def bump_versions(self, provider_ids: Collection[UUID]) -> dict[UUID, int]:
        self._write()
        versions = {}
        for provider_id in provider_ids:
            provider = self._s.providers[provider_id]
            provider = dataclasses.replace(provider, version=provider.version + 1)
            self._s.providers[provider_id] = provider
            versions[provider_id] = provider.version
        return versions


class FakeOverrides:
    def __init__(self, state: State, write: Writes) -> None:
        self._s, self._write = state, write

    async def between(
        self, provider_id: UUID, first: date, last: date
    ) -> dict[date, tuple[Interval, ...]]:
        found = self._s.overrides.items()
        return {d: i for (p, d), i in found if p == provider_id and first <= d <= last}

    async def on_days(
        self, provider_ids: Collection[UUID], days: Collection[date]
    ) -> dict[tuple[UUID, date], tuple[Interval, ...]]:
        found = self._s.overrides.items()
        return {(p, d): i for (p, d), i in found if p in provider_ids and d in days}

    async def put(self, override: ScheduleOverride) -> None:
        self._write()
        self._s.overrides[(override.provider_id, override.day)] = override.intervals

    async def delete(self, provider_id: UUID, day: date) -> bool:
        self._write()
        return self._s.overrides.pop((provider_id, day), None) is not None


class FakeBookings:
    def __init__(self, state: State, write: Writes, poison: set[UUID]) -> None:
        self._s, self._write, self._poison = state, write, poison

    async def get(self, booking_id: UUID) -> Booking | None:
        return self._s.bookings.get(booking_id)

    async def get_many(self, booking_ids: Iterable[UUID]) -> dict[UUID, Booking]:
        return {b: self._s.bookings[b] for b in booking_ids if b in self._s.bookings}

    async def confirmed_spans(
        self, provider_ids: Collection[UUID], window: Span
    ) -> dict[UUID, list[tuple[UUID, Span]]]:
        found: dict[UUID, list[tuple[UUID, Span]]] = {p: [] for p in provider_ids}
        for booking in self._s.bookings.values():
            if (
                booking.provider_id in found
                and booking.status is BookingStatus.CONFIRMED
                and booking.blocked.start < window.end
                and booking.blocked.end > window.start
            ):
                found[booking.provider_id].append((booking.id, booking.blocked))
        return found

    async def add_many(self, bookings: Sequence[Booking]) -> None:
        if bookings:
            self._write()
        for booking in bookings:
            assert booking.id not in self._s.bookings
            self._s.bookings[booking.id] = booking

    async def update_many(self, bookings: Sequence[Booking]) -> None:
        if bookings:
            self._write()
        for booking in bookings:
            self._s.bookings[booking.id] = booking

    async def list(self, where: BookingFilter, limit: int, cursor: str | None) -> Page[Booking]:
        raise NotImplementedError("not needed by the use cases tested with fakes")


class FakeRequests:
    def __init__(self, state: State, write: Writes, poison: set[UUID]) -> None:
        self._s, self._write, self._poison = state, write, poison

    def _pending(self) -> list[BookingRequest]:
        return sorted(
            (r for r in self._s.requests.values() if r.status is RequestStatus.PENDING),
            key=lambda r: r.seq,
        )

    async def add(self, request: BookingRequest, keys_since: datetime) -> BookingRequest:
        self._write()
        if request.idempotency_key is not None:
            held = await self.by_idempotency_key(
                request.client_id, request.idempotency_key, keys_since
            )
            if held is not None:
                raise DuplicateKey("a request with this Idempotency-Key already exists")
        added = dataclasses.replace(request, seq=self._s.next_seq)
        self._s.next_seq += 1
        self._s.requests[added.id] = added
        return added

    async def get(self, request_id: UUID) -> BookingRequest | None:
        return self._s.requests.get(request_id)

    async def by_idempotency_key(
        self, client_id: UUID, key: str, since: datetime
    ) -> BookingRequest | None:
        return next(
            (
                r
                for r in self._s.requests.values()
                if r.client_id == client_id and r.idempotency_key == key and r.created_at >= since
            ),
            None,
        )

    async def pending_for_providers(
        self, provider_ids: Collection[UUID], limit: int
    ) -> list[BookingRequest]:
        return [r for r in self._pending() if r.provider_id in provider_ids][:limit]

    async def still_pending(self, requests: Collection[BookingRequest]) -> list[BookingRequest]:
        # The real one finds them by id and creation time: a request named with another
        # creation time than its own is not found.
        named = {(r.id, r.created_at) for r in requests}
        return [r for r in self._pending() if (r.id, r.created_at) in named]

    async def count_attempts(self, requests: Collection[BookingRequest]) -> None:
        self._write()
        for named in requests:
            request = self._s.requests[named.id]
            self._s.requests[named.id] = dataclasses.replace(request, attempts=request.attempts + 1)

    async def count_attempt(self, provider_id: UUID) -> BookingRequest | None:
        self._write()
        oldest = next((r for r in self._pending() if r.provider_id == provider_id), None)
        if oldest is None:
            return None
        counted = dataclasses.replace(oldest, attempts=oldest.attempts + 1)
        self._s.requests[oldest.id] = counted
        return counted

    async def finish_many(self, outcomes: Sequence[tuple[BookingRequest, Outcome]]) -> None:
        if outcomes:
            self._write()
        for named, outcome in outcomes:
            request_id = named.id
            if request_id in self._poison and outcome.status is not RequestStatus.FAILED:
                raise Poisoned(f"deciding {request_id} blew up")
            request = self._s.requests[request_id]
            assert request.created_at == named.created_at
            self._s.requests[request_id] = dataclasses.replace(
                request,
                status=outcome.status,
                booking_id=outcome.booking_id or request.booking_id,
                error_code=outcome.error_code,
                error_message=outcome.error_message,
                completed_at=outcome.completed_at,
            )

    async def stale_pending(self, older_than: datetime, limit: int) -> list[tuple[UUID, UUID]]:
        newest: dict[UUID, BookingRequest] = {}
        for request in self._pending():
            if request.created_at < older_than:
                newest[request.provider_id] = request
        return [(p, r.id) for p, r in list(newest.items())[:limit]]


class FakeClients:
    def __init__(self, state: State, write: Writes) -> None:
        self._s, self._write = state, write

    async def by_key_hash(self, key_hash: str) -> ApiClient | None:
        return self._s.clients.get(key_hash)

    async def add(self, new: NewApiClient) -> None:
        self._write()
        self._s.clients[new.key_hash] = new.client


class FakeEvents:
    def __init__(self, state: State, write: Writes) -> None:
        self._s, self._write = state, write

    async def add_many(self, events: Sequence[Event], created_at: datetime) -> None:
        if events:
            self._write()
        self._s.events.extend((event, created_at) for event in events)


class FakeUnitOfWork:
    def __init__(self, database: FakeDatabase, mode: str) -> None:
        self._db, self._mode = database, mode
        self._pending: list[AfterCommit] = []
        self._committed: list[AfterCommit] = []
        self.locked: set[UUID] = set()

    async def __aenter__(self) -> Self:
        single = self._mode == "single"
        # A single write commits by itself: it works on the committed state directly.
        self._state = self._db.state if single else copy.deepcopy(self._db.state)
        write = Writes(1 if single else 0 if self._mode == "read" else None)
        poison = self._db.poison
        self.providers = FakeProviders(self._state, write)
        self.overrides = FakeOverrides(self._state, write)
        self.bookings = FakeBookings(self._state, write, poison)
        self.requests = FakeRequests(self._state, write, poison)
        self.clients = FakeClients(self._state, write)
        self.events = FakeEvents(self._state, write)
        self._db.transactions += self._mode != "read"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._pending.clear()  # not committed: dropped with the copy
        effects, self._committed = self._committed, []
        for effect in effects:
            await effect()

    async def commit(self) -> None:
        if self._mode == "read":
            raise RuntimeError("a read-only unit of work cannot commit")
        self._db.state = self._state
        self._committed.extend(self._pending)
        self._pending.clear()

    def after_commit(self, effect: AfterCommit) -> None:
        self._pending.append(effect)

    async def lock_providers(self, provider_ids: Collection[UUID]) -> None:
        self.locked |= set(provider_ids)


class FakeDatabase:
    """The committed state and the unit-of-work factories (domain.ports.UnitsOfWork)."""

    def __init__(self) -> None:
        self.state = State()
        self.poison: set[UUID] = set()  # requests whose decision raises
        self.transactions = 0

    def unit_of_work(self) -> FakeUnitOfWork:
        return FakeUnitOfWork(self, "write")

    def reader(self) -> FakeUnitOfWork:
        return FakeUnitOfWork(self, "read")

    def single_writer(self) -> FakeUnitOfWork:
        return FakeUnitOfWork(self, "single")


@dataclass
class FakeNotifier:
    completed: list[UUID] = field(default_factory=list)
    availability: list[tuple[UUID, int]] = field(default_factory=list)
    changed: list[tuple[UUID, int]] = field(default_factory=list)
    events_recorded_calls: int = 0

    async def requests_completed(self, request_ids: Sequence[UUID]) -> None:
        self.completed.extend(request_ids)

    async def availability_changed(self, provider_id: UUID, version: int) -> None:
        self.availability.append((provider_id, version))

    async def provider_changed(self, provider_id: UUID, version: int) -> None:
        self.changed.append((provider_id, version))

    async def events_recorded(self) -> None:
        self.events_recorded_calls += 1


@dataclass
class FakeQueue:
    """domain.ports.WakeupQueue: records wake-ups; `wake_if_quiet` remembers who was woken."""

    woken: list[tuple[UUID, UUID]] = field(default_factory=list)
    quiet: set[UUID] = field(default_factory=set)

    async def wake(self, provider_id: UUID, request_id: UUID) -> None:
        self.woken.append((provider_id, request_id))

    async def wake_if_quiet(self, provider_id: UUID, request_id: UUID, quiet_seconds: int) -> bool:
        if provider_id in self.quiet:
            return False
        self.quiet.add(provider_id)
        await self.wake(provider_id, request_id)
        return True
