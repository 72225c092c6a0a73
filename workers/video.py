"""``mp4`` and ``webm`` outputs beside thumbnails: the ffmpeg command is built by a pure function
(``video_command``, through ffmpeg-python, tested by list equality) and run by one runner
(``run_ffmpeg``) that reads ffmpeg's ``-progress`` lines for the task's percent."""

from __future__ import annotations

import re
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import ffmpeg  # ffmpeg-python

from app.orphans import dies_with_us
from app.query import FormatSpec, VideoSettings
from app.window import clip_window
from workers.failures import FormatFailure
from workers.imaging import target_size
from workers.probe import SAFE_DEMUXERS, MediaInfo, open_media
from workers.products import Product

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


def safe_input(source: Path, start: float, max_pixels: int | None = None) -> Any:
    """``ffmpeg.input`` of a local source, from ``start`` seconds (``-ss`` before ``-i``), with
    the decoder's rules: the file protocol and single-file demuxers only, and no frame over
    ``max_pixels`` (QTHUMB_MAX_SOURCE_PIXELS; ffmpeg skips such frames, never allocates them)."""
    args: dict[str, Any] = {"protocol_whitelist": "file", "format_whitelist": SAFE_DEMUXERS}
    if max_pixels is not None:
        args["max_pixels"] = str(max_pixels)
    if start:
        args["ss"] = f"{start:.3f}"
    return ffmpeg.input(str(source), **args)


def runner_argv(output: Any) -> list[str]:
    """The argv of an ffmpeg-python output, with what ``run_ffmpeg`` needs: progress on
    stdout, no stdin, errors only. Global options go before the inputs: trailing ones are
    ignored by ffmpeg."""
    compiled: list[str] = output.compile()
    return [compiled[0], "-nostdin", "-hide_banner", "-loglevel", "error", "-progress",
            "pipe:1", "-y", *compiled[1:]]  # fmt: skip


def run_ffmpeg(
    argv: list[str], duration: float, progress: Callable[[float], None], timeout: float
) -> None:
    """Run one ffmpeg command; its ``-progress`` output drives ``progress`` (0-1). Fails with
    the command's last error lines when ffmpeg fails or passes ``timeout`` seconds."""
    proc = subprocess.Popen(
        dies_with_us(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        assert proc.stdout is not None and proc.stderr is not None
        for line in proc.stdout:
            if line.startswith("out_time_us=") and duration > 0:
                value = line.split("=", 1)[1].strip()
                if value.isdigit():
                    progress(min(1.0, int(value) / 1e6 / duration))
        errors = proc.stderr.read()
        code = proc.wait()
    finally:
        timer.cancel()
    if code != 0:
        tail = " | ".join(errors.strip().splitlines()[-3:]) or f"exit code {code}"
        reason = "timed out" if code == -9 else tail
        raise FormatFailure(f"ffmpeg could not make the {argv[-1].rsplit('.', 1)[-1]}: {reason}")


def make_video(
    source: Path,
    info: MediaInfo,
    spec: FormatSpec,
    out_dir: Path,
    progress: Callable[[float], None],
    timeout: float,
) -> list[Product]:
    name = f"video.{spec.output}"
    plan = video_command(source, out_dir / name, spec, info, info.has_audio)
    run_ffmpeg(plan.argv, plan.duration, progress, timeout)
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
