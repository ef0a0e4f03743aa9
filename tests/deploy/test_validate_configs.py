""".ci/validate_configs.py passes the shipped deployment configuration and catches the mistakes
an operator would otherwise meet at deploy time: a dashboard panel on a metric that does not
exist, a scrape job on the wrong port, the cache sharing the broker's Redis, a KEDA field
misspelt, a worker without a heartbeat probe, a dashboard ConfigMap gone stale."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
COPIED = [
    "docker-compose.yml",
    "Dockerfile",
    "uv.lock",
    ".ci/run",
    "k8s",
    "deploy",
    "infra",
    "example.env",
]


def _load_validator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "validate_configs", ROOT / ".ci" / "validate_configs.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


validator = _load_validator()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A copy of everything the validator reads, to break one thing at a time."""
    for name in COPIED:
        source, target = ROOT / name, tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target)
    return tmp_path


def validate(root: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    status = validator.main(["--root", str(root)])
    out = capsys.readouterr()
    return status, out.out + out.err


def edit(path: Path, change: Callable[[str], str]) -> None:
    before = path.read_text()
    after = change(before)
    assert after != before, f"the edit did not apply to {path}"
    path.write_text(after)


def edit_dashboard(repo: Path, change: Callable[[dict[str, object]], None]) -> None:
    path = repo / "deploy" / "grafana" / "dashboards" / "booking.json"
    dashboard = json.loads(path.read_text())
    change(dashboard)
    path.write_text(json.dumps(dashboard, indent=2) + "\n")
    assert validator.main(["--root", str(repo), "--write-dashboards"]) == 0


def first_query(dashboard: dict[str, object]) -> dict[str, str]:
    panels = dashboard["panels"]
    assert isinstance(panels, list)
    return next(p for p in panels if p.get("targets"))["targets"][0]


def test_the_shipped_configuration_is_valid(capsys: pytest.CaptureFixture[str]) -> None:
    status, output = validate(ROOT, capsys)
    assert status == 0, output
    assert "OK: deployment configuration is valid" in output
    assert "ScaledObject/booking-worker" in output
    assert "each checked against infra/metrics.py" in output


def test_every_dashboard_query_is_checked_against_the_metric_definitions(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    # The checks do not just pass: every query must have been read, none skipped.
    status, output = validate(repo, capsys)
    assert status == 0, output
    dashboard = json.loads((repo / "deploy/grafana/dashboards/booking.json").read_text())
    queries = sum(len(p.get("targets", [])) for p in dashboard["panels"])
    assert f"{queries} queries" in output


@pytest.mark.parametrize(
    ("query", "complaint"),
    [
        ("sum(booking_queue_lenght)", "names metric 'booking_queue_lenght'"),
        ("sum(rate(booking_requests[1m]))", "a counter: use booking_requests_total"),
        (
            "histogram_quantile(0.9, sum by (le) (rate(booking_request_latency_seconds[5m])))",
            "a histogram: use booking_request_latency_seconds_bucket",
        ),
        ("sum by (outcom) (rate(booking_requests_total[1m]))", "groups by 'outcom'"),
        ('sum(rate(availability_cache_total{reslt="hit"}[5m]))', "matches label 'reslt'"),
        ("vector(1)", "names no metric"),
    ],
)
def test_a_panel_on_a_metric_or_label_that_does_not_exist_fails(
    capsys: pytest.CaptureFixture[str], repo: Path, query: str, complaint: str
) -> None:
    edit_dashboard(repo, lambda d: first_query(d).update(expr=query))
    status, output = validate(repo, capsys)
    assert status == 1
    assert complaint in output


def test_a_metric_renamed_in_infra_metrics_breaks_the_dashboard(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    edit(repo / "infra" / "metrics.py", lambda s: s.replace('"booking_queue_depth"', '"queue_len"'))
    status, output = validate(repo, capsys)
    assert status == 1
    assert "names metric 'booking_queue_depth'" in output  # the dashboard and the KEDA query
    assert "ScaledObject/booking-worker" in output


def test_a_stale_dashboard_configmap_fails(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    edit(
        repo / "deploy" / "grafana" / "dashboards" / "booking.json",
        lambda s: s.replace('"title": "Booking"', '"title": "Bookings"'),
    )
    status, output = validate(repo, capsys)
    assert status == 1
    assert "k8s/grafana-dashboard-booking.yaml: is not deploy/grafana/dashboards/booking.json" in (
        output
    )


def test_a_scrape_job_on_the_wrong_port_fails(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    edit(
        repo / "deploy" / "prometheus" / "prometheus.yml",
        lambda s: s.replace("port: 9100", "port: 9101", 1),
    )
    status, output = validate(repo, capsys)
    assert status == 1
    assert "scrapes worker:9101; it serves metrics on [9100]" in output
    assert "no job scrapes service 'worker' on port 9100" in output


def test_an_unknown_prometheus_field_fails(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    edit(
        repo / "deploy" / "prometheus" / "prometheus.yml",
        lambda s: s.replace("scrape_timeout: 5s", "scrape_timeout: 5s\n  scrape_timout: 5s"),
    )
    status, output = validate(repo, capsys)
    assert status == 1
    assert "scrape_timout" in output


def test_the_cache_on_the_broker_redis_fails(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    edit(
        repo / "docker-compose.yml",
        lambda s: s.replace(
            "CACHE_REDIS_URL: redis://redis-cache:6379/0", "CACHE_REDIS_URL: redis://redis:6379/1"
        ),
    )
    edit(repo / "k8s" / "redis.yaml", lambda s: s.replace("- allkeys-lru", "- volatile-lru"))
    status, output = validate(repo, capsys)
    assert status == 1
    assert "the availability cache shares the broker's Redis" in output
    assert "cache Redis 'redis-cache' needs --maxmemory-policy allkeys-lru" in output


def test_a_broker_redis_that_may_evict_fails(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    edit(
        repo / "docker-compose.yml",
        lambda s: s.replace('"--maxmemory-policy", "noeviction"', '"--maxmemory", "1gb"'),
    )
    status, output = validate(repo, capsys)
    assert status == 1
    assert "broker Redis 'redis' needs --maxmemory-policy noeviction" in output


def test_workers_without_a_heartbeat_probe_fail(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    probe = "          livenessProbe:"
    edit(
        repo / "k8s" / "webhooks-worker.yaml",
        lambda s: s.replace(
            f'{probe}\n            exec:\n              command: ["booking", "probe"',
            f'{probe}\n            exec:\n              command: ["celery", "inspect"',
        ),
    )
    edit(
        repo / "docker-compose.yml",
        lambda s: s.replace("    healthcheck: *heartbeat-check\n", "", 1),
    )
    status, output = validate(repo, capsys)
    assert status == 1
    assert "Deployment/booking-webhooks-worker container worker: livenessProbe must run" in output
    assert "services.worker: healthcheck must run `booking probe" in output


def test_a_misspelt_keda_field_fails(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    edit(
        repo / "k8s" / "keda" / "scaledobject.yaml",
        lambda s: s.replace("maxReplicaCount: 16", "maxReplicas: 16"),
    )
    status, output = validate(repo, capsys)
    assert status == 1
    assert "ScaledObject/booking-worker: spec" in output
    assert "maxReplicas" in output


def test_keda_past_the_partition_count_or_on_another_metric_fails(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    edit(
        repo / "k8s" / "keda" / "scaledobject.yaml",
        lambda s: s.replace("maxReplicaCount: 16", "maxReplicaCount: 100").replace(
            "query: sum(max by (partition) (booking_queue_depth))",
            "query: sum(rate(http_requests_total[1m]))",
        ),
    )
    status, output = validate(repo, capsys)
    assert status == 1
    assert "maxReplicaCount 100 exceeds BOOKING_PARTITIONS 64" in output
    assert "booking workers scale on the queue depth" in output


def test_install_steps_that_bypass_the_lock_fail(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    edit(repo / ".ci" / "run", lambda s: s.replace("uv sync -q --frozen", "uv pip install -e"))
    edit(repo / "Dockerfile", lambda s: s.replace("ARG UV_VERSION=", "ARG UV_VERSION=0.0.1 #"))
    status, output = validate(repo, capsys)
    assert status == 1
    assert ".ci/run: must install with `uv sync --frozen`" in output
    assert "must pin the same uv release" in output


def test_a_setting_the_code_does_not_read_is_caught(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    edit(
        repo / "k8s" / "worker.yaml", lambda s: s.replace("name: METRICS_PORT", "name: METRIC_PORT")
    )
    status, output = validator.main(["--root", str(repo), "--strict-settings"]), capsys.readouterr()
    assert status == 1
    assert "k8s: Deployment/booking-worker: sets METRIC_PORT, which example.env does not list" in (
        output.err
    )


def test_promql_references_tell_metrics_from_functions_and_labels() -> None:
    refs = validator.promql_references(
        "histogram_quantile(0.95, sum by (le, route) (rate(http_request_duration_seconds_bucket"
        '{route=~"/v1/.*", method!="GET"}[5m] offset 1h))) / on(route) group_left '
        'max without (instance) ({__name__="booking_queue_depth", partition="3"}) > bool inf'
    )
    assert refs.problems == []
    assert refs.selectors == [
        ("http_request_duration_seconds_bucket", ["route", "method"]),
        ("booking_queue_depth", ["partition"]),
    ]
    assert refs.grouping == ["le", "route", "route", "instance"]
