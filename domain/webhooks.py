"""Webhooks: endpoints, deliveries, and the rules of retrying, signing secrets and disabling.

Pure: times are passed in, and the one random number a retry needs (its jitter) too.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from domain.events import EVENT_TYPES

ALL_EVENTS = "*"
CALLBACK_TARGET = "callback"  # a delivery to a request's callback_url, not to an endpoint
MAX_RETRY_AFTER = timedelta(hours=24)


class EndpointStatus(enum.StrEnum):
    ENABLED = "enabled"
    DISABLED = "disabled"


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class WebhookEndpoint:
    id: UUID
    client_id: UUID
    url: str
    events: tuple[str, ...]
    description: str | None
    status: EndpointStatus
    secret: str
    created_at: datetime
    updated_at: datetime
    previous_secret: str | None = None
    previous_secret_until: datetime | None = None
    failing_since: datetime | None = None
    disabled_reason: str | None = None

    def subscribes(self, event_type: str) -> bool:
        return ALL_EVENTS in self.events or event_type in self.events

    def signing_secrets(self, now: datetime) -> tuple[str, ...]:
        """The secrets a delivery is signed with now: the current one, and the previous one
        while its overlap after a rotation lasts."""
        if (
            self.previous_secret is not None
            and self.previous_secret_until is not None
            and now < self.previous_secret_until
        ):
            return (self.secret, self.previous_secret)
        return (self.secret,)


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    id: UUID
    event_id: str
    event_type: str
    endpoint_id: UUID | None
    client_id: UUID
    status: DeliveryStatus
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class DeliveryAttempt:
    delivery_id: UUID
    attempt: int
    started_at: datetime
    duration_ms: int
    status_code: int | None
    error: str | None
    response_body: str | None


def check_event_types(events: list[str]) -> str | None:
    """Why a subscription list is not acceptable, or None."""
    if not events:
        return 'must name at least one event type, or be ["*"]'
    unknown = [e for e in events if e != ALL_EVENTS and e not in EVENT_TYPES]
    if unknown:
        return f"unknown event type {unknown[0]!r}; known: *, {', '.join(EVENT_TYPES)}"
    return None


def envelope(
    event_id: str, event_type: str, created_at: datetime, sequence: int | None, data: Any
) -> dict[str, Any]:
    """The body a receiver gets: the API's shapes, plus a per-booking increasing `sequence`."""
    return {
        "id": event_id,
        "type": event_type,
        "created_at": created_at.isoformat(),
        "sequence": sequence,
        "data": data,
    }


# -- what one attempt's answer means ------------------------------------------------------


class AttemptOutcome(enum.StrEnum):
    SUCCEEDED = "succeeded"
    RETRYING = "retrying"
    FAILED = "failed"
    REFUSED = "refused"  # the target resolved to an address we do not call; retried


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """What the sender saw: a status code, or an error before one came."""

    started_at: datetime
    duration_ms: int
    status_code: int | None = None
    error: str | None = None
    response_body: str | None = None
    retry_after_seconds: float | None = None
    refused: bool = False

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def gone(self) -> bool:
        return self.status_code == 410


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    delays: tuple[int, ...]  # seconds before the 2nd, 3rd, ... attempt
    jitter: float = 0.1  # each delay is moved by up to this fraction, either way
    disable_after: timedelta = timedelta(days=5)

    @property
    def max_attempts(self) -> int:
        return len(self.delays) + 1


@dataclass(frozen=True, slots=True)
class Verdict:
    status: DeliveryStatus
    outcome: AttemptOutcome
    next_attempt_at: datetime | None
    disable_endpoint: bool = False


def judge(
    result: AttemptResult, attempts: int, policy: RetryPolicy, now: datetime, jitter: float
) -> Verdict:
    """The delivery's state after its `attempts`-th attempt ended with `result`.

    `jitter` is a number in [0, 1). A 2xx succeeds. `410 Gone` ends the delivery and disables
    its endpoint. Anything else is tried again after the policy's next delay (or the
    receiver's `Retry-After` on 429 and 503), until the policy's attempts are used up.
    """
    if result.succeeded:
        return Verdict(DeliveryStatus.SUCCEEDED, AttemptOutcome.SUCCEEDED, None)
    if result.gone:
        return Verdict(DeliveryStatus.FAILED, AttemptOutcome.FAILED, None, disable_endpoint=True)
    if attempts >= policy.max_attempts:
        return Verdict(DeliveryStatus.FAILED, AttemptOutcome.FAILED, None)
    outcome = AttemptOutcome.REFUSED if result.refused else AttemptOutcome.RETRYING
    if result.retry_after_seconds is not None and result.status_code in {429, 503}:
        wait = min(timedelta(seconds=max(result.retry_after_seconds, 0)), MAX_RETRY_AFTER)
    else:
        base = policy.delays[attempts - 1]
        wait = timedelta(seconds=base * (1 + policy.jitter * (2 * jitter - 1)))
    return Verdict(DeliveryStatus.PENDING, outcome, now + wait)


def should_disable(failing_since: datetime | None, now: datetime, policy: RetryPolicy) -> bool:
    """An endpoint that has not had one success for `disable_after` is disabled."""
    return failing_since is not None and now - failing_since >= policy.disable_after
