"""``output: "gif"``: an animated GIF of the clip window (``start_time``, ``duration``) at
``framerate`` (default 10) and ``size``/``width``/``height``, palette-optimised by ffmpeg's
palettegen/paletteuse; or an animated WebP with ``image_format: "webp"`` (qthumb's extension).
The frame count counts against ``QTHUMB_MAX_FRAMES_PER_TASK``, each frame against
``QTHUMB_MAX_OUTPUT_PIXELS``."""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import ffmpeg  # ffmpeg-python

from qthumb.app.query import FormatSpec
from qthumb.app.window import clip_window
from qthumb.workers.ffmpeg_run import run_ffmpeg, runner_argv, safe_input
from qthumb.workers.imaging import target_size
from qthumb.workers.probe import MediaInfo
from qthumb.workers.products import Product

DEFAULT_FPS = 10.0


def gif_fps(spec: FormatSpec) -> float:
    rate = spec.video.framerate if spec.video else None
    return float(Fraction(rate)) if rate else DEFAULT_FPS


def gif_frames(spec: FormatSpec, info: MediaInfo) -> int:
    """Frames the animation will hold, counted before anything is made."""
    return max(1, math.ceil(clip_window(spec, info.duration).length * gif_fps(spec)))


def gif_command(source: Path, out: Path, spec: FormatSpec, info: MediaInfo) -> list[str]:
    """The ffmpeg argv (pure: no file is touched)."""
    window = clip_window(spec, info.duration)
    width, height = target_size(info.display_size, spec.sizing)
    video = (
        safe_input(source, window.start, info.max_pixels)
        .video.filter("fps", fps=f"{gif_fps(spec):g}")
        .filter("scale", width, height, flags="lanczos")
        .filter("setsar", 1)
    )
    duration = {"t": f"{max(window.length, 0.001):.3f}"}
    if spec.animated_webp:
        stream = ffmpeg.output(video, str(out), vcodec="libwebp", loop=0, lossless=0,
                               quality=spec.quality or 75, **duration)  # fmt: skip
    else:
        split = video.split()
        palette = split[0].filter("palettegen", stats_mode="diff")
        used = ffmpeg.filter([split[1], palette], "paletteuse", dither="bayer", bayer_scale=5)
        stream = ffmpeg.output(used, str(out), loop=0, **duration)
    return runner_argv(stream)


def make_gif(
    source: Path,
    info: MediaInfo,
    spec: FormatSpec,
    out_dir: Path,
    progress: Callable[[float], None],
    timeout: float,
    executable: str = "",
) -> list[Product]:
    ext, content_type = ("webp", "image/webp") if spec.animated_webp else ("gif", "image/gif")
    path = out_dir / f"animation.{ext}"
    window = clip_window(spec, info.duration)
    argv = gif_command(source, path, spec, info)
    run_ffmpeg(argv, window.length, progress, timeout, executable)
    width, height = target_size(info.display_size, spec.sizing)
    return [
        Product(
            path=path,
            name=path.name,
            kind="gif",
            content_type=content_type,
            width=width,
            height=height,
            size=path.stat().st_size,
            duration=window.length,
            meta={
                "width": width,
                "height": height,
                "framerate": f"{gif_fps(spec):g}",
                "frames": gif_frames(spec, info),
            },
        )
    ]
