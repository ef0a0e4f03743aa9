"""Partition ownership with real worker processes: workers joining, leaving (SIGTERM), dying
(SIGKILL) and freezing under a steady booking load, the liveness heartbeat, and pinning.

Run with `-s` to see the assignment over time."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from domain.partitions import partition_for, queue_for
from infra.membership import Membership, WorkerRecord
from tests.servers import ROOT, Process
from tests.workers.conftest import PARTITIONS, Pipeline

pytestmark = pytest.mark.anyio

SETTLE_WITHIN = 10.0  # seconds after a change until every partition has exactly one live owner


def ranges(numbers: list[int]) -> str:
    parts: list[str] = []
    for n in sorted(numbers):
        if parts and parts[-1].split("-")[-1] == str(n - 1):
            parts[-1] = f"{parts[-1].split('-')[0]}-{n}"
        else:
            parts.append(str(n))
    return ",".join(parts) or "-"


class Timeline:
    """Polls the membership in a thread and prints every change of the assignment."""

    def __init__(self, pipe: Pipeline) -> None:
        self.pipe = pipe
        self.started = time.monotonic()
        self.lines: list[str] = []
        self.labels: dict[int, str] = {}
        self._last = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def label(self, worker: Process, label: str) -> None:
        self.labels[worker.pid] = label

    def say(self, text: str) -> None:
        line = f"{time.monotonic() - self.started:6.1f}s  {text}"
        self.lines.append(line)
        print(line, flush=True)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            try:
                members = self.pipe.members()
            except Exception as exc:  # a transient Redis hiccup must not end the recording
                self.say(f"(membership unreadable: {exc})")
                continue
            owned = {p for m in members for p in m.partitions}
            live = {w.pid for w in self.pipe.live_workers()}
            shown = " | ".join(
                f"{self.labels.get(m.pid, m.name)}{'' if m.pid in live else ' (dead)'}:"
                f" {ranges(list(m.partitions))}"
                for m in members
            )
            unowned = [p for p in range(PARTITIONS) if p not in owned]
            text = f"{shown} | unowned: {ranges(unowned)}"
            if text != self._last:
                self._last = text
                self.say(text)

    def __enter__(self) -> Timeline:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)


async def settle(pipe: Pipeline, timeline: Timeline, since: float, what: str) -> float:
    """Seconds from `since` until every partition is consumed by exactly one live worker."""
    while (problem := await asyncio.to_thread(pipe.unsettled)) is not None:
        if time.monotonic() - since > SETTLE_WITHIN:
            raise AssertionError(f"{what}: not settled within {SETTLE_WITHIN}s: {problem}")
        await asyncio.sleep(0.05)
    took = time.monotonic() - since
    timeline.say(f"settled {took:.1f}s after {what}")
    return took


async def joined(pipe: Pipeline, timeline: Timeline, workers: list[Process]) -> float:
    """The moment all `workers` are in the membership (booting takes a while under load)."""
    started = time.monotonic()
    while not {w.pid for w in workers} <= {m.pid for m in await asyncio.to_thread(pipe.members)}:
        for worker in workers:
            if worker.popen.poll() is not None:
                raise RuntimeError(f"worker exited:\n{worker.tail()}")
        assert time.monotonic() - started < 120, "workers did not join within 120 s"
        await asyncio.sleep(0.05)
    timeline.say(f"joined {time.monotonic() - started:.1f}s after being started")
    return time.monotonic()


def far_slot(index: int) -> str:
    """The `index`-th half-hour slot from 20 days ahead, in UTC."""
    day = datetime.now(UTC).date() + timedelta(days=20 + index // 48)
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return (start + timedelta(minutes=30 * (index % 48))).isoformat()


class SteadyLoad:
    """Pairs of books of one slot (the first accepted must win) at a steady rate."""

    def __init__(self, pipe: Pipeline, http: httpx.AsyncClient, providers: list[str]) -> None:
        self.pipe, self.http, self.providers = pipe, http, providers
        self.next_slot: dict[str, int] = defaultdict(int)
        self.accepted: list[str] = []
        self.refused = 0
        self.stopping = False

    async def send_pair(self, provider: str) -> None:
        start = far_slot(self.next_slot[provider])
        self.next_slot[provider] += 1
        for response in await asyncio.gather(
            self.pipe.book(self.http, provider, start), self.pipe.book(self.http, provider, start)
        ):
            if response.status_code == 202:
                self.accepted.append(response.json()["id"])
            else:
                assert response.status_code == 503, response.text  # overload: told to retry
                self.refused += 1

    async def run(self, pairs_per_second: float) -> None:
        order = itertools.cycle(random.sample(self.providers, len(self.providers)))
        pending: set[asyncio.Task[None]] = set()
        started = time.monotonic()
        for sent in itertools.count():
            if self.stopping:
                break
            task = asyncio.create_task(self.send_pair(next(order)))
            pending.add(task)
            task.add_done_callback(pending.discard)
            due = started + (sent + 1) / pairs_per_second
            await asyncio.sleep(max(0.0, due - time.monotonic()))
        await asyncio.gather(*pending)


def assert_every_request_decided_once_in_order(pipe: Pipeline, request_ids: list[str]) -> None:
    ids = [uuid.UUID(i) for i in request_ids]
    rows = pipe.sql(
        "SELECT provider_id, start_at, seq, status, error_code, booking_id"
        " FROM booking_requests WHERE id = ANY(%s) ORDER BY seq",
        ids,
    )
    assert len(rows) == len(ids)
    assert {row[3] for row in rows} <= {"succeeded", "rejected"}, "every request terminal"
    by_slot: dict[tuple[object, object], list[tuple[str, str | None]]] = defaultdict(list)
    for provider, start, _, status, code, _ in rows:
        by_slot[(provider, start)].append((status, code))
    for slot, outcomes in by_slot.items():
        # Per-provider accept order: the first request accepted for a slot takes it.
        assert outcomes[0] == ("succeeded", None), (slot, outcomes)
        assert all(o == ("rejected", "slot_unavailable") for o in outcomes[1:]), (slot, outcomes)
    bookings = [row[5] for row in rows if row[3] == "succeeded"]
    assert len(set(bookings)) == len(bookings) == len(by_slot)
    made = pipe.sql(
        "SELECT count(*) FROM bookings WHERE id IN"
        " (SELECT booking_id FROM booking_requests WHERE id = ANY(%s))",
        ids,
    )
    assert made == [(len(bookings),)]
    confirmed_events = pipe.sql(
        "SELECT request_id, count(*) FROM events WHERE type = 'booking.confirmed'"
        " AND request_id = ANY(%s) GROUP BY request_id HAVING count(*) > 1",
        ids,
    )
    assert confirmed_events == [], "a request applied twice"
    assert pipe.overlapping_confirmed() == 0


@pytest.mark.slow
async def test_partitions_follow_workers_joining_leaving_and_dying_under_load(
    stopped: Pipeline, http: httpx.AsyncClient
) -> None:
    providers: list[str] = []
    for _ in range(0, 500, 25):
        providers += await asyncio.gather(*(stopped.create_provider(http) for _ in range(25)))
    stopped.start_scheduler()
    settled: dict[str, float] = {}
    with Timeline(stopped) as timeline:
        first = stopped.start_worker(wait=False)
        timeline.label(first, "w1")
        timeline.say("started w1")
        await joined(stopped, timeline, [first])
        settled["w1 joined"] = await settle(stopped, timeline, time.monotonic(), "w1 joined")
        load = SteadyLoad(stopped, http, providers)
        sending = asyncio.create_task(load.run(pairs_per_second=40))
        await asyncio.sleep(4)

        second, third = stopped.start_worker(wait=False), stopped.start_worker(wait=False)
        timeline.label(second, "w2")
        timeline.label(third, "w3")
        timeline.say("started w2 and w3")
        # A process takes a few seconds to boot on a loaded machine; the change that ownership
        # answers is the moment they joined the membership.
        changed = await joined(stopped, timeline, [second, third])
        settled["w2, w3 joined"] = await settle(stopped, timeline, changed, "w2 and w3 joined")
        await asyncio.sleep(4)

        changed = time.monotonic()
        second.popen.send_signal(signal.SIGTERM)
        timeline.say("SIGTERM to w2")
        code = await asyncio.to_thread(second.popen.wait, 30)
        timeline.say(f"w2 exited with {code} after {time.monotonic() - changed:.1f}s")
        assert code == 0
        assert not stopped.heartbeat_file(second).exists()  # removed on a clean exit
        settled["w2 SIGTERM"] = await settle(stopped, timeline, changed, "SIGTERM to w2")
        await asyncio.sleep(4)

        changed = time.monotonic()
        third.kill()
        timeline.say("SIGKILL to w3")
        settled["w3 SIGKILL"] = await settle(stopped, timeline, changed, "SIGKILL to w3")
        await asyncio.sleep(3)

        load.stopping = True
        await sending
        timeline.say(f"load stopped: {len(load.accepted)} accepted, {load.refused} told to retry")
        took = await asyncio.to_thread(stopped.wait_all_terminal, load.accepted, 60)
        timeline.say(f"all {len(load.accepted)} requests terminal {took:.1f}s after the load")
    assert len(load.accepted) > 500  # a steady trickle even on a loaded machine
    assert_every_request_decided_once_in_order(stopped, load.accepted)
    print("settled after each change (s):", {k: round(v, 1) for k, v in settled.items()})
    assert all(v <= SETTLE_WITHIN for v in settled.values())


async def test_a_worker_only_takes_wake_ups_from_partitions_it_owns(
    stopped: Pipeline, http: httpx.AsyncClient
) -> None:
    """A live member that owns a partition keeps its wake-ups: another worker's batch does not
    take them off its queue (here the member is a stand-in that never consumes)."""
    stand_in = WorkerRecord("stand-in@test", pid=0)
    membership = Membership(stopped.redis(), lease_seconds=120)
    membership.heartbeat(stand_in)
    try:
        worker = stopped.start_worker(wait=False)
        mine: set[int] = set()
        deadline = time.monotonic() + 30
        while not mine and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            mine = {p for m in stopped.members() if m.pid == worker.pid for p in m.partitions}
        theirs = set(range(PARTITIONS)) - mine
        assert mine and theirs, "rendezvous gave every partition to one member"
        membership.heartbeat(WorkerRecord("stand-in@test", tuple(sorted(theirs)), pid=0))

        ours, others = [], []
        while len(ours) < 3 or len(others) < 3:
            provider = await stopped.create_provider(http)
            partition = partition_for(uuid.UUID(provider), PARTITIONS)
            (ours if partition in mine else others).append(provider)
        ours, others = ours[:3], others[:3]
        # Wake-ups for the stand-in's providers wait on its queues while our worker is busy
        # with its own: a batch reader that looked everywhere would take them too.
        waiting = [(await stopped.book(http, p, far_slot(0))).json()["id"] for p in others]
        decided = [(await stopped.book(http, p, far_slot(0))).json()["id"] for p in ours]
        stopped.wait_all_terminal(decided, timeout=30)
        await asyncio.sleep(1)
        assert stopped.pending(waiting) == len(waiting)
        queues = {queue_for(uuid.UUID(p), PARTITIONS) for p in others}
        assert sum(int(stopped.redis().llen(q)) for q in queues) == len(others)
    finally:
        membership.leave("stand-in@test")
    # Once the stand-in is gone its partitions are the worker's, and their requests are decided.
    stopped.wait_settled()
    stopped.wait_all_terminal(waiting, timeout=30)


async def test_a_pinned_worker_consumes_what_it_was_told_and_takes_no_share(
    stopped: Pipeline, http: httpx.AsyncClient
) -> None:
    pinned = stopped.start_worker("--queues", "bookings.1,bookings.2,maintenance", wait=False)
    shared = stopped.start_worker(wait=False)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        members = {m.pid: m for m in stopped.members()}
        if pinned.pid in members and shared.pid in members and members[shared.pid].partitions:
            break
        await asyncio.sleep(0.1)
    assert members[pinned.pid].pinned
    assert members[pinned.pid].partitions == (1, 2)
    # Pinned workers take no share: the other worker still owns all partitions by itself.
    assert members[shared.pid].partitions == tuple(range(PARTITIONS))
    result = subprocess.run(
        [sys.executable, "-m", "cli", "partitions", "--json"],
        env={**os.environ, **stopped.env},
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    listed = json.loads(result.stdout)
    assert set(listed) == {"workers", "unowned"}
    assert sorted(listed["workers"].values(), key=len) == [[1, 2], list(range(PARTITIONS))]
    assert listed["unowned"] == []


def probe(heartbeat: Path, max_age: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", "probe", "--max-age", str(max_age)],
        env={**os.environ, "HEARTBEAT_FILE": str(heartbeat)},
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )


@contextmanager
def frozen(worker: Process) -> Iterator[None]:
    worker.popen.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        worker.popen.send_signal(signal.SIGCONT)


async def test_a_frozen_worker_goes_stale_for_the_probe_and_loses_its_partitions(
    stopped: Pipeline, http: httpx.AsyncClient
) -> None:
    stopped.start_scheduler()  # wakes what a frozen worker may have taken
    first = stopped.start_worker()
    second = stopped.start_worker()
    heartbeat = stopped.heartbeat_file(first)
    assert probe(heartbeat, max_age=10).returncode == 0
    provider = await stopped.create_provider(http)
    owner_pid = next(
        m.pid
        for m in stopped.members()
        if partition_for(uuid.UUID(provider), PARTITIONS) in m.partitions
    )
    victim, survivor = (first, second) if owner_pid == first.pid else (second, first)
    with frozen(victim):
        time.sleep(3)
        stale = probe(stopped.heartbeat_file(victim), max_age=2)
        assert stale.returncode == 1
        assert stale.stdout.startswith("probe: stale heartbeat:"), stale.stdout
        assert len(stale.stdout.strip().splitlines()) == 1
        # The frozen worker's lease runs out; the survivor takes its partitions and decides.
        request = (await stopped.book(http, provider, far_slot(5))).json()["id"]
        stopped.wait_all_terminal([request], timeout=30)
        assert {m.pid for m in stopped.members()} == {survivor.pid}
    # Thawed, it renews its lease, joins again and takes back its share.
    stopped.wait_settled()
    assert {m.pid for m in stopped.members()} == {first.pid, second.pid}
    victim.stop()
    assert victim.popen.returncode == 0
    gone = probe(stopped.heartbeat_file(victim), max_age=10)
    assert (gone.returncode, gone.stdout.split(":")[1].strip()) == (1, "no heartbeat")


async def test_the_scheduler_keeps_a_heartbeat_and_leaves_no_files(
    stopped: Pipeline, tmp_path: Path
) -> None:
    heartbeat = tmp_path / "heartbeat"
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    before = set(ROOT.iterdir())
    scheduler = stopped.start_scheduler(HEARTBEAT_FILE=str(heartbeat), TMPDIR=str(scratch))
    deadline = time.monotonic() + 30
    while not heartbeat.exists() and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    touched = heartbeat.stat().st_mtime
    await asyncio.sleep(2.5)
    assert heartbeat.stat().st_mtime > touched  # touched on every tick
    assert probe(heartbeat, max_age=10).returncode == 0
    stopped.stop_scheduler()
    assert scheduler.popen.returncode == 0
    assert not heartbeat.exists()
    assert list(scratch.iterdir()) == []  # no schedule file in the temporary directory...
    assert set(ROOT.iterdir()) == before  # ...nor in the working directory
    quiet = scheduler.log.read_text()
    assert "Sending due task" not in quiet  # no line every SWEEP_INTERVAL_SECONDS


def test_a_worker_starts_without_a_line_per_queue(stopped: Pipeline) -> None:
    worker = stopped.start_worker()
    log = worker.log.read_text()
    assert "bookings.1" not in log
    ours = [line for line in log.splitlines() if " celery." in line or " workers." in line]
    assert len(ours) <= 4, log  # connected, the share it took, ready
