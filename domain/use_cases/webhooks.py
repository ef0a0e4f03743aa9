"""Webhooks: managing endpoints, publishing the outbox, and delivering, many at a time.

Publishing turns outbox events into one delivery row per subscribed endpoint (and one for the
request's `callback_url`), idempotently: a delivery is unique per (event, target). Delivering
claims due rows from the database in batches, sends them concurrently with a bound on how many
are in flight (in all, and per target, so one receiver that hangs holds only its own share),
and records each attempt's verdict in batches.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from uuid import UUID, uuid4

from domain.commands import CreateWebhookEndpoint, UpdateWebhookEndpoint
from domain.errors import FieldError, NotFound, ValidationFailed
from domain.model import ApiClient
from domain.ports import (
    AttemptRecord,
    DueDelivery,
    EventStream,
    NewDelivery,
    OutboxEvent,
    Page,
    UnitOfWork,
    UnitsOfWork,
    WebhookSender,
)
from domain.webhooks import (
    CALLBACK_TARGET,
    AttemptOutcome,
    AttemptResult,
    DeliveryAttempt,
    DeliveryStatus,
    EndpointStatus,
    RetryPolicy,
    Verdict,
    WebhookDelivery,
    WebhookEndpoint,
    check_event_types,
    judge,
)

log = logging.getLogger(__name__)

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
MAX_DESCRIPTION = 1000
MAX_URL = 2048

Clock = Callable[[], datetime]
UrlCheck = Callable[[str], Awaitable[str | None]]


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


# -- endpoints -------------------------------------------------------------------------


async def _checked_url(url: str, check_url: UrlCheck) -> str:
    url = url.strip()
    if not url or len(url) > MAX_URL:
        raise ValidationFailed([FieldError("url", f"must be 1 to {MAX_URL} characters")])
    problem = await check_url(url)
    if problem is not None:
        raise ValidationFailed([FieldError("url", problem)])
    return url


def _checked_events(events: Sequence[str]) -> tuple[str, ...]:
    problem = check_event_types(list(events))
    if problem is not None:
        raise ValidationFailed([FieldError("events", problem)])
    return tuple(dict.fromkeys(events))


def _checked_description(description: str | None) -> str | None:
    if description is not None and len(description) > MAX_DESCRIPTION:
        raise ValidationFailed(
            [FieldError("description", f"must be at most {MAX_DESCRIPTION} characters")]
        )
    return description


async def create_endpoint(
    cmd: CreateWebhookEndpoint,
    client: ApiClient,
    uow: UnitOfWork,
    now: datetime,
    check_url: UrlCheck,
) -> WebhookEndpoint:
    endpoint = WebhookEndpoint(
        id=uuid4(),
        client_id=client.id,
        url=await _checked_url(cmd.url, check_url),
        events=_checked_events(cmd.events),
        description=_checked_description(cmd.description),
        status=EndpointStatus.ENABLED,
        secret=new_secret(),
        created_at=now,
        updated_at=now,
    )
    async with uow:
        await uow.webhooks.add_endpoint(endpoint)
        await uow.commit()
    return endpoint


async def _owned(uow: UnitOfWork, endpoint_id: UUID, client: ApiClient) -> WebhookEndpoint:
    endpoint = await uow.webhooks.get_endpoint(endpoint_id)
    if endpoint is None or not (client.is_admin or endpoint.client_id == client.id):
        raise NotFound(f"webhook endpoint {endpoint_id} not found")
    return endpoint


async def get_endpoint(endpoint_id: UUID, client: ApiClient, uow: UnitOfWork) -> WebhookEndpoint:
    async with uow:
        return await _owned(uow, endpoint_id, client)


async def list_endpoints(
    client: ApiClient, uow: UnitOfWork, limit: int, cursor: str | None
) -> Page[WebhookEndpoint]:
    async with uow:
        return await uow.webhooks.list_endpoints(
            None if client.is_admin else client.id, limit, cursor
        )


async def update_endpoint(
    cmd: UpdateWebhookEndpoint,
    client: ApiClient,
    uow: UnitOfWork,
    now: datetime,
    check_url: UrlCheck,
) -> WebhookEndpoint:
    url = None if cmd.url is None else await _checked_url(cmd.url, check_url)
    events = None if cmd.events is None else _checked_events(cmd.events)
    description = _checked_description(cmd.description)
    status: EndpointStatus | None = None
    if cmd.status is not None:
        try:
            status = EndpointStatus(cmd.status)
        except ValueError:
            raise ValidationFailed(
                [FieldError("status", 'must be "enabled" or "disabled"')]
            ) from None
    async with uow:
        endpoint = await _owned(uow, cmd.endpoint_id, client)
        changed = replace(
            endpoint,
            url=url or endpoint.url,
            events=events or endpoint.events,
            description=endpoint.description if description is None else description,
            updated_at=now,
        )
        if status is EndpointStatus.ENABLED and endpoint.status is EndpointStatus.DISABLED:
            # A fresh start: the failing streak that disabled it is forgotten.
            changed = replace(changed, status=status, failing_since=None, disabled_reason=None)
        elif status is EndpointStatus.DISABLED and endpoint.status is EndpointStatus.ENABLED:
            changed = replace(changed, status=status, disabled_reason="disabled by its owner")
        await uow.webhooks.update_endpoint(changed)
        await uow.commit()
    return changed


async def delete_endpoint(
    endpoint_id: UUID, client: ApiClient, uow: UnitOfWork, now: datetime
) -> None:
    async with uow:
        await _owned(uow, endpoint_id, client)
        await uow.webhooks.delete_endpoint(endpoint_id, now)
        await uow.commit()


async def rotate_secret(
    endpoint_id: UUID, client: ApiClient, uow: UnitOfWork, now: datetime, overlap: timedelta
) -> WebhookEndpoint:
    """A new secret; the old one keeps signing beside it for `overlap`."""
    async with uow:
        endpoint = await _owned(uow, endpoint_id, client)
        rotated = replace(
            endpoint,
            secret=new_secret(),
            previous_secret=endpoint.secret,
            previous_secret_until=now + overlap,
            updated_at=now,
        )
        await uow.webhooks.update_endpoint(rotated)
        await uow.commit()
    return rotated


async def replay(
    endpoint_id: UUID, since: datetime, client: ApiClient, uow: UnitOfWork, now: datetime
) -> int:
    """Queue again, due now, every event since `since` that the endpoint subscribes to."""
    if since > now:
        raise ValidationFailed([FieldError("since", "must not be in the future")])
    async with uow:
        endpoint = await _owned(uow, endpoint_id, client)
        count = await uow.webhooks.replay(endpoint, since, now)
        await uow.commit()
    return count


async def list_deliveries(
    endpoint_id: UUID,
    client: ApiClient,
    uow: UnitOfWork,
    status: DeliveryStatus | None,
    limit: int,
    cursor: str | None,
) -> Page[WebhookDelivery]:
    async with uow:
        await _owned(uow, endpoint_id, client)
        return await uow.webhooks.list_deliveries(endpoint_id, status, limit, cursor)


async def _owned_delivery(uow: UnitOfWork, delivery_id: UUID, client: ApiClient) -> WebhookDelivery:
    delivery = await uow.webhooks.get_delivery(delivery_id)
    if delivery is None or not (client.is_admin or delivery.client_id == client.id):
        raise NotFound(f"webhook delivery {delivery_id} not found")
    return delivery


async def retry_delivery(
    delivery_id: UUID, client: ApiClient, uow: UnitOfWork, now: datetime
) -> WebhookDelivery:
    """Due now, with a fresh schedule of attempts, whatever its status."""
    async with uow:
        await _owned_delivery(uow, delivery_id, client)
        await uow.webhooks.requeue(delivery_id, now)
        delivery = await _owned_delivery(uow, delivery_id, client)
        await uow.commit()
    return delivery


async def delivery_attempts(
    delivery_id: UUID, client: ApiClient, uow: UnitOfWork
) -> tuple[WebhookDelivery, list[DeliveryAttempt]]:
    async with uow:
        delivery = await _owned_delivery(uow, delivery_id, client)
        return delivery, await uow.webhooks.attempts(delivery_id)


# -- publishing ------------------------------------------------------------------------


def fan_out(
    events: Sequence[OutboxEvent], endpoints: Sequence[tuple[WebhookEndpoint, bool]]
) -> list[NewDelivery]:
    """One delivery per event and subscribed endpoint, plus one to the request's callback.

    A client's endpoints receive that client's events; an admin's receive everyone's.
    """
    deliveries = []
    for event in events:
        for endpoint, owner_is_admin in endpoints:
            if endpoint.status is not EndpointStatus.ENABLED or not endpoint.subscribes(event.type):
                continue
            if owner_is_admin or endpoint.client_id == event.client_id:
                deliveries.append(
                    NewDelivery(
                        event_id=event.id,
                        event_type=event.type,
                        event_created_at=event.created_at,
                        target=str(endpoint.id),
                        endpoint_id=endpoint.id,
                        client_id=endpoint.client_id,
                        url=endpoint.url,
                    )
                )
        if event.callback_url and event.client_id is not None:
            deliveries.append(
                NewDelivery(
                    event_id=event.id,
                    event_type=event.type,
                    event_created_at=event.created_at,
                    target=CALLBACK_TARGET,
                    endpoint_id=None,
                    client_id=event.client_id,
                    url=event.callback_url,
                )
            )
    return deliveries


async def publish_events(
    units: UnitsOfWork, stream: EventStream, now: datetime, limit: int = 500
) -> int:
    """Publish up to `limit` unpublished events: stream them and fan them out.

    The stream is appended to before the commit, so a crash in between appends twice rather
    than never (its readers dedupe on the event id); delivery rows are unique per
    (event, target), so publishing twice makes no second delivery.
    """
    async with units.unit_of_work() as uow:
        events = await uow.webhooks.unpublished(limit)
        if not events:
            return 0
        endpoints = await uow.webhooks.enabled_endpoints()
        await uow.webhooks.add_deliveries(fan_out(events, endpoints), now)
        await uow.webhooks.mark_published([e.id for e in events], now)
        await stream.append(events)
        await uow.commit()
    return len(events)


# -- delivering ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeliveryLimits:
    max_in_flight: int = 500
    max_in_flight_per_target: int = 100
    claim_batch: int = 200
    publish_batch: int = 500
    lease: timedelta = timedelta(seconds=70)  # longer than any attempt can take
    poll_seconds: float = 1.0
    flush_seconds: float = 0.02
    shutdown_seconds: float = 5.0  # sends still running then are cancelled (and sent again)


Observer = Callable[[AttemptRecord], None]


class DeliveryPump:
    """Publishes the outbox and keeps up to `max_in_flight` deliveries going, on one loop.

    `wake()` (from the loop's own thread) says there may be new events; without wake-ups the
    pump still looks every `poll_seconds` for due retries and events a crash left behind.
    """

    def __init__(
        self,
        units: UnitsOfWork,
        sender: WebhookSender,
        stream: EventStream,
        clock: Clock,
        policy: RetryPolicy,
        limits: DeliveryLimits,
        jitter: Callable[[], float],
        observe: Observer | None = None,
    ) -> None:
        self._units = units
        self._sender = sender
        self._stream = stream
        self._clock = clock
        self._policy = policy
        self._limits = limits
        self._jitter = jitter
        self._observe = observe
        self._woken = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._per_target: dict[str, int] = {}
        self._results: list[AttemptRecord] = []
        self._flushed = asyncio.Event()

    def wake(self) -> None:
        self._woken.set()

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    async def run(self, stop: asyncio.Event) -> None:
        writer = asyncio.create_task(self._write_until(stop), name="webhook-results")
        try:
            while not stop.is_set():
                self._woken.clear()
                busy = False
                try:
                    busy = await self.step()
                except Exception:
                    log.exception("publishing or claiming webhook deliveries failed")
                if busy:
                    await asyncio.sleep(0)
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._woken.wait(), self._limits.poll_seconds)
        finally:
            if self._in_flight:  # let sends under way end and be recorded, for a while
                await asyncio.wait(set(self._in_flight), timeout=self._limits.shutdown_seconds)
            for task in list(self._in_flight):
                task.cancel()
            await asyncio.gather(*self._in_flight, return_exceptions=True)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
            await self.flush()

    async def step(self) -> bool:
        """Publish what is unpublished and start what is due; True if there may be more."""
        limits = self._limits
        published = await publish_events(
            self._units, self._stream, self._clock(), limits.publish_batch
        )
        free = limits.max_in_flight - len(self._in_flight)
        if free <= 0:
            return published >= limits.publish_batch
        busy = [t for t, n in self._per_target.items() if n >= limits.max_in_flight_per_target]
        now = self._clock()
        wanted = min(free, limits.claim_batch)
        async with self._units.single_writer() as uow:
            due = await uow.webhooks.claim_due(now, now + limits.lease, wanted, busy)
            await uow.commit()
        for delivery in due:
            self._start(delivery)
        return published >= limits.publish_batch or len(due) >= wanted

    def _start(self, delivery: DueDelivery) -> None:
        self._per_target[delivery.target] = self._per_target.get(delivery.target, 0) + 1
        task = asyncio.create_task(self._attempt(delivery))
        self._in_flight.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        full = len(self._in_flight) >= self._limits.max_in_flight
        self._in_flight.discard(task)
        if full:
            self._woken.set()  # a slot is free again

    async def _attempt(self, delivery: DueDelivery) -> None:
        try:
            now = self._clock()
            if delivery.sendable is not None:
                result = AttemptResult(now, 0, error=f"not sent: {delivery.sendable}")
                verdict = Verdict(DeliveryStatus.FAILED, AttemptOutcome.FAILED, None)
            else:
                try:
                    result = await self._sender.send(delivery, now)
                except Exception as exc:  # a bug of ours must not lose the delivery's record
                    log.exception("sending webhook delivery %s failed", delivery.id)
                    result = AttemptResult(now, 0, error=f"{type(exc).__name__}: {exc}")
                verdict = judge(
                    result, delivery.attempts + 1, self._policy, self._clock(), self._jitter()
                )
            record = AttemptRecord(delivery, result, verdict)
            self._results.append(record)
            if self._observe is not None:
                self._observe(record)
        finally:
            left = self._per_target.get(delivery.target, 1) - 1
            if left > 0:
                self._per_target[delivery.target] = left
            else:
                self._per_target.pop(delivery.target, None)

    async def _write_until(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.sleep(self._limits.flush_seconds)
            try:
                await self.flush()
            except Exception:
                log.exception("recording webhook attempts failed; trying again")
                await asyncio.sleep(self._limits.poll_seconds)

    async def flush(self) -> None:
        """Record the attempts that have ended (kept for the next flush if this one fails)."""
        if not self._results:
            return
        records = self._results[:]
        now = self._clock()
        async with self._units.unit_of_work() as uow:
            await uow.webhooks.record(records, now, now - self._policy.disable_after)
            await uow.commit()
        del self._results[: len(records)]

    async def drain(self) -> None:
        """Publish and deliver until nothing is due or in flight (tests, benchmarks)."""
        while True:
            busy = await self.step()
            if self._in_flight:
                await asyncio.wait(set(self._in_flight), timeout=0.05)
            elif not busy:
                break
        await self.flush()
