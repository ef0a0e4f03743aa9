"""`booking dev` on a port something already listens on fails at once, saying which port,
instead of sharing it (Granian binds with SO_REUSEPORT) or moving Redis to another port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.servers import ROOT, free_port

SETTINGS_FROM_ENVIRONMENT = ("DATABASE_URL", "REDIS_URL", "BOOKING_DATA_DIR")


@contextmanager
def listener(port: int, *, reuse_port: bool) -> Iterator[socket.socket]:
    """A server socket on 127.0.0.1:port, bound the way Granian binds when reuse_port."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen()
        yield sock


def run_dev(tmp_path: Path, api_port: int, redis_port: int) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS_FROM_ENVIRONMENT}
    env["EMBEDDED_REDIS_PORT"] = str(redis_port)
    env["PYTHONPATH"] = str(ROOT)
    # A generous bound for a loaded machine: failing "at once" means before anything starts,
    # which the absent data directory shows; the timeout only stops a hang.
    return subprocess.run(
        [sys.executable, "-m", "cli", "dev", "--port", str(api_port)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("reuse_port", [False, True], ids=["plain", "so_reuseport"])
def test_dev_refuses_an_api_port_in_use_and_starts_nothing(
    tmp_path: Path, reuse_port: bool
) -> None:
    api_port = free_port()
    with listener(api_port, reuse_port=reuse_port) as sock:
        done = run_dev(tmp_path, api_port, free_port())
        sock.settimeout(0.5)
        with pytest.raises(TimeoutError):
            sock.accept()  # nobody else came to share the port either
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"API port {api_port} on 127.0.0.1" in done.stderr
    assert "--port" in done.stderr
    assert "admin key" not in done.stdout  # no keys issued, no schema made
    assert not (tmp_path / ".booking").exists()


def test_dev_refuses_an_embedded_redis_port_in_use(tmp_path: Path) -> None:
    redis_port = free_port()
    with listener(redis_port, reuse_port=False):
        done = run_dev(tmp_path, free_port(), redis_port)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"embedded Redis port {redis_port}" in done.stderr
    assert "EMBEDDED_REDIS_PORT" in done.stderr
    assert not (tmp_path / ".booking").exists()
