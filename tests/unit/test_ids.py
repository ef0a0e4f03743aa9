"""Request ids carry their creation time: a lookup by id finds the partition to read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from hypothesis import given
from hypothesis import strategies as st

from domain.ids import made_within, time_ordered_id

# The library reads a time as a float of seconds: exact to the microsecond until about
# 2240 (it put 4148-01-01 00:00:00.049996 in the millisecond after). Ids are made from the
# server's clock, so up to 2200 is what is asked of it.
moments = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2200, 12, 31), timezones=st.just(UTC)
)


@given(moments)
def test_an_id_names_the_millisecond_it_was_made_in(moment: datetime) -> None:
    ident = time_ordered_id(moment)
    assert ident.version == 7
    assert ident.variant == "specified in RFC 4122"
    window = made_within(ident)
    assert window is not None
    start, end = window
    assert start <= moment < end
    assert end - start == timedelta(milliseconds=1)


def test_ids_made_at_one_moment_differ_and_sort_by_time() -> None:
    moment = datetime(2026, 11, 30, 12, tzinfo=UTC)
    same = {time_ordered_id(moment) for _ in range(1000)}
    assert len(same) == 1000
    later = time_ordered_id(moment + timedelta(milliseconds=1))
    assert all(str(ident) < str(later) for ident in same)


def test_other_ids_name_no_moment() -> None:
    assert made_within(uuid4()) is None
