"""Availability answers as JSON bytes in the viewer's zone, from the cache's packed dates.

Kept free of the web framework and of infra: big answers are rendered in the compute pool's
processes, which import only this.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated
from uuid import UUID
from zoneinfo import ZoneInfo

import msgspec


class SlotBody(msgspec.Struct):
    """A bookable slot; book it by sending its `start`."""

    start: Annotated[datetime, msgspec.Meta(description="RFC 3339, in the request's zone.")]
    end: Annotated[datetime, msgspec.Meta(description="`start` + `slot_minutes` of real time.")]


class AvailabilityBody(msgspec.Struct):
    """The bookable slots over the dates asked for, in order."""

    provider_id: Annotated[UUID, msgspec.Meta(description="The provider asked about.")]
    timezone: Annotated[
        str, msgspec.Meta(description="The zone the dates were read in and times are shown in.")
    ]
    slot_minutes: Annotated[int, msgspec.Meta(description="The provider's slot length.")]
    slots: Annotated[list[SlotBody], msgspec.Meta(description="Bookable slots, in order.")]


def render_answer(
    provider_id: UUID,
    zone_name: str,
    slot_minutes: int,
    days: list[Sequence[int]],
    window: tuple[float, float],
    max_slots: int,
) -> bytes | int:
    """The JSON answer; or, past `max_slots`, how many slots it would have held.

    `days` holds each provider-local date's free slots as start instants in Unix seconds.
    """
    low, high = window
    starts = [s for day in days for s in day if low <= s < high]
    if len(starts) > max_slots:
        return len(starts)
    zone = ZoneInfo(zone_name)
    length = slot_minutes * 60
    # Within one UTC offset of the zone, the start's own offset serves the end as well;
    # where it changes, read it again.
    slots = [
        SlotBody(datetime.fromtimestamp(s, zone), datetime.fromtimestamp(s + length, zone))
        for s in starts
    ]
    return msgspec.json.encode(AvailabilityBody(provider_id, zone_name, slot_minutes, slots))
