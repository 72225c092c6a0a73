"""Sheet layout, parallel ranges and VTT text as pure functions."""

from __future__ import annotations

import pytest
from PIL import Image

from qthumb.workers.media.decode_pool import split
from qthumb.workers.outputs.sprites import MAX_SHEET_SIDE, SheetComposer, SheetLayout
from qthumb.workers.outputs.webvtt import render_vtt, tile_cues, timestamp


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "00:00:00.000"), (1.5, "00:00:01.500"), (3599.9994, "00:59:59.999"),
     (3600, "01:00:00.000"), (10 * 3600 + 61.25, "10:01:01.250")],
)  # fmt: skip
def test_timestamps(seconds, text):
    assert timestamp(seconds) == text


def test_cues_tile_the_timeline():
    cues = tile_cues([0.0, 10.0, 20.0], 25.5, ["a", "b", "c"])
    assert render_vtt(cues) == (
        "WEBVTT\n\n00:00:00.000 --> 00:00:10.000\na\n\n00:00:10.000 --> 00:00:20.000\nb\n\n"
        "00:00:20.000 --> 00:00:25.500\nc\n"
    )
    # a series that starts late still covers the timeline from 0
    assert tile_cues([5.0], 9.0, ["x"])[0].start == 0.0


def test_layout_caps_sheets_at_16000_px():
    layout = SheetLayout.plan((160, 90), 10, 10_800)  # 3 h at 1 s
    assert layout.rows_per_sheet == MAX_SHEET_SIDE // 90 == 177
    assert layout.sheets == 7
    for sheet in range(layout.sheets):
        w, h = layout.sheet_size(sheet)
        assert w <= MAX_SHEET_SIDE and h <= MAX_SHEET_SIDE
    assert layout.place(1770) == (1, 0, 0)
    assert layout.sheet_size(6) == (1600, 18 * 90)  # 10,800 - 6·1770 = 180 tiles
    assert SheetLayout.plan((2000, 90), 10, 30).columns == 8  # 8 · 2000 = 16,000
    assert SheetLayout.plan((160, 90), 10, 4).sheet_size(0) == (640, 90)


def test_composer_emits_each_sheet_once_complete_in_any_order():
    emitted: list[tuple[int, tuple[int, int]]] = []
    layout = SheetLayout(tile_width=2, tile_height=2, columns=2, rows_per_sheet=1, total=5)
    composer = SheetComposer(layout, lambda i, im: emitted.append((i, im.size)))
    for index in (2, 0, 4, 3):
        composer.put(index, Image.new("RGB", (2, 2)))
    assert emitted == [(2, (4, 2)), (1, (4, 2))]  # every sheet is columns wide
    assert composer.open_sheets == 1
    composer.put(1, Image.new("RGB", (2, 2)))
    assert emitted[-1] == (0, (4, 2)) and composer.open_sheets == 0


@pytest.mark.parametrize(("count", "parts"), [(60, 2), (7, 3), (1, 2), (5, 5), (10, 1)])
def test_split_covers_all_in_order(count, parts):
    ranges = split(count, parts)
    assert [i for r in ranges for i in r] == list(range(count))
    assert max(len(r) for r in ranges) - min(len(r) for r in ranges) <= 1
