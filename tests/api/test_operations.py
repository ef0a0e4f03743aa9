"""Operations seen from one API process: /metrics, X-Request-ID, and rate limits failing open."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fakeredis import FakeAsyncRedis
from litestar.testing import TestClient

from api.app import create_app
from domain.model import Role
from infra.settings import Settings
from tests.api.conftest import NOW, Api, bearer
from tests.conftest import create_sqlite_database, issue_key
from tests.servers import free_port


def test_metrics_need_no_key_and_label_routes_by_template(api: Api) -> None:
    api.get("/v1/providers/00000000-0000-0000-0000-000000000001")
    scraped = api.client.get("/metrics", headers={})
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    text = scraped.text
    assert 'route="/v1/providers/{provider_id}"' in text
    assert "00000000-0000-0000-0000-000000000001" not in text
    assert "booking_queue_depth{" in text


def test_a_request_id_is_echoed_or_made_up(api: Api) -> None:
    given = api.get("/v1/providers", headers={**api.user, "X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    made_up = api.get("/v1/providers")
    assert len(made_up.headers["x-request-id"]) == 32
    # Anything that could forge a log line's structure is replaced, not echoed.
    forged = api.get("/v1/providers", headers={**api.user, "X-Request-ID": 'a" b\\'})
    assert forged.headers["x-request-id"] != 'a" b\\'
    unauthenticated = api.get("/v1/providers", headers={"X-Request-ID": "no-key"})
    assert unauthenticated.status_code == 401
    assert unauthenticated.headers["x-request-id"] == "no-key"


def test_without_redis_rate_limits_let_requests_through_and_warn_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    database = create_sqlite_database(tmp_path)
    nowhere = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    settings = Settings.from_env(
        {"DATABASE_URL": database.url, "REDIS_URL": nowhere, "RATE_LIMIT_PER_MINUTE": "2"},
        dotenv=None,
    )
    client = bearer(issue_key(database.url, Role.CLIENT).key)
    with (
        caplog.at_level(logging.WARNING, logger="infra.rate_limits"),
        TestClient(create_app(settings, redis=FakeAsyncRedis(), clock=lambda: NOW)) as http,
    ):
        answers = [http.get("/v1/providers", headers=client).status_code for _ in range(6)]
    assert answers == [200] * 6
    warnings = [r for r in caplog.records if r.name == "infra.rate_limits"]
    assert len(warnings) == 1
    assert "rate limits not enforced" in warnings[0].getMessage()
