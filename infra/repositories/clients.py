"""API clients: who holds which key, in which role."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, insert, select

from domain.model import ApiClient, Role
from domain.ports import NewApiClient
from infra.repositories.base import CLIENTS, Statements

_CLIENT_BY_KEY_HASH = select(CLIENTS.c.id, CLIENTS.c.name, CLIENTS.c.role).where(
    CLIENTS.c.key_hash == bindparam("key_hash")
)


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
