"""What a URL asks for, typed: a frame (``/v1/thumbnail.*``), a storyboard
(``/v1/storyboard.*``) or an animation (``/v1/animated.*``), read from its query string with
errors that name the parameter; and the messages the API and its frame server exchange
(pickled over a connection only the API can open).

A storyboard and an animation are the same outputs a task makes (``thumbnails`` with
``sprite: 1, storyboard: 1``; ``gif``): ``format_fields`` is the ``query.format[]`` entry a
task would send for them, parsed by the same parser, so what a URL gets is byte for byte what
that task stores.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from qthumb.app.api.request_values import ascii_decimal, ascii_int
from qthumb.app.errors import QencodeError
from qthumb.app.qencode.fields.values import IMAGE_EXTENSIONS, ROTATIONS, colour, placeholder
from qthumb.app.qencode.query import MAX_SIDE, ImageFormat, Placeholder, ResizeMode, upload_id

# An on-demand image is for a page or a player: 4096x4096 at most (a 64-Mpx one, which a task
# may make, would cost ~200 MB of memory a request, asked for by anyone holding the token).
MAX_PIXELS = 4096 * 4096
# Storyboards (Mux's shape): tiles 256 px wide, 10 a row, about 100 of them when no interval
# is given, at one of these intervals (seconds).
STORYBOARD_WIDTH, STORYBOARD_COLUMNS, STORYBOARD_TILES = 256, 10, 100
# Tiles one storyboard by URL may have: all of it is made at once and kept in memory (~10 KB a
# 256 px tile, well within QTHUMB_ON_DEMAND_RESULT_CACHE_BYTES' 64 MB default).
MAX_STORYBOARD_TILES = 1000
NICE_INTERVALS = (0.5, 1, 2, 3, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1800, 3600)
# Animations (Mux's defaults and bounds): 5 s from the start, 15 frames a second, 320 px wide
# at most when no size is given; 10 s, 30 fps and 640 px a side at most.
ANIMATED_SECONDS, ANIMATED_FPS, ANIMATED_WIDTH = 5.0, 15.0, 320
MAX_ANIMATED_SECONDS, MAX_ANIMATED_FPS, MAX_ANIMATED_SIDE = 10.0, 30.0, 640


class FrameRequestError(QencodeError):
    """A request that cannot be answered (error 1), with the HTTP status to answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message, http_status=status)


class ServerStopping(FrameRequestError):
    """The API is stopping: it takes no new frame (503)."""

    def __init__(self) -> None:
        super().__init__("the server is stopping", status=503)


class OnDemandBusy(FrameRequestError):
    """Every on-demand slot and queue place is taken: 503 with ``Retry-After``, at once."""

    def __init__(self, waiting: int) -> None:
        super().__init__(
            f"{waiting} frames on demand are being made or waiting: retry shortly", status=503
        )

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "1"}


@dataclass(frozen=True)
class FrameRequest:
    """``/v1/thumbnail.<ext>?time&width&height&fit&pad_color&rotate&placeholder``."""

    seconds: float | None  # `time=12.5`
    fraction: float | None  # `time=50%`, as 0.5
    width: int | None
    height: int | None
    fit: ResizeMode
    image_format: ImageFormat
    rotate: int = 0
    pad_color: tuple[int, int, int] = (0, 0, 0)
    placeholder: Placeholder | None = None

    def key(self, token: str) -> str:
        return f"frame|{token}|{self!r}"


@dataclass(frozen=True)
class StoryboardRequest:
    """``/v1/storyboard.<vtt|json|jpg|webp>?width&columns&interval&format&sheet``: the sheets
    (``image_format``) are the same whichever piece is asked for; ``sheet`` picks one."""

    width: int
    columns: int
    interval: float | None  # None: about STORYBOARD_TILES tiles for the duration
    image_format: ImageFormat
    bif: bool = False  # made with its Roku BIF too (``/v1/trickplay.bif``)

    def key(self, token: str) -> str:
        return f"storyboard|{token}|{self!r}"

    def query(self, token: str) -> str:
        """The query string every piece of this storyboard is asked for with."""
        params: dict[str, Any] = {"task_token": token, "width": self.width, "columns": self.columns}
        if self.interval is not None:
            params["interval"] = f"{self.interval:g}"
        if self.image_format is not ImageFormat.JPG:
            params["format"] = self.image_format.value
        return urlencode(params)

    def format_fields(self, duration: float) -> dict[str, Any]:
        """The ``query.format[]`` entry of the task that stores the same files."""
        return {
            "output": "thumbnails",
            "sprite": 1,
            "storyboard": 1,
            "width": self.width,
            "columns": self.columns,
            "image_format": self.image_format.value,
            "interval": self.interval or default_interval(duration),
            **({"trickplay": ["bif"]} if self.bif else {}),
        }


