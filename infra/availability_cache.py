"""Availability kept in Redis per provider, version and provider-local date.

What is kept does not depend on who asks: one entry per date the provider's hours produce,
holding the free slots' start instants (8 bytes each) and the slot length. A request in any
time zone reads the dates its window touches and is rendered in its own zone on the way out,
so viewers in a hundred zones share the same few entries. Entries live in the cache Redis
(CACHE_REDIS_URL), which may evict anything at any moment; the version counters live in the
broker's Redis (REDIS_URL), which must not, because evicting a counter could bring back an
answer filed under an older version.

Redis is a cache here, not the record: when it is unreachable every read is a miss and every
write is skipped, and answers are computed from PostgreSQL.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from array import array
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import date, datetime, timedelta
from uuid import UUID

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from domain.availability import AvailabilityQuery, DayPlan, DaySlots
from domain.errors import NotFound
from domain.model import Provider
from domain.ports import KeptDays, ProviderCatalog, UnitsOfWork
from domain.use_cases.availability import DayInputs, load_day_inputs, plan_days
from infra.compute_pool import ComputePool
from infra.metrics import AVAILABILITY_CACHE, AVAILABILITY_CACHE_WRITTEN_BYTES
from infra.notifications import version_key
from infra.redis_trouble import OccasionalWarning

log = logging.getLogger(__name__)

DAY_PREFIX = "booking:availability:day:"
_KEY_OVERHEAD_BYTES = 100
_HEADER = struct.Struct("<H")  # slot minutes; then the starts, int64 Unix seconds


def pack_day(day: DaySlots, slot_minutes: int) -> bytes:
    starts = array("q", (int(slot.start.timestamp()) for slot in day.slots))
    return _HEADER.pack(slot_minutes) + starts.tobytes()


def unpack_day(entry: bytes) -> tuple[int, array[int]]:
    """(slot minutes, start instants as Unix seconds) of a packed date."""
    (slot_minutes,) = _HEADER.unpack_from(entry)
    starts = array("q")
    starts.frombytes(entry[_HEADER.size :])
    return slot_minutes, starts


def slots_in_entry(entry: bytes) -> int:
    return (len(entry) - _HEADER.size) // 8


def compute_packed_days(
    inputs: DayInputs, first_day: date, last_day: date, now: datetime
) -> list[tuple[date, bytes, datetime]]:
    """Each date's packed entry and the instant it stops being exact (run in the pool)."""
    slot_minutes = inputs.provider.slot_minutes
    return [
        (day.day, pack_day(day, slot_minutes), day.valid_until)
        for day in inputs.free_days(first_day, last_day, now)
    ]


def day_key(provider_id: UUID, version: int, day: date) -> str:
    return f"{DAY_PREFIX}{provider_id}:{version}:{day.isoformat()}"


class RedisDayStore:
    """Packed dates in the cache Redis, each expiring when it stops being exact."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._unreachable = OccasionalWarning(
            log, "availability cache unavailable, answering from the database"
        )

    async def get(
        self, provider_id: UUID, version: int, days: Sequence[date]
    ) -> list[bytes | None]:
        try:
            found = await self._redis.mget([day_key(provider_id, version, d) for d in days])
        except RedisError as exc:
            self._unreachable(exc)
            return [None] * len(days)
        return [v.encode() if isinstance(v, str) else v for v in found]

    async def put(
        self, provider_id: UUID, version: int, entries: Sequence[tuple[date, bytes, timedelta]]
    ) -> None:
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for day, entry, ttl in entries:
                    milliseconds = int(ttl.total_seconds() * 1000)
                    if milliseconds > 0:
                        pipe.set(day_key(provider_id, version, day), entry, px=milliseconds)
                        AVAILABILITY_CACHE_WRITTEN_BYTES.inc(len(entry))
                await pipe.execute()
        except RedisError as exc:
            self._unreachable(exc)

    async def _memory_of(self, key: bytes) -> int:
        return await _memory_usage(self._redis, key)

    async def footprint(self, sample: int = 0) -> tuple[int, int]:
        """(keys, bytes of memory) the cache's entries hold now; scans every entry's key.

        With `sample` > 0 only that many entries are measured and the rest estimated from them.
        """
        keys = 0
        measured = 0
        measured_bytes = 0
        async for key in _scan(self._redis, f"{DAY_PREFIX}*"):
            keys += 1
            if sample <= 0 or measured < sample:
                measured += 1
                measured_bytes += await self._memory_of(key)
        if measured == 0:
            return keys, 0
        return keys, round(measured_bytes * keys / measured)


async def _memory_usage(redis: Redis, key: bytes) -> int:
    try:
        return int(await redis.memory_usage(key) or 0)
    except ResponseError:
        # A Redis-protocol server without MEMORY (the embedded one): the value's length and
        # Redis's usual overhead for a small string key.
        return int(await redis.strlen(key)) + _KEY_OVERHEAD_BYTES


async def _scan(redis: Redis, pattern: str) -> AsyncIterator[bytes]:
    async for key in redis.scan_iter(match=pattern, count=1000):
        yield key


class RedisVersions:
    """The providers' availability version counters, in the broker's Redis."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._unreachable = OccasionalWarning(log, "availability versions unavailable")

    async def current(self, provider_id: UUID) -> int | None:
        try:
            raw = await self._redis.get(version_key(provider_id))
        except RedisError as exc:
            self._unreachable(exc)
            return None
        return None if raw is None else int(raw)

    async def adopt(self, provider_id: UUID, version: int) -> None:
        """Set the counter if it is unset (after a restart or a flush of Redis)."""
        try:
            await self._redis.set(version_key(provider_id), version, nx=True)
        except RedisError as exc:
            self._unreachable(exc)


