"""Free slots of a provider over calendar days in the request's time zone."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from litestar import Controller, MediaType, Response, get
from litestar.openapi.datastructures import ResponseSpec

from api.availability_render import AvailabilityBody, render_answer
from api.common import ProviderIdPath, day_query, parse_day, parse_id
from api.dependencies import AvailabilityReading, Injected
from api.errors import READ_PROBLEMS
from api.examples import AVAILABILITY_IN_BERLIN, examples
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
        summary="Bookable slots of a provider",
        operation_id="getAvailability",
        responses={
            **READ_PROBLEMS,
            # The body is rendered once and cached as bytes; this documents its shape.
            200: ResponseSpec(
                AvailabilityBody,
                description="Bookable slots, in order",
                generate_examples=False,
                examples=examples(new_york_provider_seen_from_berlin=AVAILABILITY_IN_BERLIN),
            ),
        },
    )
    async def availability(
        self,
        provider_id: ProviderIdPath,
        availability_reading: Injected[AvailabilityReading],
        date_: Annotated[
            str | None,
            day_query("date", "One calendar date in the request's zone; not with `from`/`to`."),
        ] = None,
        from_: Annotated[
            str | None,
            day_query("from", "First date (inclusive), with `to`; not with `date`."),
        ] = None,
        to: Annotated[
            str | None,
            day_query("to", "Last date (inclusive, at most 62 days after `from`)."),
        ] = None,
    ) -> Response[bytes]:
        """The slots a client can book on one date (`date`), or from `from` to `to` inclusive
        (at most 62 days): give `date`, or both `from` and `to`. Dates are calendar days in the
        request's zone (the `Timezone` header, else the provider's), and slots are shown in it:
        a Berlin client asking for 2026-12-07 sees a New York provider's Monday from 15:00+01:00.
        Spring-forward days skip the missing hour; fall-back days offer the repeated hour once.
        `from` after `to`, more than 62 days, or more slots than one answer holds is a 422."""
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
