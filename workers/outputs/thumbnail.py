"""``output: "thumbnail"``: one image, the exact frame at ``time`` or ``frame_number``.

``smart: 1`` (qthumb's extension, what ffmpegthumbnailer users rely on): when that frame is
black, blank or fading (dark or flat), the nearest frame within a window around it that is not
is taken instead, and ``images[].time`` says which.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PIL import ImageStat

from qthumb.app.qencode.formats import ThumbnailSpec
from qthumb.app.qencode.window import thumbnail_time
from qthumb.workers.media.frames import Picture, VideoReader
from qthumb.workers.media.imaging import encode, render
from qthumb.workers.media.logos import LoadedLogo, draw_logos
from qthumb.workers.outputs.products import Product

# A frame is blank when its mean luma is under DARK or over BRIGHT (0-255), or when it is flat
# (standard deviation under FLAT): black frames, white flashes, fades, title-card blanks.
DARK, BRIGHT, FLAT = 24.0, 240.0, 10.0
SMART_STEPS = 8  # candidates each side of the asked time


def is_blank(picture: Picture) -> bool:
    small = picture.to_image(48, 27).convert("L")
    stats = ImageStat.Stat(small)
    mean, spread = stats.mean[0], stats.stddev[0]
    return mean < DARK or mean > BRIGHT or spread < FLAT


def smart_window(duration: float) -> float:
    """How far from the asked time a replacement may be: a tenth of the source, 2 to 10 s."""
    return max(2.0, min(10.0, duration / 10))


def smart_pick(reader: VideoReader, seconds: float) -> Picture:
    """The frame at ``seconds`` unless blank; then the nearest good one in the window (later
    first at equal distance: a fade in from black is more common than one out)."""
    picture = reader.frame_at(seconds)
    if not is_blank(picture):
        return picture
    duration = reader.info.duration
    step = smart_window(duration) / SMART_STEPS
    for k in range(1, SMART_STEPS + 1):
        for candidate in (seconds + k * step, seconds - k * step):
            if 0 <= candidate <= duration:
                found = reader.frame_at(candidate)
                if not is_blank(found):
                    return found
    return picture  # all blank: the frame asked for


def make_thumbnail(
    reader: VideoReader, spec: ThumbnailSpec, out_dir: Path, logos: Sequence[LoadedLogo] = ()
) -> list[Product]:
    info = reader.info
    seconds = thumbnail_time(spec, info.duration, info.frame_rate)
    picture = smart_pick(reader, seconds) if spec.smart else reader.frame_at(seconds)
    image = draw_logos(render(picture, spec.sizing), logos, picture.time)
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
