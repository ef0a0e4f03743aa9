"""Keyset pagination: every list is ordered by (moment, id) and resumes after a cursor."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from sqlalchemy import ColumnElement, Row, Select, bindparam, tuple_

from domain.errors import BadRequest
from domain.ports import Page
from infra.repositories.base import Statements

T = TypeVar("T")

_NOT_OURS = "`cursor` is not a cursor this API gave out"


def encode_cursor(*parts: str) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int) -> list[str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        parts = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise BadRequest(_NOT_OURS) from None
    if (
        not isinstance(parts, list)
        or len(parts) != arity
        or not all(isinstance(p, str) for p in parts)
    ):
        raise BadRequest(_NOT_OURS)
    return parts


def cursor_position(cursor: str) -> tuple[datetime, UUID]:
    moment, ident = decode_cursor(cursor, 2)
    try:
        return datetime.fromisoformat(moment), UUID(ident)
    except ValueError:
        raise BadRequest(_NOT_OURS) from None


async def keyset_page(
    db: Statements,
    query: Select[Any],
    order: tuple[ColumnElement[datetime], ColumnElement[UUID]],
    limit: int,
    cursor: str | None,
    item: Callable[[Row[Any]], T],
    position: Callable[[T], tuple[datetime, UUID]],
) -> Page[T]:
    """Up to `limit` items of `query` in `order`, after `cursor`'s position if there is one.

    The resume condition is a row comparison, `(moment, id) > (:moment, :id)`, which
    PostgreSQL uses as an index condition on an index over the same two columns.
    """
    moment_column, id_column = order
    query = query.order_by(moment_column, id_column)
    if cursor:
        moment, last_id = cursor_position(cursor)
        after = tuple_(
            bindparam("after_moment", moment, type_=moment_column.type),
            bindparam("after_id", last_id, type_=id_column.type),
        )
        query = query.where(tuple_(moment_column, id_column) > after)
    rows = (await db.execute(query.limit(limit + 1))).all()
    items = [item(row) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        moment, last_id = position(items[-1])
        next_cursor = encode_cursor(moment.isoformat(), str(last_id))
    return Page(items, next_cursor)
