"""Free slots of a provider over calendar days in the request's time zone."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from litestar import Controller, MediaType, Response, get
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath

from api.availability_render import AvailabilityBody, render_answer
from api.common import day_query, parse_day, parse_id
from api.dependencies import AvailabilityReading, Injected
from api.errors import READ_PROBLEMS
from api.fairness import ConcurrencyCaps, Offload
from domain.availability import AvailabilityQuery
from domain.errors import FieldError, ValidationFailed
from domain.model import ApiClient
from domain.ports import KeptDays


def requested_days(day: str | None, first: str | None, last: str | None) -> tuple[date, date]:
    if day is not None:
        if first is not None or last is not None:
            raise ValidationFailed(
                [FieldError("date", "give `date`, or `from` and `to`, not both")]
            )
        parsed = parse_day(day, "date")
        return parsed, parsed
    if first is None or last is None:
        missing = "to" if first is not None else "from"
        raise ValidationFailed(
            [FieldError(missing, "give `date`, or both `from` and `to` (inclusive)")]
        )
    return parse_day(first, "from"), parse_day(last, "to")


# Answers up to this many slots are rendered on the event loop (well under a millisecond);
# bigger ones in the compute pool.
_RENDER_INLINE_UP_TO = 1000


async def render(
    kept: KeptDays,
    max_slots: int,
    offload: Offload,
    computations: ConcurrencyCaps,
    client: ApiClient,
) -> bytes:
    """The answer in the viewer's zone, or 422 past the most slots one answer may hold."""
    plan = kept.plan
    args = (
        kept.provider.id,
        plan.zone.key,
        kept.slot_minutes,
        kept.starts,
        (plan.window.start.timestamp(), plan.window.end.timestamp()),
        max_slots,
    )
    if kept.most_slots <= _RENDER_INLINE_UP_TO:
        body = render_answer(*args)
    else:
        async with computations.hold(client.id):
            body = await offload(render_answer, *args)
    if isinstance(body, int):
        raise ValidationFailed(
            [
                FieldError(
                    "to",
                    f"this range holds {body} slots and one answer holds at most {max_slots}; "
                    "narrow the range (ask for fewer days at a time)",
                )
            ]
        )
    return body


class AvailabilityController(Controller):
    path = "/providers/{provider_id:str}/availability"
    tags = ["availability"]

    @get(
        "/",
        responses={
            **READ_PROBLEMS,
            # The body is rendered once and cached as bytes; this documents its shape.
            200: ResponseSpec(AvailabilityBody, description="Bookable slots, in order"),
        },
    )
    async def availability(
        self,
        provider_id: FromPath[str],
        availability_reading: Injected[AvailabilityReading],
        date_: Annotated[str | None, day_query("date")] = None,
        from_: Annotated[str | None, day_query("from")] = None,
        to: Annotated[str | None, day_query("to")] = None,
    ) -> Response[bytes]:
        """Bookable slots on one date, or from `from` to `to` inclusive (at most 62 days)."""
        reading = availability_reading
        client, zone, availability = reading.client, reading.zone, reading.availability
        computations, offload, now = reading.computations, reading.offload, reading.now
        availability_max_slots = reading.max_slots
        query = AvailabilityQuery(
            parse_id(provider_id, "provider"),
            *requested_days(date_, from_, to),
            zone=zone,
        )
        kept = await availability.days(query, now, lambda: computations.hold(client.id))
        body = await render(kept, availability_max_slots, offload, computations, client)
        return Response(content=body, media_type=MediaType.JSON)
