"""Every path at small and large table sizes, side by side: does the cost follow the data?

Bulk-loads decided booking requests, bookings and events (N of each) beside a small set
(10,000 providers, one of them with 10,000 bookings of history), through INSERT ... SELECT
statements built from the live schema (information_schema: a NOT NULL column the loader does
not know stops it), and measures at each size:

- accept: `POST /v1/bookings` with an Idempotency-Key, closed loop, through `booking api`;
- the reads behind the hot paths, in process, through the repositories: idempotency lookup,
  request by id, pending and stale scans, uncached availability (1 and 62 days, an ordinary
  provider and the one with a long history), one worker batch deciding 200 providers;
- every list and filter of `GET /v1/bookings`, at page 1 and deep in the walk, with the
  EXPLAIN (ANALYZE) of each statement written to `--explain`.

    python -m benchmarks.datagrowth --sizes 10000,1000000,5000000 \
        --explain docs/explain-datagrowth.md

Each size gets a database of its own, loaded once; then every size is measured in turn, for
`--rounds` rounds (the order reversed every other round), and each figure is the median of
its rounds: a machine that gets busier or quieter meanwhile weighs on every size alike.
`--keep-db` keeps the databases (their names are printed); `--db SIZE=NAME` measures SIZE on
a kept one (loading more rows if it holds fewer).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import hashlib
import json
import random
import re
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import psycopg
from sqlalchemy import Executable, create_engine
from sqlalchemy.dialects import postgresql

from benchmarks import common, loadgen
from domain.availability import Span
from domain.model import BookingStatus
from domain.ports import BookingFilter
from domain.use_cases.availability import load_day_inputs
from domain.use_cases.processing import ProcessingLimits, RecentlyDecided, process_wakeups
from infra.database import make_engine
from infra.partitions import ensure_partitions
from infra.repositories import (
    SqlBookingRepository,
    SqlBookingRequestRepository,
    encode_cursor,
)
from infra.unit_of_work import SqlDatabase
from tests.servers import start_api

PROVIDERS = 10_000
CLIENTS = 100
HEAVY_HISTORY = 10_000
SPACING_HOURS = 35  # between one provider's bulk bookings: 500 of them span 2 years
WEEK = {
    day: [{"start": "09:00", "end": "17:00"}]
    for day in ("monday", "tuesday", "wednesday", "thursday", "friday")
}
CUSTOMERS = 200_000
HEAVY_ID = "00000000-0000-4000-8000-00000000beef"
HEAVY_CUSTOMER = "heavy-7"  # 20 of the heavy provider's bookings, all of client 7


def bulk_id(kind: str, k: int) -> str:
    """The id md5('dg-<kind>-' || k)::uuid of bulk row `k`, computed here."""
    return str(UUID(hashlib.md5(f"dg-{kind}-{k}".encode()).hexdigest()))


def provider_id_sql(k: str) -> str:
    """The deterministic id of bulk provider number `k` (an SQL expression)."""
    return f"md5('dg-provider-' || ({k}))::uuid"


def request_id_sql(created: str) -> str:
    """Bulk request g's id as the API makes one (domain.ids): version 7, its creation time."""
    millis = f"floor(extract(epoch from {created}) * 1000)::bigint"
    rand = "md5('dg-request-' || g)"
    return (
        f"(lpad(to_hex({millis}), 12, '0') || '7' || substr({rand}, 1, 3) || '8'"
        f" || substr({rand}, 4, 15))::uuid"
    )


def client_id_sql(k: str) -> str:
    return f"md5('dg-client-' || ({k}))::uuid"


# ----------------------------------------------------------------------------- loading


def _required_columns(conn: psycopg.Connection[Any], table: str) -> list[str]:
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
        "AND table_schema = 'public' AND is_nullable = 'NO' AND column_default IS NULL "
        "ORDER BY ordinal_position",
        (table,),
    ).fetchall()
    return [r[0] for r in rows]


