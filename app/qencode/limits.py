"""Limits a query must stay within that are known before any source is read, checked when
``start_encode2`` accepts it (error 1 naming the field). What depends on the source (its length,
its frame size) is checked by the worker once the source is probed (``workers.tasks.limits``)."""

from __future__ import annotations

from qthumb.app.errors import BadQuery
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
                "use a longer interval"
            )
