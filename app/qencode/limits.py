"""Limits a query must stay within that are known before any source is read, checked when
``start_encode2`` accepts it (error 1 naming the field). What depends on the source (its length,
its frame size) is checked by the worker once the source is probed (``workers.tasks.limits``)."""

from __future__ import annotations

from qthumb.app.api.errors import BadQuery
from qthumb.app.qencode.query import Query
from qthumb.app.qencode.window import Window, series_count
from qthumb.app.settings import Settings

MAX_FRAME_RATE = 1000  # frames a second: past any camera's, so frame_number has a ceiling


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
        if spec.frame_number is not None and spec.frame_number > longest * MAX_FRAME_RATE:
            raise BadQuery(
                f"{path}.frame_number is {spec.frame_number}, past the last frame of the "
                f"longest source qthumb accepts ({longest:g} s at {MAX_FRAME_RATE} frames a "
                "second, QTHUMB_MAX_SOURCE_SECONDS)"
            )
        if spec.output == "thumbnail":
            frames += 1
        elif spec.interval is not None and spec.duration is not None:
            # With a duration the count hardly depends on the source: past the limit here, it
            # is past it for every source long enough to fill that duration.
            count = series_count(spec.interval, Window(0.0, min(longest, spec.duration)))
            frames += count
            if frames > settings.max_frames_per_task:
                raise BadQuery(
                    f"{path} asks for {count} frames ({spec.duration:g} s every "
                    f"{spec.interval:g} s); the limit is {settings.max_frames_per_task} frames a "
                    "task (QTHUMB_MAX_FRAMES_PER_TASK): use a longer interval"
                )