def insert_select(
    conn: psycopg.Connection[Any], table: str, values: dict[str, str], source: str
) -> None:
    """INSERT INTO table (cols) SELECT exprs FROM source, checked against the live schema."""
    unknown = set(_required_columns(conn, table)) - set(values)
    if unknown:
        raise SystemExit(
            f"the live schema of {table} requires {sorted(unknown)}, which this loader does not"
            " fill: teach benchmarks/datagrowth.py about them"
        )
    columns = ", ".join(values)
    exprs = ", ".join(values.values())
    conn.execute(f"INSERT INTO {table} ({columns}) SELECT {exprs} FROM {source}")


def seed_small(conn: psycopg.Connection[Any]) -> None:
    now = "now()"
    insert_select(
        conn,
        "api_clients",
        {
            "id": client_id_sql("g"),
            "name": "'dg-client-' || g",
            "role": "'client'",
            "key_hash": "md5('dg-key-' || g)",
            "signing_secret": "'whsec_dg'",
            "created_at": now,
        },
        f"generate_series(0, {CLIENTS - 1}) AS g",
    )
    week = json.dumps(WEEK).replace("'", "''")
    provider = {
        "name": "'dg-provider-' || g",
        "timezone": "'UTC'",
        "slot_minutes": "30",
        "weekly_schedule": f"'{week}'::jsonb",
        "buffer_before_minutes": "0",
        "buffer_after_minutes": "0",
        "min_notice_minutes": "0",
        "max_advance_days": "365",
        "version": "1",
        "created_at": now,
        "updated_at": now,
    }
    insert_select(
        conn,
        "providers",
        {"id": provider_id_sql("g"), **provider},
        f"generate_series(0, {PROVIDERS - 1}) AS g",
    )
    insert_select(
        conn, "providers", {"id": f"'{HEAVY_ID}'::uuid", **provider}, "generate_series(1, 1) AS g"
    )
    # The provider with a long history: 10,000 bookings, one every 2 hours back from today.
    insert_select(
        conn,
        "bookings",
        {
            "id": "md5('dg-heavy-' || g)::uuid",
            "client_id": client_id_sql("g % 100"),
            "provider_id": f"'{HEAVY_ID}'::uuid",
            "customer_id": "'heavy-' || (g % 500)",
            "start_at": "date_trunc('hour', now()) - g * interval '2 hours'",
            "end_at": "date_trunc('hour', now()) - g * interval '2 hours' + interval '30 minutes'",
            "blocked_from": "date_trunc('hour', now()) - g * interval '2 hours'",
            "blocked_until": "date_trunc('hour', now()) - g * interval '2 hours'"
            " + interval '30 minutes'",
            "status": "'confirmed'",
            "metadata": "'{}'::jsonb",
            "created_at": "now() - g * interval '2 hours' - interval '7 days'",
            "updated_at": now,
        },
        f"generate_series(1, {HEAVY_HISTORY}) AS g",
    )


def load_rows(conn: psycopg.Connection[Any], first: int, last: int) -> None:
    """Bulk rows number first..last-1: a decided request, its booking and its event each."""
    if last <= first:
        return
    source = f"generate_series({first}, {last - 1}) AS g"
    t0 = f"date_trunc('day', now()) - interval '{2 * 365} days'"
    start = (
        f"({t0} + (g / {PROVIDERS}) * interval '{SPACING_HOURS} hours'"
        f" + ((g % {PROVIDERS}) % 16) * interval '30 minutes')"
    )
    # A millisecond apart within each start, as accepted requests are: ids carry it (domain.ids)
    # and a lookup by id reads that millisecond of one partition.
    created = f"({start} - interval '7 days' - (g % {PROVIDERS}) * interval '1 millisecond')"
    cancelled = "(g % 10 = 7)"
    insert_select(
        conn,
        "bookings",
        {
            "id": "md5('dg-booking-' || g)::uuid",
            "client_id": client_id_sql(f"g % {CLIENTS}"),
            "provider_id": provider_id_sql(f"g % {PROVIDERS}"),
            "customer_id": f"'cust-' || (g % {CUSTOMERS})",
            "start_at": start,
            "end_at": f"{start} + interval '30 minutes'",
            "blocked_from": start,
            "blocked_until": f"{start} + interval '30 minutes'",
            "status": f"CASE WHEN {cancelled} THEN 'cancelled' ELSE 'confirmed' END",
            "metadata": '\'{"source": "datagrowth"}\'::jsonb',
            "created_at": created,
            "updated_at": created,
            "cancelled_at": f"CASE WHEN {cancelled} THEN {created} END",
        },
        source,
    )
    insert_select(
        conn,
        "booking_requests",
        {
            "id": request_id_sql(created),
            "client_id": client_id_sql(f"g % {CLIENTS}"),
            "kind": "'book'",
            "provider_id": provider_id_sql(f"g % {PROVIDERS}"),
            "booking_id": "md5('dg-booking-' || g)::uuid",
            "start_at": start,
            "payload": f"jsonb_build_object('customer_id', 'cust-' || (g % {CUSTOMERS}))",
            "status": "'succeeded'",
            "fingerprint": "md5('dg-fp-' || g)",
            "attempts": "1",
            "created_at": created,
            "completed_at": f"{created} + interval '1 second'",
        },
        source,
    )
    insert_select(
        conn,
        "events",
        {
            "id": "'evt_' || md5('dg-event-' || g)",
            "type": "'booking.confirmed'",
            "request_id": request_id_sql(created),
            "booking_id": "md5('dg-booking-' || g)::uuid",
            "client_id": client_id_sql(f"g % {CLIENTS}"),
            "payload": "jsonb_build_object('booking_id', md5('dg-booking-' || g), 'n', g)",
            "created_at": f"{created} + interval '1 second'",
            "published_at": f"{created} + interval '2 seconds'",
        },
        source,
    )


