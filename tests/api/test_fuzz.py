"""Property-based: hypothesis-made strings, dates, date-times and nestings through every
operation, on both backends. Whatever the input, the answer is never a 5xx."""

from __future__ import annotations

import json
from datetime import UTC, timedelta, timezone
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.conftest import Api
from tests.api.helpers import create_provider, hours
from tests.api.test_bookings import booked

EXAMPLES = 60
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)

# Any text, NUL, other controls and unpaired surrogates included (JSON escapes them).
any_text = st.text(max_size=40)
# What an HTTP client can put in a query string or a header value.
query_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
# Header values go out as bytes: Latin-1, as HTTP/1.1 carries them.
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=40).map(
    lambda t: t.encode("latin-1")
)
days = st.dates().map(lambda d: d.isoformat())
offsets = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(
    lambda m: timezone(timedelta(minutes=m)) if m else UTC
)
date_times = st.one_of(
    st.datetimes(timezones=st.none() | offsets).map(lambda d: d.isoformat()),
    st.datetimes().map(lambda d: d.strftime("%Y%m%dT%H%M%S")),
    days,
)
dateish = st.one_of(days, date_times, query_text)
zone_names = st.one_of(
    st.sampled_from(
        [b"UTC", b"America/New_York", b"localtime", b"Factory", b"posix/UTC", b"", b"EST"]
    ),
    header_text,
)
body_zones = st.one_of(
    st.sampled_from(["UTC", "America/New_York", "localtime", "Factory", "posix/UTC", "", "EST"]),
    any_text,
)
wall_times = st.one_of(
    st.sampled_from(["00:00", "09:00", "23:59", "24:00", "24:01", "9:00", "12:60"]), any_text
)
interval = st.fixed_dictionaries({"start": wall_times, "end": wall_times})
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | any_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(any_text, inner, max_size=3),
    max_leaves=20,
)


class Deep:
    """JSON nested `depth` objects deep, written out by hand (json.dumps would recurse)."""

    def __init__(self, depth: int) -> None:
        self.depth = depth

    def __repr__(self) -> str:
        return f"Deep({self.depth})"


nested = st.one_of(json_values, st.integers(1, 3000).map(Deep))
anything = st.one_of(nested, date_times, st.integers(-(2**70), 2**70))


def encode(body: Any) -> bytes:
    deep: dict[str, str] = {}

    def placeholder(value: object) -> str:
        if not isinstance(value, Deep):
            raise TypeError(value)
        mark = f"__deep_{len(deep)}__"
        deep[f'"{mark}"'] = '{"a":' * value.depth + "1" + "}" * value.depth
        return mark

    text = json.dumps(body, allow_nan=False, default=placeholder)
    for mark, written in deep.items():
        text = text.replace(mark, written)
    return text.encode()


def send(api: Api, method: str, path: str, body: Any = None, **headers: Any) -> Any:
    sent = {**api.admin, **headers}
    content = None
    if body is not None:
        sent.setdefault("Content-Type", "application/json")
        content = encode(body)
    return api.client.request(method, path, content=content, headers=sent)


def assert_no_server_error(response: Any) -> None:
    assert response.status_code < 500, response.text[:500]


@pytest.fixture(scope="module")
def provider(api: Api) -> str:
    return create_provider(api, weekly_schedule=hours())


@pytest.fixture(scope="module")
def booking(api: Api, provider: str) -> str:
    request = booked(api, provider, "2026-11-30T11:00:00-05:00")
    booking_id: str = request["booking_id"]
    return booking_id


@FUZZ
@given(
    name=any_text | anything,
    zone=body_zones | anything,
    monday=st.lists(interval, max_size=3) | anything,
    slot_minutes=st.integers(-10, 2000) | anything,
    extra=st.dictionaries(any_text, anything, max_size=2),
)
def test_creating_and_changing_providers(
    api: Api, name: Any, zone: Any, monday: Any, slot_minutes: Any, extra: dict[str, Any]
) -> None:
    body = {
        "name": name,
        "timezone": zone,
        "slot_minutes": slot_minutes,
        "weekly_schedule": {"monday": monday},
        **extra,
    }
    created = send(api, "POST", "/v1/providers", body)
    assert_no_server_error(created)
    target = (
        created.json()["id"]
        if created.status_code == 201
        else "00000000-0000-0000-0000-000000000000"
    )
    assert_no_server_error(send(api, "PATCH", f"/v1/providers/{target}", body))
    assert_no_server_error(send(api, "PUT", f"/v1/providers/{target}/schedule", body))


@FUZZ
@given(day=dateish, intervals=st.lists(interval, max_size=3) | anything)
def test_overrides(api: Api, provider: str, day: str, intervals: Any) -> None:
    path = f"/v1/providers/{provider}/overrides/{quote(day, safe='')}"
    assert_no_server_error(send(api, "PUT", path, {"intervals": intervals}))
    assert_no_server_error(send(api, "DELETE", path))
    assert_no_server_error(
        api.client.get(
            f"/v1/providers/{provider}/overrides",
            params={"from": day, "to": day},
            headers=api.admin,
        )
    )


