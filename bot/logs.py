"""Logging set-up, with a redacting formatter that keeps secrets out of every log line."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

# Breeze keys, Slack tokens (bot, user, app, refresh, rotated) and response_url paths.
SECRET_PATTERNS = re.compile(
    r"brz_[A-Za-z0-9_\-]{4,}"
    r"|xox[abposre]-[A-Za-z0-9\-]+"
    r"|xoxe\.xox[bp]-[A-Za-z0-9\-.]+"
    r"|xapp-[A-Za-z0-9\-]+"
    r"|hooks\.slack\.com/\S+"
    # A response_url on any host: /commands/<team>/<id>/<secret> (or /actions/...).
    r"|\S*/(?:commands|actions)/[A-Z0-9]+/\d+/[A-Za-z0-9_\-]+"
)
REDACTED = "[redacted]"
FIELDS = "breeze_fields"
TEXT_FORMAT = "%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s"
QUIET_LOGGERS = ("httpx", "httpcore", "slack_sdk", "slack_bolt", "bot.bolt", "aiohttp", "alembic")
_extra_secrets: set[str] = set()
MAX_EXTRA_SECRETS = 10_000


def redact(text: str) -> str:
    """Replace anything that looks like a secret, and every known secret, with `[redacted]`."""
    for secret in _extra_secrets:
        text = text.replace(secret, REDACTED)
    return SECRET_PATTERNS.sub(REDACTED, text)


def add_secret(value: str) -> None:
    """Also redact this exact value (a configured secret whatever its shape)."""
    if len(value) < 8 or value in _extra_secrets or SECRET_PATTERNS.fullmatch(value):
        return
    if len(_extra_secrets) < MAX_EXTRA_SECRETS:
        _extra_secrets.add(value)


class RedactingFormatter(logging.Formatter):
    """Formats as usual, then scrubs secrets from the whole line, traceback included."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, any `fields`, traceback; all redacted."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        fields = getattr(record, FIELDS, None)
        if isinstance(fields, dict):
            entry.update({k: v for k, v in fields.items() if k not in entry})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, default=str, ensure_ascii=False))


def fields(**values: Any) -> dict[str, dict[str, Any]]:
    """`extra=` for a log call whose values become top-level keys in JSON logs."""
    return {FIELDS: values}


def configure_logging(level: int, secrets: tuple[str, ...] = (), log_format: str = "text") -> None:
    """Send every logger's records, redacted, to stderr at `level`; also scrub `secrets`."""
    for secret in secrets:
        add_secret(secret)
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            RedactingFormatter("%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s")
        )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # Library warnings go through the same handler: redacted, and JSON when asked.
    logging.captureWarnings(True)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
