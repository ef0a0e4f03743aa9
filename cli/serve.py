"""Running the ASGI server, with one metrics view across its worker processes."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from granian import Granian
from granian.constants import Interfaces, Loops
from granian.log import LogLevels

from infra.logs import library_log_config

# prometheus-client picks multiprocess mode when it is first imported, so the directory is
# named before anything imports it (infra.metrics is imported lazily for that reason).
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_PREFIX = "booking-metrics-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_orphans(parent: Path) -> None:
    """Directories left by a `booking api` that was killed before it could remove its own."""
    for path in parent.glob(f"{_PREFIX}*"):
        owner = path.name.removeprefix(_PREFIX).split("-", 1)[0]
        if owner.isdigit() and not _alive(int(owner)):
            shutil.rmtree(path, ignore_errors=True)


@contextmanager
def shared_metrics_dir() -> Iterator[Path]:
    """PROMETHEUS_MULTIPROC_DIR for this process and the ones it starts.

    A directory given in the environment is used as it is (its dead processes' files are
    cleaned); otherwise one is made under the temporary directory and removed at exit.
    """
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for sample_file in path.glob("*.db"):
            pid = sample_file.stem.rsplit("_", 1)[-1]
            if pid.isdigit() and not _alive(int(pid)):
                sample_file.unlink(missing_ok=True)
        yield path
        return
    if "prometheus_client" in sys.modules:
        raise RuntimeError(
            "prometheus_client was imported before PROMETHEUS_MULTIPROC_DIR was set; "
            "the API's processes would each report only their own metrics"
        )
    temporary = Path(tempfile.gettempdir())
    _remove_orphans(temporary)
    path = Path(tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-", dir=temporary))
    os.environ[MULTIPROC_ENV] = str(path)
    try:
        yield path
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(path, ignore_errors=True)


def serve_api(host: str, port: int, workers: int, log_level: str) -> None:
    Granian(
        target="api.asgi:app_from_env",
        factory=True,
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        workers=workers,
        loop=Loops.auto,
        log_level=LogLevels(log_level.lower())
        if log_level.lower() in LogLevels.__members__
        else LogLevels.info,
        log_dictconfig=library_log_config(log_level),
        respawn_failed_workers=True,
        backlog=2048,
    ).serve()
