"""What a ``thumbnails`` series reads beyond an image's fields (``formats.ThumbnailsSpec``):
its interval or ``scenes``, the sheets' layout (``columns``, ``dpr``), the storyboard, and the
trickplay files with the manifest they extend (``app.qencode.trickplay``)."""

from __future__ import annotations

from typing import Any

from qthumb.app.errors import BadQuery, FieldRequired
from qthumb.app.qencode.fields.values import flag, opt_float, opt_int
from qthumb.app.qencode.trickplay import check_tile_size, manifest_field, trickplay_field

MIN_INTERVAL = 0.001  # seconds: a frame lasts longer at every rate a camera records
SHORTEST_SHOT = 0.5  # seconds: a scenes series' interval when none is given


def series_fields(
    obj: dict[str, Any],
    path: str,
    sprite: bool,
    fields: dict[str, Any],
    start_time: float | None,
) -> dict[str, Any]:
    """The series' own fields of ``obj``, checked against each other and against the image
    ``fields`` already read (its format, size and placeholder)."""
    interval = opt_float(obj, "interval", path, minimum=0.0, exclusive=True)
    scenes = flag(obj.get("scenes"), f"{path}.scenes")
    if interval is None and scenes:
        interval = SHORTEST_SHOT
    if interval is None:
        raise FieldRequired(f"{path}.interval")
    if interval < MIN_INTERVAL:
        raise BadQuery(
            f"{path}.interval must be at least {MIN_INTERVAL:g} s (shorter than any "
            f"frame), got {interval:g}"
        )
    columns = opt_int(obj, "columns", path, minimum=1)
    if columns is not None and columns > 1000:
        raise BadQuery(f"{path}.columns must be between 1 and 1000")
    dpr = opt_int(obj, "dpr", path, minimum=1)
    if dpr is not None and dpr > 4:
        raise BadQuery(f"{path}.dpr must be 1, 2, 3 or 4")
    storyboard = flag(obj.get("storyboard"), f"{path}.storyboard")
    if storyboard and not sprite:
        raise BadQuery(f"{path}.storyboard describes sprite sheets: it needs sprite: 1")
    if fields["placeholder"] and sprite and not storyboard:
        raise BadQuery(
            f"{path}.placeholder on sprite sheets is given a tile in the storyboard JSON: "
            "it needs storyboard: 1"
        )
    if scenes and obj.get("trickplay"):
        raise BadQuery(
            f"{path}.trickplay: HLS and DASH tiles stand for equal times, a scene's do not"
        )
    trickplay = trickplay_field(
        obj.get("trickplay"),
        f"{path}.trickplay",
        sprite,
        fields["image_format"],
        start_time,
    )
    check_tile_size(path, trickplay, fields["sizing"], dpr or 1)
    return {
        "interval": interval,
        "trickplay": trickplay,
        "scenes": scenes,
        "manifest": manifest_field(obj.get("manifest"), f"{path}.manifest", trickplay),
        "columns": columns or 10,
        "keyframes_only": flag(obj.get("keyframes_only"), f"{path}.keyframes_only"),
        "storyboard": storyboard,
        "dpr": dpr or 1,
    }
