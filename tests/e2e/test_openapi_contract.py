"""schemathesis against a real `booking api` process: no 5xx, no answer that breaks the schema."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from domain.model import Role
from tests.conftest import create_sqlite_database, issue_key
from tests.servers import embedded_redis, running_api

EXAMPLES_PER_OPERATION = 60
# No 5xx, and every answer within the documented status codes, content types, headers and
# bodies. (positive_data_acceptance is left out on purpose: an unknown zone name or a made-up
# cursor matches the schema's `string`, yet a 400 is the right answer to it.)
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    directory = tmp_path_factory.mktemp("contract")
    database = create_sqlite_database(directory)
    admin = issue_key(database.url, Role.ADMIN, "contract admin")
    with embedded_redis() as redis_url:
        env = {"DATABASE_URL": database.url, "REDIS_URL": redis_url, "LOG_LEVEL": "WARNING"}
        with running_api(env, directory) as base_url:
            yield base_url, admin.key


def test_every_operation_answers_within_its_schema(served: tuple[str, str]) -> None:
    base_url, key = served
    schema = schemathesis.openapi.from_url(f"{base_url}/schema/openapi.json")
    headers = {"Authorization": f"Bearer {key}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 9

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def answers_within_schema(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        answers_within_schema()


def test_openapi_document_lists_the_contract_paths(served: tuple[str, str]) -> None:
    import httpx

    base_url, _ = served
    paths = httpx.get(f"{base_url}/schema/openapi.json").json()["paths"]
    for path in (
        "/v1/providers",
        "/v1/providers/{provider_id}",
        "/v1/providers/{provider_id}/schedule",
        "/v1/providers/{provider_id}/overrides",
        "/v1/providers/{provider_id}/overrides/{day}",
        "/v1/providers/{provider_id}/availability",
        "/health/live",
        "/health/ready",
    ):
        assert path in paths
    assert httpx.get(f"{base_url}/docs").status_code == 200
