"""Real `booking` processes, for end-to-end tests and benchmarks alike.

Every process runs in a session (and process group) of its own with its output in a log file,
and is stopped by its PID: the signal asked for, then SIGKILL of the group this harness made
for it if it does not go, and of whatever it left behind in that group.
Benchmarks import this module too (`from tests.servers import ...`): one harness for both.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import redis

ROOT = Path(__file__).resolve().parent.parent
# `booking` of this interpreter; the code it runs is the one `import cli` finds (the working
# tree, or a PYTHONPATH that shadows it).
BOOKING = (sys.executable, "-m", "cli")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def child_pids(pid: int) -> list[int]:
    """All descendants of `pid` (Linux /proc), depth first."""
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                for child in (task / "children").read_text().split():
                    found.append(int(child))
                    found.extend(child_pids(int(child)))
    return found


@dataclass
class Process:
    popen: subprocess.Popen[bytes]
    log: Path
    own_group: bool = False  # started in a process group of its own (by start_booking)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self._kill_group()
                self.popen.wait(5)
        self._kill_group()  # stragglers (pool children, say) are ours too

    def kill(self) -> None:
        """SIGKILL: no chance to finish, ack or clean up."""
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(10)

    def _kill_group(self) -> None:
        if self.own_group:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
        elif self.popen.poll() is None:
            self.popen.kill()

    def children(self) -> list[int]:
        return child_pids(self.pid)

    def tail(self, lines: int = 60) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_for_log(self, text: str, timeout: float = 60) -> None:
        """Until `text` appears in the log; raises if the process exits or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"process exited early:\n{self.tail()}")
            with contextlib.suppress(OSError):
                if text in self.log.read_text(errors="replace"):
                    return
            time.sleep(0.1)
        raise RuntimeError(f"{text!r} not logged after {timeout}s:\n{self.tail()}")


def start_booking(
    args: list[str], env: Mapping[str, str], log: Path, cwd: Path | None = None
) -> Process:
    """`booking <args>` as a child process with exactly `env` on top of ours."""
    with log.open("wb") as handle:
        popen = subprocess.Popen(
            [*BOOKING, *args],
            env={**os.environ, **env},
            stdout=handle,
            stderr=subprocess.STDOUT,
            cwd=cwd or ROOT,
            start_new_session=True,  # a group of its own, to stop whatever it starts
        )
    return Process(popen, log, own_group=True)


def wait_until_ready(base_url: str, process: Process, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise RuntimeError(f"server exited early:\n{process.tail()}")
        try:
            answer = httpx.get(f"{base_url}/health/ready", timeout=1)
            if answer.status_code == 200:
                return
            last = answer.status_code
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.1)
    raise RuntimeError(f"server not ready after {timeout}s ({last!r}):\n{process.tail()}")


@dataclass
class ApiServer:
    """`booking api` (granian: a main process and its workers)."""

    process: Process
    port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def worker_pids(self) -> list[int]:
        return self.process.children()

    def stop(self) -> None:
        self.process.stop(signal.SIGINT, timeout=15)  # granian's graceful shutdown


def start_api(
    env: Mapping[str, str],
    log: Path,
    workers: int = 1,
    port: int | None = None,
    cwd: Path | None = None,
    timeout: float = 60,
) -> ApiServer:
    """`booking api` on 127.0.0.1, answering /health/ready when this returns."""
    port = port or free_port()
    args = ["api", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    server = ApiServer(start_booking(args, env, log, cwd), port)
    try:
        wait_until_ready(server.base_url, server.process, timeout)
    except BaseException:
        server.stop()
        raise
    return server


@contextmanager
def running_api(env: Mapping[str, str], log_dir: Path, workers: int = 1) -> Iterator[str]:
    port = free_port()
    server = start_api(env, log_dir / f"api-{port}.log", workers, port)
    try:
        yield server.base_url
    finally:
        server.stop()


@contextmanager
def embedded_redis() -> Iterator[str]:
    """fakeredis' TCP server in a thread of the test process, as `booking dev` runs it."""
    from fakeredis import TcpFakeServer

    server = TcpFakeServer(("127.0.0.1", 0), server_type="redis")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"redis://127.0.0.1:{server.server_address[1]}/0"
    finally:
        server.shutdown()
        server.server_close()


REDIS_SERVER = shutil.which("redis-server")


@contextmanager
def redis_server(directory: Path) -> Iterator[str]:
    """A `redis-server` of the caller's own on a free port, without persistence; stopped after.

    Tests that empty Redis (FLUSHDB, FLUSHALL) do it here, never on a server they did not start.
    """
    if REDIS_SERVER is None:
        raise RuntimeError("redis-server is not on PATH")
    port = free_port()
    directory.mkdir(parents=True, exist_ok=True)
    log = (directory / f"redis-{port}.log").open("wb")
    popen = subprocess.Popen(
        [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(directory)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if redis.Redis.from_url(url, socket_connect_timeout=1).ping():
                    break
            except redis.RedisError:
                if popen.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server on port {port} did not start") from None
                time.sleep(0.05)
        yield url
    finally:
        popen.terminate()
        try:
            popen.wait(10)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait(5)
        log.close()
