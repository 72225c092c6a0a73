"""The output kinds, one class each: what a ``query.format[]`` entry asks for, typed.

Each class owns its fields and how they are read from the query (``parse``), which
status array its entries go in (``array``), how its destination URL is laid out (``folder``),
and the frames it asks for before any source is read (``frames_asked``). ``KINDS`` maps every
output Qencode documents to its class; the worker's producer registry
(``workers.outputs.producers``) maps the kinds qthumb makes to the code that makes them and
counts their frames against the source. Adding an output is a class here, its entry in
``KINDS`` and a producer; nothing else branches on the output's name.

Outputs Qencode makes and qthumb does not (``advanced_hls``, ``mp3``, …) are accepted as their
bare class and fail on their own, leaving the others (§3.2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

from qthumb.app.api.errors import BadQuery, FieldRequired
from qthumb.app.qencode.query_values import (
    IMAGE_EXTENSIONS,
    Destination,
    ImageFormat,
    Logo,
    Placeholder,
    Sizing,
    flag,
    image_format,
    logos,
    opt_float,
    opt_int,
    placeholder,
    sizing,
    time_fraction,
)
from qthumb.app.qencode.window import Window, series_count

MIN_INTERVAL = 0.001  # seconds: a frame lasts longer at every rate a camera records
MAX_FRAME_RATE = 1000  # frames a second: past any camera's, so frame_number has a ceiling
_FRAMERATE_RE = re.compile(r"^\d+(\.\d+)?(/\d+(\.\d+)?)?$")
_KEYFRAME_RE = re.compile(r"^\d+(\.\d+)?s?$")
_OTHER_IMAGE_EXTENSIONS = frozenset({"gif", "bmp", "tif", "tiff", "heic", "jxl"})


@dataclass(frozen=True, kw_only=True)
class FormatSpec:
    """What every output has; an output qthumb does not make is only this."""

    index: int  # its place in query.format
    output: str
    user_tag: str | None = None
    destinations: tuple[Destination, ...] = ()
    start_time: float | None = None  # the clip window, in seconds
    duration: float | None = None
    # allow_soft_fail: when this output fails, the task still completes (a warning says why)
    soft_fail: bool = False

    array: ClassVar[str] = "videos"  # the status array its entries go in (§5.1)
    # A destination URL names a folder the output's files go into (several files), rather
    # than the one object's full key.
    folder: ClassVar[bool] = False

    @classmethod
    def parse(cls, obj: dict[str, Any], path: str, common: dict[str, Any]) -> FormatSpec:
        """The spec of ``obj`` (at ``path``), its common fields already read."""
        return cls(**common)

    def frames_asked(self, longest: float) -> tuple[int, str]:
        """Frames this format asks for whatever the source (its shortest promise, given the
        longest source accepted), and why, for the limit's message; 0 when the source
        decides (the worker counts those once it has probed it)."""
        return 0, ""

    def check(self, path: str, longest: float) -> None:
        """Refuse what no accepted source could satisfy (``BadQuery``)."""


@dataclass(frozen=True, kw_only=True)
class AudioSpec(FormatSpec):
    array: ClassVar[str] = "audios"


@dataclass(frozen=True, kw_only=True)
class TextSpec(FormatSpec):
    array: ClassVar[str] = "texts"


@dataclass(frozen=True, kw_only=True)
class MetadataSpec(FormatSpec):
    """``metadata``: what the source is, as a JSON file (no frame decoded)."""


@dataclass(frozen=True, kw_only=True)
class SizedSpec(FormatSpec):
    """An output of frames at a size: its pixels count against the limits."""

    sizing: Sizing = field(default_factory=Sizing)
    logos: tuple[Logo, ...] = ()  # drawn over every frame, in order

    @property
    def pixel_scale(self) -> int:
        """Pixels per requested pixel along each side (HiDPI tiles have more)."""
        return 1


@dataclass(frozen=True, kw_only=True)
class ImageSpec(SizedSpec):
    image_format: ImageFormat = ImageFormat.PNG
    quality: int | None = None
    placeholder: Placeholder | None = None  # qthumb's extension: a BlurHash/ThumbHash an image

    array: ClassVar[str] = "images"

    @staticmethod
    def image_fields(
        obj: dict[str, Any], path: str, common: dict[str, Any], named_by_destination: bool
    ) -> dict[str, Any]:
        fields = {
            **common,
            "sizing": sizing(obj, path),
            "logos": logos(obj.get("logo"), f"{path}.logo"),
        }
        fields["image_format"] = _image_encoding(
            obj, common["destinations"], path, named_by_destination
        )
        quality = opt_int(obj, "quality", path, minimum=1)
        if quality is not None and quality > 100:
            raise BadQuery(f"{path}.quality must be between 1 and 100")
        shown_by = placeholder(obj.get("placeholder"), f"{path}.placeholder")
        return {**fields, "quality": quality, "placeholder": shown_by}


@dataclass(frozen=True, kw_only=True)
class ThumbnailSpec(ImageSpec):
    """``thumbnail``: one image, at a fraction of the window or an exact frame index."""

    time: float = 0.5
    frame_number: int | None = None
    smart: bool = False  # qthumb's extension: not a black, blank or fading frame

    @classmethod
    def parse(cls, obj: dict[str, Any], path: str, common: dict[str, Any]) -> ThumbnailSpec:
        fields = cls.image_fields(obj, path, common, named_by_destination=True)
        # "For an exact second, use start_time" (Qencode's recipe): with no time, the frame at
        # start_time, the window's start, not the middle of what follows it
        at_start = obj.get("time") in (None, "") and fields.get("start_time") is not None
        return cls(
            **fields,
            time=0.0 if at_start else time_fraction(obj.get("time"), f"{path}.time"),
            frame_number=opt_int(obj, "frame_number", path, minimum=0),
            smart=flag(obj.get("smart"), f"{path}.smart"),
        )

    def frames_asked(self, longest: float) -> tuple[int, str]:
        return 1, "a thumbnail"

    def check(self, path: str, longest: float) -> None:
        if self.frame_number is not None and self.frame_number > longest * MAX_FRAME_RATE:
            raise BadQuery(
                f"{path}.frame_number is {self.frame_number}, past the last frame of the "
                f"longest source qthumb accepts ({longest:g} s at {MAX_FRAME_RATE} frames a "
                "second, QTHUMB_MAX_SOURCE_SECONDS)"
            )


@dataclass(frozen=True, kw_only=True)
class ThumbnailsSpec(ImageSpec):
    """``thumbnails``: a frame every ``interval`` seconds, or sprite sheets with their VTT."""

    interval: float
    sprite: bool = False
    columns: int = 10
    keyframes_only: bool = False
    storyboard: bool = False  # qthumb's extension: thumbnails.json beside the sprite's VTT
    dpr: int = 1  # qthumb's extension: tiles at this many pixels a CSS pixel

    folder: ClassVar[bool] = True

    @property
    def pixel_scale(self) -> int:
        return self.dpr

    @classmethod
    def parse(cls, obj: dict[str, Any], path: str, common: dict[str, Any]) -> ThumbnailsSpec:
        fields = cls.image_fields(obj, path, common, named_by_destination=False)
        interval = opt_float(obj, "interval", path, minimum=0.0, exclusive=True)
        if interval is None:
            raise FieldRequired(f"{path}.interval")
        if interval < MIN_INTERVAL:
            raise BadQuery(
                f"{path}.interval must be at least {MIN_INTERVAL:g} s (shorter than any "
                f"frame), got {interval:g}"
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
        if fields["placeholder"] and sprite and not storyboard:
            raise BadQuery(
                f"{path}.placeholder on sprite sheets is given a tile in the storyboard JSON: "
                "it needs storyboard: 1"
            )
        return cls(
            **fields,
            interval=interval,
            sprite=sprite,
            columns=columns or 10,
            keyframes_only=flag(obj.get("keyframes_only"), f"{path}.keyframes_only"),
            storyboard=storyboard,
            dpr=dpr or 1,
        )

    def frames_asked(self, longest: float) -> tuple[int, str]:
        if self.duration is None:
            return 0, ""
        # With a duration the count hardly depends on the source: past the limit here, it
        # is past it for every source long enough to fill that duration.
        count = series_count(self.interval, Window(0.0, min(longest, self.duration)))
        return count, f"{self.duration:g} s every {self.interval:g} s"


@dataclass(frozen=True)
class VideoSettings:
    """``mp4`` / ``webm`` / ``gif`` fields (§3.2). ``quality`` is a CRF, not an image
    quality."""

    video_codec: str | None = None
    framerate: str | None = None
    keyframe: str | None = None  # frames ("50") or seconds ("2s")
    bitrate: int | None = None  # kbit/s
    quality: int | None = None
    audio_bitrate: int | None = None  # kbit/s
    audio: bool = True
    mute: bool = False  # audio_mute: the source's audio replaced by silence of its length


@dataclass(frozen=True, kw_only=True)
class VideoSpec(SizedSpec):
    """``mp4`` / ``webm``: the clip window encoded (one video stream)."""

    video: VideoSettings = field(default_factory=VideoSettings)

    @classmethod
    def parse(cls, obj: dict[str, Any], path: str, common: dict[str, Any]) -> VideoSpec:
        fields, fields_path = _one_stream(obj, path)
        _container_extension(obj, path, common["output"])  # the file is video.<output>
        return cls(
            **common,
            sizing=sizing(fields, fields_path),
            video=_video(fields, fields_path),
            logos=logos(fields.get("logo"), f"{fields_path}.logo"),
        )


@dataclass(frozen=True, kw_only=True)
class GifSpec(SizedSpec):
    """``gif``: an animation of the clip window; an animated WebP with ``image_format:
    "webp"`` (qthumb's extension: a quarter of the size for the same frames, full colour)."""

    video: VideoSettings = field(default_factory=VideoSettings)
    animated_webp: bool = False
    quality: int | None = None

    @classmethod
    def parse(cls, obj: dict[str, Any], path: str, common: dict[str, Any]) -> GifSpec:
        fields = {**common, "sizing": sizing(obj, path), "video": _video(obj, path),
                  "logos": logos(obj.get("logo"), f"{path}.logo")}  # fmt: skip
        value = obj.get("image_format")
        name = "" if value is None else str(value).lower().strip()
        if name not in ("", "gif", "webp"):
            raise BadQuery(
                f"{path}.image_format must be gif or webp for a gif output, got {value!r}"
            )
        quality = opt_int(obj, "quality", path, minimum=1)
        _container_extension(obj, path, "webp" if name == "webp" else "gif")
        return cls(**fields, animated_webp=name == "webp", quality=quality)


def _container_extension(obj: dict[str, Any], path: str, container: str) -> None:
    """``file_extension`` on a video or animation names its file, whose container the output
    decides: the same one is what Qencode's own examples send (no warning); another is
    refused, since the file made would not be what its name says."""
    value = obj.get("file_extension")
    if value is None or value == "":
        return
    if str(value).lower().strip().lstrip(".") != container:
        raise BadQuery(
            f"{path}.file_extension is {value!r}, but this output makes a .{container} file"
        )


# Every output Qencode documents (§3.2), by name. Anything else is a typo and is refused.
KINDS: dict[str, type[FormatSpec]] = {
    "thumbnail": ThumbnailSpec,
    "thumbnails": ThumbnailsSpec,
    "mp4": VideoSpec,
    "webm": VideoSpec,
    "gif": GifSpec,
    "metadata": MetadataSpec,
    **dict.fromkeys(("advanced_hls", "advanced_dash", "webm_dash", "repack", "vmaf"), FormatSpec),
    **dict.fromkeys(("mp3", "hls_audio", "flac"), AudioSpec),
    "speech_to_text": TextSpec,
}


def array_of(output: str) -> str:
    """Which status array an output's entries go in (rows of unknown outputs: videos)."""
    return KINDS.get(output, FormatSpec).array


def _image_encoding(
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


_STREAM_FIELDS = frozenset({"size", "width", "height", "resolution", "resize_mode", "bitrate",
                            "framerate", "keyframe", "video_codec", "quality", "audio_bitrate",
                            "audio_disabled", "audio_mute", "rotate", "aspect_ratio",
                            "logo"})  # fmt: skip


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
        mute=flag(obj.get("audio_mute"), f"{path}.audio_mute"),
    )