@FUZZ
@given(
    first=dateish,
    last=dateish,
    single=dateish,
    zone=zone_names,
    use_single=st.booleans(),
)
def test_availability(
    api: Api, provider: str, first: str, last: str, single: str, zone: bytes, use_single: bool
) -> None:
    params = {"date": single} if use_single else {"from": first, "to": last}
    response = api.client.get(
        f"/v1/providers/{provider}/availability",
        params=params,
        headers={**api.user, "Timezone": zone},
    )
    assert_no_server_error(response)


@FUZZ
@given(
    start=date_times | anything,
    customer=any_text | anything,
    metadata=nested,
    callback=st.one_of(
        st.none(), any_text, st.sampled_from(["http://[::127.0.0.1]/", " https://a.b/"])
    ),
    key=st.none() | header_text,
    zone=st.none() | zone_names,
)
def test_booking(
    api: Api,
    provider: str,
    start: Any,
    customer: Any,
    metadata: Any,
    callback: Any,
    key: bytes | None,
    zone: bytes | None,
) -> None:
    body = {
        "provider_id": provider,
        "start": start,
        "customer_id": customer,
        "metadata": metadata,
        "callback_url": callback,
    }
    headers: dict[str, Any] = {**api.user}
    if key is not None:
        headers["Idempotency-Key"] = key
    if zone is not None:
        headers["Timezone"] = zone
    response = api.client.post(
        "/v1/bookings",
        content=encode(body),
        headers={**headers, "Content-Type": "application/json"},
    )
    assert_no_server_error(response)


@FUZZ
@given(reason=any_text | anything, start=date_times | anything, zone=st.none() | zone_names)
def test_reschedule_and_cancel(
    api: Api, booking: str, reason: Any, start: Any, zone: bytes | None
) -> None:
    headers = {"Timezone": zone} if zone is not None else {}
    assert_no_server_error(
        send(api, "POST", f"/v1/bookings/{booking}/reschedule", {"start": start}, **headers)
    )
    # A cancel that succeeded would end the booking's story; ask as another client's key,
    # which can only be refused, so the booking stays for the next example.
    response = api.client.post(
        f"/v1/bookings/{booking}/cancel",
        content=encode({"reason": reason}),
        headers={**api.other_user, "Content-Type": "application/json"},
    )
    assert_no_server_error(response)


@FUZZ
@given(
    params=st.dictionaries(
        st.sampled_from(["provider_id", "customer_id", "status", "from", "to", "limit", "cursor"]),
        dateish,
    ),
    zone=st.none() | zone_names,
    ident=query_text,
    wait=st.sampled_from(["0", "-1", "31", "nan", "inf", "0.0001", "x"]) | query_text,
)
def test_reading_bookings_and_requests(
    api: Api, params: dict[str, str], zone: bytes | None, ident: str, wait: str
) -> None:
    headers = {**api.user, **({"Timezone": zone} if zone is not None else {})}
    assert_no_server_error(api.client.get("/v1/bookings", params=params, headers=headers))
    safe = quote(ident, safe="")
    assert_no_server_error(api.client.get(f"/v1/bookings/{safe}", headers=headers))
    assert_no_server_error(
        api.client.get(f"/v1/booking-requests/{safe}", params={"wait": wait}, headers=headers)
    )
    assert_no_server_error(api.client.get("/v1/providers", params=params, headers=headers))


@FUZZ
@given(
    url=st.one_of(
        any_text,
        st.sampled_from(
            ["https://93.184.215.14/hook", "http://[::127.0.0.1]/", " https://93.184.215.14/"]
        ),
        anything,
    ),
    events=st.lists(st.one_of(st.sampled_from(["*", "booking.confirmed"]), any_text)) | anything,
    description=any_text | anything,
    status=any_text | anything,
    since=date_times | query_text,
    ident=query_text,
)
def test_webhook_endpoints_and_deliveries(
    api: Api,
    url: Any,
    events: Any,
    description: Any,
    status: Any,
    since: str,
    ident: str,
) -> None:
    body = {"url": url, "events": events, "description": description}
    headers = {**api.user, "Content-Type": "application/json"}
    created = api.client.post("/v1/webhook-endpoints", content=encode(body), headers=headers)
    assert_no_server_error(created)
    target = created.json()["id"] if created.status_code == 201 else quote(ident, safe="")
    patch = {**body, "status": status}
    for method, path, sent in (
        ("PATCH", f"/v1/webhook-endpoints/{target}", patch),
        ("POST", f"/v1/webhook-endpoints/{target}/replay?since={quote(since, safe='')}", None),
        ("POST", f"/v1/webhook-endpoints/{target}/rotate-secret", None),
        ("GET", f"/v1/webhook-endpoints/{target}/deliveries", None),
        ("GET", f"/v1/webhook-deliveries/{quote(ident, safe='')}", None),
        ("POST", f"/v1/webhook-deliveries/{quote(ident, safe='')}/retry", None),
        ("DELETE", f"/v1/webhook-endpoints/{target}", None),
    ):
        content = encode(sent) if sent is not None else None
        assert_no_server_error(api.client.request(method, path, content=content, headers=headers))
