"""Process-wide logging through structlog: JSON lines in production, readable lines in dev.

Every record, ours or a library's (`logging.getLogger`), goes through one handler on the root
logger, so Celery's, Granian's and SQLAlchemy's lines come out in the same format. Values
bound to structlog's context variables (the API binds each HTTP request's id) appear on every
line logged while they are bound.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import structlog
from structlog.contextvars import merge_contextvars
from structlog.tracebacks import ExceptionDictTransformer
from structlog.typing import EventDict, Processor

LOG_FORMATS = ("json", "console")


def _add_pid(_logger: Any, _method: str, event: EventDict) -> EventDict:
    event["pid"] = os.getpid()
    return event


def configure_logging(level: str = "INFO", log_format: str = "json") -> None:
    """Route every log record of this process to stderr as one line in `log_format`."""
    shared: list[Processor] = [
        merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_pid,
    ]
    # Tracebacks never show local variables: they may hold keys, secrets and personal data.
    renderer: Processor
    if log_format == "console":
        renderer = structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(),
            exception_formatter=structlog.dev.plain_traceback,
        )
        finish: list[Processor] = []
    else:
        renderer = structlog.processors.JSONRenderer()
        finish = [
            structlog.processors.ExceptionRenderer(ExceptionDictTransformer(show_locals=False))
        ]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *finish, renderer],
    )
    handler = logging.StreamHandler()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    structlog.configure(
        processors=[
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def library_log_config(level: str) -> dict[str, Any]:
    """A `logging.config.dictConfig` for servers that bring their own: hand records to root."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "loggers": {
            "_granian": {"handlers": [], "level": level, "propagate": True},
            "granian.access": {"handlers": [], "level": "WARNING", "propagate": True},
        },
    }


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger
