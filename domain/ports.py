"""The small interfaces the use cases are written against; infra implements them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import date, datetime
from types import TracebackType
from typing import Any, Generic, Protocol, Self, TypeVar
from uuid import UUID

from domain.availability import AvailabilityQuery, DayPlan, Span
from domain.events import Event
from domain.model import (
    ApiClient,
    ApiKeyRecord,
    Booking,
    BookingRequest,
    BookingStatus,
    Provider,
    RequestStatus,
    ScheduleOverride,
)
from domain.schedule import Interval
from domain.webhooks import (
    AttemptResult,
    DeliveryAttempt,
    DeliveryStatus,
    Verdict,
    WebhookDelivery,
    WebhookEndpoint,
)

AfterCommit = Callable[[], Awaitable[None]]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


class ProviderRepository(Protocol):
    async def get(self, provider_id: UUID) -> Provider | None: ...
    async def get_many(self, provider_ids: Iterable[UUID]) -> dict[UUID, Provider]: ...
    async def add(self, provider: Provider) -> None: ...
    async def update(self, provider: Provider) -> None: ...
    async def list(self, limit: int, cursor: str | None) -> Page[Provider]: ...
    async def bump_versions(self, provider_ids: Collection[UUID]) -> dict[UUID, int]: ...


class OverrideRepository(Protocol):
    async def between(
        self, provider_id: UUID, first: date, last: date
    ) -> dict[date, tuple[Interval, ...]]: ...
    async def on_days(
        self, provider_ids: Collection[UUID], days: Collection[date]
    ) -> dict[tuple[UUID, date], tuple[Interval, ...]]: ...
    async def put(self, override: ScheduleOverride) -> None: ...
    async def delete(self, provider_id: UUID, day: date) -> bool: ...


@dataclass(frozen=True, slots=True)
class BookingFilter:
    client_id: UUID | None = None
    provider_id: UUID | None = None
    customer_id: str | None = None
    status: BookingStatus | None = None
    start_from: datetime | None = None
    start_before: datetime | None = None


class BookingRepository(Protocol):
    async def get(self, booking_id: UUID) -> Booking | None: ...
    async def get_many(self, booking_ids: Iterable[UUID]) -> dict[UUID, Booking]: ...
    async def confirmed_spans(
        self, provider_ids: Collection[UUID], window: Span
    ) -> dict[UUID, list[tuple[UUID, Span]]]: ...
    async def add_many(self, bookings: Sequence[Booking]) -> None: ...
    async def update_many(self, bookings: Sequence[Booking]) -> None: ...
    async def list(self, where: BookingFilter, limit: int, cursor: str | None) -> Page[Booking]: ...


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a request ended."""

    status: RequestStatus
    completed_at: datetime
    booking_id: UUID | None = None
    error_code: str | None = None
    error_message: str | None = None


class BookingRequestRepository(Protocol):
    async def add(self, request: BookingRequest, keys_since: datetime) -> BookingRequest:
        """Record the request; DuplicateKey if its key is held since `keys_since` or later."""

    async def get(self, request_id: UUID) -> BookingRequest | None: ...
    async def by_idempotency_key(
        self, client_id: UUID, key: str, since: datetime
    ) -> BookingRequest | None:
        """The request holding the key, if the key was taken at or after `since`."""

    async def pending_for_providers(
        self, provider_ids: Collection[UUID], limit: int
    ) -> list[BookingRequest]: ...
    # The worker names requests it has read (not bare ids): the record is partitioned by
    # creation time, and a request found by id alone costs a probe of every partition.
    async def still_pending(self, requests: Collection[BookingRequest]) -> list[BookingRequest]:
        """Those of these requests still pending, locked, oldest first."""

    async def count_attempts(self, requests: Collection[BookingRequest]) -> None: ...
    async def count_attempt(self, provider_id: UUID) -> BookingRequest | None:
        """Count one more attempt at the provider's oldest pending request; it, counted."""

    async def finish_many(self, outcomes: Sequence[tuple[BookingRequest, Outcome]]) -> None: ...
    async def stale_pending(self, older_than: datetime, limit: int) -> list[tuple[UUID, UUID]]: ...


@dataclass(frozen=True, slots=True)
class NewApiClient:
    client: ApiClient
    key_hash: str
    signing_secret: str


