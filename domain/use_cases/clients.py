"""API clients: creating keys and recognising them. Keys are kept only as hashes."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from uuid import uuid4

from domain.commands import CreateApiClient, RevokeApiKey
from domain.errors import FieldError, NotFound, ValidationFailed
from domain.model import ApiClient, ApiKeyRecord, Role
from domain.ports import NewApiClient, UnitOfWork

KEY_PREFIX = "bk_"
SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret


@dataclass(frozen=True, slots=True)
class IssuedKey:
    client: ApiClient
    key: str
    signing_secret: str | None  # shown once, for clients: signs their callbacks


def hash_key(key: str) -> str:
    # Keys carry 256 random bits, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(key.encode()).hexdigest()


async def create_api_client(cmd: CreateApiClient, uow: UnitOfWork) -> IssuedKey:
    name = cmd.name.strip()
    if not name or len(name) > 200:
        raise ValidationFailed([FieldError("name", "must be 1 to 200 characters")])
    client = ApiClient(id=uuid4(), name=name, role=cmd.role)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    secret = SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()
    async with uow:
        await uow.clients.add(NewApiClient(client, hash_key(key), secret))
        await uow.commit()
    return IssuedKey(client, key, secret if cmd.role is Role.CLIENT else None)


async def authenticate(key: str, uow: UnitOfWork) -> ApiClient | None:
    if not key.startswith(KEY_PREFIX) or len(key) > 200:
        return None
    async with uow:
        return await uow.clients.by_key_hash(hash_key(key))


async def list_api_keys(uow: UnitOfWork) -> list[ApiKeyRecord]:
    async with uow:
        return await uow.clients.list_all()


async def revoke_api_key(cmd: RevokeApiKey, uow: UnitOfWork, now: datetime) -> ApiKeyRecord:
    """Refuse the key from now on (every API process within a second); revoking twice is fine."""
    async with uow:
        record = await uow.clients.revoke(cmd.client_id, now)
        if record is None:
            raise NotFound(f"API key {cmd.client_id} not found")
        await uow.commit()
    return record
