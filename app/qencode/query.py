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
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from qthumb.app.api.errors import BadQuery, FieldRequired
from qthumb.app.egress import url_problem
from qthumb.app.qencode.query_values import (
    IMAGE_EXTENSIONS,
    MAX_SIDE,
    Destination,
    ImageFormat,
    ResizeMode,
    Sizing,
    destinations,
    flag,
    image_format,
    opt_float,
    opt_int,
    sizing,
    time_fraction,
)

__all__ = [
    "IMAGE_OUTPUTS",
    "KNOWN_OUTPUTS",
    "MAX_SIDE",
    "MIN_INTERVAL",
    "VIDEO_OUTPUTS",
    "Destination",
    "FormatSpec",
    "ImageFormat",
    "Query",
    "ResizeMode",
    "Sizing",
    "VideoSettings",
    "decode_query",
    "parse_query",
    "url_scheme",
]

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
_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
MIN_INTERVAL = 0.001  # seconds: a frame lasts longer at every rate a camera records


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
    smart: bool = False  # qthumb's extension: not a black, blank or fading frame
    # thumbnails
    interval: float | None = None
    sprite: bool = False
    columns: int = 10
    keyframes_only: bool = False
    storyboard: bool = False  # qthumb's extension: thumbnails.json beside the sprite's VTT
    dpr: int = 1  # qthumb's extension: tiles at this many pixels a CSS pixel
    start_time: float | None = None
    duration: float | None = None
    video: VideoSettings | None = None
    animated_webp: bool = False  # gif: qthumb's extension, `image_format: "webp"`


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


def upload_id(source: str) -> str | None:
    """The uuid a ``tus:<uuid>`` source names (as the SDKs send it), ``None`` for other
    sources. Not checked: whoever reads the upload checks it is one, and whose."""
    if url_scheme(source) != "tus":
        return None
    return source.split(":", 1)[1].strip()


def _web_url(url: str, path: str) -> None:
    problem = url_problem(url)
    if problem:
        raise BadQuery(f"{path}: {problem}")


_OTHER_IMAGE_EXTENSIONS = frozenset({"gif", "bmp", "tif", "tiff", "heic", "jxl"})


def _image_encoding(
    obj: dict[str, Any], output: str, dests: tuple[Destination, ...], path: str
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
    if output == "thumbnail":
        for i, destination in enumerate(dests):
            name = destination.url.rstrip().rsplit("/", 1)[-1].split("?", 1)[0]
            suffix = name.rsplit(".", 1)[-1].lower() if "." in name else ""
            where = f"{path}.destination" + (f"[{i}]" if len(dests) > 1 else "")
            if suffix in _OTHER_IMAGE_EXTENSIONS:
                raise BadQuery(f"{where}: {name!r} names a .{suffix}; qthumb writes png, jpg, "
                               "webp or avif")  # fmt: skip
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
        "destinations": destinations(obj.get("destination"), f"{path}.destination"),
        "start_time": opt_float(obj, "start_time", path, minimum=0.0),
        "duration": opt_float(obj, "duration", path, minimum=0.0, exclusive=True),
    }
    if output == "gif":
        return FormatSpec(
            **common,
            sizing=sizing(obj, path),
            video=_video(obj, path),
            animated_webp=_animation(obj.get("image_format"), path),
            quality=opt_int(obj, "quality", path, minimum=1),
        )
    if output in VIDEO_OUTPUTS:
        fields, fields_path = _one_stream(obj, path)
        return FormatSpec(
            **common, sizing=sizing(fields, fields_path), video=_video(fields, fields_path)
        )
    if output not in IMAGE_OUTPUTS:
        return FormatSpec(**common)
    common["sizing"] = sizing(obj, path)
    common["image_format"] = _image_encoding(obj, output, common["destinations"], path)
    quality = opt_int(obj, "quality", path, minimum=1)
    if quality is not None and quality > 100:
        raise BadQuery(f"{path}.quality must be between 1 and 100")
    common["quality"] = quality
    if output == "thumbnail":
        return FormatSpec(
            **common,
            time=time_fraction(obj.get("time"), f"{path}.time"),
            frame_number=opt_int(obj, "frame_number", path, minimum=0),
            smart=flag(obj.get("smart"), f"{path}.smart"),
        )
    interval = opt_float(obj, "interval", path, minimum=0.0, exclusive=True)
    if interval is None:
        raise FieldRequired(f"{path}.interval")
    if interval < MIN_INTERVAL:
        raise BadQuery(
            f"{path}.interval must be at least {MIN_INTERVAL:g} s (shorter than any frame), "
            f"got {interval:g}"
        )
    columns = opt_int(obj, "columns", path, minimum=1)
    if columns is not None and columns > 1000:
        raise BadQuery(f"{path}.columns must be between 1 and 1000")
    dpr = opt_int(obj, "dpr", path, minimum=1)
    if dpr is not None and dpr > 4:
        raise BadQuery(f"{path}.dpr must be 1, 2, 3 or 4")
    sprite = flag(obj.get("sprite"), f"{path}.sprite")
    storyboard = flag(obj.get("storyboard"), f"{path}.storyboard")
    if storyboard and not sprite:
        raise BadQuery(f"{path}.storyboard describes sprite sheets: it needs sprite: 1")
    return FormatSpec(
        **common,
        interval=interval,
        sprite=sprite,
        columns=columns or 10,
        keyframes_only=flag(obj.get("keyframes_only"), f"{path}.keyframes_only"),
        storyboard=storyboard,
        dpr=dpr or 1,
    )


