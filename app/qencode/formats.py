"""The output kinds, one class each: what a ``query.format[]`` entry asks for, typed.

Each class owns its fields and how they are read from the query (``parse``), which
status array its entries go in (``array``), how its destination URL is laid out (``folder``),
and the frames it asks for before any source is read (``frames_asked``). ``KINDS`` maps every
output Qencode documents to its class; the worker's producer registry
(``workers.outputs.producers``) maps the kinds qthumb makes to the code that makes them and
counts their frames against the source. Adding an output is a class here, its entry in
``KINDS`` and a producer; nothing else branches on the output's name.

Outputs Qencode makes and qthumb does not (``advanced_hls``, ``mp3``, …) are accepted as their
bare class and fail on their own, leaving the others (docs/outputs.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, ClassVar

from qthumb.app.errors import BadQuery
from qthumb.app.qencode.fields.destinations import Destination
from qthumb.app.qencode.fields.image_naming import image_encoding, named_sheet
from qthumb.app.qencode.fields.logos import Logo, logos
from qthumb.app.qencode.fields.values import (
    ImageFormat,
    Placeholder,
    Sizing,
    flag,
    opt_int,
    placeholder,
    sizing,
    time_fraction,
)
from qthumb.app.qencode.fields.video import (
    VideoSettings,
    container_extension,
    one_stream,
    video_settings,
)
from qthumb.app.qencode.kinds import Array, Codecs, Output
from qthumb.app.qencode.series_fields import series_fields
from qthumb.app.qencode.trickplay import Trickplay, image_tracks
from qthumb.app.qencode.window import Window, series_count

MAX_FRAME_RATE = 1000  # frames a second: past any camera's, so frame_number has a ceiling


@dataclass(frozen=True, kw_only=True)
class FormatSpec:
    """What every output has; an output qthumb does not make is only this."""

    index: int  # its place in query.format
    output: Output
    user_tag: str | None = None
    destinations: tuple[Destination, ...] = ()
    start_time: float | None = None  # the clip window, in seconds
    duration: float | None = None
    # allow_soft_fail: when this output fails, the task still completes (a warning says why)
    soft_fail: bool = False

    array: ClassVar[Array] = Array.VIDEOS  # the status array its entries go in
    # A destination URL names a folder the output's files go into (several files), rather
    # than the one object's full key.
    folder: ClassVar[bool] = False
    # Fields Qencode reads on this kind that change nothing in what qthumb makes of it:
    # accepted without an "ignored" warning (the one list of these decisions, per kind).
    no_effect: ClassVar[frozenset[str]] = frozenset()
    # how to ask this kind for fewer frames, said when a query asks for too many
    fewer_frames: ClassVar[str] = "use a longer interval"

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
    array: ClassVar[Array] = Array.AUDIOS


@dataclass(frozen=True, kw_only=True)
class TextSpec(FormatSpec):
    array: ClassVar[Array] = Array.TEXTS


@dataclass(frozen=True, kw_only=True)
class MetadataSpec(FormatSpec):
    """``metadata``: what the source is, as a JSON file (no frame decoded)."""


@dataclass(frozen=True, kw_only=True)
class SizedSpec(FormatSpec):
    """An output of frames at a size: its pixels count against the limits."""

    sizing: Sizing = field(default_factory=Sizing)
    logos: tuple[Logo, ...] = ()  # drawn over every frame, in order
    # deinterlace: 1, every frame's fields taken apart (stills: the top field; video: bwdif);
    # without it a frame flagged interlaced still is, for stills
    deinterlace: bool = False

    @property
    def pixel_scale(self) -> int:
        """Pixels per requested pixel along each side (HiDPI tiles have more)."""
        return 1


@dataclass(frozen=True, kw_only=True)
class ImageSpec(SizedSpec):
    image_format: ImageFormat = ImageFormat.PNG
    quality: int | None = None
    placeholder: Placeholder | None = None  # qthumb's extension: a BlurHash/ThumbHash an image

    array: ClassVar[Array] = Array.IMAGES
    # an image is SDR: HDR sources are always tone-mapped to BT.709
    no_effect: ClassVar[frozenset[str]] = frozenset({"hdr_to_sdr"})

    @staticmethod
    def image_fields(
        obj: dict[str, Any], path: str, common: dict[str, Any], named_by_destination: bool
    ) -> dict[str, Any]:
        fields = {
            **common,
            "sizing": sizing(obj, path),
            "logos": logos(obj.get("logo"), f"{path}.logo"),
            "deinterlace": flag(obj.get("deinterlace"), f"{path}.deinterlace"),
        }
        fields["image_format"] = image_encoding(
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
    # A sprite destination that ends in a file name (…/sprite.jpg) names the sheet: its stem
    # here, the destinations its folder
    sheet_name: str | None = None
    trickplay: tuple[Trickplay, ...] = ()  # qthumb's extension (app.qencode.trickplay)
    manifest: str | None = None  # the multivariant playlist to copy with the image track
    # qthumb's extension: a frame a shot (cuts found by the worker), chapters.vtt at the cuts;
    # ``interval`` is then the shortest shot
    scenes: bool = False

    folder: ClassVar[bool] = True

    @property
    def pixel_scale(self) -> int:
        return self.dpr

    @property
    def has_tracks(self) -> bool:
        """An HLS or DASH image track is asked for: its sheets are a timeline of equal tiles."""
        return image_tracks(self.trickplay)

    def sheet_names(self, sheets: int) -> list[str]:
        """The sheets' file names: ``sprite.<ext>``, or ``sprite_01.<ext>``… when several,
        under the name a destination gave instead of ``sprite``."""
        base, ext = self.sheet_name or "sprite", self.image_format.extension
        if sheets == 1:
            return [f"{base}.{ext}"]
        return [f"{base}_{i + 1:02d}.{ext}" for i in range(sheets)]

    @property
    def vtt_name(self) -> str:
        """``thumbnails.vtt``, or beside a named sheet under its name (``sprite.vtt``)."""
        return f"{self.sheet_name}.vtt" if self.sheet_name else "thumbnails.vtt"

    @property
    def storyboard_name(self) -> str:
        return f"{self.sheet_name}.json" if self.sheet_name else "thumbnails.json"

    def trickplay_name(self, suffix: str) -> str:
        """A trickplay file beside the VTT: ``thumbnails<suffix>``, or under a named sheet's."""
        return f"{self.sheet_name or 'thumbnails'}{suffix}"

    @classmethod
    def parse(cls, obj: dict[str, Any], path: str, common: dict[str, Any]) -> ThumbnailsSpec:
        sprite = flag(obj.get("sprite"), f"{path}.sprite")
        sheet, folders = named_sheet(common["destinations"], path) if sprite else (None, None)
        fields = cls.image_fields(obj, path, common, named_by_destination=sheet is not None)
        if folders is not None:
            fields["destinations"] = folders
        series = series_fields(obj, path, sprite, fields, common["start_time"])
        return cls(**fields, **series, sprite=sprite, sheet_name=sheet)

    def frames_asked(self, longest: float) -> tuple[int, str]:
        if self.duration is None:
            return 0, ""
        # With a duration the count hardly depends on the source: past the limit here, it
        # is past it for every source long enough to fill that duration.
        count = series_count(self.interval, Window(0.0, min(longest, self.duration)))
        return count, f"{self.duration:g} s every {self.interval:g} s"


