"""Secrets never leave qthumb in words: error descriptions, warnings, callbacks and logs are
passed through ``redact`` before anyone can read them.

What counts as a secret: the user-info of any URL (``s3://KEY:SECRET@host/…``,
``https://user:pass@host/…``), query-string parameters that carry signatures, tokens, keys or
passwords (presigned S3 URLs, signed CDN links), and the literal values of a query's
destination ``key`` / ``secret`` fields and of ``QTHUMB_S3_CREDENTIALS``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable

MASK = "***"
# scheme://user-info@ : up to the last @ before the path (a password may hold an @).
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]{0,30}://)[^/\s?#]*@")
_SECRET_PARAM = re.compile(
    r"(?i)([?&;][^=&\s#]*?(?:sig|signature|token|key|secret|pass|credential|auth|policy)"
    r"[^=&\s#]*=)[^&\s#'\"]*"
)
_MIN_LITERAL = 4  # shorter values would mask ordinary words


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with every secret it may hold masked."""
    for secret in sorted({s for s in secrets if s and len(s) >= _MIN_LITERAL}, key=len)[::-1]:
        text = text.replace(secret, MASK)
    text = _USERINFO.sub(rf"\1{MASK}@", text)
    return _SECRET_PARAM.sub(rf"\1{MASK}", text)


class RedactingFormatter(logging.Formatter):
    """Log lines (messages and tracebacks) with secrets masked."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object a line for log shippers (``QTHUMB_LOG_FORMAT=json``); the task token a
    line is about is its own field, so a task's story is one query away."""

    def format(self, record: logging.LogRecord) -> str:
        message = redact(record.getMessage())
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": message,
        }
        task = _TASK.search(message)
        if task:
            entry["task"] = task.group(1)
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


_TASK = re.compile(r"\btask ([0-9a-f]{32})\b")


def setup_logging(log_format: str = "text", level: int = logging.INFO) -> None:
    """Every qthumb process logs through this: one line format (text or JSON), secrets
    masked."""
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter()
        if log_format == "json"
        else RedactingFormatter("%(asctime)s %(name)s %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
