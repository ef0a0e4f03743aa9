"""A schemathesis check: a request the OpenAPI document allows is refused only for a rule.

Loaded by schemathesis.toml (`hooks`), so `schemathesis run --checks all` runs it too.
"""

from __future__ import annotations

import re
from typing import Any

import schemathesis

# The rules a schema cannot state, by the message (or code) the API refuses them with.
RULE_CODES = {
    "slot_unavailable",
    "outside_hours",
    "not_on_slot_boundary",
    "in_past",
    "too_soon",
    "too_far_ahead",
    "provider_not_found",
    "booking_not_found",
    "booking_cancelled",
}
RULE_MESSAGES = [
    re.compile(pattern)
    for pattern in (
        r"overlaps interval",  # intervals of one day
        r"ends before it starts",
        r"must not be after `to`",  # date ranges
        r"is after `to`",
        r"at most \d+ are allowed",
        r"give `date`, or both `from` and `to`",  # `date` or `from`+`to` (one or the other)
        r"give `date`, or `from` and `to`, not both",
        r"is not a cursor this API gave out",  # cursors are opaque
        r"does not resolve",  # where a callback URL points
        r"resolves to a loopback, private or link-local address",
        r"is not a valid URL",  # a port out of range
        r"must be at most \d+ bytes of JSON",  # metadata's encoded size
        r"is not a date-time on the calendar",  # 30 February matches the pattern
        r"^'[^']*' is not an RFC 3339 date-time",  # the same, as parse_date_time says it
        r"is outside the dates this service computes",
        # A string PostgreSQL cannot store (NUL, an unpaired surrogate), in any value or key:
        # JSON Schema has no way to say so for every string, ignored keys included.
        r"contains a NUL character or an unpaired surrogate",
        r"is not a URL this service will call",  # one message for every refused URL
    )
]


def _messages(problem: dict[str, Any]) -> list[str]:
    errors = problem.get("errors") or []
    return [str(e.get("message", "")) for e in errors] or [str(problem.get("detail", ""))]


@schemathesis.check
def schema_valid_requests_break_only_rules(
    ctx: schemathesis.CheckContext, response: Any, case: schemathesis.Case
) -> bool | None:
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return None
    if response.status_code not in (400, 422):
        return None
    try:
        problem = response.json()
    except ValueError:
        raise AssertionError(f"{response.status_code} without a problem body") from None
    if problem.get("code") in RULE_CODES:
        return None
    broken = [m for m in _messages(problem) if not any(r.search(m) for r in RULE_MESSAGES)]
    if broken:
        raise AssertionError(
            "The schema allows this request, but the API refused its form: "
            f"{problem.get('detail')!r}. Make the schema say what the API reads."
        )
    return None