class CachedAvailability:
    """Every commit that changes a provider's bookings or hours raises its version after the
    commit. A reader that computed from older data files its dates under the older version,
    which nobody reads again, so the cache never serves a slot taken before the version moved.
    A date is kept only until its `valid_until`, so a kept date is exact, not merely recent."""

    def __init__(
        self,
        catalog: ProviderCatalog,
        database: UnitsOfWork,
        versions: RedisVersions,
        store: RedisDayStore,
        pool: ComputePool,
    ) -> None:
        self._catalog = catalog
        self._database = database
        self._versions = versions
        self._store = store
        self._pool = pool

    async def days(
        self,
        query: AvailabilityQuery,
        now: datetime,
        computing: Callable[[], AbstractAsyncContextManager[None]],
    ) -> KeptDays:
        """The query's dates from the cache, computing (inside `computing()`) what is missing."""
        # Both from the broker's Redis, concurrently. The provider (as kept in the process)
        # only says which dates to read; the dates themselves are filed under the version.
        version, provider = await asyncio.gather(
            self._versions.current(query.provider_id), self._catalog.provider(query.provider_id)
        )
        if provider is None:
            raise NotFound(f"provider {query.provider_id} not found")
        plan = plan_days(query, provider.rules.zone)
        days = plan.days
        found: list[bytes | None] = [None] * len(days)
        if version is not None:
            found = await self._store.get(provider.id, version, days)
        missing = [d for d, entry in zip(days, found, strict=True) if entry is None]
        if not missing:
            AVAILABILITY_CACHE.labels(result="hit").inc()
            return _kept(provider, plan, [e for e in found if e is not None], True)
        AVAILABILITY_CACHE.labels(result="miss").inc()
        async with computing():
            inputs = await load_day_inputs(
                provider.id, missing[0], missing[-1], self._database.reader()
            )
            if version is None:
                version = inputs.provider.version
                await self._versions.adopt(provider.id, version)
            computed = await self._pool.run(
                compute_packed_days, inputs, missing[0], missing[-1], now
            )
        fresh = {day: entry for day, entry, _ in computed}
        await self._store.put(
            provider.id, version, [(day, entry, until - now) for day, entry, until in computed]
        )
        entries = [
            entry if entry is not None else fresh[d] for d, entry in zip(days, found, strict=True)
        ]
        return _kept(inputs.provider, plan, entries, False)


def _kept(provider: Provider, plan: DayPlan, entries: list[bytes], cached: bool) -> KeptDays:
    unpacked = [unpack_day(entry) for entry in entries]
    # Every date was computed under one version, so with one slot length; the provider's is
    # the fallback for an empty range.
    slot_minutes = unpacked[0][0] if unpacked else provider.slot_minutes
    return KeptDays(provider, plan, slot_minutes, [starts for _, starts in unpacked], cached)
