"""Qencode API errors: one class tree, rendered in one place (``app.api.routes``). At the root
of ``app`` so that every layer may raise them (the query language, the tasks, the HTTP edge).

    QencodeError (code 1, internal / generic request failure)
    ├── BadApiKey            2
    ├── ApiKeyNotFound       3
    │   └── TooManyKeyAttempts   HTTP 429 with Retry-After: wrong keys, too often
    ├── BadToken             4
    ├── TokenNotFound        5   message is exactly "Token not found" (the Node SDK matches it)
    ├── SystemBusy           8
    ├── BadPayload           9
    ├── ProfileNotFound     12
    ├── BadTaskTokens       13
    ├── FieldRequired       14   message names the field
    └── BadQuery             1   a query that cannot run; message names the field path

API-level errors are answered with HTTP 200 and ``{"error": code, "message": ...}``
(docs/compatibility.md); qthumb's own GET URLs (frames on demand) answer the same body with a real
HTTP status, which an error carries as ``http_status``. ``render`` is the one place the envelope is
written: the app's handler calls it for every raised error, and so does the body-size middleware,
which runs outside the handlers. Task failures are not exceptions of this tree: they end a task
with ``status: "error"``.
"""

from __future__ import annotations


class QencodeError(Exception):
    code = 1
    default_message = "Internal error"

    def __init__(self, message: str | None = None, *, http_status: int = 200) -> None:
        self.message = message or self.default_message
        self.http_status = http_status
        super().__init__(self.message)

    def headers(self) -> dict[str, str]:
        """HTTP headers the answer carries besides the envelope."""
        return {}


class BadApiKey(QencodeError):
    code = 2
    default_message = "Bad api_key"


class ApiKeyNotFound(QencodeError):
    code = 3
    default_message = "api_key not found"


class TooManyKeyAttempts(ApiKeyNotFound):
    """Too many wrong keys from one client address (``app.api.key_guard``)."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"too many wrong API keys from this address: retry in {retry_after} s",
            http_status=429,
        )
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class BadToken(QencodeError):
    code = 4
    default_message = "Bad token"


class TokenNotFound(QencodeError):
    code = 5
    default_message = "Token not found"


class SystemBusy(QencodeError):
    code = 8
    default_message = "System is busy, retry later"


class BadPayload(QencodeError):
    code = 9
    default_message = "payload is too long (1000 characters at most)"


class ProfileNotFound(QencodeError):
    code = 12
    default_message = "Profile not found"


class BadTaskTokens(QencodeError):
    code = 13
    default_message = "Bad task_tokens"


class FieldRequired(QencodeError):
    code = 14

    def __init__(self, field: str, message: str | None = None, *, http_status: int = 200) -> None:
        super().__init__(message or f"{field} field is required", http_status=http_status)
        self.field = field


class QueryNotWrapped(QencodeError):
    """The ``query`` field holds the query itself, not ``{"query": {…}}``: Qencode answers
    error 19 with this message (docs/compatibility.md, the Qencode/qthumb table)."""

    code = 19
    default_message = "query field is required"


class BadQuery(QencodeError):
    """The query parsed but asks for something qthumb cannot do; the message says where."""

    code = 1
