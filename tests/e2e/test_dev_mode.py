"""`booking dev` with no environment at all: SQLite, the embedded Redis server, a worker and the
scheduler from one command; a booking goes from request to `succeeded`."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from tests.servers import ROOT, Process, free_port, wait_until_ready

SETTINGS_FROM_ENVIRONMENT = ("DATABASE_URL", "REDIS_URL", "BOOKING_DATA_DIR")


def test_booking_dev_books_and_decides_with_no_environment(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS_FROM_ENVIRONMENT}
    env["EMBEDDED_REDIS_PORT"] = str(free_port())
    env["PYTHONPATH"] = str(ROOT)
    port = free_port()
    log = tmp_path / "dev.log"
    with log.open("wb") as out:
        dev = subprocess.Popen(
            [sys.executable, "-m", "cli", "dev", "--port", str(port)],
            cwd=tmp_path,  # a fresh directory: the SQLite file is made here
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        admin, client = _keys(log, dev)
        wait_until_ready(base, Process(dev, log), timeout=60)
        assert (tmp_path / ".booking" / "booking.db").exists()
        with httpx.Client(base_url=base, timeout=30) as http:
            week = {
                day: [{"start": "00:00", "end": "24:00"}]
                for day in (
                    "monday",
                    "tuesday",
                    "wednesday",
                    "thursday",
                    "friday",
                    "saturday",
                    "sunday",
                )
            }
            provider = http.post(
                "/v1/providers",
                json={"timezone": "UTC", "weekly_schedule": week},
                headers={"Authorization": f"Bearer {admin}"},
            )
            assert provider.status_code == 201, provider.text
            day = datetime.now(UTC).date() + timedelta(days=3)
            start = datetime(day.year, day.month, day.day, 10, tzinfo=UTC).isoformat()
            accepted = http.post(
                "/v1/bookings",
                json={"provider_id": provider.json()["id"], "start": start},
                headers={"Authorization": f"Bearer {client}"},
            )
            assert accepted.status_code == 202, accepted.text
            outcome = http.get(
                f"{accepted.headers['location']}?wait=20",
                headers={"Authorization": f"Bearer {client}"},
            ).json()
            assert outcome["status"] == "succeeded", outcome
            booked_at = datetime.fromisoformat(outcome["booking"]["start"])
            assert booked_at == datetime.fromisoformat(start)
    finally:
        dev.send_signal(signal.SIGINT)
        try:
            dev.wait(30)
        except subprocess.TimeoutExpired:
            dev.kill()
    assert dev.returncode is not None


def _keys(log: Path, dev: subprocess.Popen[bytes]) -> tuple[str, str]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        admin = re.search(r"admin key:\s+(\S+)", text)
        client = re.search(r"client key:\s+(\S+)", text)
        if admin and client:
            return admin.group(1), client.group(1)
        if dev.poll() is not None:
            break
        time.sleep(0.2)
    raise AssertionError(f"booking dev printed no keys:\n{log.read_text(errors='replace')}")
