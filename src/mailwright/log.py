"""Structured logging: one line per event, `key=value` text or JSON."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        fields: dict[str, Any] = getattr(record, "fields", {})
        extra = "".join(f" {k}={_quote(v)}" for k, v in fields.items())
        line = f"{ts}.{int(record.msecs):03d}Z {record.levelname.lower()} {record.name} "
        line += record.getMessage() + extra
        if record.exc_info and record.levelno >= logging.ERROR:
            line += "\n" + self.formatException(record.exc_info)
        return line


class _JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": record.created,
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update(getattr(record, "fields", {}))
        return json.dumps(out, default=str)


def _quote(v: object) -> str:
    s = str(v)
    if not s or any(c in s for c in ' "=\n'):
        return json.dumps(s)
    return s


def setup_logging(level: str = "info", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JSONFormatter() if fmt == "json" else _TextFormatter())
    root = logging.getLogger("mailwright")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


def event(logger: logging.Logger, msg: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log `msg` with structured fields (who, what, result, duration...)."""
    if logger.isEnabledFor(level):
        logger.log(level, msg, extra={"fields": fields})
