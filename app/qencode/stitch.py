"""``query.stitch``: several sources joined into one timeline, as Qencode's SDKs send them (the
Node SDK turns a list given as ``source`` into ``stitch``; ``start_encode`` sends it as JSON
text). Each piece is a URL, or ``{"url", "start_time", "duration"}`` taking part of it.

Read here as typed values; the worker fetches each piece as it fetches a source (the same
egress rules and limits) and joins them (``workers.media.stitching``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from qthumb.app.egress import url_problem
from qthumb.app.errors import BadQuery, FieldRequired
from qthumb.app.qencode.fields.values import opt_float, url_scheme

MAX_PIECES = 100  # a timeline of more pieces than this is a mistake, not an edit


@dataclass(frozen=True)
class Piece:
    """One source of a stitched timeline: the part of ``url`` from ``start_time`` seconds,
    ``duration`` seconds long (to its end when None)."""

    url: str
    start_time: float = 0.0
    duration: float | None = None


def stitch_pieces(value: object, path: str = "query.stitch") -> tuple[Piece, ...]:
    """The pieces of ``stitch``: a list (or its JSON text) of URLs or piece objects."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise BadQuery(f"{path} must be a list of sources (JSON)") from None
    if not isinstance(value, list):
        raise BadQuery(f"{path} must be a list of sources: URLs or {{url, start_time, duration}}")
    if not value:
        raise FieldRequired(path)
    if len(value) > MAX_PIECES:
        raise BadQuery(f"{path} has {len(value)} sources; qthumb joins at most {MAX_PIECES}")
    return tuple(_piece(item, f"{path}[{i}]") for i, item in enumerate(value))


def _piece(item: Any, path: str) -> Piece:
    if isinstance(item, str):
        item = {"url": item}
    if not isinstance(item, dict):
        raise BadQuery(f"{path} must be a URL or an object with url, start_time, duration")
    url = item.get("url")
    if url is None or url == "":
        raise FieldRequired(f"{path}.url")
    if not isinstance(url, str):
        raise BadQuery(f"{path}.url must be a string (a URL, a path or tus:<uuid>)")
    url = url.strip()
    if url_scheme(url) in ("http", "https"):
        problem = url_problem(url)
        if problem:
            raise BadQuery(f"{path}.url: {problem}")
    start = opt_float(item, "start_time", path, minimum=0.0)
    duration = opt_float(item, "duration", path, minimum=0.0, exclusive=True)
    return Piece(url=url, start_time=start or 0.0, duration=duration)
