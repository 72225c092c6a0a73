"""``mp4`` and ``webm`` outputs beside thumbnails: the ffmpeg command is built by a pure function
(``video_command``, through ffmpeg-python, tested by list equality) and run by one runner
(``run_ffmpeg``) that reads ffmpeg's ``-progress`` lines for the task's percent."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import ffmpeg  # ffmpeg-python

from qthumb.app.query import FormatSpec, VideoSettings
from qthumb.app.window import clip_window
from qthumb.workers.failures import FormatFailure
from qthumb.workers.ffmpeg_run import run_ffmpeg, runner_argv, safe_input
from qthumb.workers.imaging import target_size
from qthumb.workers.probe import MediaInfo, open_media
from qthumb.workers.products import Product

CODECS = {
    "mp4": ("libx264", "aac", "video/mp4"),
    "webm": ("libvpx-vp9", "libopus", "video/webm"),
}
ALLOWED_CODECS = {"mp4": {"libx264"}, "webm": {"libvpx-vp9", "libvpx"}}
_KEYFRAME_SECONDS = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*s\s*$")


@dataclass(frozen=True)
class VideoPlan:
    argv: list[str]
    width: int
    height: int
    duration: float
    content_type: str


def _even(n: int) -> int:
    return max(2, n - n % 2)


def video_command(
    source: Path, out: Path, spec: FormatSpec, info: MediaInfo, has_audio: bool
) -> VideoPlan:
    """The ffmpeg argv for one video output. Pure: no file is touched."""
    settings = spec.video or VideoSettings()
    vcodec_default, acodec, content_type = CODECS[spec.output]
    vcodec = settings.video_codec or vcodec_default
    if vcodec not in ALLOWED_CODECS[spec.output]:
        allowed = ", ".join(sorted(ALLOWED_CODECS[spec.output]))
        raise FormatFailure(
            f"video_codec {vcodec!r} is not available for {spec.output} ({allowed})"
        )
    width, height = (_even(v) for v in target_size(info.display_size, spec.sizing))
    window = clip_window(spec, info.duration)
    start, duration = window.start, window.length
    stream = safe_input(source, start, info.max_pixels)
    video = stream.video.filter("scale", width, height).filter("setsar", 1)
    if settings.framerate:
        video = video.filter("fps", fps=settings.framerate)
    out_args: dict[str, Any] = {
        "vcodec": vcodec,
        "pix_fmt": "yuv420p",
        "t": f"{duration:.3f}",
        "map_metadata": -1,
    }
    if settings.bitrate:
        out_args["video_bitrate"] = f"{settings.bitrate}k"
    elif settings.quality is not None:
        out_args["crf"] = settings.quality
    elif vcodec == "libx264":
        out_args["crf"] = 23
    else:
        out_args.update({"crf": 32, "b:v": 0})
    if vcodec == "libx264":
        out_args["preset"] = "veryfast"
        out_args["movflags"] = "+faststart"
    else:
        out_args.update({"deadline": "realtime", "cpu-used": 8, "row-mt": 1})
    if settings.keyframe:
        match = _KEYFRAME_SECONDS.match(settings.keyframe)
        if match:
            out_args["force_key_frames"] = f"expr:gte(t,n_forced*{match.group(1)})"
        else:
            out_args["g"] = int(float(settings.keyframe))
    streams = [video]
    if has_audio and settings.audio:
        streams.append(stream.audio)
        out_args["acodec"] = acodec
        out_args["audio_bitrate"] = f"{settings.audio_bitrate or 128}k"
    argv = runner_argv(ffmpeg.output(*streams, str(out), **out_args))
    return VideoPlan(argv, width, height, duration, content_type)


def make_video(
    source: Path,
    info: MediaInfo,
    spec: FormatSpec,
    out_dir: Path,
    progress: Callable[[float], None],
    timeout: float,
    executable: str = "",
) -> list[Product]:
    name = f"video.{spec.output}"
    plan = video_command(source, out_dir / name, spec, info, info.has_audio)
    run_ffmpeg(plan.argv, plan.duration, progress, timeout, executable)
    path = out_dir / name
    return [
        Product(
            path=path,
            name=name,
            kind="video",
            content_type=plan.content_type,
            width=plan.width,
            height=plan.height,
            size=path.stat().st_size,
            time=None,
            duration=plan.duration,
            meta=video_meta(path, plan),
        )
    ]


def video_meta(path: Path, plan: VideoPlan) -> dict[str, Any]:
    """``meta`` of a ``videos[]`` entry, read back from the encoded file: the names the SDKs
    read (Java: resolution_width/height, framerate, bitrate, dar, sar, resolution)."""
    meta: dict[str, Any] = {"width": plan.width, "height": plan.height}
    with open_media(path) as container:
        stream = container.streams.video[0]
        ctx = stream.codec_context
        width, height = ctx.width or plan.width, ctx.height or plan.height
        sar = stream.sample_aspect_ratio or Fraction(1)
        dar = Fraction(width, height) * sar
        rate = stream.average_rate
        size = path.stat().st_size
        meta.update(
            width=width,
            height=height,
            resolution_width=width,
            resolution_height=height,
            resolution=min(width, height),
            framerate=f"{float(rate):g}" if rate else None,
            bitrate=round(size * 8 / 1000 / plan.duration) if plan.duration else None,
            dar=f"{dar.numerator}:{dar.denominator}",
            sar=f"{sar.numerator}:{sar.denominator}",
            codec=ctx.name,
        )
    return meta
