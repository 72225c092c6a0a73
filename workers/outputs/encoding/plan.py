"""What the encoder child (``workers.outputs.encoding.encode``) makes, as values: built by pure
functions (``workers.outputs.video``, ``workers.outputs.gif``), tested by equality, and passed
to the child as JSON. The child imports this module: it needs nothing of qthumb's settings or
query language (``fitted``, which reads a query's sizing, is in ``workers.media.imaging``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the parent's side: the child never imports it
    from qthumb.workers.media.logos import LoadedLogo


@dataclass(frozen=True)
class AudioPlan:
    codec: str  # aac | libopus
    bit_rate: int  # bits per second


@dataclass(frozen=True)
class EncodePlan:
    source: str
    out: str
    start: float  # seconds from the source's first frame
    duration: float
    width: int
    height: int
    codec: str  # libx264 | libvpx-vp9 | libvpx | gif | libwebp
    pix_fmt: str = "yuv420p"
    rotation: int = 0  # counter-clockwise degrees, as the probe reads the display matrix
    turn: int = 0  # the format's ``rotate``: clockwise degrees, after the display rotation
    fps: str | None = None  # the fps filter's rate; None keeps the source's timing
    scale_flags: str | None = None  # e.g. lanczos
    codec_options: dict[str, str] = field(default_factory=dict)  # crf, preset, deadline…
    bit_rate: int | None = None  # bits per second; None with crf in codec_options
    gop: int | None = None  # frames between keyframes at most
    keyframe_every: float | None = None  # seconds: a keyframe at each multiple of it
    container_options: dict[str, str] = field(default_factory=dict)  # movflags, loop
    audio: AudioPlan | None = None
    palette: bool = False  # GIF: palettegen + paletteuse, two passes
    max_pixels: int | None = None  # the decoder refuses bigger frames (QTHUMB_MAX_SOURCE_PIXELS)
    logos: tuple[LogoPlan, ...] = ()  # drawn over the scaled frames, in order
    mute: bool = False  # the audio track holds silence of the source audio's length
    # ``resize_mode`` (``workers.media.imaging.fit``): scaled to ``scaled`` first, then cut to
    # (``crop``) or bordered to (``pad``, in ``pad_color``) width x height, the scaled picture's
    # corner at ``offset`` on the output.
    fit: str = "scale"
    scaled: tuple[int, int] | None = None
    offset: tuple[int, int] = (0, 0)
    pad_color: str = "000000"
    deinterlace: bool = False  # bwdif on every frame before the other filters
    tone_map: bool = False  # PQ/HLG frames tone-mapped to SDR BT.709 (hdr_to_sdr; gif always)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> EncodePlan:
        raw: dict[str, Any] = json.loads(text)
        audio = raw.pop("audio", None)
        logos = tuple(LogoPlan(**logo) for logo in raw.pop("logos", ()))
        scaled = raw.pop("scaled", None)
        raw["offset"] = tuple(raw.get("offset", (0, 0)))
        return cls(
            **raw,
            audio=AudioPlan(**audio) if audio else None,
            logos=logos,
            scaled=tuple(scaled) if scaled else None,
        )

    def scale_steps(self, flags: str) -> list[tuple[str, str]]:
        """The filters that size each frame: scale, then crop or pad to the output."""
        if self.scaled is None or self.fit == "scale":
            return [("scale", f"{self.width}:{self.height}{flags}")]
        scale = ("scale", f"{self.scaled[0]}:{self.scaled[1]}{flags}")
        x, y = self.offset
        if self.fit == "crop":
            return [scale, ("crop", f"{self.width}:{self.height}:{-x}:{-y}")]
        return [scale, ("pad", f"{self.width}:{self.height}:{x}:{y}:color=0x{self.pad_color}")]


@dataclass(frozen=True)
class LogoPlan:
    """A watermark ready to draw: an RGBA PNG with its opacity applied, where it goes
    (negative: from the right or bottom edge) and when, in seconds of the output."""

    path: str
    x: int = 0
    y: int = 0
    start: float | None = None
    end: float | None = None

    def overlay_args(self) -> str:
        x = f"{self.x}" if self.x >= 0 else f"W-w{self.x}"
        y = f"{self.y}" if self.y >= 0 else f"H-h{self.y}"
        args = f"x={x}:y={y}:format=auto"
        if self.start is not None or self.end is not None:
            shown = f"gte(t,{self.start or 0:g})"
            if self.end is not None:
                shown += f"*lt(t,{self.end:g})"
            args += f":enable='{shown}'"
        return args


def logo_plans(logos: Sequence[LoadedLogo]) -> tuple[LogoPlan, ...]:
    """The plans of loaded logos: where and when each is drawn, in seconds of the output."""
    plans = []
    for loaded in logos:
        start, length = loaded.logo.start_time, loaded.logo.duration
        end = None if length is None else (start or 0.0) + length
        plans.append(LogoPlan(str(loaded.path), loaded.logo.x, loaded.logo.y, start, end))
    return tuple(plans)
