"""Worker membership in Redis: who is alive, and which partitions each one consumes now.

Two keys, changed together by one Lua script so they never disagree:

- `booking:workers`, a sorted set: worker name -> the instant (ms, Redis' own clock) its lease
  ends. A heartbeat pushes the instant forward by the TTL; a worker that stops beating (killed,
  frozen, cut off) drops out once its lease ends, at the next heartbeat of anyone.
- `booking:worker-records`, a hash: worker name -> JSON {partitions, pinned, pid, host}, the
  partitions the worker says it consumes at its last heartbeat.

Redis' clock (`TIME`) decides expiry, so workers on hosts whose clocks disagree still agree on
who is alive. Nothing here is needed for correctness: PostgreSQL decides every request under a
lock, so two workers briefly consuming one partition only cost a lock wait.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from redis import Redis

MEMBERS_KEY = "booking:workers"
RECORDS_KEY = "booking:worker-records"

# KEYS: members, records. ARGV: name ('' to only read), lease ms, record JSON.
# Purges every member whose lease ended, renews the caller's, returns every live record.
_HEARTBEAT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
for i = 1, #dead, 500 do
  local chunk = {unpack(dead, i, math.min(i + 499, #dead))}
  redis.call('ZREM', KEYS[1], unpack(chunk))
  redis.call('HDEL', KEYS[2], unpack(chunk))
end
if ARGV[1] ~= '' then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
end
return redis.call('HGETALL', KEYS[2])
"""

_LEAVE = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
"""


@dataclass(frozen=True, slots=True)
class WorkerRecord:
    name: str
    partitions: tuple[int, ...] = ()
    pinned: bool = False  # started with --queues: consumes what it was told, takes no share
    pid: int = 0
    host: str = ""

    def to_json(self) -> str:
        return json.dumps(
            {
                "partitions": list(self.partitions),
                "pinned": self.pinned,
                "pid": self.pid,
                "host": self.host,
            }
        )

    @classmethod
    def from_json(cls, name: str, raw: str | bytes) -> WorkerRecord:
        try:
            data = json.loads(raw)
            return cls(
                name=name,
                partitions=tuple(int(p) for p in data.get("partitions", [])),
                pinned=bool(data.get("pinned", False)),
                pid=int(data.get("pid", 0)),
                host=str(data.get("host", "")),
            )
        except (ValueError, TypeError, AttributeError):
            return cls(name=name)  # a record we cannot read still counts as a live member


def _records(raw: list[bytes]) -> list[WorkerRecord]:
    pairs = zip(raw[0::2], raw[1::2], strict=True)
    return sorted(
        (WorkerRecord.from_json(name.decode(), value) for name, value in pairs),
        key=lambda record: record.name,
    )


class Membership:
    """The live workers, as Redis sees them (blocking: a worker's heartbeat thread, the CLI)."""

    def __init__(self, redis: Redis, lease_seconds: float) -> None:
        self._redis = redis
        self._lease_ms = max(1, round(lease_seconds * 1000))
        self._heartbeat = redis.register_script(_HEARTBEAT)
        self._leave = redis.register_script(_LEAVE)

    def heartbeat(self, record: WorkerRecord) -> list[WorkerRecord]:
        """Renew `record`'s lease (joining if new); returns every live member, itself included."""
        raw = self._heartbeat(
            keys=[MEMBERS_KEY, RECORDS_KEY], args=[record.name, self._lease_ms, record.to_json()]
        )
        return _records(raw)

    def live(self) -> list[WorkerRecord]:
        """Every live member, after purging those whose lease ended."""
        return _records(self._heartbeat(keys=[MEMBERS_KEY, RECORDS_KEY], args=["", 0, ""]))

    def leave(self, name: str) -> None:
        self._leave(keys=[MEMBERS_KEY, RECORDS_KEY], args=[name])
