"""An Idempotency-Key replays for IDEMPOTENCY_KEY_HOURS (24 by default), then is free again."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from tests.api.conftest import NOW, Api
from tests.api.helpers import create_provider, new_id

START = "2026-10-26T10:00:00-04:00"  # a Monday at 10:00 in New York, ahead of NOW


@pytest.fixture
def later(api: Api) -> Iterator[Any]:
    """Moves the API's clock; puts it back afterwards."""
    runtime = api.client.app.state.runtime

    def move(by: timedelta) -> None:
        runtime.clock = lambda: NOW + by

    yield move
    runtime.clock = lambda: NOW


def _book(api: Api, key: str, provider: str, **extra: Any) -> Any:
    return api.client.post(
        "/v1/bookings",
        json={"provider_id": provider, "start": START, **extra},
        headers={**api.user, "Idempotency-Key": key},
    )


def test_key_replays_within_the_window_and_not_after_it(api: Api, later: Any) -> None:
    provider = create_provider(api)
    key = f"window-{new_id()}"
    first = _book(api, key, provider)
    assert first.status_code == 202, first.text

    later(timedelta(hours=23, minutes=59))
    replay = _book(api, key, provider)
    assert replay.status_code == 202
    assert replay.json()["id"] == first.json()["id"]

    later(timedelta(hours=24, minutes=1))
    fresh = _book(api, key, provider)
    assert fresh.status_code == 202, fresh.text
    assert fresh.json()["id"] != first.json()["id"]
    # From then on the key replays the new request.
    assert _book(api, key, provider).json()["id"] == fresh.json()["id"]


def test_expired_key_may_carry_a_different_body(api: Api, later: Any) -> None:
    provider = create_provider(api)
    key = f"window-{new_id()}"
    first = _book(api, key, provider)
    assert first.status_code == 202
    assert _book(api, key, provider, customer_id="someone else").status_code == 409

    later(timedelta(hours=25))
    reused = _book(api, key, provider, customer_id="someone else")
    assert reused.status_code == 202, reused.text
    assert reused.json()["id"] != first.json()["id"]
