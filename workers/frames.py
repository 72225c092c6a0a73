"""Exact frames from one open container, in-process (PyAV): no process start per frame.

``frame_at(t)`` returns the frame whose display span holds ``t`` (the last frame that starts at
or before ``t``), not the keyframe before it: it seeks to the keyframe at or before ``t`` and
decodes forward. Times are seconds from the stream's first frame, so sources with a non-zero
start time (MPEG-TS, edited MP4s) land where people expect.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
from PIL import Image

from workers.failures import MediaError
from workers.probe import MediaInfo

_ROTATIONS = {
    90: Image.Transpose.ROTATE_90,
    180: Image.Transpose.ROTATE_180,
    270: Image.Transpose.ROTATE_270,
}


@dataclass(frozen=True)
class Picture:
    """A decoded frame as an RGB image in display orientation.

    ``display_size`` is the size it is meant to be seen at (sample aspect applied); ``image``
    may differ from it when pixels are not square.
    """

    image: Image.Image
    time: float
    display_size: tuple[int, int]


class VideoReader:
    def __init__(self, path: Path, info: MediaInfo, threads: int = 0) -> None:
        self.info = info
        try:
            self.container = av.open(str(path), options={"protocol_whitelist": "file"})
        except av.FFmpegError as exc:
            raise MediaError(f"source cannot be opened for decoding ({exc})") from None
        self.stream = self.container.streams.video[0]
        ctx = self.stream.codec_context
        ctx.thread_type = "AUTO"
        if threads:
            ctx.thread_count = threads
        self.time_base: Fraction = self.stream.time_base or Fraction(1, 90000)
        self.first_pts = self.stream.start_time or 0

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self.container.close()

    def _pts(self, seconds: float) -> int:
        return self.first_pts + math.floor(seconds / self.time_base + 1e-6)

    def frame_at(self, seconds: float) -> Picture:
        """The frame showing at ``seconds``; past the end, the last frame."""
        target = self._pts(max(0.0, seconds))
        back = 0.0
        while True:
            seek_to = self._pts(max(0.0, seconds - back))
            frame = self._decode_until(seek_to, target)
            if frame is not None:
                return self._picture(frame)
            if seek_to <= self.first_pts:
                raise MediaError("no video frame could be decoded; the source may be corrupt")
            # The demuxer landed after the target (a sparse or missing index): seek earlier.
            back = max(1.0, back * 4)

    def _decode_until(self, seek_to: int, target: int) -> av.VideoFrame | None:
        """Seek to the keyframe at or before ``seek_to``, decode to the frame holding ``target``.

        ``None`` when the first decoded frame already starts after ``target``.
        """
        self.container.seek(max(seek_to, self.first_pts), stream=self.stream, backward=True)
        best: av.VideoFrame | None = None
        at_start = seek_to <= self.first_pts
        try:
            for frame in self.container.decode(self.stream):
                if frame.pts is None:
                    continue
                if frame.pts > target:
                    # From the very start, the first frame is the answer even if it starts late.
                    return frame if best is None and at_start else best
                best = frame
        except av.FFmpegError as exc:
            if best is None:
                raise MediaError(f"the video could not be decoded ({exc})") from None
        return best

    def _picture(self, frame: av.VideoFrame) -> Picture:
        image: Image.Image = frame.to_image()  # type: ignore[no-untyped-call]
        rotation = round(frame.rotation or 0) % 360  # counter-clockwise, as PIL turns
        display_w, display_h = self.info.display_width, self.info.coded_height
        if rotation in _ROTATIONS:
            image = image.transpose(_ROTATIONS[rotation])
            if rotation in (90, 270):
                display_w, display_h = display_h, display_w
        seconds = float(((frame.pts or 0) - self.first_pts) * self.time_base)
        return Picture(image=image, time=seconds, display_size=(display_w, display_h))
