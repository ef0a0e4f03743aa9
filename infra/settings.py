"""Settings: one frozen object, built once from the environment (and `.env`, never overriding)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

EMBEDDED_REDIS_PORT = 6390
# Just over 24 hours of retries in all, with growing gaps.
DEFAULT_RETRY_DELAYS = (5, 30, 120, 600, 1800, 3600, 7200, 14400, 28800, 43200, 86400)


def read_dotenv(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a `.env` file; blank lines and `#` comments are skipped."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or "=" not in stripped:
            continue
        key, _, value = stripped.partition("=")
        key = key.strip().removeprefix("export ").strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


def _flag(value: str, name: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"{name} must be true or false, got {value!r}")


def _int(value: str, name: str, minimum: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {value!r}") from None
    if number < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {number}")
    return number


def _positive(value: str, name: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not number > 0:
        raise ValueError(f"{name} must be more than 0, got {value!r}")
    return number


def _seconds(value: str, name: str, minimum: float) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, got {value!r}") from None
    if not number >= minimum:  # also refuses NaN
        raise ValueError(f"{name} must be at least {minimum:g} seconds, got {value}")
    return number


def _choice(value: str, name: str, choices: tuple[str, ...]) -> str:
    lowered = value.strip().lower()
    if lowered not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return lowered


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str
    redis_url: str
    embedded_database: bool
    embedded_redis: bool
    data_dir: Path
    embedded_redis_port: int = EMBEDDED_REDIS_PORT
    booking_partitions: int = 64
    rate_limit_per_minute: int = 0
    webhook_allow_private_targets: bool = False
    webhook_retry_delays: tuple[int, ...] = DEFAULT_RETRY_DELAYS
    webhook_timeout_seconds: float = 10.0
    webhook_disable_after_days: float = 5.0
    webhook_secret_overlap_hours: float = 24.0
    webhook_max_in_flight: int = 500
    webhook_max_in_flight_per_endpoint: int = 100
    webhook_dns_servers: tuple[str, ...] = ()
    webhook_dns_cache_seconds: float = 5.0
    webhook_stream_maxlen: int = 100_000
    webhook_poll_seconds: float = 1.0
    max_body_bytes: int = 64 * 1024
    database_pool_size: int = 20
    pending_after_seconds: float = 3.0
    max_attempts: int = 3
    sweep_interval_seconds: float = 2.0
    log_level: str = "INFO"
    # Where availability answers are cached: a Redis that may evict (maxmemory + allkeys-lru),
    # apart from the broker's, which must not. Default: the same server as REDIS_URL.
    cache_redis_url: str = ""
    availability_processes: int = 1
    availability_max_slots: int = 10_000
    availability_computations_per_key: int = 2
    availability_computations_per_process: int = 8
    long_polls_per_key: int = 100
    long_polls_per_process: int = 500
    worker_lease_seconds: float = 5.0
    heartbeat_file: Path | None = None
    log_format: str = "json"
    metrics_port: int = 0
    api_key_cache_seconds: float = 0.5
    retention_days: int = 400
    idempotency_key_hours: float = 24.0

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, dotenv: Path | None = Path(".env")
    ) -> Settings:
        env: dict[str, str] = {}
        if dotenv is not None:
            env.update(read_dotenv(dotenv))
        env.update(os.environ if environ is None else environ)

        data_dir = Path(env.get("BOOKING_DATA_DIR") or ".booking").resolve()
        database_url = env.get("DATABASE_URL", "").strip()
        redis_url = env.get("REDIS_URL", "").strip()
        embedded_redis_port = _int(
            env.get("EMBEDDED_REDIS_PORT", str(EMBEDDED_REDIS_PORT)), "EMBEDDED_REDIS_PORT", 1
        )
        delays = env.get("WEBHOOK_RETRY_DELAYS", "").strip()
        return cls(
            database_url=database_url or f"sqlite:///{data_dir / 'booking.db'}",
            redis_url=redis_url or f"redis://127.0.0.1:{embedded_redis_port}/0",
            embedded_database=not database_url,
            embedded_redis=not redis_url,
            data_dir=data_dir,
            embedded_redis_port=embedded_redis_port,
            booking_partitions=_int(env.get("BOOKING_PARTITIONS", "64"), "BOOKING_PARTITIONS", 1),
            rate_limit_per_minute=_int(
                env.get("RATE_LIMIT_PER_MINUTE", "0"), "RATE_LIMIT_PER_MINUTE", 0
            ),
            webhook_allow_private_targets=_flag(
                env.get("WEBHOOK_ALLOW_PRIVATE_TARGETS", "false"), "WEBHOOK_ALLOW_PRIVATE_TARGETS"
            ),
            webhook_retry_delays=tuple(
                _int(part, "WEBHOOK_RETRY_DELAYS", 1) for part in delays.split(",")
            )
            if delays
            else DEFAULT_RETRY_DELAYS,
            webhook_timeout_seconds=_positive(
                env.get("WEBHOOK_TIMEOUT_SECONDS", "10"), "WEBHOOK_TIMEOUT_SECONDS"
            ),
            webhook_disable_after_days=_positive(
                env.get("WEBHOOK_DISABLE_AFTER_DAYS", "5"), "WEBHOOK_DISABLE_AFTER_DAYS"
            ),
            webhook_secret_overlap_hours=_positive(
                env.get("WEBHOOK_SECRET_OVERLAP_HOURS", "24"), "WEBHOOK_SECRET_OVERLAP_HOURS"
            ),
            webhook_max_in_flight=_int(
                env.get("WEBHOOK_MAX_IN_FLIGHT", "500"), "WEBHOOK_MAX_IN_FLIGHT", 1
            ),
            webhook_max_in_flight_per_endpoint=_int(
                env.get("WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT", "100"),
                "WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT",
                1,
            ),
            webhook_dns_servers=tuple(
                part.strip()
                for part in env.get("WEBHOOK_DNS_SERVERS", "").split(",")
                if part.strip()
            ),
            webhook_dns_cache_seconds=float(env.get("WEBHOOK_DNS_CACHE_SECONDS", "5")),
            webhook_stream_maxlen=_int(
                env.get("WEBHOOK_STREAM_MAXLEN", "100000"), "WEBHOOK_STREAM_MAXLEN", 1
            ),
            webhook_poll_seconds=_positive(
                env.get("WEBHOOK_POLL_SECONDS", "1"), "WEBHOOK_POLL_SECONDS"
            ),
            max_body_bytes=_int(env.get("MAX_BODY_BYTES", "65536"), "MAX_BODY_BYTES", 1024),
            database_pool_size=_int(env.get("DATABASE_POOL_SIZE", "20"), "DATABASE_POOL_SIZE", 1),
            pending_after_seconds=float(env.get("PENDING_AFTER_SECONDS", "3")),
            max_attempts=_int(env.get("MAX_ATTEMPTS", "3"), "MAX_ATTEMPTS", 1),
            sweep_interval_seconds=float(env.get("SWEEP_INTERVAL_SECONDS", "2")),
            log_level=env.get("LOG_LEVEL", "INFO").upper(),
            cache_redis_url=env.get("CACHE_REDIS_URL", "").strip()
            or redis_url
            or f"redis://127.0.0.1:{embedded_redis_port}/0",
            availability_processes=_int(
                env.get("AVAILABILITY_PROCESSES", "1"), "AVAILABILITY_PROCESSES", 0
            ),
            availability_max_slots=_int(
                env.get("AVAILABILITY_MAX_SLOTS", "10000"), "AVAILABILITY_MAX_SLOTS", 1
            ),
            availability_computations_per_key=_int(
                env.get("AVAILABILITY_COMPUTATIONS_PER_KEY", "2"),
                "AVAILABILITY_COMPUTATIONS_PER_KEY",
                1,
            ),
            availability_computations_per_process=_int(
                env.get("AVAILABILITY_COMPUTATIONS_PER_PROCESS", "8"),
                "AVAILABILITY_COMPUTATIONS_PER_PROCESS",
                1,
            ),
            long_polls_per_key=_int(env.get("LONG_POLLS_PER_KEY", "100"), "LONG_POLLS_PER_KEY", 1),
            long_polls_per_process=_int(
                env.get("LONG_POLLS_PER_PROCESS", "500"), "LONG_POLLS_PER_PROCESS", 1
            ),
            worker_lease_seconds=_seconds(
                env.get("WORKER_LEASE_SECONDS", "5"), "WORKER_LEASE_SECONDS", 1.0
            ),
            heartbeat_file=Path(heartbeat) if (heartbeat := env.get("HEARTBEAT_FILE")) else None,
            log_format=_choice(env.get("LOG_FORMAT", "json"), "LOG_FORMAT", ("json", "console")),
            metrics_port=_int(env.get("METRICS_PORT", "0"), "METRICS_PORT", 0),
            api_key_cache_seconds=float(env.get("API_KEY_CACHE_SECONDS", "0.5")),
            retention_days=_int(env.get("RETENTION_DAYS", "400"), "RETENTION_DAYS", 1),
            idempotency_key_hours=_positive(
                env.get("IDEMPOTENCY_KEY_HOURS", "24"), "IDEMPOTENCY_KEY_HOURS"
            ),
        )
