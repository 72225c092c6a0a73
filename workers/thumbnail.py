"""``output: "thumbnail"``: one image, the exact frame at ``time`` or ``frame_number``."""

from __future__ import annotations

from pathlib import Path

from app.query import FormatSpec
from app.window import thumbnail_time
from workers.frames import VideoReader
from workers.imaging import encode, render
from workers.products import Product


def make_thumbnail(reader: VideoReader, spec: FormatSpec, out_dir: Path) -> list[Product]:
    info = reader.info
    picture = reader.frame_at(thumbnail_time(spec, info.duration, info.frame_rate))
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
