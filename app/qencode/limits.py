"""Limits a query must stay within that are known before any source is read, checked when
``start_encode2`` accepts it (error 1 naming the field). What depends on the source (its length,
its frame size) is checked by the worker once the source is probed (``workers.tasks.limits``)."""

from __future__ import annotations

from qthumb.app.errors import BadQuery
from qthumb.app.qencode.formats import FormatSpec, SizedSpec
from qthumb.app.qencode.query import Query
from qthumb.app.settings import Settings


def check_query(query: Query, settings: Settings) -> None:
    longest = settings.max_source_seconds
    frames = 0
    for spec in query.formats:
        path = f"query.format[{spec.index}]"
        if spec.start_time is not None and spec.start_time > longest:
            raise BadQuery(
                f"{path}.start_time is {spec.start_time:g} s, past the longest source qthumb "
                f"accepts ({longest:g} s, QTHUMB_MAX_SOURCE_SECONDS)"
            )
        spec.check(path, longest)
        count, why = spec.frames_asked(longest)
        frames += count
        if frames > settings.max_frames_per_task:
            raise BadQuery(
                f"{path} asks for {count} frames ({why}); the limit is "
                f"{settings.max_frames_per_task} frames a task (QTHUMB_MAX_FRAMES_PER_TASK): "
                f"{spec.fewer_frames}"
            )
        _check_pixels(spec, path, count, settings)


def _check_pixels(spec: FormatSpec, path: str, count: int, settings: Settings) -> None:
    """The pixel budgets, when the query alone fixes the output's size (both sides given):
    the same checks the worker makes once the source is probed, made before it is fetched."""
    if not isinstance(spec, SizedSpec) or not (spec.sizing.width and spec.sizing.height):
        return
    scale = spec.pixel_scale
    width, height = spec.sizing.width * scale, spec.sizing.height * scale
    if width * height > settings.max_output_pixels:
        raise BadQuery(
            f"{path}: an output of {width}x{height} is {width * height} pixels; the limit is "
            f"{settings.max_output_pixels} (QTHUMB_MAX_OUTPUT_PIXELS)"
        )
    if count * width * height > settings.max_format_pixels:
        raise BadQuery(
            f"{path}: {count} frames of {width}x{height} are {count * width * height} pixels in "
            f"all; the limit is {settings.max_format_pixels} (QTHUMB_MAX_FORMAT_PIXELS): fewer "
            "or smaller frames"
        )
