"""The webhook rules without I/O: verdicts on attempts, fan-out, secrets during a rotation."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from uuid import uuid4

from domain.ports import OutboxEvent
from domain.use_cases.webhooks import fan_out
from domain.webhooks import (
    CALLBACK_TARGET,
    AttemptOutcome,
    AttemptResult,
    DeliveryStatus,
    EndpointStatus,
    RetryPolicy,
    WebhookEndpoint,
    judge,
    should_disable,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
POLICY = RetryPolicy(delays=(5, 30, 120), jitter=0.1, disable_after=timedelta(days=5))


def answered(status: int | None, **extra: object) -> AttemptResult:
    return AttemptResult(NOW, 12, status_code=status, **extra)  # type: ignore[arg-type]


def endpoint(
    client: object = None, events: tuple[str, ...] = ("*",), **extra: object
) -> WebhookEndpoint:
    return WebhookEndpoint(
        id=uuid4(),
        client_id=client or uuid4(),  # type: ignore[arg-type]
        url="https://example.org/hook",
        events=events,
        description=None,
        status=EndpointStatus.ENABLED,
        secret="whsec_new",
        created_at=NOW,
        updated_at=NOW,
        **extra,  # type: ignore[arg-type]
    )


def test_a_2xx_succeeds_and_nothing_else_does() -> None:
    assert judge(answered(204), 1, POLICY, NOW, 0.5).status is DeliveryStatus.SUCCEEDED
    for status in (None, 301, 400, 404, 500):
        verdict = judge(answered(status), 1, POLICY, NOW, 0.5)
        assert verdict.status is DeliveryStatus.PENDING
        assert verdict.outcome is AttemptOutcome.RETRYING


def test_retries_follow_the_schedule_with_bounded_jitter() -> None:
    for attempts, delay in ((1, 5), (2, 30), (3, 120)):
        low = judge(answered(500), attempts, POLICY, NOW, 0.0).next_attempt_at
        high = judge(answered(500), attempts, POLICY, NOW, 0.999999).next_attempt_at
        assert low == NOW + timedelta(seconds=delay * 0.9)
        assert high is not None
        assert high <= NOW + timedelta(seconds=delay * 1.1)


def test_after_the_last_retry_the_delivery_fails() -> None:
    verdict = judge(answered(500), POLICY.max_attempts, POLICY, NOW, 0.5)
    assert (verdict.status, verdict.next_attempt_at) == (DeliveryStatus.FAILED, None)


def test_gone_fails_at_once_and_disables_the_endpoint() -> None:
    verdict = judge(answered(410), 1, POLICY, NOW, 0.5)
    assert verdict.status is DeliveryStatus.FAILED
    assert verdict.disable_endpoint


def test_retry_after_replaces_the_schedule_on_429_and_503_only() -> None:
    for status in (429, 503):
        verdict = judge(answered(status, retry_after_seconds=90.0), 1, POLICY, NOW, 0.5)
        assert verdict.next_attempt_at == NOW + timedelta(seconds=90)
    ignored = judge(answered(500, retry_after_seconds=90.0), 1, POLICY, NOW, 0.5)
    assert ignored.next_attempt_at == NOW + timedelta(seconds=5)
    huge = judge(answered(429, retry_after_seconds=10**9), 1, POLICY, NOW, 0.5)
    assert huge.next_attempt_at == NOW + timedelta(hours=24)


def test_a_refused_target_is_retried_and_counted_as_refused() -> None:
    verdict = judge(AttemptResult(NOW, 1, error="refused", refused=True), 1, POLICY, NOW, 0.5)
    assert (verdict.status, verdict.outcome) == (DeliveryStatus.PENDING, AttemptOutcome.REFUSED)


def test_an_endpoint_failing_for_too_long_is_disabled() -> None:
    assert not should_disable(None, NOW, POLICY)
    assert not should_disable(NOW - timedelta(days=4), NOW, POLICY)
    assert should_disable(NOW - timedelta(days=5), NOW, POLICY)


def test_the_old_secret_signs_beside_the_new_one_until_the_overlap_ends() -> None:
    rotated = endpoint(previous_secret="whsec_old", previous_secret_until=NOW + timedelta(hours=1))
    assert rotated.signing_secrets(NOW) == ("whsec_new", "whsec_old")
    assert rotated.signing_secrets(NOW + timedelta(hours=1)) == ("whsec_new",)


def test_fan_out_follows_subscriptions_tenancy_and_callbacks() -> None:
    client, other = uuid4(), uuid4()
    event = OutboxEvent("evt_1", "booking.cancelled", client, NOW, 7, {}, "https://example.org/cb")
    mine_all = endpoint(client)
    mine_confirmed_only = endpoint(client, ("booking.confirmed",))
    others = endpoint(other)
    admins = endpoint(uuid4())
    disabled = replace(endpoint(client), status=EndpointStatus.DISABLED)
    deliveries = fan_out(
        [event],
        [
            (mine_all, False),
            (mine_confirmed_only, False),
            (others, False),
            (admins, True),
            (disabled, False),
        ],
    )
    targets = {d.target for d in deliveries}
    assert targets == {str(mine_all.id), str(admins.id), CALLBACK_TARGET}
    callback = next(d for d in deliveries if d.target == CALLBACK_TARGET)
    assert (callback.url, callback.client_id) == ("https://example.org/cb", client)
