"""Ids that carry the moment they were made (UUID version 7, RFC 9562).

A booking request's id holds its creation time to the millisecond, so a lookup by id alone
knows which monthly partition of the record to read instead of probing every one. The ids
come from `uuid7-standard` (Python has `uuid.uuid7` only from 3.14, and it takes no time),
which reads the time as a float of seconds: exact to the microsecond for moments before about
2240 (tests/unit/test_ids.py), and ids are made from the server's clock.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

import uuid7

_MILLISECOND = timedelta(milliseconds=1)


def time_ordered_id(moment: datetime) -> UUID:
    """A random UUID version 7 whose timestamp is `moment`, to the millisecond."""
    made: UUID = uuid7.create(moment)
    return made


def made_within(ident: UUID) -> tuple[datetime, datetime] | None:
    """For an id from `time_ordered_id`: the millisecond `[start, end)` it was made in.

    None for any other id (those of requests accepted before ids carried their time).
    """
    if ident.version != 7:
        return None
    start: datetime = uuid7.time(ident)
    return start, start + _MILLISECOND
