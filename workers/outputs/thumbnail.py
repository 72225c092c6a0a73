"""``output: "thumbnail"``: one image, the exact frame at ``time`` or ``frame_number``.

``smart: 1`` (qthumb's extension): the best frame near that time instead, ranked by
``workers.media.frame_ranking`` (never black, blank, blurred or mid-fade when a better one is
near); ``images[].time`` says which, ``images[].score`` how good it is.
``placeholder`` (qthumb's extension): its BlurHash or ThumbHash in ``images[].placeholder``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from qthumb.app.qencode.formats import ThumbnailSpec
from qthumb.app.qencode.window import thumbnail_time
from qthumb.app.tasks.results import EntryType
from qthumb.workers.media.frame_ranking import best_frame
from qthumb.workers.media.frames import VideoReader
from qthumb.workers.media.imaging import encode, render
from qthumb.workers.media.logos import LoadedLogo, draw_logos
from qthumb.workers.media.placeholders import placeholder
from qthumb.workers.outputs.products import Product


def make_thumbnail(
    reader: VideoReader, spec: ThumbnailSpec, out_dir: Path, logos: Sequence[LoadedLogo] = ()
) -> list[Product]:
    info = reader.info
    seconds = thumbnail_time(spec, info.duration, info.frame_rate)
    score = None
    if spec.smart:
        ranked = best_frame(reader, seconds)
        picture, score = ranked.picture, ranked.score
    else:
        picture = reader.frame_at(seconds)
    image = draw_logos(render(picture, spec.sizing, spec.deinterlace or None), logos, picture.time)
    hashed = placeholder(image, spec.placeholder) if spec.placeholder else None
    name = f"thumbnail.{spec.image_format.extension}"
    encoded = encode(image, spec.image_format, spec.quality, out_dir / name)
    return [
        Product(
            path=encoded.path,
            name=name,
            kind=EntryType.THUMBNAIL,
            content_type=spec.image_format.content_type,
            width=encoded.width,
            height=encoded.height,
            size=encoded.size,
            time=picture.time,
            placeholder=hashed,
            score=score,
        )
    ]
