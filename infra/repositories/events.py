"""The event log: what happened to each request, for webhooks and audits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import insert

from domain.events import Event, event_payload
from infra.repositories.base import EVENTS, Statements


class SqlEventRepository:
    def __init__(self, connection: Statements) -> None:
        self._db = connection

    async def add_many(self, events: Sequence[Event], created_at: datetime) -> None:
        if not events:
            return
        await self._db.execute(
            insert(EVENTS),
            [
                {
                    "id": f"evt_{uuid.uuid4().hex}",
                    "type": event.type,
                    "request_id": event.request.id,
                    "booking_id": event.booking.id if event.booking else None,
                    "client_id": event.request.client_id,
                    "payload": event_payload(event),
                    "created_at": created_at,
                    "sequence": event.request.seq,
                }
                for event in events
            ],
        )
