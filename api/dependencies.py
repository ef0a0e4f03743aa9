"""What handlers may ask for, by name (Litestar `Provide`), and where each comes from.

Handlers name what they need (`reader`, `uow`, `notifier`, `now`, `intake`, `zone`, ...)
and get domain ports, never the runtime or infra types: this module, api/runtime.py,
api/app.py and api/asgi.py are the only parts of `api` that import `infra` (an
import-linter contract holds the others to it).

Litestar resolves the dependencies of one level of a handler's graph concurrently, in an
anyio task group, as soon as there are two (litestar-org/litestar#4563); that costs more
than a cached availability answer itself. So the busiest handlers take one dependency that
holds all they need (`Accepting`, `Reading`, `AvailabilityReading`), built on the `zone`
dependency: a chain, resolved with plain awaits.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Protocol, TypeAlias, TypeVar
from uuid import UUID
from zoneinfo import ZoneInfo

from litestar import Request
from litestar.di import Dependency, Provide
from litestar.params import HeaderParameter, SkipValidationMarker

from api.auth import current_client
from api.common import TimezoneHeader, parse_zone_header
from api.fairness import ConcurrencyCaps, Offload
from api.request_ids import current_request_id
from api.runtime import ApiRuntime
from domain.model import ApiClient
from domain.ports import AvailabilityDays, Notifier, UnitOfWork
from domain.use_cases.booking_requests import Intake
from infra import metrics
from infra.url_policy import target_problem

T = TypeVar("T")

# A handler's parameter filled by the dependency of the same name. Values come from our own
# code, so they are not validated (a Protocol could not be, and it would cost per request).
Injected: TypeAlias = Annotated[T, SkipValidationMarker(), Dependency(kind="named")]

IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        required=False,
        max_length=255,
        description="Replays with the same key and body return the original request.",
        # Documented only: an empty key is refused by api/strict_input.py with its own 400.
        schema_extra={"minLength": 1},
    ),
]


class Completions(Protocol):
    """Wakes a reader holding a `wait`ing request when the request's outcome is known."""

    def waiting(self, request_id: UUID) -> AbstractAsyncContextManager[Any]: ...


# Why a callback URL may not be called, or None.
CallbackCheck = Callable[[str], Awaitable[str | None]]
# Readiness probes by what they probe: each answers or raises.
Probes = Mapping[str, Callable[[], Awaitable[object]]]


def provide_zone(timezone: TimezoneHeader = None) -> ZoneInfo | None:
    """The request's `Timezone` header as a zone; None without one."""
    return parse_zone_header(timezone)


@dataclass(frozen=True, slots=True)
class Accepting:
    """What the handlers that accept a booking request need."""

    intake: Intake
    zone: ZoneInfo | None  # the request's Timezone
    check_callback: CallbackCheck


@dataclass(frozen=True, slots=True)
class Reading:
    """What the handlers that read bookings and booking requests need."""

    client: ApiClient
    zone: ZoneInfo | None  # the request's Timezone
    reader: UnitOfWork
    notifier: Notifier
    completions: Completions
    long_polls: ConcurrencyCaps


@dataclass(frozen=True, slots=True)
class AvailabilityReading:
    """What the availability handler needs."""

    client: ApiClient
    zone: ZoneInfo | None  # the request's Timezone
    availability: AvailabilityDays
    computations: ConcurrencyCaps
    offload: Offload
    max_slots: int
    now: datetime


def dependencies(runtime: ApiRuntime) -> dict[str, Provide]:
    """Every dependency a handler of this app may name, read from `runtime` per request."""

    def reader() -> UnitOfWork:
        return runtime.reader()

    def uow() -> UnitOfWork:
        return runtime.database.unit_of_work()

    def notifier() -> Notifier:
        return runtime.notifier

    def now() -> datetime:
        return runtime.clock()

    def availability() -> AvailabilityDays:
        return runtime.availability

    def computations() -> ConcurrencyCaps:
        return runtime.computations

    def long_polls() -> ConcurrencyCaps:
        return runtime.long_polls

    def offload() -> Offload:
        return runtime.pool.run

    def availability_max_slots() -> int:
        return runtime.settings.availability_max_slots

    def completions() -> Completions:
        return runtime.completions

    def new_intake(client: ApiClient, key: str | None) -> Intake:
        now = runtime.clock()
        return Intake(
            client=client,
            key=key,
            uow=runtime.database.single_writer(),
            queue=runtime.queue,
            catalog=runtime.catalog,
            now=now,
            keys_since=now - timedelta(hours=runtime.settings.idempotency_key_hours),
            http_request_id=current_request_id.get(),
            on_accepted=metrics.count_accepted,
        )

    def intake(client: Injected[ApiClient], idempotency_key: IdempotencyKey = None) -> Intake:
        """What accepting a request needs: one write, the queue, the provider catalog, now."""
        return new_intake(client, idempotency_key)

    async def check_callback(url: str) -> str | None:
        settings = runtime.settings
        allow_private = settings.webhook_allow_private_targets
        resolve = runtime.host_resolver.addresses if settings.webhook_dns_servers else None
        return await target_problem(url, allow_private, runtime.resolved_hosts, resolve)

    def callback_check() -> CallbackCheck:
        """Checks callback and webhook endpoint URLs alike (API.md's SSRF rule)."""
        return check_callback

    # The bundles read the caller from the request rather than from the `client` dependency:
    # a second dependency beside `zone` would bring the task group back.
    def accepting(
        zone: Injected[ZoneInfo | None],
        request: Request[Any, Any, Any],
        idempotency_key: IdempotencyKey = None,
    ) -> Accepting:
        return Accepting(new_intake(current_client(request), idempotency_key), zone, check_callback)

    def reading(zone: Injected[ZoneInfo | None], request: Request[Any, Any, Any]) -> Reading:
        return Reading(
            current_client(request),
            zone,
            runtime.reader(),
            runtime.notifier,
            runtime.completions,
            runtime.long_polls,
        )

    def availability_reading(
        zone: Injected[ZoneInfo | None], request: Request[Any, Any, Any]
    ) -> AvailabilityReading:
        return AvailabilityReading(
            current_client(request),
            zone,
            runtime.availability,
            runtime.computations,
            runtime.pool.run,
            runtime.settings.availability_max_slots,
            runtime.clock(),
        )

    def secret_overlap() -> timedelta:
        """How long a rotated webhook secret keeps signing beside the new one."""
        return timedelta(hours=runtime.settings.webhook_secret_overlap_hours)

    def scrape() -> Callable[[], Awaitable[bytes]]:
        async def text() -> bytes:
            await metrics.read_queue_depths(runtime.redis, runtime.settings.booking_partitions)
            return metrics.exposition()

        return text

    def probes() -> Probes:
        return {"database": runtime.database.ping, "redis": runtime.redis.ping}

    provided: dict[str, Callable[..., Any]] = {
        "client": current_client,
        "zone": provide_zone,
        "reader": reader,
        "uow": uow,
        "notifier": notifier,
        "now": now,
        "availability": availability,
        "computations": computations,
        "long_polls": long_polls,
        "offload": offload,
        "availability_max_slots": availability_max_slots,
        "completions": completions,
        "intake": intake,
        "accepting": accepting,
        "reading": reading,
        "availability_reading": availability_reading,
        "callback_check": callback_check,
        "secret_overlap": secret_overlap,
        "probes": probes,
        "scrape": scrape,
    }
    return {name: Provide(fn, sync_to_thread=False) for name, fn in provided.items()}
