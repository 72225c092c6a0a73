"""``output: "gif"``: an animated GIF of the clip window (``start_time``, ``duration``) at
``framerate`` (default 10) and ``size``/``width``/``height``, palette-optimised by FFmpeg's
palettegen/paletteuse in two passes (no frame held); or an animated WebP with
``image_format: "webp"`` (qthumb's extension).
The frame count counts against ``QTHUMB_MAX_FRAMES_PER_TASK``, each frame against
``QTHUMB_MAX_OUTPUT_PIXELS``."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from qthumb.app.qencode.formats import GifSpec
from qthumb.app.qencode.window import clip_window
from qthumb.app.tasks.results import EntryType
from qthumb.workers.media.imaging import fitted, target_size
from qthumb.workers.media.logos import LoadedLogo
from qthumb.workers.media.probe import MediaInfo
from qthumb.workers.outputs.encoding.plan import EncodePlan, logo_plans
from qthumb.workers.outputs.encoding.run import run_encoder
from qthumb.workers.outputs.products import Product


def gif_frames(spec: GifSpec, info: MediaInfo) -> int:
    """Frames the animation will hold, counted before anything is made."""
    return max(1, math.ceil(clip_window(spec, info.duration).length * spec.fps))


def gif_command(
    source: Path, out: Path, spec: GifSpec, info: MediaInfo, logos: Sequence[LoadedLogo] = ()
) -> EncodePlan:
    """What to encode (pure: no file is touched)."""
    window = clip_window(spec, info.duration)
    width, height = target_size(info.display_size, spec.sizing)
    plan = EncodePlan(
        source=str(source),
        out=str(out),
        start=window.start,
        duration=max(window.length, 0.001),
        width=width,
        height=height,
        codec="gif",
        pix_fmt="pal8",
        palette=True,
        rotation=info.rotation,
        turn=spec.sizing.rotate,
        logos=logo_plans(logos),
        fps=f"{spec.fps:g}",
        scale_flags="lanczos",
        container_options={"loop": "0"},
        max_pixels=info.max_pixels,
        deinterlace=spec.deinterlace,
        tone_map=True,  # an animation is SDR, as thumbnails are
        **fitted(width, height, info.display_size, spec.sizing),
    )
    if spec.animated_webp:
        options = {"lossless": "0", "quality": str(spec.quality or 75)}
        return replace(
            plan, codec="libwebp", pix_fmt="yuv420p", palette=False, codec_options=options
        )
    return plan


def make_gif(
    source: Path,
    info: MediaInfo,
    spec: GifSpec,
    out_dir: Path,
    progress: Callable[[float], None],
    timeout: float,
    logos: Sequence[LoadedLogo] = (),
) -> list[Product]:
    ext, content_type = ("webp", "image/webp") if spec.animated_webp else ("gif", "image/gif")
    path = out_dir / f"animation.{ext}"
    window = clip_window(spec, info.duration)
    run_encoder(gif_command(source, path, spec, info, logos), progress, timeout, ext)
    width, height = target_size(info.display_size, spec.sizing)
    return [
        Product(
            path=path,
            name=path.name,
            kind=EntryType.GIF,
            content_type=content_type,
            width=width,
            height=height,
            size=path.stat().st_size,
            duration=window.length,
            meta={
                "width": width,
                "height": height,
                "framerate": f"{spec.fps:g}",
                "frames": gif_frames(spec, info),
            },
        )
    ]
