"""The best frame near a time (``smart: 1``, qthumb's extension): a fixed set of candidates
around it, decoded in one forward pass, each scored for what makes a poster frame good.

Candidates are ``STEPS`` evenly spaced times each side of the asked one within the window,
plus the keyframes in the window nearest to it (``SCENE_CUTS`` at most): encoders put
keyframes at scene cuts, so these are the first frames of new shots, read from the index
without decoding anything. Each candidate is decoded with the frame after it, and scored on a
small grey copy (``ANALYSIS_WIDTH``):

- exposure: mean luma near the middle, not dark, not blown out;
- contrast: the spread of luma;
- sharpness: the variance of the Laplacian (focus, motion blur, a blurred title card);
- stillness: how little it differs from the frame after it; a frame in the middle of a fade,
  a dissolve or a fast pan differs from its neighbour, a frame of a held shot barely does.

A black, white or flat frame (the blank test ``smart`` has always made) scores 0. The frame
taken is the best score less a small penalty for distance from the asked time, so among
equally good frames the one asked for wins; its score (0-1) goes in ``images[].score``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from qthumb.workers.media.frames import VideoReader
from qthumb.workers.media.picture import Picture

if TYPE_CHECKING:  # NumPy is loaded on the first smart pick (a command's start-up stays light)
    import numpy as np

STEPS = 8  # candidates each side of the asked time
SCENE_CUTS = 8  # keyframes in the window taken as candidates too, the nearest first
ANALYSIS_WIDTH = 192  # pixels across the grey copy every candidate is scored on
DARK, BRIGHT, FLAT = 24.0, 240.0, 10.0  # mean luma under/over, or spread under: blank
NEARNESS = 0.15  # the score a frame at the window's edge gives up to one at the asked time
# Weights of the four measures in the score (they add up to 1).
WEIGHTS = {"sharpness": 0.4, "stillness": 0.25, "contrast": 0.2, "exposure": 0.15}
SHARP = 150.0  # Laplacian variance at which sharpness is 0.5 (on ANALYSIS_WIDTH grey)
STILL = 6.0  # mean luma change to the next frame at which stillness reaches 0


@dataclass(frozen=True)
class Ranked:
    picture: Picture
    score: float  # 0-1: 0 blank, 1 sharp, still, well exposed and contrasted


def window(duration: float) -> float:
    """How far from the asked time a candidate may be: a tenth of the source, 2 to 10 s."""
    return max(2.0, min(10.0, duration / 10))


def _grey(picture: Picture) -> np.ndarray:
    import numpy as np

    width, height = picture.display_size
    side = max(8, round(height * ANALYSIS_WIDTH / max(1, width)))
    image = picture.to_image(ANALYSIS_WIDTH, side).convert("L")
    return np.asarray(image, dtype=np.float32)


def score(grey: np.ndarray, following: np.ndarray | None) -> float:
    """The score of a frame from its grey copy and the next frame's (None: none after it)."""
    import numpy as np

    mean, spread = float(grey.mean()), float(grey.std())
    if mean < DARK or mean > BRIGHT or spread < FLAT:
        return 0.0
    laplacian = (
        4 * grey[1:-1, 1:-1] - grey[:-2, 1:-1] - grey[2:, 1:-1] - grey[1:-1, :-2] - grey[1:-1, 2:]
    )
    variance = float(laplacian.var())
    change = 0.0 if following is None else float(np.abs(grey - following).mean())
    measures = {
        "sharpness": variance / (variance + SHARP),
        "stillness": max(0.0, 1.0 - change / STILL),
        "contrast": min(1.0, spread / 64.0),
        "exposure": max(0.0, 1.0 - abs(mean - 118.0) / 118.0),
    }
    return sum(WEIGHTS[name] * value for name, value in measures.items())


def candidates(reader: VideoReader, seconds: float) -> list[float]:
    """The times to score around ``seconds``: a fixed grid and the nearest keyframes."""
    duration = reader.info.duration
    reach = window(duration)
    step = reach / STEPS
    grid = [seconds + k * step for k in range(-STEPS, STEPS + 1)]
    keys = ((k.pts - reader.first_pts) * reader.time_base for k in reader.keyframes())
    cuts = [float(t) for t in keys if abs(t - seconds) <= reach]
    cuts.sort(key=lambda t: abs(t - seconds))
    last = max(0.0, duration - 2 * _frame_time(reader))  # a frame follows it
    times: list[float] = []
    frame_time = _frame_time(reader)
    for t in sorted({min(max(t, 0.0), last) for t in [*grid, *cuts[:SCENE_CUTS]]}):
        # a frame apart at least, so each candidate's next frame comes before the next one
        if not times or t - times[-1] >= frame_time:
            times.append(t)
    return times


def _frame_time(reader: VideoReader) -> float:
    rate = reader.info.frame_rate
    return 1 / rate if rate and rate >= 1 else 0.04


def best_frame(reader: VideoReader, seconds: float) -> Ranked:
    """The best-scored candidate near ``seconds`` (the asked frame wins a tie)."""
    frame_time = _frame_time(reader)
    times = candidates(reader, seconds)
    reach = window(reader.info.duration)
    pairs = [t for time in times for t in (time, time + frame_time)]
    pictures = list(reader.frames_at(pairs))
    best: Ranked | None = None
    best_rank = -1.0
    for k in range(len(times)):
        picture, following = pictures[2 * k], pictures[2 * k + 1]
        same = following.time == picture.time  # the last frame: nothing after it
        value = score(_grey(picture), None if same else _grey(following))
        rank = value - NEARNESS * abs(picture.time - seconds) / reach
        if rank > best_rank:
            best, best_rank = Ranked(picture, value), rank
    assert best is not None  # times is never empty
    return best


def best_in_shot(reader: VideoReader, start: float, end: float, steps: int = 5) -> float:
    """The time of the best-scored of ``steps`` frames spread over the middle of a shot
    (``scenes: 1``), each scored with the frame after it as ``best_frame`` does; the middle
    one wins a tie."""
    frame_time = _frame_time(reader)
    inner, length = start + (end - start) * 0.1, (end - start) * 0.8
    last = max(start, end - 2 * frame_time)  # a frame follows it, within the shot
    times = sorted({min(inner + length * k / max(1, steps - 1), last) for k in range(steps)})
    pairs = [t for time in times for t in (time, min(time + frame_time, last + frame_time))]
    pictures = list(reader.frames_at(pairs))
    middle = (start + end) / 2
    best, best_rank = middle, -1.0
    for k, time in enumerate(times):
        picture, following = pictures[2 * k], pictures[2 * k + 1]
        same = following.time == picture.time
        rank = score(_grey(picture), None if same else _grey(following))
        rank -= 0.01 * abs(time - middle) / max(end - start, frame_time)
        if rank > best_rank:
            best, best_rank = picture.time, rank
    return best