def _animation(value: object, path: str) -> bool:
    """``gif`` makes a GIF; ``image_format: "webp"`` an animated WebP instead (qthumb's
    extension: a quarter of the size for the same frames, and full colour)."""
    name = "" if value is None else str(value).lower().strip()
    if name in ("", "gif"):
        return False
    if name == "webp":
        return True
    raise BadQuery(f"{path}.image_format must be gif or webp for a gif output, got {value!r}")


_STREAM_FIELDS = frozenset({"size", "width", "height", "resolution", "resize_mode", "bitrate",
                            "framerate", "keyframe", "video_codec", "quality", "audio_bitrate",
                            "audio_disabled"})  # fmt: skip


def _one_stream(obj: dict[str, Any], path: str) -> tuple[dict[str, Any], str]:
    """The fields a video is made with: the format's own, or its one ``stream[]`` entry's
    (Qencode's per-stream form: its fields win over the format's). qthumb makes one video
    stream per output: several are refused rather than silently reduced to one."""
    streams = obj.get("stream")
    if streams is None or streams == [] or streams == {}:
        return obj, path
    if isinstance(streams, dict):
        streams = [streams]
    if not isinstance(streams, list) or not all(isinstance(x, dict) for x in streams):
        raise BadQuery(f"{path}.stream must be a list of stream objects")
    if len(streams) > 1:
        raise BadQuery(
            f"{path}.stream has {len(streams)} streams; qthumb makes one stream per output: "
            "use one format per size"
        )
    # Fields qthumb does not read are left alone, as at the format's own level.
    chosen = {k: v for k, v in streams[0].items() if k in _STREAM_FIELDS}
    return {**obj, **chosen}, f"{path}.stream[0]"


def _video(obj: dict[str, Any], path: str) -> VideoSettings:
    codec = obj.get("video_codec")
    framerate = obj.get("framerate")
    if framerate not in (None, "") and not _FRAMERATE_RE.match(str(framerate).strip()):
        raise BadQuery(f"{path}.framerate must look like 25, 29.97 or 30000/1001")
    keyframe = obj.get("keyframe")
    if keyframe not in (None, "") and not _KEYFRAME_RE.match(str(keyframe).strip()):
        raise BadQuery(f"{path}.keyframe must be frames (50) or seconds (2s)")
    quality = opt_int(obj, "quality", path, minimum=0)
    if quality is not None and quality > 63:
        raise BadQuery(f"{path}.quality (CRF) must be between 0 and 63")
    audio = obj.get("audio_disabled")
    return VideoSettings(
        video_codec=None if codec in (None, "") else str(codec),
        framerate=None if framerate in (None, "") else str(framerate).strip(),
        keyframe=None if keyframe in (None, "") else str(keyframe).strip(),
        bitrate=opt_int(obj, "bitrate", path, minimum=1),
        quality=quality,
        audio_bitrate=opt_int(obj, "audio_bitrate", path, minimum=1),
        audio=not flag(audio, f"{path}.audio_disabled"),
    )
