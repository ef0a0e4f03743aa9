"""RATE_LIMIT_PER_MINUTE per API key: 429 with Retry-After past it, RateLimit-* headers always."""

from __future__ import annotations

import hashlib
from typing import Protocol

import msgspec
from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import PROBLEM_JSON, ProblemDetails


class Verdict(Protocol):
    @property
    def allowed(self) -> bool: ...
    @property
    def limit(self) -> int: ...
    @property
    def remaining(self) -> int: ...
    @property
    def reset_seconds(self) -> int: ...


class Limiter(Protocol):
    async def hit(self, identity: str) -> Verdict | None:
        """Spend one unit of `identity`'s budget; None when no limit can be applied now."""


def _identity(scope: Scope) -> str | None:
    """Whose budget a request spends: a digest of its bearer key (auth judges the key itself)."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, key = value.partition(b" ")
            key = key.strip()
            if scheme.lower() == b"bearer" and key:
                return hashlib.sha256(key).hexdigest()[:32]
            return None
    return None


def _headers(verdict: Verdict) -> dict[str, str]:
    # The IETF draft's separate fields (draft-ietf-httpapi-ratelimit-headers-06), as most
    # clients and gateways read them, plus the policy in the later drafts' syntax.
    return {
        "RateLimit-Limit": str(verdict.limit),
        "RateLimit-Remaining": str(verdict.remaining),
        "RateLimit-Reset": str(verdict.reset_seconds),
        "RateLimit-Policy": f"{verdict.limit};w=60",
    }


def _too_many(verdict: Verdict) -> tuple[Message, Message]:
    body = msgspec.json.encode(
        ProblemDetails(
            type="urn:booking:problem:rate_limited",
            title="Too Many Requests",
            status=429,
            detail=(
                f"This API key made more than {verdict.limit} requests this minute; "
                f"retry in {verdict.reset_seconds} s."
            ),
            code="rate_limited",
        )
    )
    headers = {
        **_headers(verdict),
        "Retry-After": str(verdict.reset_seconds),
        "Content-Type": PROBLEM_JSON,
        "Content-Length": str(len(body)),
    }
    start: Message = {
        "type": "http.response.start",
        "status": 429,
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    return start, {"type": "http.response.body", "body": body, "more_body": False}


class RateLimitMiddleware:
    """Spends one unit of the caller's budget per request; 429 once it is spent."""

    def __init__(self, app: ASGIApp, limiter: Limiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        identity = _identity(scope) if scope["type"] == ScopeType.HTTP else None
        if identity is None:
            await self.app(scope, receive, send)  # no key: the auth guard answers 401
            return
        verdict = await self.limiter.hit(identity)
        if verdict is None:  # Redis unreachable: serve rather than refuse (the limiter warns)
            await self.app(scope, receive, send)
            return
        if not verdict.allowed:
            for message in _too_many(verdict):
                await send(message)
            return
        extra = _headers(verdict)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableScopeHeaders.from_message(message)
                for name, value in extra.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
