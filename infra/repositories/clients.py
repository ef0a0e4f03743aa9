"""API clients: who holds which key, in which role."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Row, bindparam, func, insert, select, update

from domain.model import ApiClient, ApiKeyRecord, Role
from domain.ports import NewApiClient
from infra.repositories.base import CLIENTS, Statements

_CLIENT_BY_KEY_HASH = select(CLIENTS.c.id, CLIENTS.c.name, CLIENTS.c.role).where(
    CLIENTS.c.key_hash == bindparam("key_hash"), CLIENTS.c.revoked_at.is_(None)
)
_RECORD = (CLIENTS.c.id, CLIENTS.c.name, CLIENTS.c.role, CLIENTS.c.created_at, CLIENTS.c.revoked_at)


def _record(row: Row[Any]) -> ApiKeyRecord:
    return ApiKeyRecord(ApiClient(row.id, row.name, Role(row.role)), row.created_at, row.revoked_at)


class SqlApiClientRepository:
    def __init__(self, connection: Statements) -> None:
        self._db = connection

    async def by_key_hash(self, key_hash: str) -> ApiClient | None:
        row = (await self._db.execute(_CLIENT_BY_KEY_HASH, {"key_hash": key_hash})).first()
        return None if row is None else ApiClient(row.id, row.name, Role(row.role))

    async def add(self, new: NewApiClient) -> None:
        await self._db.execute(
            insert(CLIENTS).values(
                id=new.client.id,
                name=new.client.name,
                role=new.client.role.value,
                key_hash=new.key_hash,
                signing_secret=new.signing_secret,
                created_at=datetime.now().astimezone(),
            )
        )

    async def list_all(self) -> list[ApiKeyRecord]:
        rows = await self._db.execute(select(*_RECORD).order_by(CLIENTS.c.created_at, CLIENTS.c.id))
        return [_record(row) for row in rows]

    async def revoke(self, client_id: UUID, at: datetime) -> ApiKeyRecord | None:
        row = (
            await self._db.execute(
                update(CLIENTS)
                .where(CLIENTS.c.id == client_id)
                .values(revoked_at=func.coalesce(CLIENTS.c.revoked_at, at))
                .returning(*_RECORD)
            )
        ).first()
        return None if row is None else _record(row)
