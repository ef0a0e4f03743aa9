"""Caps on what one API key, and one process, may hold at once: computations and long-polls.

A request past a cap is answered at once with 429 and `Retry-After`, instead of queueing
behind work it cannot speed up. The counts are per API process: N replicas allow N times as
much in all.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Hashable
from contextlib import asynccontextmanager
from typing import Any, Protocol, TypeVar

from api.errors import TooBusy

R = TypeVar("R")


class Offload(Protocol):
    """Runs CPU-heavy work (a picklable function and arguments) away from the event loop."""

    async def __call__(self, job: Callable[..., R], *args: Any) -> R: ...


class ConcurrencyCaps:
    def __init__(self, what: str, per_key: int, per_process: int, retry_after: int = 1) -> None:
        self._what = what
        self._per_key = per_key
        self._per_process = per_process
        self._retry_after = retry_after
        self._held: dict[Hashable, int] = {}
        self._total = 0

    @property
    def held(self) -> int:
        return self._total

    @asynccontextmanager
    async def hold(self, key: Hashable) -> AsyncIterator[None]:
        mine = self._held.get(key, 0)
        if mine >= self._per_key:
            raise TooBusy(
                f"This API key already has {mine} {self._what} running; "
                "retry when one has finished.",
                self._retry_after,
            )
        if self._total >= self._per_process:
            raise TooBusy(
                f"This server is running as many {self._what} as it allows; retry shortly.",
                self._retry_after,
            )
        self._held[key] = mine + 1
        self._total += 1
        try:
            yield
        finally:
            self._total -= 1
            left = self._held[key] - 1
            if left:
                self._held[key] = left
            else:
                del self._held[key]
