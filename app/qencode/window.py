"""The part of a source one format covers, and the counts that follow from it.

The one owner of the clip-window maths (``start_time`` and ``duration`` of a format against the
source's duration): thumbnails, series and videos all call it, so they clamp the same way. Every
count here is arithmetic: nothing proportional to it is allocated before it has been checked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol


class Clipped(Protocol):
    """What a format says of its clip window (every ``app.qencode.formats`` spec): the formats
    count their frames with this module, so it names none of them."""

    @property
    def start_time(self) -> float | None: ...

    @property
    def duration(self) -> float | None: ...


class Still(Clipped, Protocol):
    """What a ``thumbnail`` says of its one frame: ``frame_number`` or ``time`` (a fraction)."""

    @property
    def frame_number(self) -> int | None: ...

    @property
    def time(self) -> float: ...


COUNT_CEILING = 2**62  # far past every limit, still an int that compares and prints


@dataclass(frozen=True)
class Window:
    """[start, end) in seconds from the source's first frame; ``start <= end``."""

    start: float
    end: float

    @property
    def length(self) -> float:
        return self.end - self.start


def clip_window(spec: Clipped, duration: float) -> Window:
    """The source's [0, duration) clipped by the format's ``start_time`` and ``duration``. A
    start past the end is the end (the last frame), never an error."""
    start = min(max(0.0, spec.start_time or 0.0), duration)
    end = duration if spec.duration is None else min(duration, start + spec.duration)
    return Window(start, max(start, end))


def series_count(interval: float, window: Window) -> int:
    """How many times ``start, start + interval, …`` fall below the end: at least one (an
    interval longer than the window gives the frame at its start). Never builds the list."""
    if interval <= 0 or not math.isfinite(interval):
        raise ValueError(f"interval must be a positive number, got {interval!r}")
    ratio = min(window.length / interval, float(COUNT_CEILING))  # an inf ratio stays countable
    return max(1, math.ceil(ratio - 1e-9))


def series_times(interval: float, window: Window, limit: int) -> list[float]:
    """The times themselves, once their count is known to be at most ``limit``."""
    count = series_count(interval, window)
    if count > limit:
        raise ValueError(f"{count} times is over the limit of {limit}")
    return [window.start + k * interval for k in range(count)]


def thumbnail_time(spec: Still, duration: float, frame_rate: float | None) -> float:
    """Seconds from the first frame. ``frame_number`` wins over ``time`` (docs/compatibility.md); a
    frame past the end is the last frame."""
    if spec.frame_number is not None and frame_rate:
        return min(spec.frame_number / frame_rate, duration)
    window = clip_window(spec, duration)
    return window.start + spec.time * window.length