@dataclass(frozen=True)
class AnimatedRequest:
    """``/v1/animated.<gif|webp>?start&end&fps&width&height``."""

    start: float
    end: float | None  # None: ANIMATED_SECONDS after start
    fps: float
    width: int | None
    height: int | None
    webp: bool

    def key(self, token: str) -> str:
        return f"animated|{token}|{self!r}"

    def format_fields(self, duration: float, display: tuple[int, int]) -> dict[str, Any]:
        """The ``gif`` format entry of the task that stores the same file."""
        end = min(self.end if self.end is not None else self.start + ANIMATED_SECONDS, duration)
        if end <= self.start:
            raise FrameRequestError(
                f"start {self.start:g} s is at or past the source's end ({duration:g} s)"
            )
        fields: dict[str, Any] = {
            "output": "gif",
            "start_time": self.start,
            "duration": end - self.start,
            "framerate": f"{self.fps:g}",
        }
        if self.width is None and self.height is None:
            fields["width"] = min(ANIMATED_WIDTH, display[0])
        else:
            fields.update(
                {k: v for k, v in (("width", self.width), ("height", self.height)) if v is not None}
            )
        if self.webp:
            fields["image_format"] = "webp"
        return fields


def default_interval(duration: float) -> float:
    """The nicest interval giving at most about STORYBOARD_TILES tiles."""
    for interval in NICE_INTERVALS:
        if duration / interval <= STORYBOARD_TILES:
            return float(interval)
    return float(NICE_INTERVALS[-1])


Request = FrameRequest | StoryboardRequest | AnimatedRequest


@dataclass(frozen=True)
class RenderedFrame:
    """An encoded answer: a frame, a storyboard's piece or an animation."""

    data: bytes
    content_type: str
    etag: str
    time: float | None = None  # a frame's own time in the source
    placeholder: str | None = None  # a frame's BlurHash/ThumbHash, when asked for

    @classmethod
    def of(cls, data: bytes, content_type: str, **more: Any) -> RenderedFrame:
        etag = '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
        return cls(data, content_type, etag, **more)


@dataclass(frozen=True)
class Storyboard:
    """All of a storyboard, made at once: its VTT and JSON (naming the sheets by URL,
    relative to themselves) and its sheets in order."""

    vtt: RenderedFrame
    json: RenderedFrame
    sheets: tuple[RenderedFrame, ...]
    bif: RenderedFrame | None = None  # when asked for (``StoryboardRequest.bif``)


# Reading a URL's query string.


def parse_time(value: str | None) -> tuple[float | None, float | None]:
    """``12.5`` seconds or ``50%``; none: the middle, as Mux's image API does."""
    if value is None or value == "":
        return None, 0.5
    text = value.strip()
    try:
        if text.endswith("%"):
            return None, ascii_decimal("time", text[:-1], 0, 100, " of seconds or a percent") / 100
        return ascii_decimal("time", text, 0, 10**7, " of seconds (12.5) or a percent (50%)"), None
    except ValueError as exc:
        raise FrameRequestError(str(exc)) from None


def parse_side(value: str | None, name: str, most: int = MAX_SIDE) -> int | None:
    if value is None or value == "":
        return None
    try:
        return ascii_int(name, value, 1, most)
    except ValueError as exc:
        raise FrameRequestError(str(exc)) from None


def parse_seconds(value: str | None, name: str, most: float) -> float | None:
    if value is None or value == "":
        return None
    try:
        return ascii_decimal(name, value, 0, most)
    except ValueError as exc:
        raise FrameRequestError(str(exc)) from None


