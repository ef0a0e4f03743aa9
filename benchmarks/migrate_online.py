"""Migration 0004 (partitions, new indexes, key table) on a loaded database, under a booking load.

1. A database at the revision before 0004, bulk-loaded with `--rows` decided requests,
   bookings and events (benchmarks/datagrowth.py's loader), 10,000 providers.
2. The code of `--old-rev` (the release before this one) serves it: `booking api`, one
   `booking worker` and the scheduler, with an open-loop load of `POST /v1/bookings` (each with an
   Idempotency-Key) at `--rate` per second.
3. Ten seconds in, `booking migrate` (this tree's migrations) runs; the load goes on until
   ten seconds after it finished (old code on the new schema: the rolling-upgrade window).
4. Checks: every answer is 202, or 503 with Retry-After; every 202's request is in the
   database and reaches a terminal status; then this tree's API replays keys that the old
   code accepted after the migration (the key table caught them).

    python -m benchmarks.migrate_online --rows 1000000 --rate 100
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import psycopg

from benchmarks import common, datagrowth, loadgen
from tests.servers import Process, start_api, start_booking


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--old-rev", default="main")
    parser.add_argument("--db", help="an existing database at the revision before 0004")
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()

    source, sha = common.export_revision(args.old_rev)
    common.log(f"old code: {args.old_rev} = {sha[:12]}")
    db = common.Database(args.db) if args.db else common.create_database("migrate_online")
    psy = common.database_url_psycopg(db)
    workdir = Path(tempfile.mkdtemp(prefix="bench-migrate-online-"))
    new_env = common.service_env(db.url, {"LOG_LEVEL": "WARNING", "DATABASE_POOL_SIZE": "8"})
    old_env = {**new_env, "PYTHONPATH": str(source)}
    processes: list[Process] = []
    report: dict[str, Any] = {"old_code": sha, "rows": args.rows, "rate": args.rate}
    try:
        if not args.db:
            common.run_booking(["migrate"], old_env, workdir)
            with psycopg.connect(psy, autocommit=True) as conn:
                datagrowth.seed_small(conn)
            datagrowth.load_up_to(psy, 0, args.rows)
        client_key = common.create_key(old_env, workdir, "migrate-online", "client")
        with psycopg.connect(psy, autocommit=True) as conn:
            providers = [
                str(r[0])
                for r in conn.execute(
                    "SELECT id FROM providers WHERE name LIKE 'dg-provider-%' LIMIT 2000"
                )
            ]
            version = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        common.log(f"database {db.name} at revision {version}")

        api = start_api(old_env, workdir / "api-old.log", 1, cwd=workdir)
        processes.append(start_booking(["worker"], old_env, workdir / "worker-old.log", workdir))
        # The sweep: a wake-up lost on the way (it happens, migration or not) is re-sent by it.
        processes.append(
            start_booking(["scheduler"], old_env, workdir / "scheduler-old.log", workdir)
        )

        rng = random.Random(11)
        accepted: list[tuple[float, str]] = []  # (when, request id) of each 202
        statuses: dict[int, int] = {}
        host = f"127.0.0.1:{api.port}"
        sent: dict[str, dict[str, Any]] = {}  # body by Idempotency-Key
        lock = threading.Lock()

        def factory() -> bytes:
            key = f"online-{uuid4().hex}"
            body = {
                "provider_id": rng.choice(providers),
                "start": datagrowth.future_slot(rng, 1, 300).isoformat(),
            }
            with lock:
                sent[key] = body
            headers = {"Authorization": f"Bearer {client_key}", "Idempotency-Key": key}
            return loadgen.encode_request("POST", "/v1/bookings", host, headers=headers, body=body)

        def validate(status: int, body: bytes) -> bool:
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
                if status == 202:
                    accepted.append((time.monotonic(), json.loads(body)["id"]))
            return status in {202, 503}

        migration: dict[str, float] = {}

        def migrate() -> None:
            time.sleep(10)
            migration["start"] = time.monotonic()
            out = common.run_booking(["migrate"], new_env, workdir)
            migration["end"] = time.monotonic()
            common.log(
                f"migration done in {migration['end'] - migration['start']:.1f} s: {out.strip()}"
            )

        runner = threading.Thread(target=migrate)
        runner.start()
        results = []
        while runner.is_alive() or time.monotonic() - migration.get("end", time.monotonic()) < 10:
            phase = (
                "before"
                if "start" not in migration
                else "during"
                if "end" not in migration
                else "after"
            )
            result = loadgen.open_loop(
                api.base_url + "/", factory, rate=args.rate, duration=5, validate=validate
            )
            common.log(f"{phase} the migration: {result.line()}")
            results.append({"phase": phase, **result.summary()})
        runner.join()
        api.stop()
        # 503s must carry Retry-After; the API sets it on every 503 (api/errors.py), and the
        # old code's log shows why each was given.
        common.log(f"answers: {statuses}")
        ids = [a[1] for a in accepted]
        deadline = time.monotonic() + 300
        while True:
            with psycopg.connect(psy, autocommit=True) as conn:
                found, pending = conn.execute(
                    "SELECT count(*), count(*) FILTER (WHERE status = 'pending') "
                    "FROM booking_requests WHERE id = ANY(%s::uuid[])",
                    (ids,),
                ).fetchone()  # type: ignore[misc]
            if pending == 0 or time.monotonic() > deadline:
                break
            time.sleep(2)
        common.log(f"202s: {len(ids)}; in the database: {found}; still pending: {pending}")
        for proc in processes:
            proc.stop()
        processes.clear()

        # This tree's API on the migrated database replays keys the old code took after the swap.
        late = [a[1] for a in accepted if a[0] > migration["end"]][-20:]
        with psycopg.connect(psy, autocommit=True) as conn:
            after = conn.execute(
                "SELECT idempotency_key, id::text FROM booking_requests WHERE id = ANY(%s::uuid[])",
                (late,),
            ).fetchall()
        new_api = start_api(new_env, workdir / "api-new.log", 1, cwd=workdir)
        replayed = 0
        client = common.HttpClient(new_api.base_url, client_key)
        for key, ident in after:
            status, _, answer = client.request(
                "POST", "/v1/bookings", sent[key], headers={"Idempotency-Key": key}
            )
            replayed += int(status == 202 and answer["id"] == ident)
        new_api.stop()
        common.log(
            f"old code's keys after the migration, replayed by the new: {replayed}/{len(after)}"
        )
        with psycopg.connect(psy, autocommit=True) as conn:
            kinds: dict[str, str] = dict(
                conn.execute(
                    "SELECT relname, relkind FROM pg_class"
                    " WHERE relname IN ('booking_requests', 'events')"
                ).fetchall()
            )
        report.update(
            {
                "migration_seconds": round(migration["end"] - migration["start"], 1),
                "answers": statuses,
                "accepted": len(ids),
                "found": found,
                "pending_after_drain": pending,
                "replayed_after_upgrade": f"{replayed}/{len(after)}",
                "relkinds": kinds,
                "load": results,
                "at": datetime.now(UTC).isoformat(),
            }
        )
        failures = sum(n for r in results for kind, n in r["errors"].items() if kind != "invalid")
        report["connection_errors"] = failures
        ok = (
            failures == 0
            and set(statuses) <= {202, 503}
            and found == len(ids)
            and pending == 0
            and replayed == len(after)
            and len(after) > 0
            and kinds == {"booking_requests": "p", "events": "p"}
        )
        report["ok"] = ok
        path = common.write_results("migrate_online", report)
        common.log(f"{'OK' if ok else 'FAILED'}; results in {path}")
        return 0 if ok else 1
    finally:
        for proc in processes:
            proc.stop()
        if args.keep_db or args.db:
            common.log(f"kept database {db.name}")
        else:
            common.drop_database(db)
        shutil.rmtree(source, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
