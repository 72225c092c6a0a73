"""``trickplay`` (qthumb's extension on ``thumbnails`` with ``sprite: 1``): the seek-preview
formats players other than the web ones read, made from the same sheets as the WebVTT file.

- ``hls``: an HLS image media playlist (``#EXT-X-IMAGES-ONLY``, an ``#EXT-X-TILES`` before
  each sheet) and the ``#EXT-X-IMAGE-STREAM-INF`` line that adds it to a multivariant
  playlist: Roku, Shaka Player, Bitmovin.
- ``dash``: the image ``AdaptationSet`` (DASH-IF IOP 4.3 §6.2.6: a ``SegmentTemplate`` over
  the sheets, the ``thumbnail_tile`` property) to add to an MPD: Shaka Player, dash.js, Roku.
- ``bif``: Roku's BIF archive, one JPEG a tile at the series' times: Plex, Roku channels.
"""

from __future__ import annotations

from enum import StrEnum

from qthumb.app.errors import BadQuery
from qthumb.app.qencode.query_values import ImageFormat, shown


class Trickplay(StrEnum):
    HLS = "hls"
    DASH = "dash"
    BIF = "bif"


def trickplay_field(
    value: object, path: str, sprite: bool, image_format: ImageFormat, start_time: float | None
) -> tuple[Trickplay, ...]:
    """``trickplay``: a list of ``hls``, ``dash`` and ``bif`` (or the same as one string with
    commas); absent or empty: none."""
    if value is None or value == "" or value == []:
        return ()
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise BadQuery(f"{path} must be a list of hls, dash and bif, got {shown(value)}")
    found: list[Trickplay] = []
    for item in items:
        try:
            kind = Trickplay(item.strip().lower())
        except ValueError:
            raise BadQuery(f"{path}: {item.strip()!r} is not one of hls, dash, bif") from None
        if kind not in found:
            found.append(kind)
    if not sprite:
        raise BadQuery(f"{path} is made from sprite sheets: it needs sprite: 1")
    if image_format is not ImageFormat.JPG:
        raise BadQuery(
            f"{path}: HLS and DASH image tracks and BIF carry JPEG: it needs image_format jpg"
        )
    if start_time and (Trickplay.HLS in found or Trickplay.DASH in found):
        raise BadQuery(
            f"{path}: an HLS or DASH image track covers the whole timeline from 0: it cannot "
            "start at start_time"
        )
    return tuple(found)