class ApiClientRepository(Protocol):
    async def by_key_hash(self, key_hash: str) -> ApiClient | None:
        """The holder of a key that is not revoked."""

    async def add(self, new: NewApiClient) -> None: ...
    async def list_all(self) -> list[ApiKeyRecord]:
        """Every key, oldest first."""

    async def revoke(self, client_id: UUID, at: datetime) -> ApiKeyRecord | None:
        """Marks the key revoked (once: a second revoke keeps the first time); None if unknown."""


class EventRepository(Protocol):
    async def add_many(self, events: Sequence[Event], created_at: datetime) -> None:
        """Record events in the outbox, written in the transaction of the change."""


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """An event not yet published, with what fanning it out needs."""

    id: str
    type: str
    client_id: UUID | None
    created_at: datetime
    sequence: int | None
    data: Any
    callback_url: str | None


@dataclass(frozen=True, slots=True)
class NewDelivery:
    event_id: str
    event_type: str
    event_created_at: datetime
    target: str  # an endpoint's id, or CALLBACK_TARGET
    endpoint_id: UUID | None
    client_id: UUID
    url: str


@dataclass(frozen=True, slots=True)
class DueDelivery:
    """A delivery claimed for an attempt, with everything sending it needs."""

    id: UUID
    event_id: str
    event_type: str
    event_created_at: datetime
    target: str
    endpoint_id: UUID | None
    url: str
    attempts: int  # made before this one
    secrets: tuple[str, ...]
    body: dict[str, Any]
    sendable: str | None = None  # why it must not be sent (endpoint disabled or gone), or None


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    delivery: DueDelivery
    result: AttemptResult
    verdict: Verdict


class WebhookRepository(Protocol):
    async def add_endpoint(self, endpoint: WebhookEndpoint) -> None: ...
    async def get_endpoint(self, endpoint_id: UUID) -> WebhookEndpoint | None: ...
    async def list_endpoints(
        self, client_id: UUID | None, limit: int, cursor: str | None
    ) -> Page[WebhookEndpoint]: ...
    async def update_endpoint(self, endpoint: WebhookEndpoint) -> None: ...
    async def delete_endpoint(self, endpoint_id: UUID, now: datetime) -> None:
        """Remove it; its deliveries still pending end `failed`."""

    async def get_delivery(self, delivery_id: UUID) -> WebhookDelivery | None: ...
    async def list_deliveries(
        self, endpoint_id: UUID, status: DeliveryStatus | None, limit: int, cursor: str | None
    ) -> Page[WebhookDelivery]: ...
    async def attempts(self, delivery_id: UUID) -> list[DeliveryAttempt]: ...
    async def requeue(self, delivery_id: UUID, now: datetime) -> None:
        """Make the delivery pending and due now, with a fresh schedule of attempts."""

    async def replay(self, endpoint: WebhookEndpoint, since: datetime, now: datetime) -> int:
        """Make every event for the endpoint since `since` due to it now; returns how many."""

    # publishing and delivering
    async def unpublished(self, limit: int) -> list[OutboxEvent]:
        """The oldest events not yet published, locked (skipping those others hold)."""

    async def enabled_endpoints(self) -> list[tuple[WebhookEndpoint, bool]]:
        """Every enabled endpoint, and whether its owner is an admin (who gets all events)."""

    async def add_deliveries(self, deliveries: Sequence[NewDelivery], now: datetime) -> None:
        """Insert; one that exists already for (event, target) is left as it is."""

    async def mark_published(self, event_ids: Collection[str], now: datetime) -> None: ...
    async def claim_due(
        self, now: datetime, lease_until: datetime, limit: int, busy_targets: Collection[str]
    ) -> list[DueDelivery]:
        """Take due deliveries (not of `busy_targets`), moving them out of reach until
        `lease_until`, so another worker does not send them too."""

    async def record(
        self, records: Sequence[AttemptRecord], now: datetime, disable_failing_since: datetime
    ) -> None:
        """Store attempts and verdicts. Endpoints answering 410, and those failing without
        a success since before `disable_failing_since`, are disabled."""


class WebhookSender(Protocol):
    """Sends one signed delivery and says what came back; the receiver's faults (refused,
    timed out, reset) are results, not exceptions."""

    async def send(self, delivery: DueDelivery, now: datetime) -> AttemptResult: ...


class EventStream(Protocol):
    """The bounded stream internal consumers read events from."""

    async def append(self, events: Sequence[OutboxEvent]) -> None: ...


