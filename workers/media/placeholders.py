"""Placeholders (``placeholder: "blurhash" | "thumbhash"``, qthumb's extension): a string of
20-30 characters a page turns into a blurred preview while the image itself loads.

The encodings are the reference ones, from maintained libraries (``blurhash``, ``thumbhash``:
pure Python, no dependencies). Both describe a picture by a few low-frequency components, so
they are computed from a small copy of it (``BLURHASH_SIDE``, ``THUMBHASH_SIDE``): the same
string as from the full picture within rounding, for a few milliseconds instead of seconds.
"""

from __future__ import annotations

import base64

from PIL import Image

from qthumb.app.qencode.query import Placeholder

BLURHASH_SIDE = 32  # its components are cosines over the whole picture: 4 across at most here
THUMBHASH_SIDE = 64  # the algorithm takes 100x100 at most; 7 components across at most


def _small(image: Image.Image, side: int) -> Image.Image:
    small = image.convert("RGB") if image.mode != "RGB" else image.copy()
    small.thumbnail((side, side), Image.Resampling.BOX, reducing_gap=2.0)
    return small


def blurhash_components(size: tuple[int, int]) -> tuple[int, int]:
    """4 across and 3 down for a landscape picture (what blurha.sh suggests), 3x4 portrait."""
    width, height = size
    if width == height:
        return 4, 4
    return (4, 3) if width > height else (3, 4)


def placeholder(image: Image.Image, kind: Placeholder) -> str:
    """The placeholder string of ``image``: BlurHash's base-83 text, or ThumbHash's bytes in
    base64 (how every ThumbHash decoder takes them)."""
    import blurhash  # loaded by the first placeholder asked for
    import thumbhash

    if kind is Placeholder.BLURHASH:
        small = _small(image, BLURHASH_SIDE)
        across, down = blurhash_components(image.size)
        rows = [[small.getpixel((x, y)) for x in range(small.width)] for y in range(small.height)]
        return str(blurhash.encode(rows, components_x=across, components_y=down))
    small = _small(image, THUMBHASH_SIDE)
    rgba = list(small.convert("RGBA").tobytes())
    hashed = thumbhash.rgba_to_thumb_hash(small.width, small.height, rgba)
    return base64.b64encode(bytes(hashed)).decode("ascii")
