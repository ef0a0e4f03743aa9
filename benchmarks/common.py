"""Shared benchmark plumbing: a throwaway database, a `booking api` subprocess, results.

`booking_stack()` is the usual entry point:

    with booking_stack("availability", api_workers=2) as stack:
        client = stack.client()            # a small blocking HTTP client with the admin key
        ...                                # seed through the API
        result = loadgen.closed_loop(stack.base_url + "/", factory, 32, 30)

It creates a fresh PostgreSQL database, runs `booking migrate`, issues an admin key, starts
`booking api` (its own process group, log in a temp file), waits for /health/ready, and on the way
out stops the server (by its PID) and drops the database. Environment knobs:
`BENCH_PG_URL` (admin connection, default postgresql://postgres@127.0.0.1:5432/postgres) and
`BENCH_REDIS_URL` (default redis://127.0.0.1:6379/0). Nothing is ever flushed from Redis.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

from tests.servers import BOOKING, ApiServer, start_api

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO / "benchmarks" / "results"
PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


def log(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- database


@dataclass(frozen=True)
class Database:
    name: str

    @property
    def url(self) -> str:
        """The SQLAlchemy URL the service reads from DATABASE_URL."""
        admin = urlsplit(PG_ADMIN_URL)
        return f"postgresql+psycopg://{admin.netloc}/{self.name}"


def create_database(prefix: str) -> Database:
    name = f"bench_{prefix}_{datetime.now(UTC).strftime('%Y%m%d%H%M%S')}_{secrets.token_hex(3)}"
    name = "".join(c if c.isalnum() or c == "_" else "_" for c in name.lower())
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return Database(name)


def database_stats(database: Database) -> dict[str, int]:
    """Cumulative counters of pg_stat_database (sessions opened, transactions, rows read)."""
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        row = conn.execute(
            "SELECT sessions, xact_commit, xact_rollback, tup_returned, tup_fetched,"
            " numbackends FROM pg_stat_database WHERE datname = %s",
            (database.name,),
        ).fetchone()
    if row is None:
        return {}
    names = ("sessions", "xact_commit", "xact_rollback", "tup_returned", "tup_fetched")
    out = dict(zip(names, (int(v or 0) for v in row[:5]), strict=True))
    out["backends_now"] = int(row[5] or 0)
    return out


def stats_delta(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
    return {k: after[k] - before.get(k, 0) for k in after if k != "backends_now"} | {
        "backends_at_end": after.get("backends_now", 0)
    }


def drop_database(database: Database) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database.name))
        )


# ----------------------------------------------------------------------------- the service


def service_env(database_url: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": REDIS_URL,
            "RATE_LIMIT_PER_MINUTE": "0",
        }
    )
    env.update(extra or {})
    return env


def run_booking(args: Sequence[str], env: Mapping[str, str], cwd: Path) -> str:
    done = subprocess.run(  # noqa: PLW1510 - checked below, with the output
        [*BOOKING, *args], env=dict(env), cwd=cwd, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"booking {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def create_key(env: Mapping[str, str], cwd: Path, name: str = "bench", role: str = "admin") -> str:
    out = run_booking(["keys", "create", "--name", name, "--role", role, "--json"], env, cwd)
    line = next(line for line in out.splitlines() if line.startswith("{"))
    key: str = json.loads(line)["key"]
    return key


@dataclass
class Stack:
    base_url: str
    admin_key: str
    server: ApiServer | None = None
    database: Database | None = None
    env: dict[str, str] = field(default_factory=dict)
    code: str = "working tree"  # or the commit served (see `git_rev`)

    def client(self, key: str | None = None) -> HttpClient:
        return HttpClient(self.base_url, key or self.admin_key)


def export_revision(rev: str) -> tuple[Path, str]:
    """The project's files at git revision `rev`, exported to a temp dir; (dir, full sha).

    Serve from it with PYTHONPATH=dir (it shadows the editable install of the working tree),
    to benchmark a commit (a baseline, say) while the working tree has moved on.
    """
    sha = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--verify", f"{rev}^{{commit}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    target = Path(tempfile.mkdtemp(prefix=f"bench-src-{sha[:8]}-"))
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", sha], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target, sha


@contextlib.contextmanager
def booking_stack(
    name: str,
    api_workers: int = 2,
    port: int | None = None,
    extra_env: Mapping[str, str] | None = None,
    keep_database: bool = False,
    git_rev: str | None = None,
) -> Iterator[Stack]:
    """A fresh database and a running `booking api` against it; everything undone on exit.

    The service runs the working tree's code, or with `git_rev` that commit's (exported).
    """
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))  # no stray .env is read
    source: Path | None = None
    code = "working tree"
    extra = dict(extra_env or {})
    if git_rev:
        source, sha = export_revision(git_rev)
        log(f"serving the code of {git_rev} ({sha[:12]}) from {source}")
        code = f"{git_rev} = {sha}"
        extra["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(source), os.environ.get("PYTHONPATH", "")) if p
        )
    database = create_database(name)
    server: ApiServer | None = None
    try:
        env = service_env(database.url, extra)
        log(f"database {database.name}: migrating")
        run_booking(["migrate"], env, workdir)
        key = create_key(env, workdir)
        log(f"starting booking api --workers {api_workers}")
        server = start_api(env, workdir / "api.log", api_workers, port, cwd=workdir)
        log(
            f"api ready on port {server.port} "
            f"(pid {server.process.pid}, workers {server.worker_pids()})"
        )
        yield Stack(server.base_url, key, server, database, env, code)
    finally:
        if server is not None:
            server.stop()
            log(f"api stopped; log kept at {server.process.log}")
        if keep_database:
            log(f"database {database.name} kept")
        else:
            drop_database(database)
            log(f"database {database.name} dropped")
        if source is not None:
            shutil.rmtree(source, ignore_errors=True)


# ----------------------------------------------------------------------------- a small client


class HttpClient:
    """A blocking keep-alive JSON client for seeding and checks (not for load)."""

    def __init__(self, base_url: str, key: str | None = None, timeout: float = 30.0) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.key = key
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, dict[str, str], Any]:
        """(status, headers, decoded JSON or raw text); retries once on a stale connection."""
        sent = {"Accept": "application/json", **(headers or {})}
        if self.key:
            sent.setdefault("Authorization", f"Bearer {self.key}")
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            sent.setdefault("Content-Type", "application/json")
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self._conn.request(method, path, body=data, headers=sent)
                response = self._conn.getresponse()
                raw = response.read()
            except (http.client.HTTPException, ConnectionError):
                self.close()
                if attempt == 2:
                    raise
                continue
            answer_headers = {k.lower(): v for k, v in response.getheaders()}
            payload: Any = raw.decode(errors="replace")
            if "json" in answer_headers.get("content-type", "") and raw:
                payload = json.loads(raw)
            return response.status, answer_headers, payload
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


# ----------------------------------------------------------------------------- profiling


def start_py_spy(
    pid: int, seconds: int, out: Path, fmt: str = "speedscope"
) -> subprocess.Popen[bytes]:
    """`py-spy record` of a process and its subprocesses for `seconds`, in the background.

    Given the `booking api` PID this samples every granian worker; `--nonblocking` keeps the
    sampler from pausing them (cheaper, slightly less exact stacks).
    """
    exe = Path(sys.executable).parent / "py-spy"
    cmd = [str(exe) if exe.exists() else "py-spy", "record", "--pid", str(pid), "--subprocesses"]
    cmd += ["--duration", str(seconds), "--format", fmt, "--output", str(out), "--nonblocking"]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def summarize_speedscope(path: Path, top: int = 20) -> dict[str, Any]:
    """Self and inclusive sample shares per function, and per package, of a py-spy profile."""
    doc = json.loads(path.read_text())
    frames = doc["shared"]["frames"]
    self_count: Counter[int] = Counter()
    incl_count: Counter[int] = Counter()
    pkg_self: Counter[str] = Counter()
    total = 0
    for profile in doc["profiles"]:
        for stack, weight in zip(profile["samples"], profile["weights"], strict=True):
            if not stack:
                continue
            total += weight
            self_count[stack[-1]] += weight
            for frame in set(stack):
                incl_count[frame] += weight
            leaf = frames[stack[-1]]
            if not leaf.get("file") and leaf["name"].startswith("process "):
                pkg_self["(native thread, no Python frame)"] += weight
            else:
                pkg_self[_package(leaf.get("file", ""))] += weight

    def label(i: int) -> str:
        f = frames[i]
        file = f.get("file", "")
        if not file and f["name"].startswith("process "):
            return f"{f['name'].split(':', 1)[0]} (no Python frame)"
        short = "/".join(Path(file).parts[-2:]) if file else "?"
        return f"{f['name']} ({short}:{f.get('line', '?')})"

    def share(n: int) -> float:
        return round(100.0 * n / total, 1) if total else 0.0

    return {
        "sampled_seconds": round(total, 2) if doc["profiles"][0].get("unit") == "seconds" else None,
        "samples": total,
        "self_by_package_pct": {k: share(v) for k, v in pkg_self.most_common(top)},
        "self_top_pct": {label(i): share(n) for i, n in self_count.most_common(top)},
        "inclusive_top_pct": {label(i): share(n) for i, n in incl_count.most_common(top)},
    }


def _package(file: str) -> str:
    if not file:
        return "?"
    parts = Path(file).parts
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1].split(".")[0]
    for ours in ("api", "domain", "infra", "workers", "cli"):
        if ours in parts[-3:-1]:  # the working tree, or a commit exported by `git_rev`
            return f"[{ours}]"
    if "python3" in file or "lib/python" in file:
        name = Path(file).parent.name
        return f"stdlib/{name}" if name.startswith(("asyncio", "zoneinfo", "json")) else "stdlib"
    return Path(file).name


# ----------------------------------------------------------------------------- CPU use

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime + stime


def _group_cpu_seconds(comm: str) -> float:
    """CPU of every process named `comm`, plus that of its reaped children (cutime, cstime).

    Children that exited in between are counted through their parent's cutime, so
    short-lived processes (say, PostgreSQL backends of connections opened and closed during a
    run) are not lost.
    """
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            head, tail = (entry / "stat").read_text().rsplit(")", 1)
        except (OSError, ValueError):
            continue
        if head.split("(", 1)[1] != comm:
            continue
        fields = tail.split()
        total += sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
    return total / _TICKS


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])
    return total - idle, total


class CpuSampler:
    """CPU use of some processes, and of the whole machine, between start() and stop().

    Percentages are of one core (200 = two cores busy); `machine_busy_pct` is of all cores, so
    other work on a shared machine shows up there.
    """

    def __init__(self, pids: Mapping[str, int], groups: Sequence[str] = ()) -> None:
        self.pids = dict(pids)
        self.groups = list(groups)  # process names (comm), e.g. "postgres"
        self._group_start: dict[str, float] = {}
        self._start: dict[str, float | None] = {}
        self._machine: tuple[int, int] = (0, 0)
        self._wall = 0.0

    def start(self) -> None:
        self._start = {name: _proc_cpu_seconds(pid) for name, pid in self.pids.items()}
        self._group_start = {comm: _group_cpu_seconds(comm) for comm in self.groups}
        with contextlib.suppress(OSError):
            self._machine = _machine_ticks()
        self._wall = time.monotonic()

    def stop(self) -> dict[str, Any]:
        wall = time.monotonic() - self._wall
        out: dict[str, Any] = {"seconds": round(wall, 2), "process_cpu_pct": {}}
        for name, pid in self.pids.items():
            before, after = self._start.get(name), _proc_cpu_seconds(pid)
            if before is not None and after is not None and wall > 0:
                out["process_cpu_pct"][name] = round(100.0 * (after - before) / wall, 1)
        for comm, before_total in self._group_start.items():
            used = _group_cpu_seconds(comm) - before_total
            out["process_cpu_pct"][f"all '{comm}' processes"] = round(100.0 * used / wall, 1)
        with contextlib.suppress(OSError):
            busy, total = _machine_ticks()
            if total > self._machine[1]:
                out["machine_busy_pct"] = round(
                    100.0 * (busy - self._machine[0]) / (total - self._machine[1]), 1
                )
        return out


# ----------------------------------------------------------------------------- results


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "loadavg_before": None,
    }
    with contextlib.suppress(OSError):
        info["loadavg_before"] = [round(x, 2) for x in os.getloadavg()]
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["mem_total_mb"] = int(line.split()[1]) // 1024
                break
    try:
        import uvloop  # noqa: PLC0415

        info["uvloop"] = getattr(uvloop, "__version__", "?")
    except ImportError:
        info["uvloop"] = None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        info["git_commit"] = head + ("-dirty" if dirty else "")
    return info


def write_results(name: str, document: Mapping[str, Any]) -> Path:
    """benchmarks/results/<name>-<UTC timestamp>.json (written atomically)."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS_DIR / f"{name}-{stamp}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(document, indent=2, default=str) + "\n")
    tmp.replace(path)
    return path


