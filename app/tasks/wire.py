"""Qencode's wire format for results, the one place it is written (docs/compatibility.md): the
status object and its ``images[]``/``videos[]``/``audios[]``/``texts[]`` entries, rendered from
the typed ``app.tasks.results`` the pipeline returns and the store keeps."""

from __future__ import annotations

from typing import Any

from qthumb.app.qencode.formats import array_of
from qthumb.app.qencode.kinds import Array, Output
from qthumb.app.tasks.model import TaskRecord, TaskStatus
from qthumb.app.tasks.results import FormatFailed, Results, Running, StoredFile

ARRAYS = tuple(Array)
VIDEO_TAG = f"{Array.VIDEOS[:-1]}-0-0"  # a task's tag when no format names an output


def _file_entry(item: StoredFile, tag: str, base_url: str | None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "url": item.location.absolute(base_url),
        "tag": tag,
        "user_tag": item.user_tag,
        "profile": None,
        "storage": item.storage,
    }
    if array_of(item.output) is Array.IMAGES:
        entry.update(type=item.kind, width=item.width, height=item.height, size=item.size)
        if item.time is not None:
            entry["time"] = round(item.time, 6)
        if item.placeholder is not None:  # qthumb's extensions, only when asked for
            entry["placeholder"] = item.placeholder
        if item.score is not None:
            entry["score"] = round(item.score, 4)
        # under both names the SDKs read: `storage` (.NET, PHP) and `storage_info` (Java)
        entry["storage_info"] = item.storage
        return entry
    duration = item.duration or 0.0
    entry.update(
        status="completed",
        percent=100.0,
        error=0,
        error_description=None,
        # Qencode reports video sizes in MB and bitrates in kbit/s.
        size=round(item.size / 1_000_000, 6),
        duration=f"{duration:.3f}",
        bitrate=round(item.size * 8 / 1000 / duration) if duration else None,
        meta=item.meta or {"width": item.width, "height": item.height},
    )
    return entry


def _failed_entry(item: FormatFailed, tag: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "url": None,
        "tag": tag,
        "user_tag": item.user_tag,
        "profile": None,
        "storage": None,
        "status": "error",
        "error": 1,
        "error_description": item.description,
    }
    if array_of(item.output) is Array.IMAGES:
        entry["storage_info"] = None
    return entry


def _running_entry(item: Running, tag: str) -> dict[str, Any]:
    """A video being made: ``percent`` grows from 0 to 100 (numeric, as the task's)."""
    return {
        "url": None,
        "tag": tag,
        "user_tag": item.user_tag,
        "profile": None,
        "storage": None,
        "status": item.state,
        "percent": round(item.percent, 2),
        "error": 0,
        "error_description": None,
        "size": None,
        "duration": None,
        "bitrate": None,
        "meta": None,
    }


def format_tag(output: Output, index: int, n: int = 0) -> str:
    """The system tag of a format's ``n``-th entry, ``<image|video|audio|text>-<index>-<n>``:
    also the tag of every warning about that format. A warning about the whole task (its
    source, a query field, a callback, a retry) carries its first format's tag, so every
    warning's tag names an output as Qencode's do."""
    return f"{array_of(output)[:-1]}-{index}-{n}"


def task_tag(task: TaskRecord) -> str:
    """The tag of warnings about the whole task: its first format's (``format_tag``)."""
    if task.plan is not None:
        return format_tag(task.plan.formats[0].output, 0) if task.plan.formats else VIDEO_TAG
    formats: Any = task.query_object().get("format")  # a task started before plans were kept
    if isinstance(formats, dict):
        formats = [formats]
    first = formats[0] if isinstance(formats, list) and formats else None
    output = first.get("output") if isinstance(first, dict) else None
    try:
        return format_tag(Output(str(output)), 0)
    except ValueError:  # no output qthumb knows (a query refused anyway): a video's, the default
        return VIDEO_TAG


def failure_tag(item: FormatFailed) -> str:
    """The tag of a failed format's entry, which its warning names too."""
    return format_tag(item.output, item.index)


def output_arrays(results: Results, base_url: str | None) -> dict[str, list[dict[str, Any]]]:
    """``images[]`` and the others. Tags are ``<image|video|…>-<format index>-<n>``, ``n``
    counting the format's entries over all its destinations. ``base_url``: the public URL of
    the API answering, which temporary-storage locations are made absolute against."""
    arrays: dict[str, list[dict[str, Any]]] = {name: [] for name in ARRAYS}
    counts: dict[int, int] = {}
    for item in results.made:
        array = array_of(item.output)
        if isinstance(item, FormatFailed):
            arrays[array].append(_failed_entry(item, failure_tag(item)))
            continue
        if isinstance(item, Running):
            if array is not Array.IMAGES:  # image entries have no status: they appear once stored
                arrays[array].append(_running_entry(item, format_tag(item.output, item.index)))
            continue
        n = counts.get(item.index, 0)
        counts[item.index] = n + 1
        arrays[array].append(_file_entry(item, format_tag(item.output, item.index, n), base_url))
    return arrays


def status_url(base_url: str) -> str:
    """Where tasks' status is read (``status_url`` in replies and callbacks)."""
    return f"{base_url.rstrip('/')}/v1/status"


def status_object(task: TaskRecord, base_url: str | None) -> dict[str, Any]:
    """The ``statuses[token]`` entry (docs/compatibility.md), as the API at ``base_url`` answers it
    (``None``: no API, as offline). ``error`` is always an int, arrays never null."""
    failed = task.status is TaskStatus.ERROR
    return {
        "status": task.status.value,
        "percent": 100.0 if task.status is TaskStatus.COMPLETED else float(task.percent),
        "error": 1 if failed else 0,
        "error_description": task.error_description if failed else None,
        "status_url": None if base_url is None else status_url(base_url),
        "duration": None if task.duration is None else f"{task.duration:.3f}",
        "source_size": task.source_size,
        "payload": task.payload,
        **output_arrays(task.results, base_url),
        "warnings": [w.to_json() for w in task.results.warnings],
    }
