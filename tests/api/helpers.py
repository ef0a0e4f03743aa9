"""Small builders the API tests share."""

from __future__ import annotations

import uuid
from typing import Any

from tests.api.conftest import Api

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday")


def hours(days: tuple[str, ...] = WEEKDAYS, *intervals: tuple[str, str]) -> dict[str, Any]:
    spans = intervals or (("09:00", "17:00"),)
    return {day: [{"start": s, "end": e} for s, e in spans] for day in days}


def create_provider(api: Api, **fields: Any) -> str:
    body: dict[str, Any] = {"timezone": "America/New_York", "weekly_schedule": hours()}
    body.update(fields)
    response = api.post("/v1/providers", json=body)
    assert response.status_code == 201, response.text
    provider_id: str = response.json()["id"]
    return provider_id


def slots(
    api: Api, provider_id: str, headers: dict[str, str] | None = None, **query: str
) -> list[str]:
    params = {("from" if k == "from_" else k): v for k, v in query.items()}
    response = api.get(
        f"/v1/providers/{provider_id}/availability",
        params=params,
        headers={**api.user, **(headers or {})},
    )
    assert response.status_code == 200, response.text
    return [slot["start"] for slot in response.json()["slots"]]


def new_id() -> str:
    return str(uuid.uuid4())
