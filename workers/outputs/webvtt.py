"""WebVTT for seek-bar previews, in the one form every common player parses (media-notes):
``WEBVTT``, a blank line, cues without identifiers, ``HH:MM:SS.mmm --> HH:MM:SS.mmm``, LF line
endings, cues that tile [0, duration] without gaps, the payload ``file#xywh=x,y,w,h``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    text: str


def timestamp(seconds: float) -> str:
    millis = max(0, round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def tile_cues(starts: Sequence[float], end: float, texts: Sequence[str]) -> list[Cue]:
    """Cue k runs from ``starts[k]`` to ``starts[k+1]``; the last ends at ``end``.

    The first cue starts at 0 whatever ``starts[0]`` is, so the timeline has no gap.
    """
    bounds = [0.0, *starts[1:], max(end, starts[-1])]
    return [Cue(bounds[k], bounds[k + 1], texts[k]) for k in range(len(starts))]


def render_vtt(cues: Sequence[Cue]) -> str:
    blocks = [f"{timestamp(c.start)} --> {timestamp(c.end)}\n{c.text}\n" for c in cues]
    return "WEBVTT\n\n" + "\n".join(blocks)
