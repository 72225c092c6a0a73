"""``logo``: images drawn over an output (``Logo``), read from a query's format."""

from __future__ import annotations

from dataclasses import dataclass

from qthumb.app.egress import url_problem
from qthumb.app.errors import BadQuery, FieldRequired
from qthumb.app.qencode.fields.destinations import objects
from qthumb.app.qencode.fields.values import (
    MAX_SIDE,
    opt_float,
    opt_number,
    url_scheme,
)


@dataclass(frozen=True)
class Logo:
    """A watermark (``logo``): an image drawn over the output at ``x``, ``y`` (negative: from
    the right or bottom edge), ``opacity`` 0-1, from ``start_time`` for ``duration`` seconds
    of the output (None: from its start, to its end)."""

    source: str
    x: int = 0
    y: int = 0
    opacity: float = 1.0
    start_time: float | None = None
    duration: float | None = None


def logos(value: object, path: str) -> tuple[Logo, ...]:
    """``logo``: one object or a list of them (one a time range), each with a ``source``."""
    items = objects(value, path, "a source")
    if len(items) > MAX_LOGOS:
        raise BadQuery(f"{path} has {len(items)} logos; at most {MAX_LOGOS}")
    found = []
    for item, where in items:
        source = item.get("source")
        if source is None or source == "":
            raise FieldRequired(f"{where}.source")
        if not isinstance(source, str):
            raise BadQuery(f"{where}.source must be a URL")
        web = url_scheme(source) in ("http", "https")  # checked as a query's source is
        problem = url_problem(source.strip()) if web else ""
        if problem:
            raise BadQuery(f"{where}.source: {problem}")
        opacity = opt_number(item, "opacity", where)
        if opacity is not None and not 0 <= opacity <= 1:
            raise BadQuery(f"{where}.opacity must be between 0 and 1, got {opacity:g}")
        x, y = (opt_number(item, side, where) for side in ("x", "y"))
        for side, number in (("x", x), ("y", y)):
            if number is not None and (not number.is_integer() or abs(number) > MAX_SIDE):
                raise BadQuery(f"{where}.{side} must be whole pixels within {MAX_SIDE}")
        found.append(
            Logo(
                source=source.strip(),
                x=int(x or 0),
                y=int(y or 0),
                opacity=1.0 if opacity is None else opacity,
                start_time=opt_float(item, "start_time", where, minimum=0.0),
                duration=opt_float(item, "duration", where, minimum=0.0, exclusive=True),
            )
        )
    return tuple(found)


MAX_LOGOS = 8
