"""Rows the integration tests insert directly, beside what the API would make."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert

from infra.tables import ApiClientRow, ProviderRow


def add_client_and_provider(connection: Connection, when: datetime) -> tuple[uuid.UUID, uuid.UUID]:
    """A client-role key's client and a provider with no hours, both made at `when`."""
    client, provider = uuid.uuid4(), uuid.uuid4()
    connection.execute(
        insert(ApiClientRow).values(
            id=client,
            name="c",
            role="client",
            key_hash=uuid.uuid4().hex,
            signing_secret="s",
            created_at=when,
        )
    )
    connection.execute(
        insert(ProviderRow).values(
            id=provider,
            name=None,
            timezone="UTC",
            slot_minutes=30,
            weekly_schedule={},
            buffer_before_minutes=0,
            buffer_after_minutes=0,
            min_notice_minutes=0,
            max_advance_days=365,
            version=1,
            created_at=when,
            updated_at=when,
        )
    )
    return client, provider


def request_row(
    ident: uuid.UUID, client: uuid.UUID, provider: uuid.UUID, created: datetime, status: str
) -> dict[str, Any]:
    """A booking request's row, created at `created`, asking for the next day."""
    return {
        "id": ident,
        "client_id": client,
        "kind": "book",
        "provider_id": provider,
        "start_at": created + timedelta(days=1),
        "payload": {},
        "status": status,
        "attempts": 1,
        "created_at": created,
        "completed_at": None if status == "pending" else created,
    }
