"""Limits a task must stay within, checked once the source is probed (each breach a clear
error naming the setting that sets it)."""

from __future__ import annotations

from qthumb.app.qencode.formats import FormatSpec, SizedSpec, ThumbnailsSpec
from qthumb.app.qencode.query import Query
from qthumb.app.qencode.trickplay import tile_problem
from qthumb.app.settings import Settings
from qthumb.workers.failures import FormatFailure, TaskFailure
from qthumb.workers.media.imaging import target_size
from qthumb.workers.media.probe import MediaInfo
from qthumb.workers.outputs.producers import PRODUCERS


def _hms(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def check_task(query: Query, info: MediaInfo, settings: Settings) -> None:
    if info.duration > settings.max_source_seconds:
        raise TaskFailure(
            f"source is {_hms(info.duration)} long; the limit is "
            f"{_hms(settings.max_source_seconds)} (QTHUMB_MAX_SOURCE_SECONDS)"
        )
    frames, fewer = 0, []
    for spec in query.formats:
        producer = PRODUCERS.get(type(spec))
        if producer is not None:
            frames += producer.count(spec, info)
            if producer.fewer and producer.fewer not in fewer:
                fewer.append(producer.fewer)
    if frames > settings.max_frames_per_task:
        raise TaskFailure(
            f"the query asks for {frames} frames; the limit is {settings.max_frames_per_task} "
            f"(QTHUMB_MAX_FRAMES_PER_TASK): use {', or '.join(fewer) or 'fewer frames'}"
        )


def check_format(spec: FormatSpec, info: MediaInfo, settings: Settings) -> None:
    if not isinstance(spec, SizedSpec):
        return
    width, height = target_size(info.display_size, spec.sizing)
    width, height = width * spec.pixel_scale, height * spec.pixel_scale
    if isinstance(spec, ThumbnailsSpec) and spec.has_tracks:
        # the source's aspect decides the side the query left open: known only now
        too_large = tile_problem("trickplay", width, height)
        if too_large:
            raise FormatFailure(too_large)
    if width * height > settings.max_output_pixels:
        raise FormatFailure(
            f"output of {width}x{height} is {width * height} pixels; the limit is "
            f"{settings.max_output_pixels} (QTHUMB_MAX_OUTPUT_PIXELS)"
        )
    producer = PRODUCERS.get(type(spec))
    count = 0 if producer is None else producer.count(spec, info)
    if count * width * height > settings.max_format_pixels:
        raise FormatFailure(
            f"{count} frames of {width}x{height} are {count * width * height} pixels in all;"
            f" the limit is {settings.max_format_pixels} (QTHUMB_MAX_FORMAT_PIXELS): fewer"
            " or smaller frames"
        )
