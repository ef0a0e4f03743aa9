"""The ownership bootstep and heartbeat thread against a fake consumer and fakeredis: what it
adds and cancels, what it publishes, the metrics it moves, and the heartbeat file it touches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fakeredis
from prometheus_client import REGISTRY

from infra.heartbeat import HeartbeatFile, heartbeat_problem
from infra.membership import Membership, WorkerRecord
from workers.ownership import PartitionOwner, ownership_step


class FakeConsumer:
    """The two calls of Celery's consumer the step uses, and a timer that never fires."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def add_task_queue(self, queue: str) -> None:
        self.calls.append(f"+{queue}")

    def cancel_task_queue(self, queue: str) -> None:
        self.calls.append(f"-{queue}")

    class timer:  # noqa: N801 - mimics Celery's attribute
        @staticmethod
        def call_repeatedly(*_: Any) -> Any:
            return None


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_the_step_follows_the_membership_and_reports_every_change(tmp_path: Path) -> None:
    redis = fakeredis.FakeRedis()
    membership = Membership(redis, lease_seconds=5)
    owner = PartitionOwner("w1", 8, membership, lease_seconds=5)
    consumed: list[list[str]] = []
    heartbeat = HeartbeatFile(tmp_path / "heartbeat")
    step = ownership_step(owner, heartbeat, consumed.append)(parent=None)
    consumer = FakeConsumer()
    added = metric("booking_partition_ownership_changes_total", change="added")
    removed = metric("booking_partition_ownership_changes_total", change="removed")

    step.start(consumer)  # alone: takes all 8
    assert consumer.calls == [f"+bookings.{p}" for p in range(8)]
    assert consumed[-1] == [f"bookings.{p}" for p in range(8)]
    assert metric("booking_owned_partitions") == 8
    assert heartbeat_problem(tmp_path / "heartbeat", 5) is None

    membership.heartbeat(WorkerRecord("w2"))  # another worker joins
    owner.beat()
    consumer.calls.clear()
    step.apply(consumer)
    kept = owner.owned
    assert 0 < len(kept) < 8
    assert sorted(consumer.calls) == sorted(f"-bookings.{p}" for p in set(range(8)) - kept)
    owner.beat()  # publishes what it consumes now
    assert {r.name: set(r.partitions) for r in membership.live()}["w1"] == kept
    assert metric("booking_owned_partitions") == len(kept)
    assert metric("booking_partition_ownership_changes_total", change="added") == added + 8
    assert metric(
        "booking_partition_ownership_changes_total", change="removed"
    ) == removed + 8 - len(kept)

    membership.leave("w2")  # and leaves: everything comes back
    owner.beat()
    step.apply(consumer)
    assert owner.owned == frozenset(range(8))
    owner.leave()
    assert membership.live() == []


def test_a_pinned_worker_publishes_its_queues_and_changes_nothing(tmp_path: Path) -> None:
    membership = Membership(fakeredis.FakeRedis(), lease_seconds=5)
    owner = PartitionOwner("pinned", 8, membership, 5, pinned=frozenset({1, 2}))
    step = ownership_step(owner, HeartbeatFile(None), lambda _: None)(parent=None)
    consumer = FakeConsumer()
    step.start(consumer)
    membership.heartbeat(WorkerRecord("other"))
    owner.beat()
    step.apply(consumer)
    assert consumer.calls == []
    assert [(r.name, r.partitions, r.pinned) for r in membership.live()] == [
        ("other", (), False),
        ("pinned", (1, 2), True),
    ]
    owner.leave()


def test_a_worker_consumes_its_first_share_from_the_start_and_joins_then() -> None:
    membership = Membership(fakeredis.FakeRedis(), lease_seconds=5)
    owner = PartitionOwner("w1", 8, membership, lease_seconds=5)
    assert owner.first_share() == frozenset(range(8))  # what run_worker hands to --queues
    assert membership.live() == []  # not a member before its consumer runs
    consumed: list[list[str]] = []
    added = metric("booking_partition_ownership_changes_total", change="added")
    step = ownership_step(owner, HeartbeatFile(None), consumed.append)(parent=None)
    consumer = FakeConsumer()
    step.start(consumer)
    assert consumer.calls == []  # nothing added one by one
    assert owner.owned == frozenset(range(8))
    assert [r.partitions for r in membership.live()] == [tuple(range(8))]  # joined with them
    assert consumed == [[f"bookings.{p}" for p in range(8)]]
    assert metric("booking_partition_ownership_changes_total", change="added") == added + 8
    owner.leave()
