"""Session, task and upload tokens: 32 lowercase hex digits, the shape of every Qencode token.
The one definition, at the root of ``app`` so that every layer may read it."""

from __future__ import annotations

import re
import secrets

TOKEN_PATTERN = "[0-9a-f]{32}"
_TOKEN = re.compile(TOKEN_PATTERN)


def new_token() -> str:
    """128 random bits as 32 hex characters."""
    return secrets.token_hex(16)


def is_token(value: str) -> bool:
    """Exactly a token: no trailing newline, no other digits than ASCII."""
    return _TOKEN.fullmatch(value) is not None
