"""Shots of a video (``scenes: 1``, qthumb's extension): cuts found in one decode pass.

Every frame of the window is decoded (frame threads) and scaled by FFmpeg to a small grey
copy (``SIZE``); a cut is a frame whose mean absolute luma change from the one before is both
large (``MIN_CHANGE`` of 255) and far above the changes just before it (``RATIO`` times their
median: film grain, noise and motion move every frame a little, a cut moves it all at once).
A shot lasts ``min_shot`` seconds at least (the series' ``interval``), so a flash or a strobe
is not a shot of its own. What a cut is, exactly: the first frame of the new shot.
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from qthumb.app.qencode.window import Window
from qthumb.workers.failures import MediaError
from qthumb.workers.media.probe import MediaInfo, limit_decoder, open_media, undecodable

SIZE = (64, 36)  # the grey copy each frame is compared on
MIN_CHANGE = 18.0  # mean absolute luma change (0-255) a cut needs at least
RATIO = 4.0  # and this many times the median change of the frames just before
HISTORY = 12  # frames whose changes make that median


@dataclass(frozen=True)
class Shot:
    start: float  # seconds from the source's first frame: its first frame's time
    end: float  # the next shot's start, or the window's end


def find_shots(
    source: Path,
    info: MediaInfo,
    window: Window,
    min_shot: float,
    most: int,
    progress: Callable[[float], None] = lambda _: None,
) -> list[Shot]:
    """The shots of ``window``, ``most`` at the most (a later cut beyond them is not one)."""
    import numpy as np

    cuts = [window.start]
    with open_media(source) as container:
        stream = container.streams.video[0]
        ctx = stream.codec_context
        ctx.thread_type = "AUTO"
        if info.max_pixels is not None:
            limit_decoder(ctx, info.max_pixels)
        base = Fraction(stream.time_base or Fraction(1, 90000))
        first = stream.start_time or 0
        if window.start > 0:
            container.seek(first + round(Fraction(window.start) / base), stream=stream)
        previous = None
        changes: deque[float] = deque(maxlen=HISTORY)
        try:
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                seconds = float((frame.pts - first) * base)
                if seconds < window.start:
                    continue
                if seconds >= window.end:
                    break
                grey = frame.reformat(width=SIZE[0], height=SIZE[1], format="gray")
                now = grey.to_ndarray().astype(np.int16)  # (height, width), no padding
                if previous is not None:
                    change = float(np.abs(now - previous).mean())
                    usual = statistics.median(changes) if changes else 0.0
                    if (
                        change >= MIN_CHANGE
                        and change >= RATIO * usual
                        and seconds - cuts[-1] >= min_shot
                        and len(cuts) < most
                    ):
                        cuts.append(seconds)
                    changes.append(change)
                previous = now
                if window.length > 0:
                    progress((seconds - window.start) / window.length)
        except av.FFmpegError as exc:
            raise undecodable(ctx, info.max_pixels, exc) from None
    if not cuts:
        raise MediaError("the source has no frame in the window")
    ends = [*cuts[1:], window.end]
    return [Shot(start, end) for start, end in zip(cuts, ends, strict=True)]
