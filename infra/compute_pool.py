"""CPU-heavy work of the API (computing and rendering availability) away from the event loop.

A long computation on the event loop stalls every other request of the process, /health/live
included. Worker processes run it instead; a thread would still hold the GIL against the loop.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from typing import ParamSpec, TypeVar

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


class ComputePool:
    """`processes` worker processes, started at the first job; 0 runs jobs in a thread."""

    def __init__(self, processes: int) -> None:
        self._processes = processes
        self._executor: ProcessPoolExecutor | None = None

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            # spawn, not fork: the API process has threads and an event loop to leave behind.
            self._executor = ProcessPoolExecutor(
                self._processes, mp_context=multiprocessing.get_context("spawn")
            )
        return self._executor

    async def run(self, job: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        if self._processes == 0:
            return await asyncio.to_thread(job, *args, **kwargs)
        loop = asyncio.get_running_loop()
        for attempt in (1, 2):
            try:
                return await loop.run_in_executor(self._pool(), partial(job, *args, **kwargs))
            except BrokenProcessPool:
                # A worker died (killed, out of memory): start a fresh pool and try once more.
                log.warning("compute pool broken; starting a new one (attempt %d)", attempt)
                broken, self._executor = self._executor, None
                if broken is not None:
                    broken.shutdown(wait=False, cancel_futures=True)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
