"""Saying that Redis is unreachable without saying it thousands of times a second."""

from __future__ import annotations

import logging
import time

from redis.exceptions import RedisError


class OccasionalWarning:
    """Logs a Redis failure at most once per `every` seconds; the callers carry on without it."""

    def __init__(self, log: logging.Logger, what: str, every: float = 10.0) -> None:
        self._log = log
        self._what = what
        self._every = every
        self._last = float("-inf")

    def __call__(self, exc: RedisError | OSError) -> None:
        now = time.monotonic()
        if now - self._last > self._every:
            self._last = now
            self._log.warning("%s: %r", self._what, exc)
