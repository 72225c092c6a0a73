"""The trickplay files of a sprite series (``app.qencode.trickplay``), written beside its sheets
and WebVTT file from the same layout, so every player finds the same tile at the same time.

- HLS image media playlist: one segment a sheet, its ``#EXTINF`` the time the sheet covers,
  ``#EXT-X-TILES`` (RESOLUTION of a tile, LAYOUT of the grid, DURATION of a tile) before each;
  and ``#EXT-X-IMAGE-STREAM-INF`` (RESOLUTION of a tile, as Shaka Player reads it: it multiplies
  by the LAYOUT for the sheet; peak BANDWIDTH; CODECS="jpeg") in a multivariant playlist of its
  own, the line to copy into yours.
- DASH image AdaptationSet: a ``SegmentTemplate`` whose ``$Number$`` walks the sheets (a
  sheet's duration in milliseconds), a Representation the size of a whole sheet, and the
  ``http://dashif.org/guidelines/thumbnail_tile`` property with the grid.
- BIF: magic, version 0, the image count, the timestamp multiplier (milliseconds a timestamp
  unit), zeros to byte 64; then (timestamp, offset) pairs, one a tile, closed by
  (0xFFFFFFFF, end of data); then the JPEG tiles.

Every sheet of a series with HLS or DASH has the full grid (the last padded), since those
players compute a tile's place from one sheet size and layout.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from qthumb.app.tasks.results import EntryType
from qthumb.workers.outputs.products import Product

BIF_MAGIC = b"\x89BIF\r\n\x1a\n"
BIF_HEADER = 64
BIF_END = 0xFFFFFFFF
HLS_TYPE = "application/vnd.apple.mpegurl"


@dataclass(frozen=True)
class SheetTrack:
    """The sheets of one series as a timeline: what the HLS and DASH files describe."""

    names: Sequence[str]  # each sheet's file name, as the playlists refer to it
    sizes: Sequence[int]  # each sheet's bytes
    starts: Sequence[float]  # each sheet's first tile time (seconds)
    end: float  # the end of the series' window
    tile: tuple[int, int]  # a tile's pixels
    columns: int
    rows: int
    interval: float  # seconds a tile stands for

    def durations(self) -> list[float]:
        ends = [*self.starts[1:], self.end]
        return [max(0.001, e - s) for s, e in zip(self.starts, ends, strict=True)]

    @property
    def sheet_size(self) -> tuple[int, int]:
        return self.columns * self.tile[0], self.rows * self.tile[1]

    def peak_bandwidth(self) -> int:
        """Bits a second of the largest sheet over its own duration (HLS's BANDWIDTH)."""
        return max(
            math.ceil(size * 8 / seconds)
            for size, seconds in zip(self.sizes, self.durations(), strict=True)
        )


def hls_media_playlist(track: SheetTrack) -> str:
    durations = track.durations()
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:7",
        f"#EXT-X-TARGETDURATION:{math.ceil(max(durations))}",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        "#EXT-X-IMAGES-ONLY",
    ]
    width, height = track.tile
    for name, seconds in zip(track.names, durations, strict=True):
        lines.append(
            f"#EXT-X-TILES:RESOLUTION={width}x{height},LAYOUT={track.columns}x{track.rows},"
            f"DURATION={track.interval:.3f}"
        )
        lines += [f"#EXTINF:{seconds:.3f},", name]
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def hls_image_stream(track: SheetTrack, playlist_uri: str) -> str:
    """A multivariant playlist holding the image stream alone: its one tag is the line to add
    to the presentation's own."""
    width, height = track.tile  # a tile's, as Shaka Player and Jellyfin read it
    return (
        "#EXTM3U\n#EXT-X-VERSION:7\n"
        f"#EXT-X-IMAGE-STREAM-INF:BANDWIDTH={track.peak_bandwidth()},RESOLUTION={width}x{height},"
        f'CODECS="jpeg",URI="{playlist_uri}"\n'
    )


def dash_adaptation_set(track: SheetTrack) -> str:
    """The image AdaptationSet to put in an MPD's Period."""
    first = track.names[0]
    media = first
    if len(track.names) > 1:  # sprite_01.jpg, sprite_02.jpg…: one template over them
        stem, _, ext = first.rpartition(".")
        base, _, number = stem.rpartition("_")
        media = f"{base}_$Number%0{len(number)}d$.{ext}"
    width, height = track.sheet_size
    sheet_ms = round(track.columns * track.rows * track.interval * 1000)
    bandwidth = track.peak_bandwidth()
    return (
        '<AdaptationSet id="100" contentType="image" mimeType="image/jpeg">\n'
        f'  <SegmentTemplate media="{media}" startNumber="1" timescale="1000" '
        f'duration="{sheet_ms}"/>\n'
        f'  <Representation id="thumbnails_{track.columns}x{track.rows}" '
        f'bandwidth="{bandwidth}" width="{width}" height="{height}">\n'
        '    <EssentialProperty schemeIdUri="http://dashif.org/guidelines/thumbnail_tile" '
        f'value="{track.columns}x{track.rows}"/>\n'
        "  </Representation>\n"
        "</AdaptationSet>\n"
    )


class BifTiles:
    """JPEG tiles kept on disk as they come (in any order), then written as one BIF archive
    in time order: a series of thousands of tiles is never held in memory."""

    def __init__(self, spool: Path) -> None:
        self.spool_path = spool
        self._spool: BinaryIO = spool.open("wb")
        self._at: dict[int, tuple[int, int]] = {}  # tile index: (offset, length) in the spool

    def add(self, index: int, jpeg: bytes) -> None:
        self._at[index] = (self._spool.tell(), len(jpeg))
        self._spool.write(jpeg)

    def write(self, path: Path, times: Sequence[float]) -> None:
        self._spool.close()
        count = len(times)
        if sorted(self._at) != list(range(count)):
            raise ValueError("a BIF needs every tile of the series")
        millis = [round(t * 1000) for t in times]
        step = round(times[1] * 1000 - times[0] * 1000) if count > 1 else 1000
        multiplier = step if step > 0 and all(m % step == 0 for m in millis) else 1
        offset = BIF_HEADER + 8 * (count + 1)
        with path.open("wb") as out, self.spool_path.open("rb") as spool:
            out.write(BIF_MAGIC + struct.pack("<III", 0, count, multiplier))
            out.write(b"\0" * (BIF_HEADER - out.tell()))
            for k in range(count):
                out.write(struct.pack("<II", millis[k] // multiplier, offset))
                offset += self._at[k][1]
            out.write(struct.pack("<II", BIF_END, offset))
            for k in range(count):
                start, length = self._at[k]
                spool.seek(start)
                out.write(spool.read(length))
        self.spool_path.unlink(missing_ok=True)


def product(path: Path, kind: EntryType, content_type: str) -> Product:
    return Product(
        path=path, name=path.name, kind=kind, content_type=content_type, size=path.stat().st_size
    )
