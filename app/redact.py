"""Secrets never leave qthumb in words: error descriptions, warnings, callbacks and logs are
passed through ``redact`` before anyone can read them.

What counts as a secret: the user-info of any URL (``s3://KEY:SECRET@host/…``,
``https://user:pass@host/…``), query-string parameters that carry signatures, tokens, keys or
passwords (presigned S3 URLs, signed CDN links), and the literal values of a query's
destination ``key`` / ``secret`` fields and of ``QTHUMB_S3_CREDENTIALS``.
"""

from __future__ import annotations

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


def setup_logging(level: int = logging.INFO) -> None:
    """Every qthumb process logs through this: one line format, secrets masked."""
    handler = logging.StreamHandler()
    handler.setFormatter(RedactingFormatter("%(asctime)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
