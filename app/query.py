"""Parse a ``start_encode2`` query into typed values.

Pure functions: the API validates with them when a task starts, and the worker parses the stored
query again with the same code, so both sides always agree. Every rejection is a ``BadQuery``
whose message names the field path (``query.format[1].time``) and what is wrong with it.

Qencode leniency kept here (§3): numbers may come as strings, ``query`` may be wrapped in
``{"query": …}`` or not, ``tag`` or ``user_tag``, a destination may be ``""``, ``{}``, an object
or a list of objects.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import unquote, urlsplit

from app.egress import url_problem
from app.errors import BadQuery, FieldRequired

# Every output Qencode documents (§3.2). Anything else is a typo and is refused at once; a known
# output that qthumb cannot make yet is accepted and fails on its own, leaving the others.
KNOWN_OUTPUTS = frozenset(
    {
        "mp4",
        "webm",
        "advanced_hls",
        "advanced_dash",
        "webm_dash",
        "repack",
        "mp3",
        "hls_audio",
        "flac",
        "gif",
        "thumbnail",
        "thumbnails",
        "metadata",
        "speech_to_text",
        "vmaf",
    }
)
IMAGE_OUTPUTS = frozenset({"thumbnail", "thumbnails"})
VIDEO_OUTPUTS = frozenset({"mp4", "webm"})
_FRAMERATE_RE = re.compile(r"^\d+(\.\d+)?(/\d+(\.\d+)?)?$")
_KEYFRAME_RE = re.compile(r"^\d+(\.\d+)?s?$")
MAX_SIDE = 16_000
_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
MIN_INTERVAL = 0.001  # seconds: a frame lasts longer at every rate a camera records
_SIZE_RE = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")


class ResizeMode(StrEnum):
    SCALE = "scale"
    CROP = "crop"


class ImageFormat(StrEnum):
    PNG = "png"
    JPG = "jpg"
    WEBP = "webp"

    @property
    def extension(self) -> str:
        return self.value

    @property
    def content_type(self) -> str:
        return {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp"}[self.value]


@dataclass(frozen=True)
class Destination:
    url: str
    key: str | None = None
    secret: str | None = None
    permissions: str | None = None
    storage_class: str | None = None
    cache_control: str | None = None


@dataclass(frozen=True)
class Sizing:
    """Requested output size. ``None`` sides follow the display aspect of the source."""

    width: int | None = None
    height: int | None = None
    resolution: int | None = None
    mode: ResizeMode = ResizeMode.SCALE


@dataclass(frozen=True)
class VideoSettings:
    """``mp4`` / ``webm`` fields (§3.2). ``quality`` is a CRF here, not an image quality."""

    video_codec: str | None = None
    framerate: str | None = None
    keyframe: str | None = None  # frames ("50") or seconds ("2s")
    bitrate: int | None = None  # kbit/s
    quality: int | None = None
    audio_bitrate: int | None = None  # kbit/s
    audio: bool = True


@dataclass(frozen=True)
class FormatSpec:
    index: int
    output: str
    user_tag: str | None = None
    destinations: tuple[Destination, ...] = ()
    sizing: Sizing = field(default_factory=Sizing)
    image_format: ImageFormat = ImageFormat.PNG
    quality: int | None = None
    # thumbnail: position as a fraction of the duration, or an exact frame index
    time: float = 0.5
    frame_number: int | None = None
    # thumbnails
    interval: float | None = None
    sprite: bool = False
    columns: int = 10
    keyframes_only: bool = False
    start_time: float | None = None
    duration: float | None = None
    video: VideoSettings | None = None


@dataclass(frozen=True)
class Query:
    source: str
    formats: tuple[FormatSpec, ...]
    callback_url: str | None = None

    def secrets(self) -> list[str]:
        """Every credential the query carries, for ``app.redact`` to mask wherever it
        would be repeated: destination keys and secrets, and the user-info of its URLs."""
        found: list[str] = []
        urls = [self.source, self.callback_url or ""]
        for spec in self.formats:
            for d in spec.destinations:
                found += [d.key or "", d.secret or ""]
                urls.append(d.url)
        for url in urls:
            try:
                parts = urlsplit(url)
                found += [unquote(parts.username or ""), unquote(parts.password or "")]
            except ValueError:
                continue
        return [s for s in found if s]


def decode_query(raw: str) -> dict[str, Any]:
    """Turn the ``query`` form field into the inner query object (wrapped or not)."""
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # ValueError: also ints past 4300 digits
        raise BadQuery(f"query is not valid JSON: {str(exc)[:200]}") from None
    if not isinstance(value, dict):
        raise BadQuery("query must be a JSON object")
    inner = value.get("query", value) if "format" not in value else value
    if isinstance(inner, str):  # {"query": "<json>"}: encoded twice by some callers
        return decode_query(inner)
    if not isinstance(inner, dict):
        raise BadQuery("query.query must be a JSON object")
    return inner


def parse_query(obj: dict[str, Any]) -> Query:
    source = obj.get("source")
    if obj.get("stitch") is not None:
        raise BadQuery("query.stitch: stitching is not supported by qthumb")
    if source is None or source == "":
        raise FieldRequired("query.source")
    if not isinstance(source, str):
        raise BadQuery("query.source must be a string (a URL, a path or tus:<uuid>)")
    formats = obj.get("format")
    if formats is None or formats == []:
        raise FieldRequired("query.format")
    if isinstance(formats, dict):
        formats = [formats]
    if not isinstance(formats, list):
        raise BadQuery("query.format must be a list of format objects")
    callback = obj.get("callback_url")
    if callback is not None and not isinstance(callback, str):
        raise BadQuery("query.callback_url must be a string")
    if callback:
        _web_url(callback, "query.callback_url")
    if url_scheme(source) in ("http", "https"):
        _web_url(source.strip(), "query.source")
    specs = tuple(_parse_format(i, f) for i, f in enumerate(formats))
    return Query(source=source.strip(), formats=specs, callback_url=callback or None)


def url_scheme(url: str) -> str:
    """The scheme of ``url`` in lower case, "" when it has none; never fails (``urlsplit``
    raises on a malformed host such as ``http://[::1``)."""
    match = _SCHEME_RE.match(url.strip())
    return match.group(1).lower() if match else ""


def _web_url(url: str, path: str) -> None:
    problem = url_problem(url)
    if problem:
        raise BadQuery(f"{path}: {problem}")


def _parse_format(index: int, obj: object) -> FormatSpec:
    path = f"query.format[{index}]"
    if not isinstance(obj, dict):
        raise BadQuery(f"{path} must be an object")
    output = obj.get("output")
    if output is None or output == "":
        raise FieldRequired(f"{path}.output")
    if not isinstance(output, str) or output not in KNOWN_OUTPUTS:
        raise BadQuery(f"{path}.output: unknown output {output!r}")
    tag = obj.get("user_tag", obj.get("tag"))
    common: dict[str, Any] = {
        "index": index,
        "output": output,
        "user_tag": None if tag is None else str(tag),
        "destinations": _destinations(obj.get("destination"), f"{path}.destination"),
        "start_time": _opt_float(obj, "start_time", path, minimum=0.0),
        "duration": _opt_float(obj, "duration", path, minimum=0.0, exclusive=True),
    }
    if output in VIDEO_OUTPUTS:
        return FormatSpec(**common, sizing=_sizing(obj, path), video=_video(obj, path))
    if output not in IMAGE_OUTPUTS:
        return FormatSpec(**common)
    common["sizing"] = _sizing(obj, path)
    common["image_format"] = _image_format(obj.get("image_format"), path)
    quality = _opt_int(obj, "quality", path, minimum=1)
    if quality is not None and quality > 100:
        raise BadQuery(f"{path}.quality must be between 1 and 100")
    common["quality"] = quality
    if output == "thumbnail":
        return FormatSpec(
            **common,
            time=_time_fraction(obj.get("time"), f"{path}.time"),
            frame_number=_opt_int(obj, "frame_number", path, minimum=0),
        )
    interval = _opt_float(obj, "interval", path, minimum=0.0, exclusive=True)
    if interval is None:
        raise FieldRequired(f"{path}.interval")
    if interval < MIN_INTERVAL:
        raise BadQuery(
            f"{path}.interval must be at least {MIN_INTERVAL:g} s (shorter than any frame), "
            f"got {interval:g}"
        )
    columns = _opt_int(obj, "columns", path, minimum=1)
    if columns is not None and columns > 1000:
        raise BadQuery(f"{path}.columns must be between 1 and 1000")
    return FormatSpec(
        **common,
        interval=interval,
        sprite=_flag(obj.get("sprite"), f"{path}.sprite"),
        columns=columns or 10,
        keyframes_only=_flag(obj.get("keyframes_only"), f"{path}.keyframes_only"),
    )


def _video(obj: dict[str, Any], path: str) -> VideoSettings:
    codec = obj.get("video_codec")
    framerate = obj.get("framerate")
    if framerate not in (None, "") and not _FRAMERATE_RE.match(str(framerate).strip()):
        raise BadQuery(f"{path}.framerate must look like 25, 29.97 or 30000/1001")
    keyframe = obj.get("keyframe")
    if keyframe not in (None, "") and not _KEYFRAME_RE.match(str(keyframe).strip()):
        raise BadQuery(f"{path}.keyframe must be frames (50) or seconds (2s)")
    quality = _opt_int(obj, "quality", path, minimum=0)
    if quality is not None and quality > 63:
        raise BadQuery(f"{path}.quality (CRF) must be between 0 and 63")
    audio = obj.get("audio_disabled")
    return VideoSettings(
        video_codec=None if codec in (None, "") else str(codec),
        framerate=None if framerate in (None, "") else str(framerate).strip(),
        keyframe=None if keyframe in (None, "") else str(keyframe).strip(),
        bitrate=_opt_int(obj, "bitrate", path, minimum=1),
        quality=quality,
        audio_bitrate=_opt_int(obj, "audio_bitrate", path, minimum=1),
        audio=not _flag(audio, f"{path}.audio_disabled"),
    )


def _number(value: object, path: str) -> float:
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
    else:
        raise BadQuery(f"{path} must be a number, got {_shown(value)}")
    if not math.isfinite(number):
        raise BadQuery(f"{path} must be a finite number")
    return number


def _shown(value: object) -> str:
    """A short JSON rendering of a client value for a message (never the whole of it)."""
    try:
        text = json.dumps(value)
    except (ValueError, RecursionError):
        text = type(value).__name__
    return text if len(text) <= 100 else f"{text[:100]}…"


def _opt_float(
    obj: dict[str, Any], key: str, path: str, *, minimum: float, exclusive: bool = False
) -> float | None:
    value = obj.get(key)
    if value is None or value == "":
        return None
    number = _number(value, f"{path}.{key}")
    if number < minimum or (exclusive and number == minimum):
        relation = "greater than" if exclusive else "at least"
        raise BadQuery(f"{path}.{key} must be {relation} {minimum:g}, got {number:g}")
    return number


def _opt_int(obj: dict[str, Any], key: str, path: str, *, minimum: int) -> int | None:
    value = obj.get(key)
    if value is None or value == "":
        return None
    number = _number(value, f"{path}.{key}")
    if not number.is_integer():
        raise BadQuery(f"{path}.{key} must be a whole number, got {number:g}")
    if number < minimum:
        raise BadQuery(f"{path}.{key} must be at least {minimum}, got {number:g}")
    return int(number)


def _flag(value: object, path: str) -> bool:
    if value is None or value == "":
        return False
    if isinstance(value, bool):
        return value
    number = _number(value, path)
    if number not in (0.0, 1.0):
        raise BadQuery(f"{path} must be 0 or 1")
    return number == 1.0


def _time_fraction(value: object, path: str) -> float:
    """``time`` in [0, 1] is a fraction of the duration; in (1, 100] a percent (§11.3)."""
    if value is None or value == "":
        return 0.5
    number = _number(value, path)
    if 0.0 <= number <= 1.0:
        return number
    if 1.0 < number <= 100.0:
        return number / 100.0
    raise BadQuery(f"{path} must be a fraction 0-1 or a percent 1-100, got {number:g}")


def _image_format(value: object, path: str) -> ImageFormat:
    if value is None or value == "":
        return ImageFormat.PNG
    name = str(value).lower().strip()
    if name == "jpeg":
        name = "jpg"
    try:
        return ImageFormat(name)
    except ValueError:
        raise BadQuery(f"{path}.image_format must be png, jpg or webp, got {value!r}") from None


def _sizing(obj: dict[str, Any], path: str) -> Sizing:
    width = _opt_int(obj, "width", path, minimum=1)
    height = _opt_int(obj, "height", path, minimum=1)
    size = obj.get("size")
    if size not in (None, ""):
        match = _SIZE_RE.match(str(size))
        if not match:
            raise BadQuery(f"{path}.size must look like 320x240, got {size!r}")
        width, height = int(match.group(1)), int(match.group(2))
        if width < 1 or height < 1:
            raise BadQuery(f"{path}.size sides must be at least 1, got {size!r}")
    resolution = _opt_int(obj, "resolution", path, minimum=1)
    for name, side in (("width", width), ("height", height), ("resolution", resolution)):
        if side is not None and side > MAX_SIDE:
            raise BadQuery(f"{path}.{name} must be at most {MAX_SIDE}, got {side}")
    mode_value = obj.get("resize_mode") or "scale"
    try:
        mode = ResizeMode(str(mode_value).lower())
    except ValueError:
        raise BadQuery(f"{path}.resize_mode must be scale or crop, got {mode_value!r}") from None
    return Sizing(width=width, height=height, resolution=resolution, mode=mode)


def _destinations(value: object, path: str) -> tuple[Destination, ...]:
    if value is None or value == "" or value == {} or value == []:
        return ()
    items = value if isinstance(value, list) else [value]
    result = []
    for i, item in enumerate(items):
        item_path = f"{path}[{i}]" if isinstance(value, list) else path
        if not isinstance(item, dict):
            raise BadQuery(f"{item_path} must be an object with a url")
        url = item.get("url")
        if not isinstance(url, str) or not url.strip():
            raise FieldRequired(f"{item_path}.url")
        result.append(
            Destination(
                url=url.strip(),
                key=_opt_str(item, "key"),
                secret=_opt_str(item, "secret"),
                permissions=_opt_str(item, "permissions"),
                storage_class=_opt_str(item, "storage_class"),
                cache_control=_opt_str(item, "cache_control"),
            )
        )
    return tuple(result)


def _opt_str(obj: dict[str, Any], key: str) -> str | None:
    value = obj.get(key)
    return None if value is None or value == "" else str(value)
