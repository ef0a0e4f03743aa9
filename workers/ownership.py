"""Partition ownership: each worker consumes its rendezvous share of the booking partitions.

A thread renews this worker's lease in the membership every `lease / 5` seconds and works out
its share from the live members (`domain.ownership`). A Celery consumer bootstep, on the
worker's own event loop, then starts or stops consuming partition queues with the consumer's
`add_task_queue` / `cancel_task_queue`: local calls, nothing broadcast, so no worker can miss
a change. The loop applies changes only between tasks (the pool is solo), so a batch always
reads from the partitions the worker owns at that moment. The same timer touches the
heartbeat file, so a wedged loop shows as a stale heartbeat.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from celery import bootsteps
from redis import RedisError

from domain.ownership import share_of
from domain.partitions import is_partition_queue, partition_queue
from infra.heartbeat import HeartbeatFile
from infra.membership import Membership, WorkerRecord
from infra.metrics import OWNED_PARTITIONS, OWNERSHIP_CHANGES

log = logging.getLogger(__name__)

APPLY_EVERY_SECONDS = 0.5  # how often the event loop catches up with the wanted share


def partition_of(queue: str) -> int | None:
    """The partition a queue named by `partition_queue` carries, or None for other queues."""
    return int(queue.rpartition(".")[2]) if is_partition_queue(queue) else None


class PartitionOwner:
    """What this worker consumes (`owned`) and what the membership says it should (`wanted`).

    `wanted` is written by the heartbeat thread, `owned` only by the consumer's event loop;
    each is replaced whole, never mutated, so either thread reads a consistent set.
    """

    def __init__(
        self,
        name: str,
        partitions: int,
        membership: Membership,
        lease_seconds: float,
        pinned: frozenset[int] | None = None,
        host: str = "",
    ) -> None:
        self.name = name
        self.partitions = partitions
        self.pinned = pinned
        # A pinned worker is given its queues when it starts; the others add theirs later.
        self.owned: frozenset[int] = pinned if pinned is not None else frozenset()
        self.wanted: frozenset[int] = self.owned
        self._membership = membership
        self._interval = lease_seconds / 5
        self._host = host
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False
        self.initial: frozenset[int] | None = None  # given to Celery's --queues

    def beat(self) -> None:
        """Renew the lease, publishing what is consumed now; recompute the wanted share."""
        record = WorkerRecord(
            self.name, tuple(sorted(self.owned)), self.pinned is not None, os.getpid(), self._host
        )
        try:
            members = self._membership.heartbeat(record)
        except RedisError as exc:
            if not self._failing:
                log.warning("membership heartbeat failed, keeping current partitions: %s", exc)
                self._failing = True
            return
        if self._failing:
            log.warning("membership heartbeat works again")
            self._failing = False
        if self.pinned is None:
            sharing = [m.name for m in members if not m.pinned]
            self.wanted = share_of(self.name, self.partitions, sharing)

    def first_share(self) -> frozenset[int]:
        """The share this worker will own once it joins the members live now, for Celery to
        consume from its start (adding 64 queues one by one later costs a round trip each).

        Only reads: the worker joins when its consumer starts, so the others keep consuming
        these partitions until it can (a brief overlap, never a gap).
        """
        if self.pinned is not None:
            return self.pinned
        try:
            members = self._membership.live()
        except RedisError:
            members = []
        sharing = [m.name for m in members if not m.pinned]
        self.initial = share_of(self.name, self.partitions, sharing)
        return self.initial

    def start(self) -> None:
        """Beat now (so the share is known before consuming), then beat in a thread."""
        if self._thread is not None:
            return
        self.beat()
        self._thread = threading.Thread(target=self._run, name="membership", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._interval)
            self._wake.clear()
            if not self._stop.is_set():
                self.beat()

    def settled(self, owned: frozenset[int]) -> None:
        """The event loop now consumes `owned`; publish it at once."""
        self.owned = owned
        self._wake.set()

    def leave(self) -> None:
        """Stop beating and leave the membership, so the others take the partitions at once."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            self._membership.leave(self.name)
        except RedisError as exc:
            log.warning("could not leave the membership (the lease will run out): %s", exc)


def ownership_step(
    owner: PartitionOwner,
    heartbeat: HeartbeatFile,
    on_change: Callable[[list[str]], None],
) -> type[bootsteps.StartStopStep]:
    """A consumer bootstep keeping the consumed partition queues in line with `owner.wanted`.

    `on_change` gets the partition queues consumed after every change (the batch reader's list).
    """

    class PartitionOwnership(bootsteps.StartStopStep):
        requires = ("celery.worker.consumer.tasks:Tasks",)

        def __init__(self, parent: Any, **kwargs: Any) -> None:
            super().__init__(parent, **kwargs)
            self._timer: Any = None

        def start(self, c: Any) -> None:
            if owner.initial is not None:  # Celery consumes these already (--queues)
                initial, owner.initial = owner.initial, None
                self.changed(frozenset(), initial)
            owner.start()  # joins, publishing what it consumes
            self.apply(c)
            self._timer = c.timer.call_repeatedly(APPLY_EVERY_SECONDS, self.apply, (c,))

        def stop(self, c: Any) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def apply(self, c: Any) -> None:
            heartbeat.touch()
            wanted, owned = owner.wanted, owner.owned
            if wanted == owned:
                return
            for partition in sorted(owned - wanted):
                c.cancel_task_queue(partition_queue(partition))
            for partition in sorted(wanted - owned):
                c.add_task_queue(partition_queue(partition))
            self.changed(owned, wanted)

        def changed(self, owned: frozenset[int], wanted: frozenset[int]) -> None:
            OWNERSHIP_CHANGES.labels(change="added").inc(len(wanted - owned))
            OWNERSHIP_CHANGES.labels(change="removed").inc(len(owned - wanted))
            OWNED_PARTITIONS.set(len(wanted))
            on_change([partition_queue(p) for p in sorted(wanted)])
            owner.settled(wanted)
            log.info(
                "%s now consumes %d of %d partitions (+%d -%d)",
                owner.name,
                len(wanted),
                owner.partitions,
                len(wanted - owned),
                len(owned - wanted),
            )

    return PartitionOwnership
