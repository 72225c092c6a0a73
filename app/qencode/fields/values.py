"""Readers of Qencode's lenient field values (numbers as strings, ``1``/``"1"``/``true``
flags, ``320x240`` sizes, destinations as an object or a list…) and the small value types
they produce. ``app.qencode.query`` puts them together into a ``FormatSpec``; each reader raises
``BadQuery`` / ``FieldRequired`` naming the field path."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from qthumb.app.errors import BadQuery

MAX_SIDE = 16_000
_SIZE_RE = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")


class ResizeMode(StrEnum):
    SCALE = "scale"  # both sides as asked: the picture stretches
    CROP = "crop"  # fills both sides, the centre kept
    PAD = "pad"  # qthumb's extension: fits inside, the rest filled with ``pad_color``


class Placeholder(StrEnum):
    """qthumb's extension: a tiny string a page shows while the image loads."""

    BLURHASH = "blurhash"
    THUMBHASH = "thumbhash"


class ImageFormat(StrEnum):
    PNG = "png"
    JPG = "jpg"
    WEBP = "webp"
    AVIF = "avif"  # qthumb's extension: Qencode documents png, jpg and webp

    @property
    def extension(self) -> str:
        return self.value

    @property
    def content_type(self) -> str:
        return f"image/{'jpeg' if self is ImageFormat.JPG else self.value}"


# What a file name's extension (lower case, no dot) says about the image it holds: for a
# query's file_extension or destination, a /v1/thumbnail.<ext> URL and an offline OUT file.
IMAGE_EXTENSIONS = {
    "png": ImageFormat.PNG,
    "jpg": ImageFormat.JPG,
    "jpeg": ImageFormat.JPG,
    "webp": ImageFormat.WEBP,
    "avif": ImageFormat.AVIF,
}


@dataclass(frozen=True)
class Sizing:
    """Requested output size. ``None`` sides follow the display aspect of the source."""

    width: int | None = None
    height: int | None = None
    resolution: int | None = None
    mode: ResizeMode = ResizeMode.SCALE
    # Applied to the picture as shown (after the source's own display rotation), before the
    # sides above: ``rotate`` clockwise degrees, ``aspect`` the width a height it is shown at.
    rotate: int = 0
    aspect: float | None = None
    pad_color: tuple[int, int, int] = (0, 0, 0)  # ``pad``: the letterbox's colour


# Set while a strict check runs (``coerced_values``): what a reader coerced, by path.
_coerced: ContextVar[list[str] | None] = ContextVar("qthumb_coerced", default=None)


def coerced(path: str, what: str) -> None:
    """Note that the value at ``path`` was read leniently (``what``: how)."""
    found = _coerced.get()
    if found is not None:
        found.append(f"{path}: {what}")


def coerced_values(parse: Callable[[], object]) -> list[str]:
    """What ``parse`` coerced ("query.format[0].width: the string "320" read as a number")."""
    found: list[str] = []
    token = _coerced.set(found)
    try:
        parse()
    finally:
        _coerced.reset(token)
    return found


def read_number(value: object, path: str) -> float:
    if isinstance(value, bool):
        raise BadQuery(f"{path} must be a number, not {json.dumps(value)}")
    if isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:  # an int past float's range
            raise BadQuery(f"{path} must be a finite number") from None
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise BadQuery(f"{path} must be a number, got {value[:100]!r}") from None
        coerced(path, f"the string {shown(value)} read as a number")
    else:
        raise BadQuery(f"{path} must be a number, got {shown(value)}")
    if not math.isfinite(number):
        raise BadQuery(f"{path} must be a finite number")
    return number


def shown(value: object) -> str:
    """A short JSON rendering of a client value for a message (never the whole of it)."""
    try:
        text = json.dumps(value)
    except (ValueError, RecursionError):
        text = type(value).__name__
    return text if len(text) <= 100 else f"{text[:100]}…"


def opt_number(obj: dict[str, Any], key: str, path: str) -> float | None:
    """An optional number: absent, ``null`` and ``""`` (noted as a coercion) are ``None``."""
    value = obj.get(key)
    if value == "":
        coerced(f"{path}.{key}", 'the empty string "" read as absent')
    if value is None or value == "":
        return None
    return read_number(value, f"{path}.{key}")


def opt_float(
    obj: dict[str, Any], key: str, path: str, *, minimum: float, exclusive: bool = False
) -> float | None:
    number = opt_number(obj, key, path)
    if number is None:
        return None
    if number < minimum or (exclusive and number == minimum):
        relation = "greater than" if exclusive else "at least"
        raise BadQuery(f"{path}.{key} must be {relation} {minimum:g}, got {number:g}")
    return number


def opt_int(obj: dict[str, Any], key: str, path: str, *, minimum: int) -> int | None:
    number = opt_number(obj, key, path)
    if number is None:
        return None
    if not number.is_integer():
        raise BadQuery(f"{path}.{key} must be a whole number, got {number:g}")
    if number < minimum:
        raise BadQuery(f"{path}.{key} must be at least {minimum}, got {number:g}")
    return int(number)


def flag(value: object, path: str) -> bool:
    if value == "":
        coerced(path, 'the empty string "" read as 0')
    if value is None or value == "":
        return False
    if isinstance(value, bool):
        return value
    number = read_number(value, path)
    if number not in (0.0, 1.0):
        raise BadQuery(f"{path} must be 0 or 1")
    return number == 1.0


