"""Size and encode pictures (Pillow): the Qencode sizing rules in one place."""

from __future__ import annotations

import io
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from PIL import Image

from qthumb.app.memory import fits
from qthumb.app.qencode.query import ImageFormat, ResizeMode, Sizing
from qthumb.workers.media.picture import Picture

AVIF_BYTES_PER_PIXEL, AVIF_BYTES = 36, 32 << 20  # what libavif's encoder allocates, at most
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
    """Output size for a picture shown at ``display`` (docs/outputs.md), after ``shown_size``.

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


def _turned(
    picture: Picture, width: int, height: int, rotate: int, deinterlace: bool | None
) -> Image.Image:
    """The picture at ``width`` x ``height`` once turned ``rotate`` degrees clockwise: one
    turn with the display rotation (counter-clockwise, ``Picture.rotation``), one transpose."""
    if rotate:
        picture = replace(picture, rotation=(picture.rotation - rotate) % 360)
    return picture.to_image(width, height, deinterlace)


@dataclass(frozen=True)
class Fit:
    """Where the scaled picture goes on the output (``resize_mode``): ``scaled`` is its size,
    ``canvas`` the output's, ``offset`` where its top-left corner lands on the canvas
    (negative when ``crop`` cuts it, positive when ``pad`` borders it)."""

    scaled: tuple[int, int]
    canvas: tuple[int, int]
    offset: tuple[int, int] = (0, 0)

    @property
    def whole(self) -> bool:
        """The scaled picture is the output: nothing cropped, nothing padded."""
        return self.scaled == self.canvas


def fit(display: tuple[int, int], sizing: Sizing) -> Fit:
    """The one place ``scale`` (stretch), ``crop`` (cover, centre kept) and ``pad`` (contain,
    centred, letterboxed) are decided, for images and for the encoder alike. ``crop`` and
    ``pad`` need both sides; with one side the aspect is kept and they are ``scale``."""
    canvas = target_size(display, sizing)
    if sizing.mode is ResizeMode.SCALE or sizing.width is None or sizing.height is None:
        return Fit(canvas, canvas)
    dw, dh = shown_size(display, sizing)
    width, height = canvas
    if sizing.mode is ResizeMode.CROP:
        cover = max(width / dw, height / dh)
        scaled = max(width, round(dw * cover)), max(height, round(dh * cover))
        return Fit(scaled, canvas, (-((scaled[0] - width) // 2), -((scaled[1] - height) // 2)))
    contain = min(width / dw, height / dh)
    scaled = max(1, min(width, round(dw * contain))), max(1, min(height, round(dh * contain)))
    return Fit(scaled, canvas, ((width - scaled[0]) // 2, (height - scaled[1]) // 2))


def render(picture: Picture, sizing: Sizing, deinterlace: bool | None = None) -> Image.Image:
    """The picture at the asked size and ``resize_mode`` (``fit``); ``deinterlace``: see
    ``workers.media.colour.to_rgb``."""
    placed = fit(picture.display_size, sizing)
    image = _turned(picture, *placed.scaled, sizing.rotate, deinterlace)
    if placed.whole:
        return image
    (width, height), (x, y) = placed.canvas, placed.offset
    if sizing.mode is ResizeMode.CROP:
        return image.crop((-x, -y, -x + width, -y + height))
    canvas = Image.new("RGB", placed.canvas, sizing.pad_color)
    canvas.paste(image, placed.offset)
    return canvas


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
        # libavif's encoder does not always check its allocations: short of memory it may
        # crash the process instead of failing, so an encode that cannot fit is refused first
        # (measured under RLIMIT_DATA: 4.2 Mpx needs 100-200 MiB more, 16.8 Mpx 400-600)
        if not fits(AVIF_BYTES_PER_PIXEL * image.width * image.height + AVIF_BYTES):
            raise MemoryError()
        try:
            image.save(buffer, "AVIF", quality=quality or DEFAULT_QUALITY[fmt], speed=8)
        except RuntimeError as exc:  # "Encoding of color planes failed": an allocation
            if fits(2 * AVIF_BYTES_PER_PIXEL * image.width * image.height + AVIF_BYTES):
                raise
            raise MemoryError() from exc
    else:
        image.save(buffer, "WEBP", quality=quality or DEFAULT_QUALITY[fmt], method=4)
    return buffer.getvalue()


def fitted(width: int, height: int, display: tuple[int, int], sizing: Sizing) -> dict[str, Any]:
    """``EncodePlan`` fields (``workers.outputs.encoding.plan``) for an output of ``width`` x
    ``height`` (evened, for video) in ``sizing``'s ``resize_mode``."""
    if sizing.mode is ResizeMode.SCALE or sizing.width is None or sizing.height is None:
        return {}
    placed = fit(display, replace(sizing, width=width, height=height, resolution=None))
    colour = "".join(f"{c:02x}" for c in sizing.pad_color)
    return {
        "fit": sizing.mode.value,
        "scaled": placed.scaled,
        "offset": placed.offset,
        "pad_color": colour,
    }
