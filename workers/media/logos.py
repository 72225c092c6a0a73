"""Watermarks (``logo``): fetched like a source (the same egress rules, a smaller size cap),
checked to be a PNG or JPEG of sane size, their opacity applied once, then drawn by Pillow on
images (``thumbnail``, ``thumbnails``: qthumb's extension) or by the encoder's ``overlay``
filter on videos (``workers.outputs.encoding.encode``).

A logo that cannot be fetched or decoded fails its format with a message naming it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from qthumb.app.qencode.fields.logos import Logo
from qthumb.workers.failures import FormatFailure, TaskFailure

MAX_LOGO_BYTES = 10 * 1024 * 1024
MAX_LOGO_PIXELS = 4096 * 4096
_FORMATS = ("PNG", "JPEG")

# Brings a logo's URL to a local file in the given empty folder (``fetch_source`` with the
# logo's size cap), raising ``TaskFailure`` as a source would.
Fetch = Callable[[str, Path], Path]


@dataclass(frozen=True)
class LoadedLogo:
    logo: Logo
    path: Path  # an RGBA PNG, its opacity applied
    image: Image.Image

    def shown_at(self, seconds: float) -> bool:
        start = self.logo.start_time or 0.0
        if seconds < start:
            return False
        return self.logo.duration is None or seconds < start + self.logo.duration


def load_logos(logos: Sequence[Logo], folder: Path, fetch: Fetch) -> list[LoadedLogo]:
    """Each logo fetched into ``folder`` and prepared; ``FormatFailure`` names the one that
    could not be."""
    loaded = []
    for i, logo in enumerate(logos):
        where = f"logo {logo.source[:200]}"
        place = folder / f"logo{i}"
        place.mkdir(parents=True, exist_ok=True)
        try:
            fetched = fetch(logo.source, place)
        except TaskFailure as exc:
            raise FormatFailure(f"{where}: {_after_source(exc.description)}") from None
        image = _decoded(fetched, where)
        if logo.opacity < 1:
            alpha = image.getchannel("A").point([round(v * logo.opacity) for v in range(256)])
            image.putalpha(alpha)
        path = place / "prepared.png"
        image.save(path, "PNG")
        loaded.append(LoadedLogo(logo, path, image))
    return loaded


def _after_source(description: str) -> str:
    """A source failure's reason without its "source <url>:" lead (the logo is named)."""
    head, sep, rest = description.partition(": ")
    return rest if sep and head.startswith("source") else description


def _decoded(path: Path, where: str) -> Image.Image:
    try:
        with Image.open(path) as image:
            if image.format not in _FORMATS:
                raise FormatFailure(f"{where}: a {image.format} image; a logo is PNG or JPEG")
            width, height = image.size
            if width * height > MAX_LOGO_PIXELS:
                raise FormatFailure(
                    f"{where}: {width}x{height} is over the {MAX_LOGO_PIXELS} pixels a logo may "
                    "have"
                )
            return image.convert("RGBA")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise FormatFailure(f"{where}: not a PNG or JPEG image ({exc})") from None


def draw_logos(image: Image.Image, logos: Sequence[LoadedLogo], seconds: float) -> Image.Image:
    """``image`` with each logo shown at ``seconds`` drawn on it (negative ``x``/``y``: from
    the right/bottom edge)."""
    for loaded in logos:
        if not loaded.shown_at(seconds):
            continue
        mark = loaded.image
        x = loaded.logo.x if loaded.logo.x >= 0 else image.width - mark.width + loaded.logo.x
        y = loaded.logo.y if loaded.logo.y >= 0 else image.height - mark.height + loaded.logo.y
        if image.mode != "RGB":
            image = image.convert("RGB")
        image.paste(mark, (x, y), mark)
    return image
