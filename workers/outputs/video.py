"""``mp4`` and ``webm`` outputs beside thumbnails: what to encode is an ``EncodePlan`` built by a
pure function (``video_command``, tested by equality) and made by one runner (``run_encoder``),
whose child reports progress for the task's percent."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from qthumb.app.qencode.fields.video import VideoSettings
from qthumb.app.qencode.formats import VideoSpec
from qthumb.app.qencode.window import clip_window
from qthumb.app.tasks.results import EntryType
from qthumb.workers.failures import FormatFailure
from qthumb.workers.media.imaging import fitted, target_size
from qthumb.workers.media.logos import LoadedLogo
from qthumb.workers.media.probe import MediaInfo, open_media
from qthumb.workers.outputs.encoding.plan import AudioPlan, EncodePlan, logo_plans
from qthumb.workers.outputs.encoding.run import run_encoder
from qthumb.workers.outputs.products import Product

_KEYFRAME_SECONDS = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*s\s*$")


@dataclass(frozen=True)
class VideoPlan:
    encode: EncodePlan
    width: int
    height: int
    duration: float
    content_type: str


def _even(n: int) -> int:
    return max(2, n - n % 2)


def video_command(
    source: Path,
    out: Path,
    spec: VideoSpec,
    info: MediaInfo,
    has_audio: bool,
    logos: Sequence[LoadedLogo] = (),
) -> VideoPlan:
    """The encoding of one video output. Pure: no file is touched."""
    settings = spec.video or VideoSettings()
    codecs = spec.codecs
    acodec, content_type = codecs.audio, codecs.content_type
    vcodec = settings.video_codec or codecs.video
    if vcodec not in codecs.allowed:
        allowed = ", ".join(sorted(codecs.allowed))
        raise FormatFailure(
            f"video_codec {vcodec!r} is not available for {spec.output} ({allowed})"
        )
    width, height = (_even(v) for v in target_size(info.display_size, spec.sizing))
    window = clip_window(spec, info.duration)
    options: dict[str, str] = {}
    bit_rate = None
    if settings.bitrate:
        bit_rate = int(settings.bitrate) * 1000
    elif settings.quality is not None:
        options["crf"] = str(settings.quality)
    else:
        options["crf"] = "23" if vcodec == "libx264" else "32"
    if vcodec == "libx264":
        options["preset"] = "veryfast"
        container = {"movflags": "+faststart"}
    else:
        options.update({"deadline": "realtime", "cpu-used": "8", "row-mt": "1"})
        container = {}
    keyframe_every, gop = None, None
    if settings.keyframe:
        match = _KEYFRAME_SECONDS.match(settings.keyframe)
        if match:
            keyframe_every = float(match.group(1))
        else:
            gop = int(float(settings.keyframe))
    audio = None
    if has_audio and settings.audio:
        audio = AudioPlan(acodec, int(settings.audio_bitrate or 128) * 1000)
    plan = EncodePlan(
        source=str(source),
        out=str(out),
        start=window.start,
        duration=window.length,
        width=width,
        height=height,
        codec=vcodec,
        rotation=info.rotation,
        turn=spec.sizing.rotate,
        fps=str(settings.framerate) if settings.framerate else None,
        codec_options=options,
        bit_rate=bit_rate,
        gop=gop,
        keyframe_every=keyframe_every,
        container_options=container,
        audio=audio,
        max_pixels=info.max_pixels,
        logos=logo_plans(logos),
        mute=settings.mute,
        deinterlace=spec.deinterlace,
        tone_map=spec.hdr_to_sdr,
        **fitted(width, height, info.display_size, spec.sizing),
    )
    return VideoPlan(plan, width, height, window.length, content_type)


def make_video(
    source: Path,
    info: MediaInfo,
    spec: VideoSpec,
    out_dir: Path,
    progress: Callable[[float], None],
    timeout: float,
    logos: Sequence[LoadedLogo] = (),
) -> list[Product]:
    name = f"video.{spec.output}"
    plan = video_command(source, out_dir / name, spec, info, info.has_audio, logos)
    run_encoder(plan.encode, progress, timeout, spec.output)
    path = out_dir / name
    return [
        Product(
            path=path,
            name=name,
            kind=EntryType.VIDEO,
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