def load_up_to(url: str, current: int, target: int, chunk: int = 250_000) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for first in range(current, target, chunk):
            last = min(target, first + chunk)
            t = time.monotonic()
            load_rows(conn, first, last)
            common.log(f"loaded rows {first:,}..{last:,} in {time.monotonic() - t:.0f} s")
        conn.execute("VACUUM ANALYZE")


# ----------------------------------------------------------------------------- measuring


@dataclass
class Explained:
    label: str
    statements: list[tuple[str, dict[str, Any]]]


class Recording:
    """A Statements that remembers what it ran (to EXPLAIN it afterwards)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.dialect = inner.dialect
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def _remember(self, statement: Executable, parameters: Any) -> None:
        compiled = statement.compile(  # type: ignore[attr-defined]
            dialect=postgresql.psycopg.dialect(),  # type: ignore[no-untyped-call]
            compile_kwargs={"render_postcompile": True},
        )
        params = dict(compiled.params)
        if isinstance(parameters, dict):
            params.update(parameters)
        self.seen.append((str(compiled), params))

    async def execute(self, statement: Executable, parameters: Any = None) -> Any:
        self._remember(statement, parameters)
        return await self._inner.execute(statement, parameters)

    async def scalar(self, statement: Executable, parameters: Any = None) -> Any:
        self._remember(statement, parameters)
        return await self._inner.scalar(statement, parameters)


async def timed(fn: Callable[[], Awaitable[Any]], reps: int) -> float:
    for _ in range(3):
        await fn()
    samples = []
    for _ in range(reps):
        t = time.perf_counter()
        await fn()
        samples.append((time.perf_counter() - t) * 1000)
    return statistics.median(samples)


def explain(url: str, statements: Sequence[tuple[str, dict[str, Any]]]) -> list[str]:
    plans = []
    with psycopg.connect(url, autocommit=True) as conn:
        for sql, params in statements:
            rows = conn.execute(
                "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY OFF) " + sql,
                params,
            ).fetchall()
            plan = "\n".join(r[0] for r in rows)
            # 200 provider ids make unreadable lines; the count says as much.
            plans.append(
                re.sub(
                    r"'\{([0-9a-f-]{36},){3,}[0-9a-f-]{36}\}'",
                    lambda m: f"'{{...{m.group(0).count(',') + 1} ids...}}'",
                    plan,
                )
            )
    return plans


class NoNotifier:
    async def requests_completed(self, request_ids: Sequence[UUID]) -> None:
        return None

    async def availability_changed(self, provider_id: UUID, version: int) -> None:
        return None

    async def provider_changed(self, provider_id: UUID, version: int) -> None:
        return None

    async def events_recorded(self) -> None:
        return None


def future_slot(rng: random.Random, days_from: int, days_to: int) -> datetime:
    day = date.today() + timedelta(days=rng.randint(days_from, days_to))
    while day.weekday() >= 5:
        day += timedelta(days=1)
    minutes = 9 * 60 + 30 * rng.randrange(16)
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(minutes=minutes)


async def measure_in_process(
    url: str, rows: int, keys: list[str], reps: int, bench_client_id: str
) -> tuple[dict[str, float], list[Explained]]:

    rng = random.Random(rows)
    database = SqlDatabase(make_engine(url, 4))
    figures: dict[str, float] = {}
    explained: list[Explained] = []
    now = datetime.now(UTC)
    bench_client = UUID(bench_client_id)
    psy = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(psy, autocommit=True) as conn:
        picks = [rng.randrange(rows) for _ in range(200)]
        some = conn.execute(
            "SELECT start_at, id, provider_id, customer_id, client_id FROM bookings"
            " WHERE id = ANY(%s::uuid[])",
            ([bulk_id("booking", k) for k in picks],),
        ).fetchall()
        middle = sorted(some)[len(some) // 2][:2]
        request_ids = [
            str(r[0])
            for r in conn.execute(
                "SELECT id FROM booking_requests WHERE booking_id = ANY(%s::uuid[])",
                ([bulk_id("booking", k) for k in picks[:50]],),
            )
        ]
        # Half way through the long history of the provider with 10,000 bookings.
        heavy_middle = conn.execute(
            "SELECT start_at, id FROM bookings WHERE id = %s::uuid",
            (str(UUID(hashlib.md5(b"dg-heavy-5000").hexdigest())),),
        ).fetchone()
        assert heavy_middle is not None
    deep = encode_cursor(middle[0].isoformat(), str(middle[1]))
    heavy_deep = encode_cursor(heavy_middle[0].isoformat(), str(heavy_middle[1]))
    sample = some[0]
    providers = [UUID(str(r[2])) for r in some]

    async with database.engine.connect() as connection:
        auto = await connection.execution_options(isolation_level="AUTOCOMMIT")
        recorder = Recording(auto)
        bookings = SqlBookingRepository(recorder)
        requests = SqlBookingRequestRepository(recorder)

        async def listing(label: str, where: BookingFilter, cursor: str | None) -> None:
            async def run() -> None:
                await bookings.list(where, 50, cursor)

            figures[label] = await timed(run, reps)
            recorder.seen.clear()
            await run()
            explained.append(Explained(label, list(recorder.seen)))

        admin = BookingFilter()
        client_of_sample = BookingFilter(client_id=UUID(str(sample[4])))
        await listing("list admin, page 1", admin, None)
        await listing("list admin, deep page", admin, deep)
        await listing("list client, page 1", client_of_sample, None)
        await listing("list client, deep page", client_of_sample, deep)
        # The filters of one provider and one customer read the provider with 10,000 bookings
        # of history and one of its customers (20 bookings): the same rows at every size, so
        # a page holds as many rows at 10,000 as at 5,000,000 (a bulk provider's page would
        # hold 1 row at 10,000 and 50 at 5,000,000, timing the rows, not the table).
        of_heavy = BookingFilter(provider_id=UUID(HEAVY_ID))
        await listing("list ?provider_id=, page 1", of_heavy, None)
        await listing("list ?provider_id=, deep page", of_heavy, heavy_deep)
        await listing("list ?customer_id=, page 1", BookingFilter(customer_id=HEAVY_CUSTOMER), None)
        await listing(
            "list ?customer_id= (client), page 1",
            BookingFilter(client_id=UUID(HEAVY_CUSTOMER_CLIENT), customer_id=HEAVY_CUSTOMER),
            None,
        )
        week_from = middle[0]
        await listing(
            "list ?from=&to= (a week), page 1",
            BookingFilter(start_from=week_from, start_before=week_from + timedelta(days=7)),
            None,
        )
        await listing(
            "list ?status=cancelled, page 1", BookingFilter(status=BookingStatus.CANCELLED), None
        )

        key_since = now - timedelta(hours=24)

        async def idem() -> None:
            await requests.by_idempotency_key(bench_client, rng.choice(keys or ["-"]), key_since)

        figures["idempotency lookup"] = await timed(idem, reps)
        recorder.seen.clear()
        await idem()
        explained.append(Explained("idempotency lookup", list(recorder.seen)))

        async def by_id() -> None:
            await requests.get(UUID(str(rng.choice(request_ids))))

        figures["request by id"] = await timed(by_id, reps)
        recorder.seen.clear()
        await by_id()
        explained.append(Explained("request by id", list(recorder.seen)))

        async def pending() -> None:
            await requests.pending_for_providers(providers, 200)

        figures["pending scan, 200 providers"] = await timed(pending, reps)

        async def stale() -> None:
            await requests.stale_pending(now - timedelta(seconds=3), 100)

        figures["stale-request scan"] = await timed(stale, reps)

        window_start = now + timedelta(days=7)

        async def spans() -> None:
            await bookings.confirmed_spans(
                providers, Span(window_start, window_start + timedelta(days=2))
            )

        figures["confirmed spans, 200 providers"] = await timed(spans, reps)
        recorder.seen.clear()
        await spans()
        explained.append(Explained("confirmed spans, 200 providers", list(recorder.seen)))

        heavy = UUID(HEAVY_ID)
        recorder.seen.clear()
        await bookings.confirmed_spans(
            [heavy], Span(now - timedelta(days=1), now + timedelta(days=1))
        )
        explained.append(
            Explained("confirmed spans, provider with 10,000 bookings", list(recorder.seen))
        )

    for label, provider, days in (
        ("availability 1 day", providers[1], 1),
        ("availability 62 days", providers[1], 62),
        ("availability 1 day, long history", UUID(HEAVY_ID), 1),
        ("availability 62 days, long history", UUID(HEAVY_ID), 62),
    ):
        first = date.today() - timedelta(days=days // 2) if "history" in label else date.today()
        last = first + timedelta(days=days - 1)

        async def avail(p: UUID = provider, a: date = first, b: date = last) -> None:
            # What the API computes on a cache miss: the record's inputs, then the free slots.
            inputs = await load_day_inputs(p, a, b, database.reader())
            inputs.free_days(a, b, now)

        figures[label] = await timed(avail, max(5, reps // 2))

    # One worker batch: 200 pending requests of 200 providers, decided in one transaction.
    samples = []
    for _ in range(5):
        woken = []
        with psycopg.connect(psy, autocommit=True) as conn:
            for provider in providers[:200]:
                request_id = uuid4()
                conn.execute(
                    "INSERT INTO booking_requests (id, client_id, kind, provider_id, start_at,"
                    " payload, status, attempts, created_at) VALUES (%s, %s, 'book', %s, %s,"
                    " '{}'::jsonb, 'pending', 0, now())",
                    (request_id, bench_client_id, provider, future_slot(rng, 20, 300)),
                )
                woken.append((provider, request_id))
        t = time.perf_counter()
        decided = await process_wakeups(
            woken,
            database,
            NoNotifier(),
            lambda: datetime.now(UTC),
            ProcessingLimits(),
            RecentlyDecided(),
        )
        samples.append((time.perf_counter() - t) * 1000)
        if decided != len(woken):
            # A batch that failed falls back to deciding requests one by one: timing that
            # would measure the failure, not the table size.
            raise SystemExit(f"the worker batch decided {decided} of {len(woken)} requests")
    figures["worker decide batch, 200 providers"] = statistics.median(samples)
    await database.dispose()
    return figures, explained


def measure_accept(db: common.Database, client_key: str, seconds: float) -> tuple[float, list[str]]:
    """Closed loop of POST /v1/bookings with Idempotency-Keys; req/s and the keys used."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-datagrowth-"))
    env = common.service_env(db.url, {"DATABASE_POOL_SIZE": "8", "LOG_LEVEL": "WARNING"})
    rng = random.Random(7)
    keys: list[str] = []
    server = start_api(env, workdir / "api.log", 1, cwd=workdir)
    host = f"127.0.0.1:{server.port}"

    def factory() -> bytes:
        key = f"dg-{uuid4().hex}"
        if len(keys) < 5000:
            keys.append(key)
        body = {
            "provider_id": PROVIDER_IDS[rng.randrange(PROVIDERS)],
            "start": future_slot(rng, 1, 300).isoformat(),
        }
        headers = {"Authorization": f"Bearer {client_key}", "Idempotency-Key": key}
        return loadgen.encode_request("POST", "/v1/bookings", host, headers=headers, body=body)

    try:
        result = loadgen.closed_loop(
            server.base_url + "/", factory, 16, seconds, warmup=2, expect_status={202}
        )
    finally:
        server.stop()
    summary = result.summary()
    common.log(result.line())
    with psycopg.connect(common.database_url_psycopg(db), autocommit=True) as conn:
        # Keep the pending set small, as workers would: the scans measure table size, not backlog.
        conn.execute(
            "UPDATE booking_requests SET status = 'rejected', completed_at = now()"
            " WHERE status = 'pending'"
        )
    return float(summary["rps"]), keys


