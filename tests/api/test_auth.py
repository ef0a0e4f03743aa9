"""API keys: 401 without one, 403 without the role, and never stored in clear."""

from __future__ import annotations

import asyncio
import hashlib

from sqlalchemy import select

from infra.database import make_engine
from infra.tables import ApiClientRow
from tests.api.conftest import Api
from tests.api.helpers import create_provider, hours


def test_no_key_is_401_on_every_v1_path(api: Api) -> None:
    for path in [
        "/v1/providers",
        "/v1/providers/x",
        "/v1/providers/x/availability?date=2026-12-01",
    ]:
        response = api.client.get(path)
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.headers["content-type"].startswith("application/problem+json")


def test_unknown_key_and_wrong_scheme_are_401(api: Api) -> None:
    assert api.get("/v1/providers", headers={"Authorization": "Bearer bk_nope"}).status_code == 401
    key = api.admin["Authorization"].split()[1]
    assert api.get("/v1/providers", headers={"Authorization": f"Basic {key}"}).status_code == 401


def test_no_key_is_401_even_when_the_body_is_bad(api: Api) -> None:
    response = api.client.post("/v1/providers", content=b"{not json")
    assert response.status_code == 401


def test_client_key_creating_or_changing_a_provider_is_403(api: Api) -> None:
    body = {"timezone": "UTC", "weekly_schedule": {}}
    assert api.post("/v1/providers", json=body, headers=api.user).status_code == 403
    provider = create_provider(api)
    assert (
        api.patch(f"/v1/providers/{provider}", {"name": "x"}, headers=api.user).status_code == 403
    )
    schedule = {"timezone": "UTC", "weekly_schedule": hours()}
    assert (
        api.put(f"/v1/providers/{provider}/schedule", schedule, headers=api.user).status_code == 403
    )
    override = {"intervals": []}
    path = f"/v1/providers/{provider}/overrides/2026-12-01"
    assert api.put(path, override, headers=api.user).status_code == 403
    assert api.delete(path, headers=api.user).status_code == 403
    assert api.get(f"/v1/providers/{provider}").json()["name"] is None


def test_client_key_reads_providers_and_availability(api: Api) -> None:
    provider = create_provider(api)
    assert api.get(f"/v1/providers/{provider}", headers=api.user).status_code == 200
    assert api.get("/v1/providers", headers=api.user).status_code == 200
    path = f"/v1/providers/{provider}/availability?date=2026-12-01"
    assert api.get(path, headers=api.user).status_code == 200


def test_keys_are_stored_only_as_hashes(api: Api) -> None:
    keys = [h["Authorization"].split()[1] for h in (api.admin, api.user, api.other_user)]

    async def stored_rows() -> list[tuple[str, ...]]:
        engine = make_engine(api.database.url, 1)
        try:
            async with engine.connect() as connection:
                result = await connection.execute(select(ApiClientRow.__table__))
                return [tuple(str(value) for value in row) for row in result]
        finally:
            await engine.dispose()

    rows = asyncio.run(stored_rows())
    stored = " ".join(" ".join(row) for row in rows)
    for key in keys:
        assert key not in stored
        assert hashlib.sha256(key.encode()).hexdigest() in stored


def test_health_needs_no_key(api: Api) -> None:
    assert api.client.get("/health/live").json() == {"status": "ok"}
    ready = api.client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "database": "ok", "redis": "ok"}
