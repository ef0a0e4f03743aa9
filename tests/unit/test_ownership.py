"""Rendezvous hashing (domain/ownership.py): one owner per partition, agreed by everyone,
and a join or a leave moves only what it must."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.ownership import assignment, owner_of, share_of

names = st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=12, unique=True)


@settings(deadline=None)  # a loaded machine makes single examples slow, not wrong
@given(names, st.integers(min_value=1, max_value=128))
def test_every_partition_has_exactly_one_owner_and_each_member_agrees(
    members: list[str], partitions: int
) -> None:
    owned = assignment(partitions, members)
    assert sorted(p for ps in owned.values() for p in ps) == list(range(partitions))
    for member in members:
        # Each worker works its share out alone, in whatever order it lists the members.
        assert share_of(member, partitions, list(reversed(members))) == frozenset(owned[member])


@settings(deadline=None)
@given(names, st.text(min_size=1, max_size=20), st.integers(min_value=1, max_value=128))
def test_a_join_moves_only_what_the_newcomer_wins_and_a_leave_only_what_it_held(
    members: list[str], newcomer: str, partitions: int
) -> None:
    if newcomer in members:
        return
    before = {p: owner_of(p, members) for p in range(partitions)}
    after = {p: owner_of(p, [*members, newcomer]) for p in range(partitions)}
    moved = {p for p in range(partitions) if before[p] != after[p]}
    assert all(after[p] == newcomer for p in moved)
    # Leaving again puts everything back where it was.
    assert {p: owner_of(p, members) for p in range(partitions)} == before


def test_sixty_four_partitions_spread_evenly_enough_over_four_workers() -> None:
    owned = assignment(64, [f"booking-{pid}@host" for pid in (101, 202, 303, 404)])
    assert all(8 <= len(ps) <= 24 for ps in owned.values()), owned


def test_no_member_owns_nothing_in_particular() -> None:
    assert assignment(4, []) == {}
    assert owner_of(0, []) is None
