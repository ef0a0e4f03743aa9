"""Log lines: one JSON object each, with the bound request id, and never a traceback's locals."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from structlog.contextvars import bind_contextvars, clear_contextvars

from infra.logs import configure_logging


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    clear_contextvars()


def test_json_lines_carry_the_request_id_and_no_local_variables(
    restored_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("INFO", "json")
    bind_contextvars(request_id="trace-1")
    api_key = "bk_secret_value"  # a local a traceback could show
    try:
        raise ValueError(f"bad input of length {len(api_key)}")
    except ValueError:
        logging.getLogger("api.errors").exception("unhandled error on %s", "POST /v1/bookings")
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["event"] == "unhandled error on POST /v1/bookings"
    assert record["request_id"] == "trace-1"
    assert record["level"] == "error" and record["logger"] == "api.errors"
    assert record["exception"][0]["exc_type"] == "ValueError"
    assert "bk_secret_value" not in lines[0]
