"""Sprite sheets composed as frames arrive: only the sheet being filled is held in memory.

Sheets never exceed ``MAX_SHEET_SIDE`` pixels on a side (§11.8): a long video gets several,
each cue naming its own sheet with offsets that restart at 0,0.
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

    @classmethod
    def plan(cls, tile: tuple[int, int], columns: int, total: int) -> SheetLayout:
        width, height = tile
        columns = max(1, min(columns, total, MAX_SHEET_SIDE // width))
        rows = max(1, min(math.ceil(total / columns), MAX_SHEET_SIDE // height))
        return cls(width, height, columns, rows, total)

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
        tiles = min(self.per_sheet, self.total - sheet * self.per_sheet)
        rows = math.ceil(tiles / self.columns)
        return self.columns * self.tile_width, rows * self.tile_height


class SheetComposer:
    """Paste tiles in order; each full sheet is handed to ``emit(sheet_index, image)``."""

    def __init__(self, layout: SheetLayout, emit: Callable[[int, Image.Image], None]) -> None:
        self.layout = layout
        self.emit = emit
        self._sheet: Image.Image | None = None
        self._sheet_index = -1
        self._placed = 0

    def add(self, tile: Image.Image) -> tuple[int, int, int]:
        sheet, x, y = self.layout.place(self._placed)
        if sheet != self._sheet_index:
            self._flush()
            self._sheet = Image.new("RGB", self.layout.sheet_size(sheet))
            self._sheet_index = sheet
        assert self._sheet is not None
        if tile.size != (self.layout.tile_width, self.layout.tile_height):
            tile = tile.resize((self.layout.tile_width, self.layout.tile_height))
        self._sheet.paste(tile, (x, y))
        self._placed += 1
        return sheet, x, y

    def close(self) -> None:
        self._flush()

    def _flush(self) -> None:
        if self._sheet is not None:
            self.emit(self._sheet_index, self._sheet)
            self._sheet = None