def time_fraction(value: object, path: str) -> float:
    """``time`` in [0, 1] is a fraction of the duration; in (1, 100] a percent
    (docs/compatibility.md)."""
    if value is None or value == "":
        return 0.5
    number = read_number(value, path)
    if 0.0 <= number <= 1.0:
        return number
    if 1.0 < number <= 100.0:
        return number / 100.0
    raise BadQuery(f"{path} must be a fraction 0-1 or a percent 1-100, got {number:g}")


def image_format(value: object, path: str) -> ImageFormat:
    if value is None or value == "":
        return ImageFormat.PNG
    name = str(value).lower().strip()
    if name == "jpeg":
        name = "jpg"
    try:
        return ImageFormat(name)
    except ValueError:
        raise BadQuery(
            f"{path}.image_format must be png, jpg, webp or avif, got {value!r}"
        ) from None


def sizing(obj: dict[str, Any], path: str) -> Sizing:
    width = opt_int(obj, "width", path, minimum=1)
    height = opt_int(obj, "height", path, minimum=1)
    size = obj.get("size")
    if size not in (None, ""):
        match = _SIZE_RE.match(str(size))
        if not match:
            raise BadQuery(f"{path}.size must look like 320x240, got {size!r}")
        width, height = int(match.group(1)), int(match.group(2))
        if width < 1 or height < 1:
            raise BadQuery(f"{path}.size sides must be at least 1, got {size!r}")
    resolution = opt_int(obj, "resolution", path, minimum=1)
    for name, side in (("width", width), ("height", height), ("resolution", resolution)):
        if side is not None and side > MAX_SIDE:
            raise BadQuery(f"{path}.{name} must be at most {MAX_SIDE}, got {side}")
    mode_value = obj.get("resize_mode") or "scale"
    try:
        mode = ResizeMode(str(mode_value).lower())
    except ValueError:
        raise BadQuery(
            f"{path}.resize_mode must be scale, crop or pad, got {shown(mode_value)}"
        ) from None
    pad_color = colour(obj.get("pad_color"), f"{path}.pad_color")
    rotate = opt_int(obj, "rotate", path, minimum=0) or 0
    if rotate not in ROTATIONS:
        raise BadQuery(f"{path}.rotate must be 90, 180 or 270, got {rotate}")
    aspect = aspect_ratio(obj.get("aspect_ratio"), f"{path}.aspect_ratio")
    return Sizing(
        width=width,
        height=height,
        resolution=resolution,
        mode=mode,
        rotate=rotate,
        aspect=aspect,
        pad_color=pad_color,
    )


# CSS's basic colour keywords, for ``pad_color``; anything else is hex.
_COLOUR_NAMES = {
    "black": "000000",
    "white": "ffffff",
    "gray": "808080",
    "grey": "808080",
    "silver": "c0c0c0",
    "red": "ff0000",
    "maroon": "800000",
    "yellow": "ffff00",
    "olive": "808000",
    "lime": "00ff00",
    "green": "008000",
    "aqua": "00ffff",
    "teal": "008080",
    "blue": "0000ff",
    "navy": "000080",
    "fuchsia": "ff00ff",
    "purple": "800080",
}
_HEX_RE = re.compile(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")


def colour(value: object, path: str) -> tuple[int, int, int]:
    """``pad_color``: ``#rrggbb``, ``rrggbb``, ``#rgb`` or a CSS basic name; absent: black."""
    if value is None or value == "":
        return (0, 0, 0)
    text = str(value).strip().lower() if isinstance(value, str) else ""
    digits = _COLOUR_NAMES.get(text)
    if digits is None:
        found = _HEX_RE.match(text)
        if not found:
            raise BadQuery(
                f"{path} must be a colour as #rrggbb, #rgb or a name (black, white…), "
                f"got {shown(value)}"
            )
        digits = found.group(1)
        if len(digits) == 3:
            digits = "".join(c * 2 for c in digits)
    return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)


def placeholder(value: object, path: str) -> Placeholder | None:
    """``placeholder``: ``blurhash`` or ``thumbhash``; absent or ``""``: none."""
    if value is None or value == "":
        return None
    try:
        return Placeholder(str(value).strip().lower())
    except ValueError:
        raise BadQuery(f"{path} must be blurhash or thumbhash, got {shown(value)}") from None


ROTATIONS = (0, 90, 180, 270)
_RATIO_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*[:/]\s*(\d+(?:\.\d+)?)\s*$")


_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")


def url_scheme(url: str) -> str:
    """The scheme of ``url`` in lower case, "" when it has none; never fails (``urlsplit``
    raises on a malformed host such as ``http://[::1``)."""
    match = _SCHEME_RE.match(url.strip())
    return match.group(1).lower() if match else ""


def aspect_ratio(value: object, path: str) -> float | None:
    """``"16:9"``, ``"4/3"``, ``1.77`` or ``"1.77"``: the width a height, 0.1 to 10."""
    if value is None or value == "":
        return None
    match = _RATIO_RE.match(value) if isinstance(value, str) else None
    if match:
        width, height = float(match.group(1)), float(match.group(2))
        ratio = width / height if height else 0.0
    else:
        try:
            ratio = read_number(value, path)
        except BadQuery:
            raise BadQuery(f"{path} must look like 16:9, 4:3 or 1.77, got {shown(value)}") from None
    if not 0.1 <= ratio <= 10:
        raise BadQuery(f"{path} must be between 1:10 and 10:1, got {shown(value)}")
    return ratio
