"""``output: "thumbnails"``: a frame every ``interval`` seconds, as files or sprite sheets, and
the WebVTT file that players read for seek-bar previews (§3.4, §11.5, §11.7, §11.8)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from app.query import FormatSpec
from workers.frames import VideoReader
from workers.imaging import encode, render, target_size
from workers.probe import MediaInfo
from workers.products import Product
from workers.sprites import SheetComposer, SheetLayout
from workers.webvtt import render_vtt, tile_cues

VTT_NAME = "thumbnails.vtt"


def series_span(spec: FormatSpec, info: MediaInfo) -> tuple[float, float]:
    """[start, end) in seconds that the series covers: the source, clipped by start_time and
    duration."""
    start = min(spec.start_time or 0.0, info.duration)
    end = info.duration if spec.duration is None else min(info.duration, start + spec.duration)
    return start, end


def series_times(spec: FormatSpec, info: MediaInfo) -> list[float]:
    """start, start + interval, … below the end; at least one frame (an interval longer than
    the video gives the frame at its start)."""
    assert spec.interval is not None
    start, end = series_span(spec, info)
    count = max(1, math.ceil((end - start) / spec.interval - 1e-9))
    return [start + k * spec.interval for k in range(count)]


def make_thumbnails(
    reader: VideoReader,
    spec: FormatSpec,
    out_dir: Path,
    progress: Callable[[float], None],
) -> list[Product]:
    times = series_times(spec, reader.info)
    tile = target_size(_display_size(reader), spec.sizing)
    ext = spec.image_format.extension
    products: list[Product] = []
    texts: list[str] = []
    layout = SheetLayout.plan(tile, spec.columns, len(times)) if spec.sprite else None
    composer = None
    if layout is not None:
        names = (
            [f"sprite.{ext}"]
            if layout.sheets == 1
            else [f"sprite_{i + 1:02d}.{ext}" for i in range(layout.sheets)]
        )

        def emit(sheet: int, image: Image.Image) -> None:
            encoded = encode(image, spec.image_format, spec.quality, out_dir / names[sheet])
            products.append(_product(encoded.path, "sprite", spec, encoded.size, image.size))

        composer = SheetComposer(layout, emit)
    pictures = reader.frames_at(times, keyframes_only=spec.keyframes_only)
    for k, picture in enumerate(pictures):
        image = render(picture, spec.sizing)
        if composer is not None:
            sheet, x, y = composer.add(image)
            texts.append(f"{names[sheet]}#xywh={x},{y},{tile[0]},{tile[1]}")
        else:
            name = f"thumb_{k + 1:05d}.{ext}"
            encoded = encode(image, spec.image_format, spec.quality, out_dir / name)
            products.append(
                _product(encoded.path, "frame", spec, encoded.size, image.size, picture.time)
            )
            texts.append(name)
        progress((k + 1) / len(times))
    if composer is not None:
        composer.close()
    _, end = series_span(spec, reader.info)
    vtt = out_dir / VTT_NAME
    vtt.write_text(render_vtt(tile_cues(times, end, texts)), encoding="utf-8", newline="\n")
    products.append(
        Product(
            path=vtt, name=VTT_NAME, kind="vtt", content_type="text/vtt", size=vtt.stat().st_size
        )
    )
    return products


def _display_size(reader: VideoReader) -> tuple[int, int]:
    """Display size before the first frame is decoded: rotation comes from the first frame,
    so ask for it (cheap: the stream's first keyframe)."""
    return reader.frame_at(0.0).display_size


def _product(
    path: Path,
    kind: str,
    spec: FormatSpec,
    size: int,
    dims: tuple[int, int],
    time: float | None = None,
) -> Product:
    return Product(
        path=path,
        name=path.name,
        kind=kind,
        content_type=spec.image_format.content_type,
        width=dims[0],
        height=dims[1],
        size=size,
        time=time,
    )
