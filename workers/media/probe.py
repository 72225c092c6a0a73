"""Read what a source is, once, into a value object (``MediaInfo``)."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from qthumb.workers.failures import MediaError


@dataclass(frozen=True)
class MediaInfo:
    """The video stream of a source. Times are seconds from the stream's first frame."""

    duration: float
    coded_width: int
    coded_height: int
    sample_aspect: Fraction
    start_time: float
    frame_rate: float | None
    codec: str
    rotation: int = 0  # counter-clockwise degrees from the display matrix
    has_audio: bool = False
    # What the header said, when its frames end well before that (``duration`` is then where
    # they really end): a truncated or doctored file.
    claimed_duration: float | None = None
    # The most pixels a frame may decode to (QTHUMB_MAX_SOURCE_PIXELS); readers hand it to the
    # decoder, which refuses a bigger frame before allocating it (a stream that grows mid-way).
    max_pixels: int | None = None

    @property
    def display_width(self) -> int:
        """Width after the sample aspect ratio, before rotation."""
        return max(1, round(self.coded_width * self.sample_aspect))

    @property
    def display_size(self) -> tuple[int, int]:
        """Size as shown: sample aspect ratio, then rotation."""
        if self.rotation in (90, 270):
            return self.coded_height, self.display_width
        return self.display_width, self.coded_height


# The decoder reads only the file it was given: the file protocol alone, and only demuxers of
# single-file containers. Playlists (hls, dash), concat lists, image sequences and the like
# would open other files or URLs named inside the "video".
SAFE_DEMUXERS = ",".join(
    [
        "mov",
        "matroska",
        "avi",
        "flv",
        "mpegts",
        "mpeg",
        "asf",
        "ogg",
        "mxf",
        "dv",
        "nut",
        "ivf",
        "h264",
        "hevc",
        "m4v",
        "mpegvideo",
        "obu",
        "rm",
        "wtv",
        "mp3",
        "aac",
        "wav",
        "flac",
        "w64",
        "caf",
    ]
)
OPEN_OPTIONS = {"protocol_whitelist": "file", "format_whitelist": SAFE_DEMUXERS}


def open_media(path: Path) -> av.container.InputContainer:
    """Open a local media file with the safe options; a clear ``MediaError`` otherwise."""
    try:
        return av.open(str(path), options=dict(OPEN_OPTIONS))
    except av.FFmpegError as exc:
        raise MediaError(
            f"source is not a media file qthumb can read ({_reason(exc)}); playlists (HLS, "
            "DASH), concat lists and image sequences are not accepted"
        ) from None


def probe(path: Path, max_pixels: int | None = None) -> MediaInfo:
    """The source's video stream, its first frame decoded to prove it decodes. With
    ``max_pixels``, a source whose frames are larger fails before anything is decoded."""
    container = open_media(path)
    with container:
        if not container.streams.video:
            kinds: list[str] = sorted({s.type for s in container.streams}) or ["no streams"]
            raise MediaError(
                f"source has no video stream (found: {', '.join(kinds)}); "
                "thumbnails need a video track"
            )
        stream = container.streams.video[0]
        ctx = stream.codec_context
        if not ctx.width or not ctx.height:
            raise MediaError("source video stream has no frame size; the file may be corrupt")
        too_large = _oversize(ctx, max_pixels)
        if too_large:
            raise MediaError(too_large)
        if max_pixels is not None:
            limit_decoder(ctx, max_pixels)
        tb = stream.time_base
        start = float(stream.start_time * tb) if stream.start_time is not None and tb else 0.0
        if stream.duration is not None and tb:
            duration = float(stream.duration * tb)
        elif container.duration is not None:
            duration = container.duration / av.time_base - max(0.0, start)
        else:
            duration = 0.0
        sar = stream.sample_aspect_ratio or ctx.sample_aspect_ratio
        rate = stream.average_rate or stream.guessed_rate
        rotation = _first_frame_rotation(container, stream)
        duration = max(0.0, duration)
        claimed = None
        found = _frames_end(container, stream, duration)
        if found is not None and not duration:
            duration = found  # no length in the header (a live recording, MKV from a pipe)
        elif found is not None and found < duration - max(1.0, 0.05 * duration):
            claimed, duration = duration, found
        return MediaInfo(
            duration=duration,
            coded_width=ctx.width,
            coded_height=ctx.height,
            sample_aspect=Fraction(sar) if sar and sar > 0 else Fraction(1),
            start_time=start,
            frame_rate=float(rate) if rate else None,
            codec=ctx.name,
            rotation=rotation,
            has_audio=bool(container.streams.audio),
            claimed_duration=claimed,
            max_pixels=max_pixels,
        )


def limit_decoder(ctx: av.VideoCodecContext, max_pixels: int) -> None:
    """FFmpeg's own guard: the decoder fails a frame of more pixels instead of allocating it."""
    ctx.options = {**ctx.options, "max_pixels": str(max_pixels)}


def undecodable(ctx: av.VideoCodecContext, max_pixels: int | None, exc: Exception) -> MediaError:
    """What a decoder's failure means: frames that grew past the limit mid-stream (the
    decoder's context then holds their size, and ``limit_decoder`` made it refuse them), or
    else a source the decoder cannot read."""
    return MediaError(_oversize(ctx, max_pixels) or f"the video could not be decoded ({exc})")


def _oversize(ctx: av.VideoCodecContext, max_pixels: int | None) -> str | None:
    """Why frames of ``ctx``'s size are refused, or None when they are within the limit."""
    pixels = ctx.width * ctx.height
    if max_pixels is None or pixels <= max_pixels:
        return None
    return (
        f"source frames are {ctx.width}x{ctx.height}, {pixels} pixels; the limit is "
        f"{max_pixels} (QTHUMB_MAX_SOURCE_PIXELS)"
    )


def _frames_end(
    container: av.container.InputContainer, stream: av.VideoStream, claimed: float
) -> float | None:
    """Seconds from the first frame to the end of the last video packet, found by seeking to
    where the header says the stream ends and reading packets (not decoding) to the real end.
    A header that claims hours for a file of seconds would otherwise plan hours of frames."""
    tb = stream.time_base
    if not tb:
        return None
    first = stream.start_time or 0
    target = first + int(claimed / tb)
    try:
        container.seek(target, stream=stream, backward=True)
    except (av.FFmpegError, OverflowError):
        try:
            container.seek(first, stream=stream, backward=True)
        except av.FFmpegError:
            return None
    end: int | None = None
    try:
        for packet in container.demux(stream):
            if packet.pts is not None and packet.size:
                last = packet.pts + max(0, packet.duration or 0)
                end = last if end is None else max(end, last)
    except av.FFmpegError:
        pass  # a damaged tail: what was read stands
    return None if end is None else max(0.0, float((end - first) * tb))


def _first_frame_rotation(container: av.container.InputContainer, stream: av.VideoStream) -> int:
    """The display matrix travels with decoded frames; decoding the first one also proves the
    stream decodes at all, so a corrupt file fails here with a clear error."""
    try:
        for frame in container.decode(stream):
            return round(frame.rotation or 0) % 360
    except av.FFmpegError as exc:
        raise MediaError(f"the video stream cannot be decoded ({_reason(exc)})") from None
    raise MediaError("the video stream has no frames")


def _reason(exc: Exception) -> str:
    return str(getattr(exc, "strerror", None) or exc)
