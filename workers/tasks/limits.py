"""Limits a task must stay within, checked once the source is probed (each breach a clear
error naming the setting that sets it)."""

from __future__ import annotations

from qthumb.app.qencode.query import IMAGE_OUTPUTS, VIDEO_OUTPUTS, FormatSpec, Query
from qthumb.app.settings import Settings
from qthumb.workers.media.imaging import target_size
from qthumb.workers.media.probe import MediaInfo
from qthumb.workers.outputs.gif import gif_frames
from qthumb.workers.outputs.series import frame_count
from qthumb.workers.tasks.failures import FormatFailure, TaskFailure


def _hms(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def check_task(query: Query, info: MediaInfo, settings: Settings) -> None:
    if info.duration > settings.max_source_seconds:
        raise TaskFailure(
            f"source is {_hms(info.duration)} long; the limit is "
            f"{_hms(settings.max_source_seconds)} (QTHUMB_MAX_SOURCE_SECONDS)"
        )
    frames = 0
    for spec in query.formats:
        if spec.output == "thumbnail":
            frames += 1
        elif spec.output == "thumbnails":
            frames += frame_count(spec, info)
        elif spec.output == "gif":
            frames += gif_frames(spec, info)
    has_gif = any(spec.output == "gif" for spec in query.formats)
    if frames > settings.max_frames_per_task:
        raise TaskFailure(
            f"the query asks for {frames} frames; the limit is {settings.max_frames_per_task} "
            "(QTHUMB_MAX_FRAMES_PER_TASK): "
            + (
                "use a longer interval"
                if not has_gif
                else "use a longer interval, or a shorter or slower gif"
            )
        )


def check_format(spec: FormatSpec, info: MediaInfo, settings: Settings) -> None:
    if spec.output not in IMAGE_OUTPUTS | VIDEO_OUTPUTS | {"gif"}:
        return
    width, height = target_size(info.display_size, spec.sizing)
    width, height = width * spec.dpr, height * spec.dpr  # HiDPI tiles have more pixels
    if width * height > settings.max_output_pixels:
        raise FormatFailure(
            f"output of {width}x{height} is {width * height} pixels; the limit is "
            f"{settings.max_output_pixels} (QTHUMB_MAX_OUTPUT_PIXELS)"
        )
    frames = {"gif": gif_frames, "thumbnails": frame_count}.get(spec.output)
    if frames is not None:
        count = frames(spec, info)
        if count * width * height > settings.max_format_pixels:
            raise FormatFailure(
                f"{count} frames of {width}x{height} are {count * width * height} pixels in all;"
                f" the limit is {settings.max_format_pixels} (QTHUMB_MAX_FORMAT_PIXELS): fewer"
                " or smaller frames"
            )
