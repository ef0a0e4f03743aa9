"""Creating and changing providers, their hours and date overrides."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from uuid import UUID, uuid4

from domain.commands import CreateProvider, DeleteOverride, PutOverride, PutSchedule, UpdateProvider
from domain.errors import Conflict, FieldError, NotFound, ValidationFailed
from domain.model import Provider, ScheduleOverride
from domain.ports import Notifier, Page, UnitOfWork
from domain.schedule import Interval, load_zone, parse_intervals, parse_weekly_schedule

# Inclusive bounds of each numeric setting.
LIMITS: dict[str, tuple[int, int]] = {
    "slot_minutes": (1, 1440),
    "buffer_before_minutes": (0, 1440),
    "buffer_after_minutes": (0, 1440),
    "min_notice_minutes": (0, 525_600),
    "max_advance_days": (0, 3650),
}
MAX_NAME_LENGTH = 200


def _check_settings(values: dict[str, object]) -> list[FieldError]:
    errors: list[FieldError] = []
    for name, (low, high) in LIMITS.items():
        value = values.get(name)
        if isinstance(value, int) and not low <= value <= high:
            errors.append(FieldError(name, f"must be between {low} and {high}, got {value}"))
    zone = values.get("timezone")
    if isinstance(zone, str):
        try:
            load_zone(zone)
        except ValueError as exc:
            errors.append(FieldError("timezone", str(exc)))
    name = values.get("name")
    if isinstance(name, str) and len(name) > MAX_NAME_LENGTH:
        errors.append(FieldError("name", f"must be at most {MAX_NAME_LENGTH} characters"))
    return errors


def _build(
    provider_id: UUID, values: dict[str, object], now: datetime, previous: Provider | None
) -> Provider:
    """A checked Provider from raw setting values; raises ValidationFailed naming every problem."""
    errors = _check_settings(values)
    weekly = previous.weekly if previous else None
    raw_week = values.pop("weekly_schedule", None)
    if raw_week is not None:
        try:
            weekly = parse_weekly_schedule(raw_week)  # type: ignore[arg-type]
        except ValidationFailed as exc:
            errors.extend(exc.errors)
    if errors:
        raise ValidationFailed(errors)
    assert weekly is not None
    if previous is None:
        return Provider(
            id=provider_id,
            weekly=weekly,
            version=1,
            created_at=now,
            updated_at=now,
            **values,  # type: ignore[arg-type]
        )
    return dataclasses.replace(
        previous, weekly=weekly, version=previous.version + 1, updated_at=now, **values
    )


async def create_provider(cmd: CreateProvider, uow: UnitOfWork, now: datetime) -> Provider:
    values = {
        f.name: getattr(cmd, f.name) for f in dataclasses.fields(cmd) if f.name != "provider_id"
    }
    provider = _build(cmd.provider_id or uuid4(), values, now, previous=None)
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


async def _save_changes(
    provider_id: UUID, values: dict[str, object], uow: UnitOfWork, notifier: Notifier, now: datetime
) -> Provider:
    async with uow:
        # Lock before reading, so concurrent changes apply one after the other, none lost.
        await uow.lock_provider(provider_id)
        previous = await uow.providers.get(provider_id)
        if previous is None:
            raise NotFound(f"provider {provider_id} not found")
        provider = _build(provider_id, values, now, previous)
        await uow.providers.update(provider)
        uow.after_commit(lambda: notifier.provider_changed(provider.id, provider.version))
        await uow.commit()
    return provider


async def update_provider(
    cmd: UpdateProvider, uow: UnitOfWork, notifier: Notifier, now: datetime
) -> Provider:
    values = {
        f.name: getattr(cmd, f.name)
        for f in dataclasses.fields(cmd)
        if f.name != "provider_id" and getattr(cmd, f.name) is not None
    }
    return await _save_changes(cmd.provider_id, values, uow, notifier, now)


async def put_schedule(
    cmd: PutSchedule, uow: UnitOfWork, notifier: Notifier, now: datetime
) -> tuple[Provider, bool]:
    """Returns the provider and whether it was created."""
    values: dict[str, object] = {
        "timezone": cmd.timezone,
        "weekly_schedule": cmd.weekly_schedule,
    }
    if cmd.slot_minutes is not None:
        values["slot_minutes"] = cmd.slot_minutes
    async with uow:
        exists = await uow.providers.get(cmd.provider_id) is not None
    if exists:
        return await _save_changes(cmd.provider_id, values, uow, notifier, now), False
    create = CreateProvider(
        provider_id=cmd.provider_id,
        timezone=cmd.timezone,
        weekly_schedule=cmd.weekly_schedule,
        slot_minutes=cmd.slot_minutes if cmd.slot_minutes is not None else 30,
    )
    try:
        return await create_provider(create, uow, now), True
    except Conflict:
        # Another upsert created it between our read and our insert: apply ours on top.
        return await _save_changes(cmd.provider_id, values, uow, notifier, now), False


async def put_override(cmd: PutOverride, uow: UnitOfWork, notifier: Notifier) -> ScheduleOverride:
    intervals = parse_intervals(cmd.intervals, "intervals")
    override = ScheduleOverride(cmd.provider_id, cmd.day, intervals)
    async with uow:
        await uow.lock_provider(cmd.provider_id)
        if await uow.providers.get(cmd.provider_id) is None:
            raise NotFound(f"provider {cmd.provider_id} not found")
        await uow.overrides.put(override)
        version = await uow.providers.bump_version(cmd.provider_id)
        uow.after_commit(lambda: notifier.provider_changed(cmd.provider_id, version))
        await uow.commit()
    return override


async def delete_override(cmd: DeleteOverride, uow: UnitOfWork, notifier: Notifier) -> None:
    async with uow:
        await uow.lock_provider(cmd.provider_id)
        if await uow.providers.get(cmd.provider_id) is None:
            raise NotFound(f"provider {cmd.provider_id} not found")
        if await uow.overrides.delete(cmd.provider_id, cmd.day):
            version = await uow.providers.bump_version(cmd.provider_id)
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
