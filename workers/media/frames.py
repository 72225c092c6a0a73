"""Exact frames from one open container, in-process (PyAV): no process start per frame.

The frame "at t" is the frame whose display span holds ``t``: the last frame that starts at or
before ``t``, never the keyframe before it. Times are seconds from the stream's first frame, so
sources with a non-zero start time (MPEG-TS, edited MP4s) land where people expect.

``frames_at(times)`` plans one pass over a sorted list of times: for each time it either keeps
decoding forward (when the keyframe before ``t`` is not ahead of the decoder) or seeks to that
keyframe (when it is: decoding the frames in between would cost more). Dense times therefore
become one straight decode pass and sparse times one seek each, with no tuning knob. With
``keyframes_only`` each time maps to the keyframe before it and the decoder skips every other
frame, which runs near the keyframe-decode floor.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av

from qthumb.workers.failures import MediaError
from qthumb.workers.media.picture import Picture
from qthumb.workers.media.probe import MediaInfo, limit_decoder, open_media, undecodable


@dataclass
class _Cursor:
    """Where decoding stands: ``best`` is the last frame at or before the last target,
    ``ahead`` the frame after it when already decoded."""

    decoded: Iterator[av.VideoFrame]
    ahead: av.VideoFrame | None
    exhausted: bool
    best: av.VideoFrame | None = None

    @property
    def position(self) -> int | None:
        frame = self.ahead if self.ahead is not None else self.best
        return None if frame is None else frame.pts

    @property
    def picked(self) -> av.VideoFrame | None:
        # Nothing at or before the target happens only at the stream's start.
        return self.best if self.best is not None else self.ahead


@dataclass(frozen=True, order=True)
class Keyframe:
    pts: int  # when it is shown
    seek_to: int  # the timestamp to seek to for it (the index's decode time)


def _holds(frame: av.VideoFrame, target: int, durations_hold: bool = True) -> bool:
    """Whether ``frame`` is known, from its duration, to show at ``target``. In a stream of
    variable frame rate the durations muxers write are not to be trusted (a frame followed
    half a duration later by the next): there, only decoding the next frame tells."""
    pts, duration = frame.pts or 0, frame.duration or 0
    return durations_hold and duration > 0 and pts <= target < pts + duration


class VideoReader:
    def __init__(
        self,
        path: Path,
        info: MediaInfo,
        threads: int = 0,
        keyframes: list[Keyframe] | None = None,
    ) -> None:
        """``keyframes``: what another reader of the same file found (``keyframes()``), so a
        source without an index is not read through once a reader."""
        self.info, self.path, self.threads = info, path, threads
        self._open()
        average, guessed = self.stream.average_rate, self.stream.guessed_rate
        # Constant rate (the average is the nominal rate): frame durations can be believed.
        self._constant_rate = bool(
            average and guessed and abs(float(average) - float(guessed)) <= 0.01 * float(guessed)
        )
        self.time_base: Fraction = self.stream.time_base or Fraction(1, 90000)
        self.first_pts = self.stream.start_time or 0
        self._keyframes: list[Keyframe] | None = keyframes
        rate = self.stream.average_rate or self.stream.guessed_rate
        # One nominal frame in stream ticks (a keyframe shows for about this long).
        self._frame_ticks = round(1 / (rate * self.time_base)) if rate else 1
        # Within this many ticks of a target every frame is decoded: more than the decoder's
        # reorder delay plus its frame threads, so the frame showing at the target is never
        # among the skipped ones.
        self._near = 16 * self._frame_ticks
        self._key_pts: list[int] = [k.pts for k in keyframes or []]

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

    def pts(self, seconds: float) -> int:
        return self.first_pts + math.floor(max(0.0, seconds) / self.time_base + 1e-6)

    def keyframes(self) -> list[Keyframe]:
        """Keyframes in order: from the container index when it has one (MP4, MOV: free),
        else from one demux pass that reads packet flags without decoding.

        Index timestamps are decode times; a keyframe's presentation time is later by the
        stream's reorder delay (B-frames), read once from its first keyframe packet.
        """
        if self._keyframes is None:
            decode_times = [e.timestamp for e in self.stream.index_entries if e.is_keyframe]
            if decode_times:
                delay = self._reorder_delay(decode_times[0])
                keys = [Keyframe(pts=ts + delay, seek_to=ts) for ts in decode_times]
            else:
                self.container.seek(self.first_pts, stream=self.stream, backward=True)
                keys = [
                    Keyframe(pts=p.pts, seek_to=p.dts if p.dts is not None else p.pts)
                    for p in self.container.demux(self.stream)
                    if p.is_keyframe and p.pts is not None
                ]
            self._keyframes = sorted(keys)
            self._key_pts = [k.pts for k in self._keyframes]
        return self._keyframes

    def _reorder_delay(self, first_key: int) -> int:
        self.container.seek(first_key, stream=self.stream, backward=True)
        for packet in self.container.demux(self.stream):
            if packet.is_keyframe and packet.pts is not None and packet.dts is not None:
                return packet.pts - packet.dts
        return 0

    def _key_index(self, target: int) -> int:
        """Index of the last keyframe shown at or before ``target`` (-1: none)."""
        self.keyframes()
        return bisect.bisect_right(self._key_pts, target) - 1

    def keyframe_groups(self, times: Sequence[float]) -> list[list[int]]:
        """Indexes of ``times`` (not decreasing) grouped by the keyframe each falls on, in
        order: what ``keyframes_only`` decodes once a group. Empty when the stream has no
        keyframe to group by."""
        if not self.keyframes():
            return []
        groups: list[list[int]] = []
        last = None
        for n, t in enumerate(times):
            key = max(0, self._key_index(self.pts(t)))
            if key != last:
                groups.append([])
                last = key
            groups[-1].append(n)
        return groups

    def frame_at(self, seconds: float) -> Picture:
        """The frame showing at ``seconds``; past the end, the last frame."""
        return next(self.frames_at([seconds]))

    def frames_at(self, times: Sequence[float], keyframes_only: bool = False) -> Iterator[Picture]:
        """One picture per time (times must not decrease), in order."""
        targets = [self.pts(t) for t in times]
        try:
            # Read the keyframes first: finding them may move the demuxer, never mid-walk.
            keys = self.keyframes()
            if keyframes_only and keys:
                yield from self._keyframe_walk(targets)
            else:
                yield from self._walk(targets)
        except av.FFmpegError as exc:  # whatever a damaged source does to a seek or a decode
            raise undecodable(self.stream.codec_context, self.info.max_pixels, exc) from None

    def _keyframe_walk(self, targets: list[int]) -> Iterator[Picture]:
        """The keyframe before each target: one seek and one keyframe decode per distinct
        keyframe, and nothing else decoded."""
        keys = self.keyframes()
        last: tuple[int, Picture] | None = None
        for target in targets:
            i = max(0, self._key_index(target))
            if last is None or last[0] != i:
                frame = self._decode_keyframe(keys[i])
                if frame is None:
                    raise MediaError("no keyframe could be decoded; the source may be corrupt")
                last = (i, self._picture(frame))
            yield last[1]

    def _decode_keyframe(self, key: Keyframe) -> av.VideoFrame | None:
        """Decode the keyframe alone: send its packet, then drain the decoder, so it does not
        wait for the frames that reordering (B-frames) would otherwise make it wait for."""
        self.container.seek(key.seek_to, stream=self.stream, backward=True)
        ctx = self.stream.codec_context
        try:
            for packet in self.container.demux(self.stream):
                # The seek may land on the keyframe before (index times are decode times):
                # demux on, without decoding, to the one wanted.
                if packet.is_keyframe and packet.size and (packet.pts or 0) >= key.pts:
                    frames = [*ctx.decode(packet), *ctx.decode(None)]
                    return frames[0] if frames else None
        except av.FFmpegError as exc:
            raise undecodable(self.stream.codec_context, self.info.max_pixels, exc) from None
        return None

    def _on_keyframe(self, target: int, next_target: int | None) -> av.VideoFrame | None:
        """The keyframe, decoded alone, when it is the frame showing at ``target`` and the next
        target lies in a later GOP (so no decoding would be shared with it)."""
        i = self._key_index(target)
        if i < 0 or (next_target is not None and self._key_index(next_target) == i):
            return None
        key = self.keyframes()[i]
        if target - key.pts >= self._frame_ticks:
            return None
        frame = self._decode_keyframe(key)
        if (
            frame is not None
            and frame.pts is not None
            and _holds(frame, target, self._constant_rate)
        ):
            return frame
        return None

    def _walk(self, targets: list[int]) -> Iterator[Picture]:
        cursor: _Cursor | None = None
        for n, target in enumerate(targets):
            if (
                cursor is not None
                and cursor.best is not None
                and _holds(cursor.best, target, self._constant_rate)
            ):
                yield self._picture(cursor.best)  # the same frame again (interval below a frame)
                continue
            if cursor is None or self._seek_pays(cursor.position, target):
                following = targets[n + 1] if n + 1 < len(targets) else None
                alone = self._on_keyframe(target, following)
                if alone is not None:
                    cursor = None  # the decoder was drained
                    yield self._picture(alone)
                    continue
                cursor = self._cursor(target)
            skipped = self._advance(cursor, target, skip=True)
            picked = cursor.picked
            if (
                skipped
                and picked is not None
                and not cursor.exhausted
                and not _holds(picked, target, self._constant_rate)
            ):
                # A frame skipped on the way may have been the one showing: do it exactly.
                cursor = self._cursor(target)
                self._advance(cursor, target, skip=False)
                picked = cursor.picked
            if picked is None:
                raise MediaError("no video frame could be decoded; the source may be corrupt")
            yield self._picture(picked)

    def _cursor(self, target: int) -> _Cursor:
        decoded, first = self._seek(target)
        return _Cursor(decoded=decoded, ahead=first, exhausted=first is None)

    def _advance(self, cursor: _Cursor, target: int, skip: bool) -> bool:
        """Decode forward to the frame showing at ``target``. Far from it, frames no other
        frame refers to (most B-frames) are not decoded at all: they cannot be the answer.
        Returns whether any decoding was done that way."""
        ctx = self.stream.codec_context
        skipped = False
        try:
            while True:
                if cursor.ahead is None:
                    if cursor.exhausted:
                        break
                    position = cursor.best.pts if cursor.best is not None else None
                    far = skip and position is not None and target - position > self._near
                    ctx.skip_frame = "NONREF" if far else "DEFAULT"
                    skipped = skipped or far
                    cursor.ahead = self._next(cursor.decoded, cursor.best)
                    if cursor.ahead is None:
                        cursor.exhausted = True
                        break
                if (cursor.ahead.pts or 0) > target:
                    break
                cursor.best, cursor.ahead = cursor.ahead, None
                if _holds(cursor.best, target, self._constant_rate):
                    # Its duration says it shows at the target: no need to decode the next
                    # frame (with B-frames that can mean decoding several).
                    break
        finally:
            ctx.skip_frame = "DEFAULT"
        return skipped

    def _seek_pays(self, position: int | None, target: int) -> bool:
        """Seek when the keyframe before ``target`` lies beyond what is already decoded."""
        if position is None:
            return True
        i = self._key_index(target)
        return i >= 0 and self.keyframes()[i].pts > position

    def _seek(self, target: int) -> tuple[Iterator[av.VideoFrame], av.VideoFrame | None]:
        """Decoding from the keyframe at or before ``target``, and its first frame."""
        back = 0
        second = round(1 / self.time_base)
        while True:
            seek_to = max(target - back, self.first_pts)
            self.container.seek(seek_to, stream=self.stream, backward=True)
            decoded = self._frames()
            try:
                first = self._next(decoded, None)
            except MediaError:  # a guessed offset in frames past decoding (damaged, too large)
                first = None
            if first is not None and (first.pts or 0) <= target:
                return decoded, first
            if seek_to <= self.first_pts:
                # Even a seek to the very start landed after it (MPEG-TS and other containers
                # without an index seek by guessing a byte offset): read from the beginning.
                self._reopen()
                decoded = self._frames()
                return decoded, self._next(decoded, None)
            # The demuxer landed after the target (a sparse or missing index): seek earlier.
            back = max(second, back * 4)

    def _open(self) -> None:
        self.container = open_media(self.path)
        self.stream = self.container.streams.video[0]
        ctx = self.stream.codec_context
        ctx.thread_type = "AUTO"
        if self.threads:
            ctx.thread_count = self.threads
        if self.info.max_pixels is not None:
            limit_decoder(ctx, self.info.max_pixels)

    def _reopen(self) -> None:
        """The container again from its first byte, with a fresh decoder."""
        self.container.close()
        self._open()

    def _frames(self) -> Iterator[av.VideoFrame]:
        for frame in self.container.decode(self.stream):
            if frame.pts is not None:
                yield frame

    def _next(
        self, decoded: Iterator[av.VideoFrame], best: av.VideoFrame | None
    ) -> av.VideoFrame | None:
        try:
            return next(decoded)
        except StopIteration:
            return None
        except av.FFmpegError as exc:
            if best is None:
                raise undecodable(self.stream.codec_context, self.info.max_pixels, exc) from None
            return None  # a damaged tail: keep what was decoded

    def _picture(self, frame: av.VideoFrame) -> Picture:
        rotation = round(frame.rotation or 0) % 360  # counter-clockwise, as PIL turns
        display_w, display_h = self.info.display_width, self.info.coded_height
        if rotation in (90, 270):
            display_w, display_h = display_h, display_w
        seconds = float(((frame.pts or 0) - self.first_pts) * self.time_base)
        return Picture(
            frame=frame, time=seconds, display_size=(display_w, display_h), rotation=rotation
        )
