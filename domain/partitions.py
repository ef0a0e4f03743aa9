"""Which partition (and so which queue and worker) decides a provider's requests."""

from __future__ import annotations

import hashlib
from uuid import UUID

_QUEUE_PREFIX = "bookings."


def partition_for(provider_id: UUID, partitions: int) -> int:
    """Stable across processes and releases, unlike Python's salted hash()."""
    digest = hashlib.blake2b(provider_id.bytes, digest_size=8).digest()
    return int.from_bytes(digest, "big") % partitions


def partition_queue(partition: int) -> str:
    """The one place a partition's queue name is spelled."""
    return f"{_QUEUE_PREFIX}{partition}"


def is_partition_queue(name: str) -> bool:
    return name.startswith(_QUEUE_PREFIX) and name[len(_QUEUE_PREFIX) :].isdigit()


def queue_for(provider_id: UUID, partitions: int) -> str:
    return partition_queue(partition_for(provider_id, partitions))
