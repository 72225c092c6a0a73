"""Sprite sheets composed as frames arrive: only the sheet being filled is held in memory.

Sheets never exceed ``MAX_SHEET_SIDE`` pixels on a side (docs/compatibility.md) nor ``max_pixels``
in all (``QTHUMB_MAX_OUTPUT_PIXELS``): a long video gets several, each cue naming its own sheet with
offsets that restart at 0,0. Fewer columns than asked are used when one row would pass a limit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image

MAX_SHEET_SIDE = 16_000


@dataclass(frozen=True)
class SheetLayout:
    tile_width: int
    tile_height: int
    columns: int  # tiles per row on every sheet
    rows_per_sheet: int
    total: int  # tiles in all
    uniform: bool = False  # every sheet the full grid, the last padded (HLS and DASH tracks)

    @classmethod
    def plan(
        cls,
        tile: tuple[int, int],
        columns: int,
        total: int,
        max_pixels: int | None = None,
        uniform: bool = False,
    ) -> SheetLayout:
        """A tile alone over ``max_pixels`` is refused before this (``check_format``); here
        every sheet stays within both limits."""
        width, height = tile
        tiles_allowed = total if max_pixels is None else max_pixels // (width * height)
        columns = max(1, min(columns, total, MAX_SHEET_SIDE // width, tiles_allowed))
        rows = max(
            1,
            min(
                math.ceil(total / columns),
                MAX_SHEET_SIDE // height,
                tiles_allowed // columns,
            ),
        )
        return cls(width, height, columns, rows, total, uniform)

    @property
    def per_sheet(self) -> int:
        return self.columns * self.rows_per_sheet

    @property
    def sheets(self) -> int:
        return math.ceil(self.total / self.per_sheet)

    def place(self, index: int) -> tuple[int, int, int]:
        """(sheet, x, y) of tile ``index``."""
        sheet, slot = divmod(index, self.per_sheet)
        row, column = divmod(slot, self.columns)
        return sheet, column * self.tile_width, row * self.tile_height

    def sheet_size(self, sheet: int) -> tuple[int, int]:
        if self.uniform:
            return self.columns * self.tile_width, self.rows_per_sheet * self.tile_height
        tiles = min(self.per_sheet, self.total - sheet * self.per_sheet)
        rows = math.ceil(tiles / self.columns)
        return self.columns * self.tile_width, rows * self.tile_height


class SheetComposer:
    """Paste tiles by index, in any order; a sheet is handed to ``emit(sheet, image)`` as soon
    as its last tile is in. Tiles that arrive roughly in order (from a few parallel decoders on
    contiguous ranges) keep only a few sheets open at once."""

    def __init__(self, layout: SheetLayout, emit: Callable[[int, Image.Image], None]) -> None:
        self.layout = layout
        self.emit = emit
        self._open: dict[int, Image.Image] = {}
        self._missing: dict[int, int] = {}

    def put(self, index: int, tile: Image.Image) -> tuple[int, int, int]:
        sheet, x, y = self.layout.place(index)
        if tile.size != (self.layout.tile_width, self.layout.tile_height):
            tile = tile.resize((self.layout.tile_width, self.layout.tile_height))
        if self.layout.sheet_size(sheet) == tile.size and tile.mode == "RGB":
            self.emit(sheet, tile)  # a sheet of one tile is the tile: no second copy of it
            return sheet, x, y
        if sheet not in self._open:
            size = self.layout.sheet_size(sheet)
            self._open[sheet] = Image.new("RGB", size)
            self._missing[sheet] = self._tiles_on(sheet)
        self._open[sheet].paste(tile, (x, y))
        self._missing[sheet] -= 1
        if self._missing[sheet] == 0:
            self.emit(sheet, self._open.pop(sheet))
            del self._missing[sheet]
        return sheet, x, y

    def _tiles_on(self, sheet: int) -> int:
        return min(self.layout.per_sheet, self.layout.total - sheet * self.layout.per_sheet)

    @property
    def open_sheets(self) -> int:
        return len(self._open)
