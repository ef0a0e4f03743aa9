"""The operator's commands: `booking keys list/revoke`, and `booking api` leaving nothing behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.servers import ROOT, Process, free_port, start_booking

SETTINGS_FROM_ENVIRONMENT = ("DATABASE_URL", "REDIS_URL", "BOOKING_DATA_DIR")


def _booking(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _embedded_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS_FROM_ENVIRONMENT}
    env["PYTHONPATH"] = str(ROOT)
    return env


def test_keys_are_listed_without_secrets_and_revoked_once(tmp_path: Path) -> None:
    env = _embedded_env()
    created = json.loads(
        _booking(
            "keys", "create", "--name", "ops", "--role", "client", "--json", cwd=tmp_path, env=env
        ).stdout
    )
    listed = json.loads(_booking("keys", "list", "--json", cwd=tmp_path, env=env).stdout)
    assert listed == [
        {
            "id": created["id"],
            "name": "ops",
            "role": "client",
            "created_at": listed[0]["created_at"],
            "revoked_at": None,
        }
    ]
    assert created["key"] not in json.dumps(listed)

    first = _booking("keys", "revoke", created["id"], cwd=tmp_path, env=env)
    assert first.returncode == 0 and "Revoked client key 'ops'" in first.stdout
    revoked_at = json.loads(_booking("keys", "list", "--json", cwd=tmp_path, env=env).stdout)[0][
        "revoked_at"
    ]
    assert revoked_at is not None
    again = _booking("keys", "revoke", created["id"], cwd=tmp_path, env=env)
    assert again.returncode == 0  # revoking twice is harmless and keeps the first time
    assert (
        json.loads(_booking("keys", "list", "--json", cwd=tmp_path, env=env).stdout)[0][
            "revoked_at"
        ]
        == revoked_at
    )
    table = _booking("keys", "list", cwd=tmp_path, env=env).stdout
    assert "revoked" in table and created["id"] in table

    unknown = _booking(
        "keys", "revoke", "00000000-0000-0000-0000-000000000000", cwd=tmp_path, env=env
    )
    assert unknown.returncode == 1 and "not found" in unknown.stderr
    malformed = _booking("keys", "revoke", "nope", cwd=tmp_path, env=env)
    assert malformed.returncode == 2 and "not a key id" in malformed.stderr


def _wait_until_live(base: str, process: Process, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise RuntimeError(f"server exited early:\n{process.tail()}")
        try:
            if httpx.get(f"{base}/health/live", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server not live after {timeout}s:\n{process.tail()}")


def test_api_keeps_its_metrics_directory_only_while_it_runs(tmp_path: Path) -> None:
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    orphan = temporary / "booking-metrics-999999999-left"  # of a `booking api` killed -9
    orphan.mkdir()
    (orphan / "counter_999999999.db").write_bytes(b"")
    env = {**_embedded_env(), "TMPDIR": str(temporary)}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'booking.db'}"
    env["REDIS_URL"] = "redis://127.0.0.1:1/0"  # not needed to answer /metrics
    assert _booking("migrate", cwd=tmp_path, env=env).returncode == 0
    port = free_port()
    api = start_booking(
        ["api", "--port", str(port), "--workers", "2"], env, tmp_path / "api.log", cwd=tmp_path
    )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_until_live(base, api)  # ready needs Redis; /metrics does not
        for _ in range(20):
            httpx.get(f"{base}/health/live", timeout=10)
        scraped = httpx.get(f"{base}/metrics", timeout=10).text
        live = [line for line in scraped.splitlines() if line.startswith("http_requests_total")]
        # 20 requests and the one that found the server live, whichever process served them
        assert any('route="/health/live"' in line and line.endswith(" 21.0") for line in live), live
        assert [p.name for p in temporary.iterdir()] == [
            p.name for p in temporary.glob(f"booking-metrics-{api.pid}-*")
        ], "one directory, this server's; the orphan was removed"
    finally:
        api.stop()
    assert list(temporary.iterdir()) == []
