"""Session, task and upload tokens: 32 lowercase hex digits, the shape of every Qencode token.
The one definition, at the root of ``app`` so that every layer may read it.

Tokens are random (128 bits) unless ``QTHUMB_SEED`` is set (test suites only: it needs
``QTHUMB_CONTROL``): then the n-th token of one kind made for one API key is drawn from the
seed, the key, the kind and n, so two fresh servers given the same calls answer the same
tokens, and one key's calls never shift another's (``Tokens.seeded``; n is counted in the
task database, the same for every process that makes tokens)."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from enum import StrEnum

TOKEN_PATTERN = "[0-9a-f]{32}"
_TOKEN = re.compile(TOKEN_PATTERN)


class TokenKind(StrEnum):
    SESSION = "session"  # access_token
    TASK = "task"  # create_task (and a retry_on_error retry's new task)
    UPLOAD = "upload"  # a tus upload's id
    API_KEY = "api key"  # the one ``qthumb_server(seed=…)`` gives its test server


def new_token() -> str:
    """128 random bits as 32 hex characters."""
    return secrets.token_hex(16)


def seeded_token(seed: str, api_key: str, kind: TokenKind, n: int) -> str:
    """The ``n``-th (from 1) token of ``kind`` for ``api_key`` under ``seed``: HMAC-SHA-256 of
    the three, cut to 128 bits (the same shape as a random one)."""
    message = f"{kind.value}\0{api_key}\0{n}".encode()
    return hmac.new(seed.encode(), message, hashlib.sha256).hexdigest()[:32]


def made_api_key(prefix: str, seed: str | None = None) -> str:
    """The API key a test server of qthumb's own makes for itself (``qthumb_server``,
    ``QthumbContainer``): ``prefix`` and 24 hex digits, drawn from ``seed`` when given, so a
    seeded run's key is that of every run."""
    drawn = seeded_token(seed, "", TokenKind.API_KEY, 1) if seed else new_token()
    return prefix + drawn[:24]


def is_token(value: str) -> bool:
    """Exactly a token: no trailing newline, no other digits than ASCII."""
    return _TOKEN.fullmatch(value) is not None
