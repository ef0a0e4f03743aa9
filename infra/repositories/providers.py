"""Providers and their one-day schedule overrides."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import date, datetime
from typing import Any
from uuid import UUID

from cachetools import TTLCache
from sqlalchemy import Row, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from domain.errors import Conflict
from domain.model import Provider, ScheduleOverride
from domain.ports import Page
from domain.schedule import WEEKDAYS, Interval, WeeklySchedule, format_wall_time, parse_wall_time
from infra.repositories.base import OVERRIDES, PROVIDERS, Statements
from infra.repositories.pages import keyset_page
from infra.tables import ProviderRow

_PROVIDER_BY_ID = select(PROVIDERS).where(PROVIDERS.c.id == bindparam("id"))
_OVERRIDES_BETWEEN = select(OVERRIDES.c.day, OVERRIDES.c.intervals).where(
    OVERRIDES.c.provider_id == bindparam("provider_id"),
    OVERRIDES.c.day >= bindparam("first"),
    OVERRIDES.c.day <= bindparam("last"),
)


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
# schedules are kept per (id, version), which changes whenever the hours do. An entry never
# goes stale; the time limit only lets a quiet provider's copy go.
WeekCache = TTLCache[tuple[UUID, int], WeeklySchedule]


def week_cache() -> WeekCache:
    return TTLCache(maxsize=10_000, ttl=3600)


def _provider(row: ProviderRow | Row[Any], weeks: WeekCache) -> Provider:
    key = (row.id, row.version)
    weekly = weeks.get(key)
    if weekly is None:
        weekly = weeks[key] = week_from_json(row.weekly_schedule)
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


def _created(provider: Provider) -> tuple[datetime, UUID]:
    return provider.created_at, provider.id


class SqlProviderRepository:
    def __init__(self, connection: Statements, weeks: WeekCache) -> None:
        self._db = connection
        self._weeks = weeks

    def _provider(self, row: ProviderRow | Row[Any]) -> Provider:
        return _provider(row, self._weeks)

    async def get(self, provider_id: UUID) -> Provider | None:
        row = (await self._db.execute(_PROVIDER_BY_ID, {"id": provider_id})).first()
        return None if row is None else self._provider(row)

    async def get_many(self, provider_ids: Iterable[UUID]) -> dict[UUID, Provider]:
        wanted = list(provider_ids)
        if not wanted:
            return {}
        rows = await self._db.execute(select(PROVIDERS).where(PROVIDERS.c.id.in_(wanted)))
        return {row.id: self._provider(row) for row in rows}

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
            .where(PROVIDERS.c.id == provider.id)
            .values(**_provider_values(provider))
        )

    async def list(self, limit: int, cursor: str | None) -> Page[Provider]:
        order = (PROVIDERS.c.created_at, PROVIDERS.c.id)
        return await keyset_page(
            self._db, select(PROVIDERS), order, limit, cursor, self._provider, _created
        )

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
                OVERRIDES.c.provider_id == override.provider_id,
                OVERRIDES.c.day == override.day,
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
            delete(OVERRIDES).where(OVERRIDES.c.provider_id == provider_id, OVERRIDES.c.day == day)
        )
        return bool(result.rowcount)
