"""What an image file's name says: the encoding its extension (or ``file_extension``) picks,
and the sprite sheet a destination ending in a file name names."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from qthumb.app.errors import BadQuery
from qthumb.app.qencode.fields.destinations import Destination
from qthumb.app.qencode.fields.values import (
    IMAGE_EXTENSIONS,
    ImageFormat,
    image_format,
)

_OTHER_IMAGE_EXTENSIONS = frozenset({"gif", "bmp", "tif", "tiff", "heic", "jxl"})


def image_encoding(
    obj: dict[str, Any], dests: tuple[Destination, ...], path: str, named_by_destination: bool
) -> ImageFormat:
    """``image_format`` when given; else what the file's name says (the SDKs'
    ``file_extension``, or a ``thumbnail`` destination's extension: ``…/poster.jpg`` is a
    JPEG); else PNG. Two that disagree are error 1 naming both."""
    said: list[tuple[ImageFormat, str]] = []
    extension = obj.get("file_extension")
    if extension not in (None, ""):
        fmt = IMAGE_EXTENSIONS.get(str(extension).lower().lstrip("."))
        if fmt is None:
            raise BadQuery(
                f"{path}.file_extension must be png, jpg, webp or avif, got {extension!r}"
            )
        said.append((fmt, f"{path}.file_extension {str(extension)!r}"))
    for i, destination in enumerate(dests if named_by_destination else ()):
        name = destination.url.rstrip().rsplit("/", 1)[-1].split("?", 1)[0]
        suffix = name.rsplit(".", 1)[-1].lower() if "." in name else ""
        where = f"{path}.destination" + (f"[{i}]" if len(dests) > 1 else "")
        if suffix in _OTHER_IMAGE_EXTENSIONS:
            raise BadQuery(
                f"{where}: {name!r} names a .{suffix}; qthumb writes png, jpg, webp or avif"
            )
        if suffix in IMAGE_EXTENSIONS:
            said.append((IMAGE_EXTENSIONS[suffix], f"{where} {name!r}"))
    explicit = obj.get("image_format")
    if explicit not in (None, ""):
        chosen = image_format(explicit, path)
        for fmt, where in said:
            if fmt is not chosen:
                raise BadQuery(f"{path}.image_format is {chosen.value} but {where} is {fmt.value}")
        return chosen
    if not said:
        return ImageFormat.PNG
    first, first_where = said[0]
    for fmt, where in said[1:]:
        if fmt is not first:
            raise BadQuery(f"{path}: {first_where} is {first.value} but {where} is {fmt.value}")
    return first


def _file_name(url: str) -> tuple[str, str] | None:
    """(folder URL, stem) when ``url`` ends in an image file's name, else None."""
    address, mark, query = url.strip().partition("?")
    folder, _, name = address.rpartition("/")
    stem, dot, suffix = name.rpartition(".")
    if not dot or suffix.lower() not in IMAGE_EXTENSIONS:
        return None
    return f"{folder}/{mark}{query}", stem


def named_sheet(
    dests: tuple[Destination, ...], path: str
) -> tuple[str | None, tuple[Destination, ...] | None]:
    """A ``sprite: 1`` destination that ends in a file name (``…/sprite.jpg``, as Qencode's
    recipe writes it) is the sheet's own name, its folder the place of the VTT beside it
    (``…/sprite.vtt``): the name's stem and the destinations as folders. (None, None) when
    every destination is a folder. Destinations that name different sheets are refused: the
    VTT names its sheets once, for every destination."""
    named = [_file_name(d.url) for d in dests]
    stems = {n[1] if n else None for n in named}
    if stems == {None} or not stems:
        return None, None
    if len(stems) > 1:
        shown = ", ".join(
            repr(s) if s is not None else "a folder" for s in sorted(stems, key=lambda s: s or "")
        )
        raise BadQuery(
            f"{path}.destination names the sprite differently ({shown}): the VTT names its "
            "sheets once, so every destination gives the same file name or a folder"
        )
    stem = stems.pop()
    if not stem:
        raise BadQuery(f"{path}.destination ends in an extension without a file name")
    folders = tuple(replace(d, url=n[0]) for d, n in zip(dests, named, strict=True) if n)
    return stem, folders
