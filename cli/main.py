"""The `booking` command: assembles and starts each kind of process."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

from domain.commands import CreateApiClient, RevokeApiKey
from domain.errors import NotFound
from domain.model import ApiKeyRecord, Role
from domain.use_cases.clients import IssuedKey, create_api_client, list_api_keys, revoke_api_key
from infra.logs import configure_logging
from infra.settings import Settings

if TYPE_CHECKING:
    from infra.unit_of_work import SqlDatabase

# SQLAlchemy and Alembic are imported by the commands that use them: `booking probe` runs
# every few seconds in each pod and must start fast.


def migrate(database_url: str) -> None:
    from infra.database import migrate as run_migrations

    run_migrations(database_url)


def _issue_key(settings: Settings, name: str, role: Role) -> IssuedKey:
    from infra.database import make_engine
    from infra.unit_of_work import SqlDatabase

    async def issue() -> IssuedKey:
        database = SqlDatabase(make_engine(settings.database_url, 1))
        try:
            return await create_api_client(CreateApiClient(name, role), database.unit_of_work())
        finally:
            await database.dispose()

    return asyncio.run(issue())


T = TypeVar("T")


def _with_database(settings: Settings, use: Callable[[SqlDatabase], Awaitable[T]]) -> T:
    from infra.database import make_engine
    from infra.unit_of_work import SqlDatabase

    async def run() -> T:
        database = SqlDatabase(make_engine(settings.database_url, 1))
        try:
            return await use(database)
        finally:
            await database.dispose()

    return asyncio.run(run())


def _key_json(record: ApiKeyRecord) -> dict[str, Any]:
    return {
        "id": str(record.client.id),
        "name": record.client.name,
        "role": record.client.role.value,
        "created_at": record.created_at.isoformat(),
        "revoked_at": record.revoked_at.isoformat() if record.revoked_at else None,
    }


def cmd_keys_list(settings: Settings, args: argparse.Namespace) -> int:
    records = _with_database(settings, lambda db: list_api_keys(db.reader()))
    if args.json:
        print(json.dumps([_key_json(r) for r in records]))
        return 0
    rows = [
        (
            str(r.client.id),
            r.client.role.value,
            f"{r.created_at:%Y-%m-%d %H:%M}",
            f"revoked {r.revoked_at:%Y-%m-%d %H:%M}" if r.revoked_at else "active",
            r.client.name,
        )
        for r in records
    ]
    header = ("ID", "ROLE", "CREATED", "STATUS", "NAME")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return 0


def cmd_keys_revoke(settings: Settings, args: argparse.Namespace) -> int:
    try:
        client_id = UUID(args.id)
    except ValueError:
        print(f"booking: {args.id!r} is not a key id (see `booking keys list`)", file=sys.stderr)
        return 2
    now = datetime.now(UTC)
    try:
        record = _with_database(
            settings,
            lambda db: revoke_api_key(RevokeApiKey(client_id), db.unit_of_work(), now),
        )
    except NotFound as exc:
        print(f"booking: {exc.detail}", file=sys.stderr)
        return 1
    assert record.revoked_at is not None
    print(
        f"Revoked {record.client.role.value} key {record.client.name!r} (id {record.client.id})"
        f" at {record.revoked_at.isoformat()}; every API process refuses it within a second."
    )
    return 0


def cmd_migrate(settings: Settings, _: argparse.Namespace) -> int:
    migrate(settings.database_url)
    where = "the embedded SQLite file" if settings.embedded_database else "DATABASE_URL"
    print(f"schema of {where} is up to date")
    return 0


def cmd_keys_create(settings: Settings, args: argparse.Namespace) -> int:
    if settings.embedded_database:
        migrate(settings.database_url)  # the embedded file may not exist yet
    issued = _issue_key(settings, args.name, Role(args.role))
    if args.json:
        print(
            json.dumps(
                {
                    "id": str(issued.client.id),
                    "key": issued.key,
                    "role": issued.client.role.value,
                    "signing_secret": issued.signing_secret,
                }
            )
        )
        return 0
    print(f"Created {issued.client.role.value} key {issued.client.name!r} (id {issued.client.id}).")
    print(f"  API key:        {issued.key}")
    if issued.signing_secret:
        print(f"  signing secret: {issued.signing_secret}")
    print("These are shown once and stored only as a hash; keep them now.")
    return 0


def cmd_api(settings: Settings, args: argparse.Namespace) -> int:
    from cli.serve import serve_api, shared_metrics_dir

    with shared_metrics_dir():
        serve_api(args.host, args.port, args.workers, settings.log_level)
    return 0


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from workers.main import run_worker

    queues = [q.strip() for q in args.queues.split(",") if q.strip()] if args.queues else None
    run_worker(settings, queues)
    return 0


def cmd_scheduler(settings: Settings, _: argparse.Namespace) -> int:
    from workers.main import run_scheduler

    run_scheduler(settings)
    return 0


def _ranges(numbers: Sequence[int]) -> str:
    """0,1,2,3,7,9,10 -> 0-3,7,9-10"""
    parts: list[str] = []
    for number in sorted(numbers):
        if parts and parts[-1].split("-")[-1] == str(number - 1):
            parts[-1] = f"{parts[-1].split('-')[0]}-{number}"
        else:
            parts.append(str(number))
    return ",".join(parts) or "-"


def cmd_partitions(settings: Settings, args: argparse.Namespace) -> int:
    from redis import Redis, RedisError

    from infra.membership import Membership

    redis = Redis.from_url(settings.redis_url, socket_connect_timeout=5, socket_timeout=5)
    try:
        members = Membership(redis, settings.worker_lease_seconds).live()
    except RedisError as exc:
        print(f"booking: cannot read the worker membership from Redis ({exc})", file=sys.stderr)
        return 1
    finally:
        redis.close()
    # A worker pinned to other queues only (say `--queues webhooks`) owns no partition.
    members = [m for m in members if m.partitions or not m.pinned]
    workers = {m.name: sorted(set(m.partitions)) for m in members}
    owned = {p for partitions in workers.values() for p in partitions}
    unowned = [p for p in range(settings.booking_partitions) if p not in owned]
    if args.json:
        print(json.dumps({"workers": workers, "unowned": unowned}))
        return 0
    print(
        f"{len(workers)} live worker(s), {settings.booking_partitions} partitions,"
        f" {len(unowned)} unowned"
    )
    width = max((len(name) for name in workers), default=0)
    for member in members:
        pinned = "  (pinned with --queues)" if member.pinned else ""
        partitions = workers[member.name]
        print(f"  {member.name:<{width}}  {len(partitions):>3}  {_ranges(partitions)}{pinned}")
    if unowned:
        print(f"  unowned: {_ranges(unowned)}")
    return 0


def cmd_probe(settings: Settings, args: argparse.Namespace) -> int:
    from pathlib import Path

    from infra.heartbeat import heartbeat_problem

    path = Path(args.file) if args.file else settings.heartbeat_file
    if path is None:
        print("probe: no heartbeat file (set HEARTBEAT_FILE or pass --file)")
        return 1
    problem = heartbeat_problem(path, args.max_age)
    if problem is not None:
        print(f"probe: {problem}")
        return 1
    return 0


def cmd_dev(settings: Settings, args: argparse.Namespace) -> int:
    from cli.dev import run_dev

    return run_dev(settings, args.host, args.port)


def cmd_cache_stats(settings: Settings, args: argparse.Namespace) -> int:
    from infra.availability_cache import RedisDayStore
    from infra.redis_client import redis_client

    async def measure() -> tuple[int, int]:
        client = redis_client(settings.cache_redis_url)
        try:
            return await RedisDayStore(client).footprint(sample=args.sample)
        finally:
            await client.aclose()

    keys, used = asyncio.run(measure())
    if args.json:
        print(json.dumps({"keys": keys, "bytes": used, "sampled": args.sample or None}))
        return 0
    estimate = f" (estimated from {args.sample} keys)" if args.sample and keys > args.sample else ""
    print(f"availability cache: {keys} keys, {used:,} bytes of Redis memory{estimate}")
    return 0


def cmd_prune(settings: Settings, args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from domain.use_cases.retention import prune
    from infra.database import make_sync_engine
    from infra.retention import SqlRetention
    from workers.maintenance import policy

    engine = make_sync_engine(settings.database_url)
    try:
        store = SqlRetention(engine)
        counts = prune(policy(settings, None), store, datetime.now(UTC), dry_run=args.dry_run)
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps(counts))
        return 0
    verb = "would remove" if args.dry_run else "removed"
    for table, count in counts.items():
        print(f"{table}: {verb} {count} rows")
    if store.dropped:
        print(f"dropped partitions: {', '.join(store.dropped)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="booking", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    dev = commands.add_parser(
        "dev", help="API, worker and scheduler in one command, on embedded defaults"
    )
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=8000)
    dev.set_defaults(run=cmd_dev)

    api = commands.add_parser("api", help="serve the HTTP API")
    api.add_argument("--host", default="127.0.0.1")
    api.add_argument("--port", type=int, default=8000)
    api.add_argument("--workers", type=int, default=1)
    api.set_defaults(run=cmd_api)

    worker = commands.add_parser("worker", help="decide booking requests (a Celery worker)")
    worker.add_argument(
        "--queues",
        help="comma-separated queues to consume, pinned (default: this worker's share of the"
        " booking partitions, which follows the live workers, plus maintenance and webhooks)",
    )
    worker.set_defaults(run=cmd_worker)

    partitions = commands.add_parser(
        "partitions", help="show which live worker consumes which booking partition"
    )
    partitions.add_argument("--json", action="store_true", help="print one JSON line")
    partitions.set_defaults(run=cmd_partitions)

    probe = commands.add_parser(
        "probe", help="liveness: exit 0 if the heartbeat file was touched lately, else 1"
    )
    probe.add_argument("--max-age", type=float, required=True, metavar="SECONDS")
    probe.add_argument("--file", help="heartbeat file (default: HEARTBEAT_FILE)")
    probe.set_defaults(run=cmd_probe)

    scheduler = commands.add_parser(
        "scheduler", help="re-enqueue stuck requests every few seconds (Celery beat; run one)"
    )
    scheduler.set_defaults(run=cmd_scheduler)

    migrate_cmd = commands.add_parser("migrate", help="bring the database schema up to date")
    migrate_cmd.set_defaults(run=cmd_migrate)

    prune_cmd = commands.add_parser(
        "prune", help="remove data older than RETENTION_DAYS and expired Idempotency-Keys"
    )
    prune_cmd.add_argument("--dry-run", action="store_true", help="count, remove nothing")
    prune_cmd.add_argument("--json", action="store_true", help="print one JSON line of counts")
    prune_cmd.set_defaults(run=cmd_prune)

    keys = commands.add_parser("keys", help="API keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    create = key_commands.add_parser("create", help="create an API key (printed once)")
    create.add_argument("--name", required=True)
    create.add_argument("--role", required=True, choices=[r.value for r in Role])
    create.add_argument("--json", action="store_true", help="print one JSON line")
    create.set_defaults(run=cmd_keys_create)
    listing = key_commands.add_parser("list", help="every API key (never the key itself)")
    listing.add_argument("--json", action="store_true", help="print one JSON line (an array)")
    listing.set_defaults(run=cmd_keys_list)
    revoke = key_commands.add_parser("revoke", help="refuse a key from now on (401)")
    revoke.add_argument("id", help="the key's id, as `booking keys list` shows it")
    revoke.set_defaults(run=cmd_keys_revoke)

    cache = commands.add_parser(
        "cache-stats",
        help="keys and bytes the availability cache holds in CACHE_REDIS_URL (scans its keys)",
    )
    cache.add_argument("--json", action="store_true", help='print {"keys": N, "bytes": N}')
    cache.add_argument(
        "--sample",
        type=int,
        default=0,
        help="measure this many keys and estimate the rest (0 = measure every key)",
    )
    cache.set_defaults(run=cmd_cache_stats)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except ValueError as exc:
        print(f"booking: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    result: int = args.run(settings, args)
    return result