class RetentionStore(Protocol):
    """Removes old rows in small batches, never a row that is still work to do."""

    def remove_older(
        self,
        table: str,
        before: datetime,
        *,
        dry_run: bool,
        batch_size: int,
        budget_seconds: float | None,
    ) -> int:
        """Remove (or count, with `dry_run`) `table`'s rows created before `before`."""


class UnitOfWork(Protocol):
    @property
    def providers(self) -> ProviderRepository: ...
    @property
    def overrides(self) -> OverrideRepository: ...
    @property
    def bookings(self) -> BookingRepository: ...
    @property
    def requests(self) -> BookingRequestRepository: ...
    @property
    def clients(self) -> ApiClientRepository: ...
    @property
    def events(self) -> EventRepository: ...
    @property
    def webhooks(self) -> WebhookRepository: ...

    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
    async def commit(self) -> None: ...
    def after_commit(self, effect: AfterCommit) -> None:
        """Run `effect` once the transaction has committed; drop it on rollback."""

    async def lock_providers(self, provider_ids: Collection[UUID]) -> None:
        """Serialise writers of these providers until the transaction ends.

        Locks are taken in one fixed order, so two transactions cannot deadlock on them.
        """


class UnitsOfWork(Protocol):
    """Where units of work come from, by what the use case will do with them."""

    def unit_of_work(self) -> UnitOfWork:
        """Reads and writes in one transaction."""

    def reader(self) -> UnitOfWork:
        """Reads only; cannot commit."""

    def single_writer(self) -> UnitOfWork:
        """Reads, then exactly one write, which commits by itself."""


class ProviderCatalog(Protocol):
    """Providers as recently committed, for the checks the worker makes again anyway."""

    async def provider(self, provider_id: UUID) -> Provider | None: ...
    async def intervals(self, provider: Provider, day: date) -> tuple[Interval, ...]:
        """The provider's hours on `day`: its override if any, else the week day's."""


class WakeupQueue(Protocol):
    """Wakes the worker that owns a provider's partition."""

    async def wake(self, provider_id: UUID, request_id: UUID) -> None: ...
    async def wake_if_quiet(
        self, provider_id: UUID, request_id: UUID, quiet_seconds: int
    ) -> bool: ...


class Notifier(Protocol):
    """Tells waiting readers that requests reached a terminal status, and bumps caches."""

    async def requests_completed(self, request_ids: Sequence[UUID]) -> None: ...
    async def availability_changed(self, provider_id: UUID, version: int) -> None:
        """The provider's bookings changed: answers cached before `version` are stale."""

    async def provider_changed(self, provider_id: UUID, version: int) -> None:
        """Its settings or hours changed: cached answers and kept copies are stale."""

    async def events_recorded(self) -> None:
        """New events are in the outbox: wake a webhook worker to publish them."""


@dataclass(frozen=True, slots=True)
class KeptDays:
    """The free slots of the provider-local dates a query needs, as kept: per date, the
    slots' start instants in Unix seconds (each lasts `slot_minutes`). Rendering cuts them to
    the plan's window and shows them in its zone."""

    provider: Provider
    plan: DayPlan
    slot_minutes: int
    starts: list[Sequence[int]]
    cached: bool  # every date came from the cache

    @property
    def most_slots(self) -> int:
        """At least the slots in the answer: the window may cut its first and last dates."""
        return sum(len(day) for day in self.starts)


class AvailabilityDays(Protocol):
    """Free slots per provider-local date, kept apart from who asks and in which zone."""

    async def days(
        self,
        query: AvailabilityQuery,
        now: datetime,
        computing: Callable[[], AbstractAsyncContextManager[None]],
    ) -> KeptDays:
        """The query's dates, computing what is not kept inside `computing()` (a cap)."""
        ...


class ProcessingObserver(Protocol):
    """Hears what deciding requests did, for metrics and logs; the rules never depend on it."""

    def batch_started(self, size: int) -> None:
        """An attempt at `size` requests begins (counted before deciding)."""

    def batch_failed(self, size: int) -> None:
        """That attempt raised before committing; its requests will be tried again."""

    def decided(self, request: BookingRequest, outcome: Outcome) -> None:
        """`request` (as it was accepted) reached a terminal status."""


class NoObserver:
    def batch_started(self, size: int) -> None:
        pass

    def batch_failed(self, size: int) -> None:
        pass

    def decided(self, request: BookingRequest, outcome: Outcome) -> None:
        pass
