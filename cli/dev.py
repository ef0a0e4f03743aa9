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
from infra.logs import configure_logging
from infra.settings import Settings


def port_in_use(host: str, port: int) -> bool:
    """Whether a server already listens on host:port.

    The probe sets SO_REUSEADDR like the servers do, so a port left in TIME_WAIT by a previous
    run counts as free; on Linux the bind still fails while anything listens there, even on the
    wildcard address or with SO_REUSEPORT (which would let Granian share the port silently).
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        return False  # the server itself will report the bad host
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError:
                return True
    return False


def taken_ports(settings: Settings, host: str, port: int) -> list[str]:
    """The ports `booking dev` needs that something else already listens on, described."""
    taken = []
    if port_in_use(host, port):
        taken.append(f"API port {port} on {host} (choose another with --port)")
    redis_port = settings.embedded_redis_port
    if settings.embedded_redis and port_in_use("127.0.0.1", redis_port):
        taken.append(
            f"embedded Redis port {redis_port} on 127.0.0.1 "
            "(choose another with EMBEDDED_REDIS_PORT, or point REDIS_URL at a Redis)"
        )
    return taken


def start_embedded_redis(port: int) -> tuple[str, threading.Thread]:
    """fakeredis' TCP server in a thread of this process, on exactly `port`."""
    from fakeredis import TcpFakeServer

    server = TcpFakeServer(("127.0.0.1", port), server_type="redis")
    thread = threading.Thread(target=server.serve_forever, name="embedded-redis", daemon=True)
    thread.start()
    return f"redis://127.0.0.1:{port}/0", thread


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
    from cli.serve import serve_api, shared_metrics_dir

    # Fail at once rather than share a port with another server (Granian binds with
    # SO_REUSEPORT, so a second API on the same port would silently split the traffic).
    taken = taken_ports(settings, host, port)
    if taken:
        print(
            "booking dev: already in use: " + "; ".join(taken) + ". Nothing was started.",
            file=sys.stderr,
        )
        return 1
    embedded_database, embedded_redis = settings.embedded_database, settings.embedded_redis
    if "LOG_FORMAT" not in os.environ:  # readable lines here and in the children
        os.environ["LOG_FORMAT"] = "console"
        configure_logging(settings.log_level, "console")
    if embedded_redis:
        try:
            redis_url, _ = start_embedded_redis(settings.embedded_redis_port)
        except OSError as exc:  # taken between the check and the bind
            print(
                f"booking dev: cannot listen on embedded Redis port "
                f"{settings.embedded_redis_port}: {exc}",
                file=sys.stderr,
            )
            return 1
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
    # The worker and the scheduler write their samples to the API's directory too, so the
    # dev API's /metrics shows the whole pipeline.
    with shared_metrics_dir():
        children = [_spawn("worker", os.environ), _spawn("scheduler", os.environ)]
        try:
            serve_api(host, port, 1, settings.log_level)
        finally:
            _stop(children)
    return 0


def _stop(children: list[subprocess.Popen[bytes]]) -> None:
    for child in children:
        child.terminate()
    for child in children:
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