@dataclass(frozen=True, kw_only=True)
class VideoSpec(SizedSpec):
    """``mp4`` / ``webm``: the clip window encoded (one video stream)."""

    video: VideoSettings = field(default_factory=VideoSettings)
    # hdr_to_sdr: 1, a PQ or HLG source tone-mapped to SDR BT.709 as thumbnails are
    hdr_to_sdr: bool = False

    CODECS: ClassVar[dict[str, Codecs]] = {
        Output.MP4: Codecs("libx264", frozenset({"libx264"}), "aac", "video/mp4"),
        Output.WEBM: Codecs(
            "libvpx-vp9", frozenset({"libvpx-vp9", "libvpx"}), "libopus", "video/webm"
        ),
    }

    @property
    def codecs(self) -> Codecs:
        """How this kind (mp4 or webm) is encoded."""
        return self.CODECS[self.output]

    @classmethod
    def parse(cls, obj: dict[str, Any], path: str, common: dict[str, Any]) -> VideoSpec:
        fields, fields_path = one_stream(obj, path)
        container_extension(obj, path, common["output"])  # the file is video.<output>
        return cls(
            **common,
            sizing=sizing(fields, fields_path),
            video=video_settings(fields, fields_path),
            logos=logos(fields.get("logo"), f"{fields_path}.logo"),
            deinterlace=flag(fields.get("deinterlace"), f"{fields_path}.deinterlace"),
            hdr_to_sdr=flag(fields.get("hdr_to_sdr"), f"{fields_path}.hdr_to_sdr"),
        )


