"""`booking dev`: everything in one command, on the embedded SQLite file and Redis server."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping

from domain.model import Role
from infra.database import migrate
from infra.settings import Settings


def _port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def start_embedded_redis(port: int) -> tuple[str, threading.Thread]:
    """fakeredis' TCP server in a thread of this process; another port if ours is taken."""
    from fakeredis import TcpFakeServer

    chosen = port if _port_is_free(port) else 0
    server = TcpFakeServer(("127.0.0.1", chosen), server_type="redis")
    actual = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, name="embedded-redis", daemon=True)
    thread.start()
    return f"redis://127.0.0.1:{actual}/0", thread


def _die_with_parent() -> None:
    """Linux: a child started with this gets SIGTERM when `booking dev` goes away."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _spawn(command: str, env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "cli", command],
        env=dict(env),
        preexec_fn=_die_with_parent,  # noqa: PLW1509 - only sets a signal, no locks involved
    )


def run_dev(settings: Settings, host: str, port: int) -> int:
    from cli.main import _issue_key
    from cli.serve import serve_api

    embedded_database, embedded_redis = settings.embedded_database, settings.embedded_redis
    if embedded_redis:
        redis_url, _ = start_embedded_redis(settings.embedded_redis_port)
        os.environ["REDIS_URL"] = redis_url
    os.environ.setdefault("DATABASE_URL", settings.database_url)
    settings = Settings.from_env()
    migrate(settings.database_url)
    admin = _issue_key(settings, "dev admin", Role.ADMIN)
    client = _issue_key(settings, "dev client", Role.CLIENT)
    where = (
        f"embedded SQLite file {settings.database_url.removeprefix('sqlite:///')}"
        if embedded_database
        else "DATABASE_URL"
    )
    print(
        "\n".join(
            [
                "",
                f"  booking dev: API on http://{host}:{port}  (docs: http://{host}:{port}/docs)",
                "  with one worker and the scheduler; Ctrl-C stops everything",
                f"  database: {where}",
                f"  redis:    {settings.redis_url}{' (embedded)' if embedded_redis else ''}",
                f"  admin key:  {admin.key}",
                f"  client key: {client.key}",
                f"  client signing secret: {client.signing_secret}",
                "",
            ]
        ),
        flush=True,
    )
    children = [_spawn("worker", os.environ), _spawn("scheduler", os.environ)]
    try:
        serve_api(host, port, 1, settings.log_level)
    finally:
        for child in children:
            child.terminate()
        for child in children:
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
    return 0
