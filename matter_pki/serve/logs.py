"""Structured logs: one JSON object per line on stderr (journald, docker and log shippers read them as is).

Every line has ``time``, ``level``, ``logger`` and ``event``; request lines add the request id,
station, method, path, status, code and duration. Secrets, keys and CSR bytes are never logged.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

LOGGER = "matter_pki.serve"
_STANDARD = frozenset(vars(logging.LogRecord("x", 0, "x", 0, "x", None, None))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """A log record as one JSON line; extra fields given with ``extra=`` become members."""

    def format(self, record: logging.LogRecord) -> str:
        """Render one record."""
        body: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                body[key] = value
        if record.exc_info:
            body["exception"] = self.formatException(record.exc_info)
        return json.dumps(body, default=str, separators=(",", ":"))


def configure(level: str = "info") -> logging.Logger:
    """JSON lines on stderr for the service's and uvicorn's loggers; returns the service logger."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    for name in (LOGGER, "uvicorn", "uvicorn.error", "uvicorn.access", "asyncio"):
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.propagate = False
        logger.setLevel(level.upper())
    return logging.getLogger(LOGGER)