def _choice(params: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = params.get(name) or default
    if value not in allowed:
        raise FrameRequestError(f"{name} must be {' or '.join(allowed)}, not {value[:40]!r}")
    return value


def _read(call: Any, *args: Any) -> Any:
    """A query-field reader's ``BadQuery``, named for the URL's parameter."""
    try:
        return call(*args)
    except QencodeError as exc:
        raise FrameRequestError(exc.message) from None


def frame_request(ext: str, params: Mapping[str, str]) -> FrameRequest:
    seconds, fraction = parse_time(params.get("time"))
    rotate = _choice(params, "rotate", "0", tuple(str(r) for r in ROTATIONS))
    return FrameRequest(
        seconds=seconds,
        fraction=fraction,
        width=parse_side(params.get("width"), "width"),
        height=parse_side(params.get("height"), "height"),
        fit=ResizeMode(_choice(params, "fit", "scale", tuple(m.value for m in ResizeMode))),
        image_format=IMAGE_EXTENSIONS[ext],
        rotate=int(rotate),
        pad_color=_read(colour, params.get("pad_color"), "pad_color"),
        placeholder=_read(placeholder, params.get("placeholder"), "placeholder"),
    )


def storyboard_request(ext: str, params: Mapping[str, str]) -> StoryboardRequest:
    sheets = ext if ext in ("jpg", "webp") else params.get("format") or "jpg"
    if sheets not in ("jpg", "webp"):
        raise FrameRequestError(f"format must be jpg or webp, not {sheets[:40]!r}")
    columns = parse_side(params.get("columns"), "columns", most=1000)
    interval = parse_seconds(params.get("interval"), "interval", most=3600.0)
    if interval is not None and interval < 0.1:
        raise FrameRequestError("interval must be at least 0.1 s")
    return StoryboardRequest(
        width=parse_side(params.get("width"), "width", most=1920) or STORYBOARD_WIDTH,
        columns=columns or STORYBOARD_COLUMNS,
        interval=interval,
        image_format=IMAGE_EXTENSIONS[sheets],
    )


def sheet_index(params: Mapping[str, str]) -> int:
    try:
        return ascii_int("sheet", params.get("sheet") or "0", 0, MAX_STORYBOARD_TILES)
    except ValueError as exc:
        raise FrameRequestError(str(exc)) from None


def animated_request(ext: str, params: Mapping[str, str]) -> AnimatedRequest:
    start = parse_seconds(params.get("start"), "start", most=10**7) or 0.0
    end = parse_seconds(params.get("end"), "end", most=10**7)
    if end is not None and end <= start:
        raise FrameRequestError(f"end must be after start ({start:g} s)")
    if end is not None and end - start > MAX_ANIMATED_SECONDS:
        raise FrameRequestError(f"an animation is {MAX_ANIMATED_SECONDS:g} s long at most")
    fps = parse_seconds(params.get("fps"), "fps", most=MAX_ANIMATED_FPS)
    if fps is not None and fps < 1:
        raise FrameRequestError(f"fps must be between 1 and {MAX_ANIMATED_FPS:g}")
    return AnimatedRequest(
        start=start,
        end=end,
        fps=fps or ANIMATED_FPS,
        width=parse_side(params.get("width"), "width", most=MAX_ANIMATED_SIDE),
        height=parse_side(params.get("height"), "height", most=MAX_ANIMATED_SIDE),
        webp=ext == "webp",
    )


def upload_owners(source: str, upload_owner: Any) -> dict[str, str | None]:
    """For a ``tus:<uuid>`` source, whose upload it is (the child has no store to ask)."""
    uid = upload_id(source)
    return {} if uid is None else {uid: upload_owner(uid)}


# What the API asks the frame server, and what it answers.


@dataclass(frozen=True)
class RenderAsk:
    """What ``request`` asks for, of the task's ``source``."""

    token: str
    source: str
    request: Request
    uploads: dict[str, str | None]  # upload_owners(source)
    api_key: str  # the task's: which credentials its source may be read with


@dataclass(frozen=True)
class SourceAsk:
    """The task's source as a file on this machine (fetched into the cache if need be)."""

    token: str
    source: str
    uploads: dict[str, str | None]
    api_key: str


@dataclass(frozen=True)
class SourceFile:
    path: str


@dataclass(frozen=True)
class Failed:
    """No answer: the HTTP status to answer with, and why."""

    status: int
    message: str


Ask = RenderAsk | SourceAsk
Answer = RenderedFrame | Storyboard | SourceFile | Failed
