"""API keys: those in settings, or one dev key made once and kept in the data dir."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qthumb.app.settings import Settings


def resolve_api_keys(settings: Settings) -> tuple[list[str], str | None]:
    """Return the accepted keys and, when qthumb made its own, that dev key."""
    if settings.api_keys:
        return list(settings.api_keys), None
    path = settings.dev_key_path
    if path.is_file():
        key = path.read_text().strip()
        if key:
            return [key], key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(16)
    path.write_text(key + "\n")
    path.chmod(0o600)
    return [key], key
