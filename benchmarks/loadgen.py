"""A small, CPU-frugal HTTP/1.1 load generator on asyncio (uvloop when importable).

Two ways to drive a server:

* closed loop (`closed_loop`): C keep-alive connections, each sending its next request as soon
  as the previous answer arrived, for D seconds. Measures the throughput the server sustains at
  concurrency C; latency is from the actual send.
* open loop (`open_loop`): requests are *scheduled* at a fixed rate R per second for D seconds,
  whatever the server does. Each request's latency is measured from its scheduled send time, so a
  server stall shows up in the percentiles instead of silently slowing the generator down
  (coordinated omission). Connections are added on demand (up to `max_connections`) so that a
  request never waits for a free connection unless that cap is reached; `queued` in the result
  says how many had to.

Requests come from a factory: a zero-argument callable returning either
`(method, path, headers, body)` (headers a mapping or None; body bytes, str, a JSON-able
dict/list, or None) or ready-made request bytes from `encode_request` (cheapest: encode a few
requests up front and pick one per call).

Everything runs on protocol callbacks: no task, future or timer per request; timeouts are found by
a sweeper a few times a second. One process drives roughly 10-20k requests/s on one core (see
`python -m benchmarks.loadgen selftest`); `processes=N` splits the load over N processes and merges
the results.

Command line:
    python -m benchmarks.loadgen run http://127.0.0.1:8000/health/live -c 32 -d 10
    python -m benchmarks.loadgen run URL -r 2000 -d 10 -H 'Authorization: Bearer KEY'
    python -m benchmarks.loadgen serve-trivial --port 8099      # constant-answer server
    python -m benchmarks.loadgen selftest                       # the generator's own ceiling
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import multiprocessing
import os
import socket
import subprocess
import sys
import time
from array import array
from collections import Counter, deque
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

try:  # pragma: no cover - depends on the platform
    import uvloop
except ImportError:  # pragma: no cover
    uvloop = None  # type: ignore[assignment]

import msgspec  # a dependency of the project

RequestSpec = tuple[str, str, Mapping[str, str] | None, Any]
RequestFactory = Callable[[], "RequestSpec | bytes"]
Validator = Callable[[int, bytes], bool]

_now = time.perf_counter

# ----------------------------------------------------------------------------- requests


def _json_bytes(obj: Any) -> bytes:
    encoded: bytes = msgspec.json.encode(obj)
    return encoded


def encode_request(
    method: str,
    path: str,
    host: str,
    headers: Mapping[str, str] | None = None,
    body: Any = None,
) -> bytes:
    """The bytes of one HTTP/1.1 request (keep-alive is HTTP/1.1's default)."""
    parts = [f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n"]
    lowered = {k.lower() for k in headers} if headers else set()
    if body is not None and not isinstance(body, bytes | bytearray | str):
        body = _json_bytes(body)
        if "content-type" not in lowered:
            parts.append("Content-Type: application/json\r\n")
    if isinstance(body, str):
        body = body.encode()
    if headers:
        parts.extend(f"{k}: {v}\r\n" for k, v in headers.items())
    if body is not None or method in ("POST", "PUT", "PATCH"):
        body = body or b""
        if "content-length" not in lowered:
            parts.append(f"Content-Length: {len(body)}\r\n")
    parts.append("\r\n")
    head = "".join(parts).encode("latin-1")
    return head + bytes(body) if body else head


@dataclass(frozen=True, slots=True)
class Target:
    host: str
    port: int
    host_header: str
    base_path: str

    @classmethod
    def parse(cls, url: str) -> Target:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme != "http":
            raise ValueError(f"only http:// is supported, got {url!r}")
        host = parts.hostname or "127.0.0.1"
        port = parts.port or 80
        host_header = host if port == 80 else f"{host}:{port}"
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        return cls(host, port, host_header, path)


def _encoder(target: Target, factory: RequestFactory) -> Callable[[], bytes]:
    host = target.host_header

    def next_request() -> bytes:
        spec = factory()
        if isinstance(spec, bytes | bytearray):
            return bytes(spec)
        method, path, headers, body = spec
        return encode_request(method, path, host, headers, body)

    return next_request


# ----------------------------------------------------------------------------- results


def percentile(sorted_values: Any, pct: float) -> float:
    """Nearest-rank percentile of an ascending sequence (0.0 when empty)."""
    n = len(sorted_values)
    if n == 0:
        return 0.0
    rank = max(1, math.ceil(pct / 100.0 * n))
    return float(sorted_values[min(rank, n) - 1])


@dataclass
class Result:
    """What one run measured. Latencies are seconds in `latencies`, milliseconds in the summary."""

    mode: str  # "closed" or "open"
    duration_s: float  # the measured window (open loop: until the last answer, if later)
    requests: int  # answers received (any status) in the window
    status_counts: dict[str, int]
    errors: dict[str, int]  # connect, closed, timeout, protocol, unexpected_status, invalid
    concurrency: int | None = None
    offered_rate: float | None = None
    scheduled: int | None = None  # open loop: requests scheduled in the measured window
    queued: int = 0  # open loop: requests that waited for a free connection
    connections: int = 0  # connections opened in total (including reconnects)
    processes: int = 1
    generator_cpu_pct: float = 0.0  # the generator's own CPU use over the run (100 = one core)
    warmup_requests: int = 0  # answers received during the unmeasured warm-up
    latencies: array[float] = field(default_factory=lambda: array("d"), repr=False)

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def latency_ms(self) -> dict[str, float]:
        values = sorted(self.latencies)
        if not values:
            return dict.fromkeys(("min", "mean", "p50", "p90", "p99", "p99.9", "max"), 0.0)
        return {
            "min": values[0] * 1000.0,
            "mean": sum(values) / len(values) * 1000.0,
            "p50": percentile(values, 50) * 1000.0,
            "p90": percentile(values, 90) * 1000.0,
            "p99": percentile(values, 99) * 1000.0,
            "p99.9": percentile(values, 99.9) * 1000.0,
            "max": values[-1] * 1000.0,
        }

    def summary(self) -> dict[str, Any]:
        """A JSON-able summary (no raw latencies)."""
        out: dict[str, Any] = {
            "mode": self.mode,
            "duration_s": round(self.duration_s, 3),
            "requests": self.requests,
            "rps": round(self.rps, 1),
            "latency_ms": {k: round(v, 3) for k, v in self.latency_ms().items()},
            "status_counts": dict(sorted(self.status_counts.items())),
            "errors": dict(sorted(self.errors.items())),
            "error_count": self.error_count,
            "connections": self.connections,
            "processes": self.processes,
            "generator_cpu_pct": round(self.generator_cpu_pct, 1),
            "warmup_requests": self.warmup_requests,
        }
        if self.mode == "closed":
            out["concurrency"] = self.concurrency
        else:
            out["offered_rate"] = self.offered_rate
            out["scheduled"] = self.scheduled
            out["queued"] = self.queued
        return out

    def line(self) -> str:
        lat = self.latency_ms()
        return (
            f"{self.requests} req in {self.duration_s:.2f}s = {self.rps:,.0f} req/s | "
            f"p50 {lat['p50']:.2f} p90 {lat['p90']:.2f} p99 {lat['p99']:.2f} "
            f"max {lat['max']:.2f} ms | status {dict(self.status_counts)} | "
            f"errors {dict(self.errors) or 0} | generator cpu {self.generator_cpu_pct:.0f}%"
        )


def merge(results: list[Result]) -> Result:
    """One result from several processes that ran the same window side by side."""
    if len(results) == 1:
        return results[0]
    first = results[0]
    latencies = array("d")
    statuses: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    for r in results:
        latencies.extend(r.latencies)
        statuses.update(r.status_counts)
        errors.update(r.errors)
    duration = max(r.duration_s for r in results)
    return Result(
        mode=first.mode,
        duration_s=duration,
        requests=sum(r.requests for r in results),
        status_counts=dict(statuses),
        errors=dict(errors),
        concurrency=sum(r.concurrency or 0 for r in results) if first.mode == "closed" else None,
        offered_rate=sum(r.offered_rate or 0 for r in results) if first.mode == "open" else None,
        scheduled=sum(r.scheduled or 0 for r in results) if first.mode == "open" else None,
        queued=sum(r.queued for r in results),
        connections=sum(r.connections for r in results),
        processes=sum(r.processes for r in results),
        generator_cpu_pct=sum(r.generator_cpu_pct for r in results),
        warmup_requests=sum(r.warmup_requests for r in results),
        latencies=latencies,
    )


# ----------------------------------------------------------------------------- connections


class _ProtocolError(Exception):
    pass


def _chunked_end(buf: bytearray, pos: int) -> int:
    """Index just past a complete chunked body starting at `pos`, or -1 if incomplete."""
    while True:
        nl = buf.find(b"\r\n", pos)
        if nl < 0:
            return -1
        try:
            size = int(bytes(buf[pos:nl]).split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise _ProtocolError("bad chunk size") from None
        pos = nl + 2
        if size == 0:
            if buf[pos : pos + 2] == b"\r\n":
                return pos + 2
            end = buf.find(b"\r\n\r\n", pos)  # trailers
            return -1 if end < 0 else end + 4
        pos += size + 2
        if pos > len(buf):
            return -1


def _dechunk(raw: bytes) -> bytes:
    out = bytearray()
    pos = 0
    while True:
        nl = raw.find(b"\r\n", pos)
        size = int(raw[pos:nl].split(b";", 1)[0].strip(), 16)
        if size == 0:
            return bytes(out)
        out += raw[nl + 2 : nl + 2 + size]
        pos = nl + 2 + size + 2


class _Conn(asyncio.Protocol):
    """One keep-alive connection: sends a request, parses the answer, calls back the runner."""

    def __init__(self, run: _Run) -> None:
        self.run = run
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.t0 = 0.0  # latency is measured from here (send time, or scheduled time)
        self.busy = False
        self.dead = False
        self.head_end = -1
        self.body_len: int | None = 0
        self.chunked = False
        self.status = 0
        self.keep = True
        self.is_head = False

    # asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(self, data: bytes, t0: float) -> None:
        self.t0 = t0
        self.busy = True
        self.head_end = -1
        self.is_head = data.startswith(b"HEAD ")
        self.transport.write(data)  # type: ignore[union-attr]

    def data_received(self, data: bytes) -> None:
        if not self.busy:
            self.run.fail(self, "protocol")  # bytes nobody asked for
            return
        self.buf += data
        try:
            self._parse()
        except (_ProtocolError, ValueError):
            self.run.fail(self, "protocol")

    def _parse(self) -> None:
        buf = self.buf
        if self.head_end < 0:
            i = buf.find(b"\r\n\r\n")
            if i < 0:
                return
            if buf[:5] != b"HTTP/":
                raise _ProtocolError("not HTTP")
            status = int(buf[9:12])
            if 100 <= status < 200:  # interim answer: drop it, wait for the real one
                del buf[: i + 4]
                self._parse()
                return
            head = bytes(buf[:i]).lower()
            self.status = status
            self.head_end = i + 4
            self.chunked = False
            j = head.find(b"\r\ncontent-length:")
            if self.is_head or status in (204, 304):
                self.body_len = 0
            elif j >= 0:
                k = head.find(b"\r\n", j + 17)
                self.body_len = int(head[j + 17 : k if k >= 0 else len(head)])
            elif b"\r\ntransfer-encoding:" in head and b"chunked" in head:
                self.chunked = True
                self.body_len = None
            else:
                self.body_len = None  # until the server closes
            self.keep = b"\r\nconnection: close" not in head
        if self.chunked:
            end = _chunked_end(buf, self.head_end)
            if end < 0:
                return
        elif self.body_len is None:
            return
        else:
            end = self.head_end + self.body_len
            if len(buf) < end:
                return
        body = b""
        if self.run.wants_body:
            body = bytes(buf[self.head_end : end])
            if self.chunked:
                body = _dechunk(body)
        del buf[:end]
        self.busy = False
        if not self.keep:  # the server closes after this answer
            self.dead = True
        self.run.done(self, self.status, body)
        if not self.keep:
            self.transport.close()  # type: ignore[union-attr]
            self.run.retire(self)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.busy and not self.dead and self.head_end >= 0 and self.body_len is None:
            # a body delimited by the close
            body = bytes(self.buf[self.head_end :]) if self.run.wants_body else b""
            self.busy = False
            self.dead = True
            self.run.done(self, self.status, body)
            self.run.retire(self)
            return
        self.run.lost(self)


# ----------------------------------------------------------------------------- runs


class _Run:
    """Bookkeeping shared by both modes."""

    def __init__(
        self,
        target: Target,
        factory: RequestFactory,
        timeout: float,
        expect_status: Collection[int] | None,
        validate: Validator | None,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.target = target
        self.next_request = _encoder(target, factory)
        self.timeout = timeout
        self.expect = frozenset(expect_status) if expect_status else None
        self.validate = validate
        self.wants_body = validate is not None
        self.conns: set[_Conn] = set()
        self.opened = 0
        self.latencies = array("d")
        self.statuses: Counter[int] = Counter()
        self.errors: Counter[str] = Counter()
        self.record_from = math.inf
        self.record_until = math.inf
        self.last_done = 0.0
        self.stopping = False
        self.warmup_done = 0

    async def connect(self) -> _Conn:
        _, conn = await self.loop.create_connection(
            lambda: _Conn(self), self.target.host, self.target.port
        )
        self.conns.add(conn)
        self.opened += 1
        return conn

    def recording(self, t: float) -> bool:
        return self.record_from <= t <= self.record_until

    def record(self, conn: _Conn, status: int, body: bytes, now: float) -> None:
        self.latencies.append(now - conn.t0)
        self.statuses[status] += 1
        self.last_done = now
        if self.expect is not None and status not in self.expect:
            self.errors["unexpected_status"] += 1
        elif self.validate is not None and not self.validate(status, body):
            self.errors["invalid"] += 1

    def fail(self, conn: _Conn, kind: str) -> None:
        """The request on `conn` failed; drop the connection."""
        if conn.dead:
            return
        was_busy = conn.busy
        conn.dead = True
        conn.busy = False
        if was_busy and not self.stopping and self.counts_failure(conn):
            self.errors[kind] += 1
        if conn.transport is not None:
            conn.transport.abort()
        self.conns.discard(conn)
        self.replace(conn)

    def lost(self, conn: _Conn) -> None:
        if not conn.dead:
            self.fail(conn, "closed")
        self.conns.discard(conn)

    def retire(self, conn: _Conn) -> None:
        """`conn` answered and closed as announced (`Connection: close`); replace it."""
        if conn in self.conns:
            self.conns.discard(conn)
            if not self.stopping:
                self.replace(conn)

    async def sweep(self) -> None:
        """Fails requests older than the timeout, a few times a second."""
        period = min(0.25, self.timeout / 4)
        while True:
            await asyncio.sleep(period)
            limit = _now() - self.timeout
            for conn in [c for c in self.conns if c.busy and c.t0 < limit]:
                self.fail(conn, "timeout")

    def close_all(self) -> None:
        self.stopping = True
        for conn in list(self.conns):
            conn.dead = True
            if conn.transport is not None:
                conn.transport.close()
        self.conns.clear()

    def result_counts(self) -> tuple[dict[str, int], dict[str, int]]:
        return {str(k): v for k, v in self.statuses.items()}, dict(self.errors)

    # mode hooks
    def done(self, conn: _Conn, status: int, body: bytes) -> None:  # pragma: no cover
        raise NotImplementedError

    def replace(self, conn: _Conn) -> None:  # pragma: no cover
        raise NotImplementedError

    def counts_failure(self, conn: _Conn) -> bool:  # pragma: no cover
        raise NotImplementedError


class _ClosedRun(_Run):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pending_tasks: set[asyncio.Task[None]] = set()

    def done(self, conn: _Conn, status: int, body: bytes) -> None:
        now = _now()
        if self.record_from <= now <= self.record_until:
            self.record(conn, status, body, now)
        elif now < self.record_from:
            self.warmup_done += 1
        if now < self.record_until and not self.stopping and not conn.dead:
            conn.send(self.next_request(), _now())

    def counts_failure(self, conn: _Conn) -> bool:
        return self.recording(_now())

    def replace(self, conn: _Conn) -> None:
        if self.stopping or _now() >= self.record_until:
            return
        task = self.loop.create_task(self._reconnect())
        self.pending_tasks.add(task)
        task.add_done_callback(self.pending_tasks.discard)

    async def _reconnect(self) -> None:
        while not self.stopping and _now() < self.record_until:
            try:
                conn = await asyncio.wait_for(self.connect(), self.timeout)
            except (OSError, TimeoutError):
                if self.recording(_now()):
                    self.errors["connect"] += 1
                await asyncio.sleep(0.05)
                continue
            conn.send(self.next_request(), _now())
            return


class _OpenRun(_Run):
    def __init__(self, *args: Any, max_connections: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_connections = max_connections
        self.idle: list[_Conn] = []
        self.backlog: deque[tuple[float, bytes]] = deque()
        self.opening = 0
        self.queued = 0
        self.inflight = 0
        self.tasks: set[asyncio.Task[None]] = set()

    def dispatch(self, scheduled: float) -> None:
        data = self.next_request()
        self.inflight += 1
        while self.idle:
            conn = self.idle.pop()
            if not conn.dead:
                conn.send(data, scheduled)
                return
        self.backlog.append((scheduled, data))
        if self.record_from <= scheduled:
            self.queued += 1
        self.grow()

    def grow(self) -> None:
        while (
            len(self.backlog) > self.opening
            and len(self.conns) + self.opening < self.max_connections
        ):
            self.opening += 1
            task = self.loop.create_task(self._open_one())
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _open_one(self) -> None:
        try:
            conn = await asyncio.wait_for(self.connect(), self.timeout)
        except (OSError, TimeoutError):
            self.opening -= 1
            self.errors["connect"] += 1
            if self.backlog:  # the request that wanted it fails
                self.backlog.popleft()
                self.inflight -= 1
            await asyncio.sleep(0.05)
            return
        self.opening -= 1
        self.available(conn)

    def available(self, conn: _Conn) -> None:
        if self.stopping:
            return
        if self.backlog:
            scheduled, data = self.backlog.popleft()
            conn.send(data, scheduled)
        else:
            self.idle.append(conn)

    def done(self, conn: _Conn, status: int, body: bytes) -> None:
        self.inflight -= 1
        if conn.t0 >= self.record_from:
            self.record(conn, status, body, _now())
        else:
            self.warmup_done += 1
        if not conn.dead:
            self.available(conn)

    def counts_failure(self, conn: _Conn) -> bool:
        self.inflight -= 1
        return conn.t0 >= self.record_from

    def replace(self, conn: _Conn) -> None:
        with contextlib.suppress(ValueError):
            self.idle.remove(conn)
        self.grow()

    def fail_backlog(self) -> None:
        for scheduled, _ in self.backlog:
            if scheduled >= self.record_from:
                self.errors["timeout"] += 1
        self.backlog.clear()


def _new_loop() -> asyncio.AbstractEventLoop:
    return uvloop.new_event_loop() if uvloop is not None else asyncio.new_event_loop()


def _run_sync(coro: Any) -> Any:
    loop = _new_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


async def _wait_start(start_at: float | None) -> None:
    if start_at is not None:
        delay = start_at - time.time()
        if delay > 0:
            await asyncio.sleep(delay)


async def closed_loop_async(
    url: str,
    factory: RequestFactory,
    concurrency: int,
    duration: float,
    *,
    warmup: float = 0.0,
    timeout: float = 10.0,  # noqa: ASYNC109 - a per-request limit, not the call's
    expect_status: Collection[int] | None = None,
    validate: Validator | None = None,
    start_at: float | None = None,
) -> Result:
    """C connections sending back to back for `duration` seconds (after `warmup` unmeasured)."""
    cpu0, wall0 = time.process_time(), _now()
    run = _ClosedRun(Target.parse(url), factory, timeout, expect_status, validate)
    conns = []
    for _ in range(concurrency):
        try:
            conns.append(await asyncio.wait_for(run.connect(), timeout))
        except (OSError, TimeoutError) as exc:
            run.close_all()
            raise ConnectionError(f"cannot connect to {url}: {exc!r}") from exc
    await _wait_start(start_at)
    sweeper = asyncio.ensure_future(run.sweep())
    start = _now()
    run.record_from = start + warmup
    run.record_until = run.record_from + duration
    for conn in conns:
        conn.send(run.next_request(), _now())
    await asyncio.sleep(run.record_until - _now())
    sweeper.cancel()
    run.close_all()
    for task in list(run.pending_tasks):
        task.cancel()
    statuses, errors = run.result_counts()
    return Result(
        mode="closed",
        duration_s=duration,
        requests=len(run.latencies),
        status_counts=statuses,
        errors=errors,
        concurrency=concurrency,
        connections=run.opened,
        generator_cpu_pct=100.0 * (time.process_time() - cpu0) / (_now() - wall0),
        warmup_requests=run.warmup_done,
        latencies=run.latencies,
    )


async def open_loop_async(
    url: str,
    factory: RequestFactory,
    rate: float,
    duration: float,
    *,
    warmup: float = 0.0,
    connections: int | None = None,
    max_connections: int = 4096,
    timeout: float = 10.0,  # noqa: ASYNC109 - a per-request limit, not the call's
    expect_status: Collection[int] | None = None,
    validate: Validator | None = None,
    start_at: float | None = None,
) -> Result:
    """Requests scheduled at `rate`/s for `duration` s; latency from each scheduled send time.

    `connections` are opened up front (default: enough for 50 ms of answers, at least 8); more
    are opened whenever a request finds none idle, up to `max_connections`.
    """
    cpu0, wall0 = time.process_time(), _now()
    run = _OpenRun(
        Target.parse(url),
        factory,
        timeout,
        expect_status,
        validate,
        max_connections=max_connections,
    )
    initial = connections if connections is not None else max(8, math.ceil(rate * 0.05))
    initial = min(initial, max_connections)
    for _ in range(initial):
        try:
            run.idle.append(await asyncio.wait_for(run.connect(), timeout))
        except (OSError, TimeoutError) as exc:
            run.close_all()
            raise ConnectionError(f"cannot connect to {url}: {exc!r}") from exc
    await _wait_start(start_at)
    sweeper = asyncio.ensure_future(run.sweep())
    interval = 1.0 / rate
    start = _now() + 0.001
    total_warmup = math.ceil(warmup * rate)
    total = total_warmup + math.ceil(duration * rate)
    run.record_from = start + total_warmup * interval  # first measured request's schedule
    i = 0
    while i < total:
        now = _now()
        while i < total:
            scheduled = start + i * interval
            if scheduled > now:
                break
            run.dispatch(scheduled)
            i += 1
        if i < total:
            delay = start + i * interval - _now()
            await asyncio.sleep(max(0, delay))
    end_of_schedule = start + total * interval
    # drain: wait for what is still in flight, at most `timeout`
    drain_until = _now() + timeout
    while run.inflight > 0 and _now() < drain_until:  # noqa: ASYNC110 - a bounded poll
        await asyncio.sleep(0.005)
    sweeper.cancel()
    run.fail_backlog()
    for conn in list(run.conns):
        if conn.busy and conn.t0 >= run.record_from:
            run.errors["timeout"] += 1
    run.close_all()
    for task in list(run.tasks):
        task.cancel()
    measured = max(end_of_schedule, run.last_done) - run.record_from
    statuses, errors = run.result_counts()
    return Result(
        mode="open",
        duration_s=measured,
        requests=len(run.latencies),
        status_counts=statuses,
        errors=errors,
        offered_rate=rate,
        scheduled=total - total_warmup,
        queued=run.queued,
        connections=run.opened,
        generator_cpu_pct=100.0 * (time.process_time() - cpu0) / (_now() - wall0),
        warmup_requests=run.warmup_done,
        latencies=run.latencies,
    )


# ----------------------------------------------------------------------------- entry points


def _child(conn: Any, fn_name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    try:
        fn = closed_loop_async if fn_name == "closed" else open_loop_async
        conn.send(("ok", _run_sync(fn(*args, **kwargs))))
    except BaseException as exc:
        conn.send(("error", repr(exc)))
    finally:
        conn.close()


def _split(total: float, parts: int, integer: bool) -> list[Any]:
    if integer:
        base, extra = divmod(int(total), parts)
        return [base + (1 if i < extra else 0) for i in range(parts)]
    return [total / parts] * parts


def _in_processes(
    kind: str,
    processes: int,
    url: str,
    factory: RequestFactory,
    load: float,
    duration: float,
    kwargs: dict[str, Any],
) -> Result:
    """Forks `processes` generators that start together; merges their results (Linux: fork)."""
    ctx = multiprocessing.get_context("fork")
    loads = _split(load, processes, integer=(kind == "closed"))
    start_at = time.time() + 0.5 + 0.002 * (sum(loads) if kind == "closed" else 0)
    children = []
    for share in loads:
        parent_end, child_end = ctx.Pipe(duplex=False)
        proc = ctx.Process(
            target=_child,
            args=(
                child_end,
                kind,
                (url, factory, share, duration),
                {**kwargs, "start_at": start_at},
            ),
        )
        proc.start()
        child_end.close()
        children.append((proc, parent_end))
    results: list[Result] = []
    failures: list[str] = []
    for proc, pipe in children:
        status, payload = pipe.recv()
        proc.join()
        (results if status == "ok" else failures).append(payload)
    if failures:
        raise RuntimeError(f"load generator process failed: {failures[0]}")
    return merge(results)


def closed_loop(
    url: str,
    factory: RequestFactory,
    concurrency: int,
    duration: float,
    *,
    processes: int = 1,
    warmup: float = 0.0,
    timeout: float = 10.0,
    expect_status: Collection[int] | None = None,
    validate: Validator | None = None,
) -> Result:
    """Blocking closed loop; see `closed_loop_async`. `processes` > 1 splits the connections."""
    kwargs: dict[str, Any] = {
        "warmup": warmup,
        "timeout": timeout,
        "expect_status": expect_status,
        "validate": validate,
    }
    if processes > 1:
        return _in_processes("closed", processes, url, factory, concurrency, duration, kwargs)
    result: Result = _run_sync(closed_loop_async(url, factory, concurrency, duration, **kwargs))
    return result


def open_loop(
    url: str,
    factory: RequestFactory,
    rate: float,
    duration: float,
    *,
    processes: int = 1,
    warmup: float = 0.0,
    connections: int | None = None,
    max_connections: int = 4096,
    timeout: float = 10.0,
    expect_status: Collection[int] | None = None,
    validate: Validator | None = None,
) -> Result:
    """Blocking open loop; see `open_loop_async`. `processes` > 1 splits the rate."""
    kwargs: dict[str, Any] = {
        "warmup": warmup,
        "timeout": timeout,
        "expect_status": expect_status,
        "validate": validate,
        "max_connections": max(1, max_connections // processes),
    }
    if connections is not None:
        kwargs["connections"] = max(1, connections // processes)
    if processes > 1:
        return _in_processes("open", processes, url, factory, rate, duration, kwargs)
    result: Result = _run_sync(open_loop_async(url, factory, rate, duration, **kwargs))
    return result


# ----------------------------------------------------------------------------- trivial server


_TRIVIAL_ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"


class _TrivialServer(asyncio.Protocol):
    """Answers every request with a constant; only as fast as the generator needs."""

    stall_at = 0.0
    stall_for = 0.0
    started = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buf = bytearray()

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        answers = 0
        while True:
            i = buf.find(b"\r\n\r\n")
            if i < 0:
                break
            end = i + 4
            j = buf.find(b"\r\ncontent-length:", 0, i)
            if j < 0:
                j = buf.find(b"\r\nContent-Length:", 0, i)
            if j >= 0:
                k = buf.find(b"\r\n", j + 17)
                end += int(buf[j + 17 : k])
                if len(buf) < end:
                    break
            del buf[:end]
            answers += 1
        if answers:
            cls = type(self)
            if cls.stall_for and time.monotonic() - cls.started >= cls.stall_at:
                time.sleep(cls.stall_for)  # a deliberate stall of the whole server
                cls.stall_for = 0.0
            self.transport.write(_TRIVIAL_ANSWER * answers)  # type: ignore[attr-defined]


def serve_trivial(host: str, port: int, stall_at: float = 0.0, stall_for: float = 0.0) -> None:
    _TrivialServer.stall_at = stall_at
    _TrivialServer.stall_for = stall_for
    _TrivialServer.started = time.monotonic()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_TrivialServer, host, port, backlog=4096)
        print(f"trivial server on http://{host}:{port}/ (pid {os.getpid()})", flush=True)
        async with server:
            await server.serve_forever()

    with contextlib.suppress(KeyboardInterrupt):
        _run_sync(main())


def _wait_port(host: str, port: int, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port}")


def selftest(duration: float, port: int, processes: int) -> None:
    """Starts the trivial server in its own process and measures the generator against it."""
    server = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.loadgen", "serve-trivial", "--port", str(port)],
        stdout=subprocess.DEVNULL,
    )
    try:
        _wait_port("127.0.0.1", port)
        url = f"http://127.0.0.1:{port}/"
        request = encode_request("GET", "/", f"127.0.0.1:{port}", {"Authorization": "Bearer x"})

        def factory() -> bytes:
            return request

        python = sys.version.split()[0]
        print(f"uvloop: {uvloop is not None}, cpus: {os.cpu_count()}, python {python}")
        for conc in (1, 32, 128):
            res = closed_loop(url, factory, conc, duration, warmup=1.0, processes=processes)
            print(f"closed  c={conc:<4} {res.line()}")
        for rate in (5000, 10000, 15000):
            res = open_loop(url, factory, rate, duration, warmup=1.0, processes=processes)
            print(f"open    r={rate:<6} {res.line()}  queued {res.queued}")
    finally:
        server.terminate()
        server.wait(10)


# ----------------------------------------------------------------------------- CLI


def _parse_header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep:
        raise argparse.ArgumentTypeError(f"header must be 'Name: value', got {text!r}")
    return name.strip(), value.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.loadgen",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="load one URL")
    run.add_argument("url")
    load = run.add_mutually_exclusive_group()
    load.add_argument("-c", "--concurrency", type=int, default=32, help="closed loop (default)")
    load.add_argument("-r", "--rate", type=float, help="open loop at this many requests/s")
    run.add_argument("-d", "--duration", type=float, default=10.0)
    run.add_argument("-w", "--warmup", type=float, default=1.0)
    run.add_argument("-m", "--method", default="GET")
    run.add_argument("-H", "--header", action="append", type=_parse_header, default=[])
    run.add_argument("--body", help="request body (sent as is)")
    run.add_argument("--timeout", type=float, default=10.0)
    run.add_argument("-p", "--processes", type=int, default=1)
    run.add_argument("--json", action="store_true", help="print the summary as JSON")
    serve = sub.add_parser("serve-trivial", help="a constant-answer HTTP server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8099)
    serve.add_argument("--stall-at", type=float, default=0.0, help="seconds after start")
    serve.add_argument("--stall-for", type=float, default=0.0, help="block the server this long")
    st = sub.add_parser("selftest", help="the generator's ceiling against the trivial server")
    st.add_argument("-d", "--duration", type=float, default=5.0)
    st.add_argument("--port", type=int, default=8099)
    st.add_argument("-p", "--processes", type=int, default=1)
    args = parser.parse_args(argv)

    if args.command == "serve-trivial":
        serve_trivial(args.host, args.port, args.stall_at, args.stall_for)
        return 0
    if args.command == "selftest":
        selftest(args.duration, args.port, args.processes)
        return 0

    target = Target.parse(args.url)
    request = encode_request(
        args.method.upper(), target.base_path, target.host_header, dict(args.header), args.body
    )

    def factory() -> bytes:
        return request

    common: dict[str, Any] = {
        "warmup": args.warmup,
        "timeout": args.timeout,
        "processes": args.processes,
    }
    if args.rate:
        result = open_loop(args.url, factory, args.rate, args.duration, **common)
    else:
        result = closed_loop(args.url, factory, args.concurrency, args.duration, **common)
    print(json.dumps(result.summary()) if args.json else result.line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
