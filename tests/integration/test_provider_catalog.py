"""The accept path's provider catalog: bounded memory, and never an outdated day."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from cachetools import TTLCache
from fakeredis import FakeAsyncRedis

from domain.commands import CreateProvider, PutOverride
from domain.schedule import Interval
from domain.use_cases.providers import create_provider, put_override
from infra.database import make_engine
from infra.notifications import RedisNotifier
from infra.provider_catalog import CachedProviderCatalog, KeptDays, kept_providers
from infra.unit_of_work import SqlDatabase
from tests.conftest import create_sqlite_database

NOW = datetime(2026, 10, 15, 12, 0, tzinfo=UTC)
FIRST = date(2026, 11, 2)  # a Monday
NINE_TO_FIVE = (Interval(9 * 60, 17 * 60),)


def test_catalog_remembers_a_bounded_number_of_days_and_sees_each_new_override(
    tmp_path: Path,
) -> None:
    url = create_sqlite_database(tmp_path).url

    async def scenario() -> None:
        db = SqlDatabase(make_engine(url, 2))
        redis = FakeAsyncRedis()
        notifier = RedisNotifier(redis)
        days: KeptDays = TTLCache(maxsize=8, ttl=3600)
        catalog = CachedProviderCatalog(db, redis, kept_providers(), days)
        try:
            week = {d: [("09:00", "17:00")] for d in ("monday", "tuesday", "wednesday")}
            created = await create_provider(
                CreateProvider(timezone="UTC", weekly_schedule=week), db.unit_of_work(), NOW
            )
            provider = await catalog.provider(created.id)
            assert provider is not None
            for offset in range(70):  # ten weeks of dates, far more than the catalog keeps
                day = FIRST + timedelta(days=offset)
                expected = NINE_TO_FIVE if day.weekday() < 3 else ()
                assert await catalog.intervals(provider, day) == expected
                assert len(days) <= 8

            # A day it remembers gets an override: the next look sees it.
            remembered = FIRST + timedelta(days=63)  # a Monday among the last eight asked
            assert await catalog.intervals(provider, remembered) == NINE_TO_FIVE
            await put_override(
                PutOverride(created.id, remembered, [("10:00", "11:00")]),
                db.unit_of_work(),
                notifier,
            )
            current = await catalog.provider(created.id)
            assert current is not None
            assert await catalog.intervals(current, remembered) == (Interval(600, 660),)
        finally:
            await redis.aclose()
            await db.dispose()

    asyncio.run(scenario())