def result_row(label: str, summary: Mapping[str, Any]) -> dict[str, Any]:
    """A table row from `loadgen.Result.summary()`."""
    lat = summary["latency_ms"]
    non_2xx = sum(v for k, v in summary["status_counts"].items() if not k.startswith("2"))
    return {
        "benchmark": label,
        "requests": summary["requests"],
        "req/s": f"{summary['rps']:,.1f}",
        "p50 ms": f"{lat['p50']:.2f}",
        "p90 ms": f"{lat['p90']:.2f}",
        "p99 ms": f"{lat['p99']:.2f}",
        "max ms": f"{lat['max']:.2f}",
        "non-2xx": non_2xx,
        "errors": summary["error_count"],
    }


def print_table(rows: Sequence[Mapping[str, Any]], file: Any = None) -> None:
    if not rows:
        return
    columns = list(rows[0].keys())
    cells = [[str(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]

    def fmt(values: Sequence[str]) -> str:
        return " | ".join(
            v.ljust(w) if i == 0 else v.rjust(w)
            for i, (v, w) in enumerate(zip(values, widths, strict=True))
        )

    out = file or sys.stdout
    print(fmt(columns), file=out)
    print("-+-".join("-" * w for w in widths), file=out)
    for row in cells:
        print(fmt(row), file=out)
    out.flush()


# ----------------------------------------------------------------------------- Redis


def redis_url_for_db(db: int, base: str | None = None) -> str:
    """`base` (default BENCH_REDIS_URL) pointing at Redis database index `db`."""
    parts = urlsplit(base or REDIS_URL)
    return parts._replace(path=f"/{db}").geturl()


def redis_db_index(url: str) -> int:
    path = urlsplit(url).path.strip("/")
    return int(path) if path else 0


def redis_dbsize(url: str) -> int:
    import redis  # noqa: PLC0415 - a dependency of the project, used by few benchmarks

    client = redis.Redis.from_url(url)
    try:
        return int(client.dbsize())
    finally:
        client.close()


def redis_flush_own_db(url: str) -> None:
    """FLUSHDB of a benchmark's own Redis database; refuses database 0 (shared)."""
    import redis  # noqa: PLC0415

    if redis_db_index(url) == 0:
        raise ValueError("refusing to flush Redis database 0: it is shared")
    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


# ----------------------------------------------------------------------------- SQL on a bench db


def database_url_psycopg(database: Database) -> str:
    """A libpq URL of a benchmark database (for checks and monitoring from the harness)."""
    admin = urlsplit(PG_ADMIN_URL)
    return admin._replace(path=f"/{database.name}").geturl()


def query_database(
    database: Database, query: str, params: Sequence[Any] = ()
) -> list[tuple[Any, ...]]:
    """Rows of one query against a benchmark database (a short-lived connection)."""
    with psycopg.connect(database_url_psycopg(database), autocommit=True) as conn:
        return conn.execute(query, params).fetchall()


def table_stats(database: Database) -> dict[str, dict[str, int]]:
    """Cumulative pg_stat_user_tables counters per table (inserts, updates, scans)."""
    rows = query_database(
        database,
        "SELECT relname, n_tup_ins, n_tup_upd, n_tup_del, seq_scan, idx_scan"
        " FROM pg_stat_user_tables",
    )
    names = ("n_tup_ins", "n_tup_upd", "n_tup_del", "seq_scan", "idx_scan")
    return {
        str(row[0]): dict(zip(names, (int(v or 0) for v in row[1:]), strict=True)) for row in rows
    }


def table_stats_delta(
    before: Mapping[str, Mapping[str, int]], after: Mapping[str, Mapping[str, int]]
) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for table, counters in after.items():
        delta = {k: v - before.get(table, {}).get(k, 0) for k, v in counters.items()}
        if any(delta.values()):
            out[table] = delta
    return out


# ----------------------------------------------------------------------------- other processes


def cpu_snapshot() -> dict[int, tuple[str, float]]:
    """{pid: (comm, CPU seconds)} of every process on the machine."""
    out: dict[int, tuple[str, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            head, tail = (entry / "stat").read_text().rsplit(")", 1)
        except (OSError, ValueError):
            continue
        fields = tail.split()
        out[int(entry.name)] = (
            head.split("(", 1)[1],
            (int(fields[11]) + int(fields[12])) / _TICKS,
        )
    return out


def busiest_processes(
    before: Mapping[int, tuple[str, float]],
    after: Mapping[int, tuple[str, float]],
    seconds: float,
    exclude: Collection[int] = (),
    top: int = 5,
) -> list[dict[str, Any]]:
    """The processes that used the most CPU between two snapshots (% of one core).

    With `exclude` (the benchmark's own processes) this shows who else competed for the CPU.
    """
    used = []
    for pid, (comm, cpu) in after.items():
        if pid in exclude or pid not in before:
            continue
        delta = cpu - before[pid][1]
        if delta > 0:
            used.append((delta, pid, comm))
    used.sort(reverse=True)
    return [
        {"pid": pid, "comm": comm, "cpu_pct": round(100.0 * d / seconds, 1)}
        for d, pid, comm in used[:top]
        if seconds > 0
    ]


def cmdline(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    return ""
