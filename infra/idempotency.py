"""Idempotency keys, held in a small table of their own for IDEMPOTENCY_KEY_HOURS.

On PostgreSQL `booking_requests` is partitioned by month, so a unique constraint there would
have to include `created_at` and could no longer say "one request per key". The key table
says it instead. Accepting a request with a key takes the key (or takes over one older than
the window) and inserts the request in one statement; a trigger (migration 0004) makes any
other insert with a key hold it too. Retention deletes keys once they are out of the window.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Table, and_, bindparam, select, text

from domain.errors import DuplicateKey
from infra.tables import BookingRequestRow, IdempotencyKeyRow, UTCDateTime

REQUESTS: Table = BookingRequestRow.__table__  # type: ignore[assignment]
KEYS: Table = IdempotencyKeyRow.__table__  # type: ignore[assignment]

_COLUMNS = [c for c in REQUESTS.c if c.name not in {"seq", "error_code", "error_message"}]
_COLUMNS = [c for c in _COLUMNS if c.name != "completed_at"]
_NAMES = ", ".join(c.name for c in _COLUMNS)
_VALUES = ", ".join(f":{c.name}" for c in _COLUMNS)
_BINDS = [bindparam(c.name, type_=c.type) for c in _COLUMNS]
_SINCE = bindparam("keys_since", type_=UTCDateTime())

# One statement: the key is taken (a new one, or one past the window taken over) and the
# request inserted with it, or nothing happens and no row comes back.
_POSTGRES_ACCEPT = (
    # The column names come from the model; every value is bound.
    text(
        "WITH held AS ("  # noqa: S608
        " INSERT INTO idempotency_keys (client_id, key, request_id, request_created_at, created_at)"
        " VALUES (:client_id, :idempotency_key, :id, :created_at, :created_at)"
        " ON CONFLICT (client_id, key) DO UPDATE SET request_id = EXCLUDED.request_id,"
        " request_created_at = EXCLUDED.request_created_at, created_at = EXCLUDED.created_at"
        " WHERE idempotency_keys.created_at < :keys_since"
        " RETURNING request_id)"
        f" INSERT INTO booking_requests ({_NAMES}) SELECT {_VALUES} FROM held RETURNING seq"
    )
    .bindparams(*_BINDS, _SINCE)
    .columns(seq=BigInteger())
)
# SQLite has no INSERT inside WITH: the key first, then the request. A key whose request
# never arrived (a crash in between) is taken over; two racing takers are told apart by
# the trigger, which refuses the request of the one that lost the key.
_SQLITE_TAKE_KEY = text(
    "INSERT INTO idempotency_keys (client_id, key, request_id, request_created_at, created_at)"
    " VALUES (:client_id, :idempotency_key, :id, :created_at, :created_at)"
    " ON CONFLICT (client_id, key) DO UPDATE SET request_id = excluded.request_id,"
    " request_created_at = excluded.request_created_at, created_at = excluded.created_at"
    " WHERE idempotency_keys.created_at < :keys_since OR NOT EXISTS"
    " (SELECT 1 FROM booking_requests r WHERE r.id = idempotency_keys.request_id)"
).bindparams(
    *[b for b in _BINDS if b.key in {"client_id", "idempotency_key", "id", "created_at"}], _SINCE
)

BY_KEY = (
    select(REQUESTS)
    .join(
        KEYS,
        and_(
            REQUESTS.c.id == KEYS.c.request_id,
            REQUESTS.c.created_at == KEYS.c.request_created_at,
        ),
    )
    .where(
        KEYS.c.client_id == bindparam("client_id"),
        KEYS.c.key == bindparam("key"),
        KEYS.c.created_at >= bindparam("keys_since"),
    )
)


async def insert_with_key(db: Any, values: dict[str, Any], keys_since: datetime) -> int:
    """Insert the request holding its Idempotency-Key; DuplicateKey if another holds it."""
    params = {**values, "keys_since": keys_since}
    if db.dialect.name == "postgresql":
        seq = await db.scalar(_POSTGRES_ACCEPT, params)
        if seq is None:
            raise DuplicateKey("a request with this Idempotency-Key already exists")
        return int(seq)
    taken = await db.execute(_SQLITE_TAKE_KEY, params)
    if not taken.rowcount:
        raise DuplicateKey("a request with this Idempotency-Key already exists")
    return -1  # the caller inserts the request itself
