"""Which partition (and so which queue and worker) decides a provider's requests."""

from __future__ import annotations

import hashlib
from uuid import UUID


def partition_for(provider_id: UUID, partitions: int) -> int:
    """Stable across processes and releases, unlike Python's salted hash()."""
    digest = hashlib.blake2b(provider_id.bytes, digest_size=8).digest()
    return int.from_bytes(digest, "big") % partitions


def queue_for(provider_id: UUID, partitions: int) -> str:
    return f"bookings.{partition_for(provider_id, partitions)}"
