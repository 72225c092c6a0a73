"""Size and encode pictures (Pillow): the Qencode sizing rules in one place."""

from __future__ import annotations

import io
from dataclasses import dataclass, replace
from pathlib import Path

from PIL import Image

from qthumb.app.qencode.query import ImageFormat, ResizeMode, Sizing
from qthumb.workers.media.frames import Picture

DEFAULT_QUALITY = {ImageFormat.JPG: 85, ImageFormat.WEBP: 80, ImageFormat.AVIF: 70}


@dataclass(frozen=True)
class EncodedImage:
    path: Path
    width: int
    height: int
    size: int


def shown_size(display: tuple[int, int], sizing: Sizing) -> tuple[int, int]:
    """The picture's size once ``rotate`` (clockwise) and ``aspect_ratio`` are applied to a
    picture shown at ``display``: an aspect keeps the height and sets the width."""
    width, height = display
    if sizing.rotate in (90, 270):
        width, height = height, width
    if sizing.aspect is not None:
        width = max(1, round(height * sizing.aspect))
    return width, height


def target_size(display: tuple[int, int], sizing: Sizing) -> tuple[int, int]:
    """Output size for a picture shown at ``display`` (§3.2), after ``shown_size``.

    ``resolution`` (the smaller side) wins; then both sides as given; one side alone keeps the
    shown aspect; nothing keeps the shown size.
    """
    dw, dh = shown_size(display, sizing)
    if sizing.resolution is not None:
        r = sizing.resolution
        return (r, _side(dh, dw, r)) if dw <= dh else (_side(dw, dh, r), r)
    if sizing.width is not None and sizing.height is not None:
        return sizing.width, sizing.height
    if sizing.width is not None:
        return sizing.width, _side(dh, dw, sizing.width)
    if sizing.height is not None:
        return _side(dw, dh, sizing.height), sizing.height
    return dw, dh


def _side(other: int, given_source: int, given: int) -> int:
    return max(1, round(other * given / given_source))


def _turned(picture: Picture, width: int, height: int, rotate: int) -> Image.Image:
    """The picture at ``width`` x ``height`` once turned ``rotate`` degrees clockwise: one
    turn with the display rotation (counter-clockwise, ``Picture.rotation``), one transpose."""
    if rotate:
        picture = replace(picture, rotation=(picture.rotation - rotate) % 360)
    return picture.to_image(width, height)


def render(picture: Picture, sizing: Sizing) -> Image.Image:
    """Resize to the asked size: ``scale`` stretches, ``crop`` fills and crops the centre."""
    width, height = target_size(picture.display_size, sizing)
    if sizing.mode is ResizeMode.CROP and sizing.width and sizing.height:
        dw, dh = shown_size(picture.display_size, sizing)
        cover = max(width / dw, height / dh)
        cw, ch = max(width, round(dw * cover)), max(height, round(dh * cover))
        left, top = (cw - width) // 2, (ch - height) // 2
        turned = _turned(picture, cw, ch, sizing.rotate)
        return turned.crop((left, top, left + width, top + height))
    return _turned(picture, width, height, sizing.rotate)


def encode(image: Image.Image, fmt: ImageFormat, quality: int | None, path: Path) -> EncodedImage:
    data = encode_bytes(image, fmt, quality)
    path.write_bytes(data)
    return EncodedImage(path=path, width=image.width, height=image.height, size=len(data))


def encode_bytes(image: Image.Image, fmt: ImageFormat, quality: int | None) -> bytes:
    buffer = io.BytesIO()
    if fmt is ImageFormat.PNG:
        image.save(buffer, "PNG", compress_level=6)
    elif fmt is ImageFormat.JPG:
        q = quality or DEFAULT_QUALITY[fmt]
        rgb = image if image.mode == "RGB" else image.convert("RGB")  # no 100 MB sheet copy
        rgb.save(buffer, "JPEG", quality=q, optimize=False)
    elif fmt is ImageFormat.AVIF:  # libavif in Pillow's wheels; speed 8 of 0-10 (default 6)
        image.save(buffer, "AVIF", quality=quality or DEFAULT_QUALITY[fmt], speed=8)
    else:
        image.save(buffer, "WEBP", quality=quality or DEFAULT_QUALITY[fmt], method=4)
    return buffer.getvalue()
