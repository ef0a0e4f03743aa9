"""Which worker owns which partition: rendezvous (highest random weight) hashing.

Every worker computes the same answer from the same membership, with no coordinator. When a
worker joins or leaves, only the partitions it gains or loses move; the others stay put.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable


def _weight(member: str, partition: int) -> int:
    digest = hashlib.blake2b(f"{partition}\x00{member}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def owner_of(partition: int, members: Iterable[str]) -> str | None:
    """The member with the highest weight for `partition` (ties, vanishingly rare, by name)."""
    return max(members, key=lambda m: (_weight(m, partition), m), default=None)


def assignment(partitions: int, members: Collection[str]) -> dict[str, list[int]]:
    """Each member's partitions, in order; every partition goes to exactly one member."""
    owned: dict[str, list[int]] = {member: [] for member in members}
    for partition in range(partitions):
        owner = owner_of(partition, members)
        if owner is not None:
            owned[owner].append(partition)
    return owned


def share_of(member: str, partitions: int, members: Collection[str]) -> frozenset[int]:
    """The partitions `member` owns when `members` are the live members (itself included)."""
    everyone = {*members, member}
    return frozenset(p for p in range(partitions) if owner_of(p, everyone) == member)
