"""A typed Python client generated from /schema/openapi.json (openapi-python-client) drives the
whole flow against live `booking api` and `booking worker` processes: create a provider, read
its availability in another zone, book, poll to `succeeded`, reschedule, cancel."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any
from uuid import UUID

import httpx
import pytest

from tests.workers.conftest import Pipeline

PACKAGE = "booking_client"


@pytest.fixture(scope="module")
def generated(pipeline: Pipeline, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Generates the client package from the live document; yields the directory holding it."""
    directory = tmp_path_factory.mktemp("generated")
    document = directory / "openapi.json"
    document.write_text(httpx.get(f"{pipeline.base_url}/schema/openapi.json").text)
    config = directory / "config.json"
    # Zone names like GMT0 and GMT-0 make the same enum member name; literals keep them apart.
    config.write_text(json.dumps({"literal_enums": True, "package_name_override": PACKAGE}))
    generate = subprocess.run(
        [
            str(Path(sys.executable).parent / "openapi-python-client"),
            "generate",
            "--path",
            str(document),
            "--config",
            str(config),
            "--meta",
            "none",
            "--output-path",
            str(directory / PACKAGE),
            "--fail-on-warning",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert generate.returncode == 0, generate.stdout + generate.stderr
    sys.path.insert(0, str(directory))
    try:
        yield str(directory)
    finally:
        sys.path.remove(str(directory))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def module(name: str) -> ModuleType:
    return importlib.import_module(f"{PACKAGE}.{name}")


def decided(client: Any, request_id: UUID) -> Any:
    """Polls the request through the generated client until it is no longer pending."""
    poll = module("api.bookings.get_booking_request")
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        request = poll.sync(request_id, client=client, wait=10)
        assert type(request).__name__ == "BookingRequestBody", request
        if request.status != "pending":
            return request
    raise AssertionError(f"request {request_id} still pending after 90 s")


def test_generated_client_books_polls_reschedules_and_cancels(
    running: Pipeline, generated: str
) -> None:
    client_module = module("client")
    models = module("models")
    admin = client_module.AuthenticatedClient(
        base_url=running.base_url, token=running.admin["Authorization"].split()[1], timeout=60
    )
    user = client_module.AuthenticatedClient(
        base_url=running.base_url, token=running.client["Authorization"].split()[1], timeout=60
    )
    nine_to_five = [models.IntervalBody(start="09:00", end="17:00")]
    week = models.WeekBody(**dict.fromkeys(("monday", "tuesday", "wednesday"), nine_to_five))
    week.thursday, week.friday = nine_to_five, nine_to_five

    provider = module("api.providers.create_provider").sync(
        client=admin,
        body=models.ProviderCreate(
            timezone="America/New_York", weekly_schedule=week, name="Dr. Rivera", slot_minutes=30
        ),
    )
    assert type(provider).__name__ == "ProviderBody", provider
    assert provider.timezone == "America/New_York"

    # A weekday a week ahead, read by a client in Berlin: New York's 09:00 is Berlin's 15:00.
    day = datetime.now(UTC).date() + timedelta(days=7)
    while day.weekday() > 4:
        day += timedelta(days=1)
    availability = module("api.availability.get_availability").sync(
        provider.id, client=user, date=day.isoformat(), timezone="Europe/Berlin"
    )
    assert type(availability).__name__ == "AvailabilityBody", availability
    assert availability.timezone == "Europe/Berlin"
    first, second = availability.slots[0], availability.slots[1]
    assert first.start.tzinfo is not None
    assert first.start.astimezone(UTC).hour in (14, 15)  # 09:00 in New York, EST or EDT
    assert first.start.hour in (15, 16) and first.start.utcoffset() in (
        timedelta(hours=1),
        timedelta(hours=2),
    )

    accepted = module("api.bookings.request_booking").sync(
        client=user,
        body=models.BookingCreate(
            provider_id=provider.id, start=first.start.isoformat(), customer_id="patient-123"
        ),
        timezone="Europe/Berlin",
    )
    assert type(accepted).__name__ == "BookingRequestBody", accepted
    assert accepted.status == "pending"
    booked = decided(user, accepted.id)
    assert booked.status == "succeeded", booked.error
    assert booked.booking.start == first.start

    moved = module("api.bookings.request_reschedule").sync(
        booked.booking_id,
        client=user,
        body=models.RescheduleBody(start=second.start.isoformat()),
    )
    assert decided(user, moved.id).status == "succeeded"
    booking = module("api.bookings.get_booking").sync(booked.booking_id, client=user)
    assert booking.start == second.start

    cancelled = module("api.bookings.request_cancel").sync(
        booked.booking_id, client=user, body=models.CancelBody(reason="patient is unwell")
    )
    assert decided(user, cancelled.id).status == "succeeded"
    booking = module("api.bookings.get_booking").sync(booked.booking_id, client=user)
    assert booking.status == "cancelled"
    assert booking.cancel_reason == "patient is unwell"
