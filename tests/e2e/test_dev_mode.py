"""`booking dev` with no environment at all: SQLite, the embedded Redis server, a worker and the
scheduler from one command; a booking goes from request to `succeeded`, and its events reach
a webhook endpoint and the request's callback URL, signed."""

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
from standardwebhooks.webhooks import Webhook

from tests.servers import ROOT, Process, free_port, wait_until_ready
from tests.webhook_servers import Receiver

SETTINGS_FROM_ENVIRONMENT = ("DATABASE_URL", "REDIS_URL", "BOOKING_DATA_DIR")


def test_booking_dev_books_and_decides_with_no_environment(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS_FROM_ENVIRONMENT}
    env["EMBEDDED_REDIS_PORT"] = str(free_port())
    env["PYTHONPATH"] = str(ROOT)
    env["WEBHOOK_ALLOW_PRIVATE_TARGETS"] = "true"  # the receiver below listens on 127.0.0.1
    receiver = Receiver().start()
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
        admin, client, signing_secret = _keys(log, dev)
        wait_until_ready(base, Process(dev, log), timeout=60)
        # Its worker consumes (it can take long to start on a loaded machine).
        Process(dev, log).wait_for_log(" ready.", timeout=120)
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
            endpoint = http.post(
                "/v1/webhook-endpoints",
                json={"url": receiver.url("/endpoint"), "events": ["booking.confirmed"]},
                headers={"Authorization": f"Bearer {client}"},
            )
            assert endpoint.status_code == 201, endpoint.text
            day = datetime.now(UTC).date() + timedelta(days=3)
            start = datetime(day.year, day.month, day.day, 10, tzinfo=UTC).isoformat()
            accepted = http.post(
                "/v1/bookings",
                json={
                    "provider_id": provider.json()["id"],
                    "start": start,
                    "callback_url": receiver.url("/callback"),
                },
                headers={"Authorization": f"Bearer {client}"},
            )
            assert accepted.status_code == 202, accepted.text
            # The worker starts beside the API and may still be importing on a busy machine:
            # long-poll until the request is decided, for up to two minutes.
            deadline = time.monotonic() + 120
            while True:
                outcome = http.get(
                    f"{accepted.headers['location']}?wait=20",
                    headers={"Authorization": f"Bearer {client}"},
                ).json()
                if outcome["status"] != "pending" or time.monotonic() > deadline:
                    break
            assert outcome["status"] == "succeeded", outcome
            booked_at = datetime.fromisoformat(outcome["booking"]["start"])
            assert booked_at == datetime.fromisoformat(start)
        [at_endpoint] = receiver.wait_for("/endpoint", 1, timeout=30)
        [at_callback] = receiver.wait_for("/callback", 1, timeout=30)
        event = Webhook(endpoint.json()["secret"]).verify(at_endpoint.body, at_endpoint.headers)
        assert event["type"] == "booking.confirmed"
        assert event["data"]["booking"]["id"] == outcome["booking_id"]
        Webhook(signing_secret).verify(at_callback.body, at_callback.headers)
    finally:
        receiver.stop()
        dev.send_signal(signal.SIGINT)
        try:
            dev.wait(30)
        except subprocess.TimeoutExpired:
            dev.kill()
    assert dev.returncode is not None


def _keys(log: Path, dev: subprocess.Popen[bytes]) -> tuple[str, str, str]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        admin = re.search(r"admin key:\s+(\S+)", text)
        client = re.search(r"client key:\s+(\S+)", text)
        secret = re.search(r"client signing secret:\s+(\S+)", text)
        if admin and client and secret:
            return admin.group(1), client.group(1), secret.group(1)
        if dev.poll() is not None:
            break
        time.sleep(0.2)
    raise AssertionError(f"booking dev printed no keys:\n{log.read_text(errors='replace')}")