PROVIDER_IDS = [bulk_id("provider", k) for k in range(PROVIDERS)]
HEAVY_CUSTOMER_CLIENT = bulk_id("client", 7)


@dataclass
class Loaded:
    """A database holding `rows` bulk rows of each kind, ready to measure."""

    rows: int
    db: common.Database
    client_key: str  # the key the accept load uses
    client_id: str  # its client (owns no bulk rows)
    made_here: bool  # created by this run (dropped at the end unless --keep-db)
    keys: list[str] = dataclasses.field(default_factory=list)  # Idempotency-Keys accept used


def prepare(size: int, name: str | None, workdir: Path) -> Loaded:
    """The database for `size`: `name` if given (loaded further if it holds fewer), else new."""
    db = common.Database(name) if name else common.create_database("datagrowth")
    common.log(f"{size:,} rows: database {db.name}")
    psy = common.database_url_psycopg(db)
    env = common.service_env(db.url)
    common.run_booking(["migrate"], env, workdir)
    with psycopg.connect(psy, autocommit=True) as conn:
        # The bulk rows only: the timed runs add requests, bookings and events of their own,
        # and the samples are drawn from the bulk numbers 0..loaded-1.
        loaded = conn.execute(
            "SELECT count(*) FROM bookings WHERE metadata->>'source' = 'datagrowth'"
        ).fetchone()[0]  # type: ignore[index]
        fresh = not conn.execute("SELECT 1 FROM providers LIMIT 1").fetchone()
        if fresh:
            seed_small(conn)
            engine = create_engine(db.url)
            made = ensure_partitions(
                engine, datetime.now(UTC) - timedelta(days=800), datetime.now(UTC)
            )
            engine.dispose()
            common.log(f"created {len(made)} monthly partitions for the past")
    client_key = common.create_key(env, workdir, "dg-client", "client")
    with psycopg.connect(psy, autocommit=True) as conn:
        # The benchmark's client key owns no bulk rows; lists sample a bulk client instead.
        client_id = conn.execute(
            "SELECT id FROM api_clients WHERE name = 'dg-client' ORDER BY created_at DESC"
        ).fetchone()[0]  # type: ignore[index]
    if size > loaded:
        load_up_to(psy, loaded, size)
        loaded = size
    return Loaded(loaded, db, client_key, str(client_id), made_here=name is None)


