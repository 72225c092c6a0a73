"""What a format makes: files on local disk with what ``images[]`` says of them
(docs/compatibility.md)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qthumb.app.tasks.results import EntryType


@dataclass(frozen=True)
class Product:
    path: Path
    name: str  # file name at the destination (or the full key for a thumbnail destination)
    kind: EntryType
    content_type: str
    width: int | None = None
    height: int | None = None
    size: int = 0
    time: float | None = None
    duration: float | None = None  # videos
    meta: dict[str, Any] | None = None  # videos: what the encoded file is (``meta`` in videos[])
    placeholder: str | None = None  # images: its BlurHash/ThumbHash (``placeholder``)
    score: float | None = None  # ``smart: 1``: how good the frame taken was, 0-1
