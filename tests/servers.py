"""Real server processes for end-to-end tests: `booking api`, workers, the embedded Redis server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Process:
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
        if self.popen.poll() is not None:
            return
        self.popen.send_signal(sig)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(5)

    def kill(self) -> None:
        """SIGKILL: no chance to finish, ack or clean up."""
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(10)

    def tail(self, lines: int = 60) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def start_booking(
    args: list[str], env: Mapping[str, str], log: Path, cwd: Path | None = None
) -> Process:
    """`booking <args>` as a child process with exactly `env` on top of ours."""
    handle = log.open("wb")
    popen = subprocess.Popen(
        [sys.executable, "-m", "cli", *args],
        env={**os.environ, **env},
        stdout=handle,
        stderr=subprocess.STDOUT,
        cwd=cwd or ROOT,
    )
    return Process(popen, log)


def wait_until_ready(base_url: str, process: Process, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise RuntimeError(f"server exited early:\n{process.tail()}")
        try:
            if httpx.get(f"{base_url}/health/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server not ready after {timeout}s:\n{process.tail()}")


@contextmanager
def running_api(env: Mapping[str, str], log_dir: Path, workers: int = 1) -> Iterator[str]:
    port = free_port()
    process = start_booking(
        ["api", "--port", str(port), "--workers", str(workers)], env, log_dir / f"api-{port}.log"
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(base_url, process)
        yield base_url
    finally:
        process.stop()


@contextmanager
def embedded_redis() -> Iterator[str]:
    """fakeredis' TCP server in a thread of the test process, as `booking dev` runs it."""
    from fakeredis import TcpFakeServer

    server = TcpFakeServer(("127.0.0.1", 0), server_type="redis")
    import threading

    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"redis://127.0.0.1:{server.server_address[1]}/0"
    finally:
        server.shutdown()
        server.server_close()
