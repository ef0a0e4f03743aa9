"""A file whose modification time says a process's main loop is still turning.

The Kubernetes liveness probe (`booking probe --max-age S`) reads it: a process that is up but
stuck (a wedged event loop, a dead broker connection it never recovers from) stops touching it.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path


class HeartbeatFile:
    """Touched from a process's main loop; a no-op without a path (development)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path

    def touch(self) -> None:
        if self.path is not None:
            # A full or read-only disk shows up as a stale heartbeat: that is the point.
            with contextlib.suppress(OSError):
                self.path.touch()

    def remove(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)


def heartbeat_problem(path: Path, max_age_seconds: float) -> str | None:
    """Why the heartbeat at `path` is not fresh, or None if it was touched recently enough."""
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return f"no heartbeat: {path} does not exist"
    except OSError as exc:
        return f"no heartbeat: cannot read {path} ({exc.strerror})"
    if age > max_age_seconds:
        return f"stale heartbeat: {path} last touched {age:.1f} s ago (max {max_age_seconds:g} s)"
    return None
