"""``output: "thumbnail"``: one image, the exact frame at ``time`` or ``frame_number``."""

from __future__ import annotations

from pathlib import Path

from app.query import FormatSpec
from workers.frames import VideoReader
from workers.imaging import encode, render
from workers.probe import MediaInfo
from workers.products import Product


def thumbnail_time(spec: FormatSpec, info: MediaInfo) -> float:
    """Seconds from the first frame. ``frame_number`` wins over ``time`` (§11.3)."""
    if spec.frame_number is not None and info.frame_rate:
        return spec.frame_number / info.frame_rate
    start = spec.start_time or 0.0
    span = info.duration - start
    if spec.duration is not None:
        span = min(span, spec.duration)
    return start + spec.time * max(0.0, span)


def make_thumbnail(reader: VideoReader, spec: FormatSpec, out_dir: Path) -> list[Product]:
    picture = reader.frame_at(thumbnail_time(spec, reader.info))
    image = render(picture, spec.sizing)
    name = f"thumbnail.{spec.image_format.extension}"
    encoded = encode(image, spec.image_format, spec.quality, out_dir / name)
    return [
        Product(
            path=encoded.path,
            name=name,
            kind="thumbnail",
            content_type=spec.image_format.content_type,
            width=encoded.width,
            height=encoded.height,
            size=encoded.size,
            time=picture.time,
        )
    ]
