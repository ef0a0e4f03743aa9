"""Creating and changing providers, their hours and date overrides."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from typing import TypeVar
from uuid import UUID, uuid4

from domain.commands import (
    DEFAULT_SLOT_MINUTES,
    CreateProvider,
    DeleteOverride,
    PutOverride,
    PutSchedule,
    RawWeek,
    UpdateProvider,
)
from domain.errors import Conflict, FieldError, NotFound, ValidationFailed
from domain.model import Provider, ScheduleOverride
from domain.ports import Notifier, Page, UnitOfWork
from domain.schedule import (
    CLOSED_WEEK,
    Interval,
    load_zone,
    parse_intervals,
    parse_weekly_schedule,
)

# Inclusive bounds of each numeric setting.
LIMITS: dict[str, tuple[int, int]] = {
    "slot_minutes": (1, 1440),
    "buffer_before_minutes": (0, 1440),
    "buffer_after_minutes": (0, 1440),
    "min_notice_minutes": (0, 525_600),
    "max_advance_days": (0, 3650),
}
MAX_NAME_LENGTH = 200
T = TypeVar("T")


def _problems(provider: Provider) -> list[FieldError]:
    errors: list[FieldError] = []
    for name, (low, high) in LIMITS.items():
        value = getattr(provider, name)
        if not low <= value <= high:
            errors.append(FieldError(name, f"must be between {low} and {high}, got {value}"))
    try:
        load_zone(provider.timezone)
    except ValueError as exc:
        errors.append(FieldError("timezone", str(exc)))
    if provider.name is not None and len(provider.name) > MAX_NAME_LENGTH:
        errors.append(FieldError("name", f"must be at most {MAX_NAME_LENGTH} characters"))
    return errors


def _checked(provider: Provider, raw_week: RawWeek | None) -> Provider:
    """The provider with `raw_week` parsed in; ValidationFailed names every problem at once."""
    errors = _problems(provider)
    if raw_week is not None:
        try:
            provider = dataclasses.replace(provider, weekly=parse_weekly_schedule(raw_week))
        except ValidationFailed as exc:
            errors.extend(exc.errors)
    if errors:
        raise ValidationFailed(errors)
    return provider


def _given(new: T | None, old: T) -> T:
    return old if new is None else new


async def create_provider(cmd: CreateProvider, uow: UnitOfWork, now: datetime) -> Provider:
    provider = _checked(
        Provider(
            id=cmd.provider_id or uuid4(),
            name=cmd.name,
            timezone=cmd.timezone,
            slot_minutes=cmd.slot_minutes,
            weekly=CLOSED_WEEK,
            buffer_before_minutes=cmd.buffer_before_minutes,
            buffer_after_minutes=cmd.buffer_after_minutes,
            min_notice_minutes=cmd.min_notice_minutes,
            max_advance_days=cmd.max_advance_days,
            version=1,
            created_at=now,
            updated_at=now,
        ),
        cmd.weekly_schedule,
    )
    async with uow:
        if await uow.providers.get(provider.id) is not None:
            raise Conflict(f"provider {provider.id} already exists")
        await uow.providers.add(provider)
        await uow.commit()
    return provider


async def get_provider(provider_id: UUID, uow: UnitOfWork) -> Provider:
    async with uow:
        provider = await uow.providers.get(provider_id)
    if provider is None:
        raise NotFound(f"provider {provider_id} not found")
    return provider


async def list_providers(uow: UnitOfWork, limit: int, cursor: str | None) -> Page[Provider]:
    async with uow:
        return await uow.providers.list(limit, cursor)


async def update_provider(
    cmd: UpdateProvider, uow: UnitOfWork, notifier: Notifier, now: datetime
) -> Provider:
    async with uow:
        # Lock before reading, so concurrent changes apply one after the other, none lost.
        await uow.lock_providers([cmd.provider_id])
        old = await uow.providers.get(cmd.provider_id)
        if old is None:
            raise NotFound(f"provider {cmd.provider_id} not found")
        provider = _checked(
            dataclasses.replace(
                old,
                name=_given(cmd.name, old.name),
                timezone=_given(cmd.timezone, old.timezone),
                slot_minutes=_given(cmd.slot_minutes, old.slot_minutes),
                buffer_before_minutes=_given(cmd.buffer_before_minutes, old.buffer_before_minutes),
                buffer_after_minutes=_given(cmd.buffer_after_minutes, old.buffer_after_minutes),
                min_notice_minutes=_given(cmd.min_notice_minutes, old.min_notice_minutes),
                max_advance_days=_given(cmd.max_advance_days, old.max_advance_days),
                version=old.version + 1,
                updated_at=now,
            ),
            cmd.weekly_schedule,
        )
        await uow.providers.update(provider)
        uow.after_commit(lambda: notifier.provider_changed(provider.id, provider.version))
        await uow.commit()
    return provider


async def put_schedule(
    cmd: PutSchedule, uow: UnitOfWork, notifier: Notifier, now: datetime
) -> tuple[Provider, bool]:
    """Returns the provider and whether it was created."""
    update = UpdateProvider(
        provider_id=cmd.provider_id,
        timezone=cmd.timezone,
        weekly_schedule=cmd.weekly_schedule,
        slot_minutes=cmd.slot_minutes,
    )
    async with uow:
        exists = await uow.providers.get(cmd.provider_id) is not None
    if exists:
        return await update_provider(update, uow, notifier, now), False
    create = CreateProvider(
        provider_id=cmd.provider_id,
        timezone=cmd.timezone,
        weekly_schedule=cmd.weekly_schedule,
        slot_minutes=_given(cmd.slot_minutes, DEFAULT_SLOT_MINUTES),
    )
    try:
        return await create_provider(create, uow, now), True
    except Conflict:
        # Another upsert created it between our read and our insert: apply ours on top.
        return await update_provider(update, uow, notifier, now), False


async def put_override(cmd: PutOverride, uow: UnitOfWork, notifier: Notifier) -> ScheduleOverride:
    intervals = parse_intervals(cmd.intervals, "intervals")
    override = ScheduleOverride(cmd.provider_id, cmd.day, intervals)
    async with uow:
        await uow.lock_providers([cmd.provider_id])
        if await uow.providers.get(cmd.provider_id) is None:
            raise NotFound(f"provider {cmd.provider_id} not found")
        await uow.overrides.put(override)
        version = (await uow.providers.bump_versions([cmd.provider_id]))[cmd.provider_id]
        uow.after_commit(lambda: notifier.provider_changed(cmd.provider_id, version))
        await uow.commit()
    return override


async def delete_override(cmd: DeleteOverride, uow: UnitOfWork, notifier: Notifier) -> None:
    async with uow:
        await uow.lock_providers([cmd.provider_id])
        if await uow.providers.get(cmd.provider_id) is None:
            raise NotFound(f"provider {cmd.provider_id} not found")
        if await uow.overrides.delete(cmd.provider_id, cmd.day):
            version = (await uow.providers.bump_versions([cmd.provider_id]))[cmd.provider_id]
            uow.after_commit(lambda: notifier.provider_changed(cmd.provider_id, version))
            await uow.commit()


async def list_overrides(
    provider_id: UUID, first: date | None, last: date | None, uow: UnitOfWork
) -> list[tuple[date, tuple[Interval, ...]]]:
    if first is not None and last is not None and first > last:
        raise ValidationFailed([FieldError("from", "must not be after `to`")])
    async with uow:
        if await uow.providers.get(provider_id) is None:
            raise NotFound(f"provider {provider_id} not found")
        found = await uow.overrides.between(provider_id, first or date.min, last or date.max)
    return sorted(found.items())