def measure(
    target: Loaded, reps: int, accept_seconds: float | None
) -> tuple[dict[str, float], list[Explained]]:
    """One round at one size: accept (unless `accept_seconds` is None), then the rest."""
    common.log(f"measuring at {target.rows:,} rows ({target.db.name})")
    figures: dict[str, float] = {}
    if accept_seconds is not None:
        rps, target.keys = measure_accept(target.db, target.client_key, accept_seconds)
        figures["accept (POST /v1/bookings), req/s"] = rps
    in_process, explained = asyncio.run(
        measure_in_process(target.db.url, target.rows, target.keys, reps, target.client_id)
    )
    figures.update(in_process)
    for label, value in figures.items():
        common.log(f"  {label}: {value:.2f}")
    return figures, explained


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,1000000")
    parser.add_argument(
        "--db",
        action="append",
        default=[],
        metavar="SIZE=NAME",
        help="measure SIZE on an existing database (loaded further if it holds fewer rows)",
    )
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="measure every size this many times, sizes in turn: each figure is the median",
    )
    parser.add_argument("--accept-seconds", type=float, default=10.0)
    parser.add_argument(
        "--accept-rounds", type=int, default=3, help="rounds that measure accept (the first)"
    )
    parser.add_argument("--explain", type=Path, help="write the EXPLAIN output here (markdown)")
    parser.add_argument(
        "--table",
        nargs="+",
        type=Path,
        help="only print the side-by-side table of these results files (runs of one sitting)",
    )
    args = parser.parse_args()
    if args.table:
        merged: dict[int, dict[str, float]] = {}
        for path in args.table:
            document = json.loads(path.read_text())
            merged.update({int(k): v for k, v in document["figures"].items()})
        report(merged, {}, None, {})
        return 0
    sizes = [int(s) for s in args.sizes.split(",")]
    existing = {int(k): v for k, v in (item.split("=", 1) for item in args.db)}
    sizes = sorted(set(sizes) | set(existing))
    workdir = Path(tempfile.mkdtemp(prefix="bench-datagrowth-"))
    targets: list[Loaded] = []
    rounds: dict[int, list[dict[str, float]]] = {}
    plans: dict[int, list[tuple[str, list[str]]]] = {}
    try:
        targets.extend(prepare(size, existing.get(size), workdir) for size in sizes)
        # Caches warmed at every size first (loading the largest evicts the others), then
        # sizes in turn, round after round (the order reversed every other round), so a
        # machine that gets busier or quieter weighs on every size alike.
        for target in targets:
            measure(target, 3, None)
        for number in range(args.rounds):
            order = targets if number % 2 == 0 else targets[::-1]
            accept = args.accept_seconds if number < args.accept_rounds else None
            for target in order:
                figures, explained = measure(target, args.reps, accept)
                rounds.setdefault(target.rows, []).append(figures)
                if target.rows not in plans:
                    psy = common.database_url_psycopg(target.db)
                    plans[target.rows] = [(e.label, explain(psy, e.statements)) for e in explained]
    finally:
        for target in targets:
            if target.made_here and not args.keep_db:
                common.drop_database(target.db)
            else:
                common.log(f"kept database {target.db.name} ({target.rows:,} rows)")
    results = {
        rows: {label: statistics.median(r[label] for r in runs if label in r) for label in runs[0]}
        for rows, runs in rounds.items()
    }
    report(results, plans, args.explain, rounds)
    return 0


