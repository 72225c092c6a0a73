"""The trickplay files of a sprite series (``app.qencode.trickplay``, which also writes the HLS
and DASH text), written beside its sheets and WebVTT file from the same layout, so every player
finds the same tile at the same time.

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

import struct
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from qthumb.app.tasks.results import EntryType
from qthumb.workers.failures import FormatFailure
from qthumb.workers.outputs.products import Product

BIF_MAGIC = b"\x89BIF\r\n\x1a\n"
BIF_HEADER = 64
BIF_END = 0xFFFFFFFF


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

    def write(self, path: Path, times: Sequence[float], addressable: int = BIF_END) -> None:
        """The archive at ``path``; ``addressable``: the bytes its 32-bit index can reach."""
        self._spool.close()
        count = len(times)
        if sorted(self._at) != list(range(count)):
            raise ValueError("a BIF needs every tile of the series")
        millis = [round(t * 1000) for t in times]
        step = round(times[1] * 1000 - times[0] * 1000) if count > 1 else 1000
        multiplier = step if step > 0 and all(m % step == 0 for m in millis) else 1
        offset = BIF_HEADER + 8 * (count + 1)
        size = offset + sum(length for _, length in self._at.values())
        if size > addressable or (millis and millis[-1] // multiplier >= BIF_END):
            # every offset and timestamp of the index is 32 bits, and 0xFFFFFFFF ends it
            self.spool_path.unlink(missing_ok=True)
            raise FormatFailure(
                f"trickplay bif: a BIF's index is 32-bit: these {count} tiles make "
                f"{size / 2**30:.3g} GiB, past the {addressable / 2**30:.3g} GiB it can address"
                " (fewer or smaller tiles)"
            )
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
