"""Ids that carry the moment they were made (UUID version 7, RFC 9562).

A booking request's id holds its creation time to the millisecond, so a lookup by id alone
knows which monthly partition of the record to read instead of probing every one.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from uuid import UUID

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)


def time_ordered_id(moment: datetime) -> UUID:
    """A random UUID version 7 whose timestamp is `moment`, to the millisecond."""
    millis = (moment - _EPOCH) // _MILLISECOND
    random = int.from_bytes(os.urandom(10), "big")  # 80 bits; 74 of them are used
    value = (millis & (1 << 48) - 1) << 80
    value |= 0x7 << 76  # version
    value |= (random >> 62 & 0xFFF) << 64  # rand_a
    value |= 0b10 << 62  # variant
    value |= random & (1 << 62) - 1  # rand_b
    return UUID(int=value)


def made_within(ident: UUID) -> tuple[datetime, datetime] | None:
    """For an id from `time_ordered_id`: the millisecond `[start, end)` it was made in.

    None for any other id (those of requests accepted before ids carried their time).
    """
    if ident.version != 7:
        return None
    start = _EPOCH + (ident.int >> 80) * _MILLISECOND
    return start, start + _MILLISECOND
