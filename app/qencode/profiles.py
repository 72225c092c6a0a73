"""``QTHUMB_PROFILES``: a team's encoding profiles, read once and checked as start_encode2
checks a query, for ``start_encode`` (``app.api.service``) and the settings' check at start."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from qthumb.app.errors import QencodeError
from qthumb.app.qencode.query import parse_query


def load_profiles(path: Path | None) -> dict[str, list[Any]]:
    """``QTHUMB_PROFILES``: profile id to its format entries, each checked as start_encode2
    checks a query's, so a bad file stops the API at its start, naming the entry."""
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"QTHUMB_PROFILES {path}: {exc}") from None
    if not isinstance(data, dict) or not all(
        isinstance(v, list) and v and isinstance(k, str) for k, v in data.items()
    ):
        raise ValueError(f"QTHUMB_PROFILES {path}: a JSON object of id: [format entries]")
    for name, entries in data.items():
        try:
            parse_query({"source": "/profile.mp4", "format": entries})
        except QencodeError as exc:
            raise ValueError(f"QTHUMB_PROFILES {path}: profile {name!r}: {exc.message}") from None
    return data