@dataclass(frozen=True, kw_only=True)
class GifSpec(SizedSpec):
    """``gif``: an animation of the clip window; an animated WebP with ``image_format:
    "webp"`` (qthumb's extension: a quarter of the size for the same frames, full colour)."""

    video: VideoSettings = field(default_factory=VideoSettings)
    animated_webp: bool = False
    quality: int | None = None

    # an animation is SDR: HDR sources are always tone-mapped to BT.709
    no_effect: ClassVar[frozenset[str]] = frozenset({"hdr_to_sdr"})
    DEFAULT_FPS: ClassVar[float] = 10.0
    fewer_frames: ClassVar[str] = "use a shorter duration or a lower framerate"

    @property
    def fps(self) -> float:
        """Frames a second of the animation: ``framerate``, else 10."""
        rate = self.video.framerate if self.video else None
        return float(Fraction(rate)) if rate else self.DEFAULT_FPS

    def frames_asked(self, longest: float) -> tuple[int, str]:
        if self.duration is None:
            return 0, ""  # as long as the source's rest: counted once it is probed
        seconds = min(longest, self.duration)
        return max(1, math.ceil(seconds * self.fps)), f"{seconds:g} s at {self.fps:g} fps"

    @classmethod
    def parse(cls, obj: dict[str, Any], path: str, common: dict[str, Any]) -> GifSpec:
        fields = {
            **common,
            "sizing": sizing(obj, path),
            "video": video_settings(obj, path),
            "logos": logos(obj.get("logo"), f"{path}.logo"),
            "deinterlace": flag(obj.get("deinterlace"), f"{path}.deinterlace"),
        }
        value = obj.get("image_format")
        name = "" if value is None else str(value).lower().strip()
        if name not in ("", "gif", "webp"):
            raise BadQuery(
                f"{path}.image_format must be gif or webp for a gif output, got {value!r}"
            )
        quality = opt_int(obj, "quality", path, minimum=1)
        container_extension(obj, path, "webp" if name == "webp" else "gif")
        return cls(**fields, animated_webp=name == "webp", quality=quality)


# What each output is made as. Anything else is a typo and is refused.
KINDS: dict[Output, type[FormatSpec]] = {
    Output.THUMBNAIL: ThumbnailSpec,
    Output.THUMBNAILS: ThumbnailsSpec,
    Output.MP4: VideoSpec,
    Output.WEBM: VideoSpec,
    Output.GIF: GifSpec,
    Output.METADATA: MetadataSpec,
    **dict.fromkeys(
        (Output.ADVANCED_HLS, Output.ADVANCED_DASH, Output.WEBM_DASH, Output.REPACK, Output.VMAF),
        FormatSpec,
    ),
    **dict.fromkeys((Output.MP3, Output.HLS_AUDIO, Output.FLAC), AudioSpec),
    Output.SPEECH_TO_TEXT: TextSpec,
}


def array_of(output: Output) -> Array:
    """Which status array an output's entries go in."""
    return KINDS[output].array
