"""What a worker reports about its decisions: Prometheus metrics and one log line a request."""

from __future__ import annotations

import logging

from domain.model import BookingRequest, RequestStatus
from domain.ports import Outcome
from infra import metrics

log = logging.getLogger("workers.decisions")


class DecisionReporter:
    """The worker's ProcessingObserver."""

    def batch_started(self, size: int) -> None:
        metrics.BOOKING_ATTEMPTS.inc()

    def batch_failed(self, size: int) -> None:
        metrics.BOOKING_ATTEMPT_FAILURES.inc()

    def decided(self, request: BookingRequest, outcome: Outcome) -> None:
        metrics.BOOKING_REQUESTS.labels(request.kind.value, outcome.status.value).inc()
        latency = (outcome.completed_at - request.created_at).total_seconds()
        metrics.BOOKING_REQUEST_LATENCY.observe(max(0.0, latency))
        # One line a request is too many for INFO at thousands a second; a failure always shows.
        level = logging.ERROR if outcome.status is RequestStatus.FAILED else logging.DEBUG
        if log.isEnabledFor(level):
            log.log(
                level,
                "booking request %s",
                outcome.status.value,
                extra={
                    "booking_request_id": str(request.id),
                    "request_id": request.http_request_id,
                    "kind": request.kind.value,
                    "provider_id": str(request.provider_id),
                    "error_code": outcome.error_code,
                    "latency_seconds": round(latency, 4),
                },
            )