def report(
    results: dict[int, dict[str, float]],
    plans: dict[int, list[tuple[str, list[str]]]],
    explain_path: Path | None,
    rounds: dict[int, list[dict[str, float]]],
) -> None:
    sizes = sorted(results)
    small = sizes[0]
    header = ["path", *(f"{s:,} rows" for s in sizes), *(f"ratio {s:,}" for s in sizes[1:])]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label in results[small]:
        values = [results[s].get(label, float("nan")) for s in sizes]
        unit = "" if "req/s" in label else " ms"
        cells = [f"{v:,.2f}{unit}" for v in values]
        ratios = [f"{v / values[0]:.2f}x" if values[0] else "-" for v in values[1:]]
        lines.append("| " + " | ".join([label, *cells, *ratios]) + " |")
    table = "\n".join(lines)
    print(table)
    path = common.write_results(
        "datagrowth",
        {
            "machine": common.machine_info(),
            "sizes": sizes,
            "figures": {str(s): results[s] for s in sizes},
            "rounds": {str(s): runs for s, runs in rounds.items()},
            "table": table,
        },
    )
    common.log(f"results in {path}")
    if explain_path is not None:
        out = ["# EXPLAIN of every list and filter (benchmarks/datagrowth.py)", ""]
        out.append(
            "Written by `python -m benchmarks.datagrowth --explain ...`: each statement the"
            " repositories ran for the path, with `EXPLAIN (ANALYZE, BUFFERS)`, at each size."
        )
        for size in sizes:
            out += ["", f"## {size:,} rows"]
            for label, texts in plans[size]:
                out += ["", f"### {label}", ""]
                for text_ in texts:
                    out += ["```", text_, "```"]
        explain_path.write_text("\n".join(out) + "\n")
        common.log(f"EXPLAIN output in {explain_path}")


if __name__ == "__main__":
    raise SystemExit(main())
