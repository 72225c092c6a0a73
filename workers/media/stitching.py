"""``query.stitch``'s pieces joined into one source file, which every output then reads as it
reads a source: one timeline, so thumbnail times, intervals, sprites and videos need nothing
of their own.

Each piece's part (``start_time``, ``duration``) is decoded with the colours, rotation and
fields a thumbnail gets (``workers.media.imaging.render``) and drawn upright on the first
piece's shown size (another size is fitted inside it, bordered in black, as a player letterboxes
it), every frame at its own time after the pieces before it. The file is H.264 in Matroska,
close to lossless (x264 ``ultrafast``, CRF 10, a keyframe a second: an exact seek decodes at most
a second), tagged BT.709; the audio, when any piece has some, PCM at 48 kHz, each piece's part
exactly its length (silence where a piece has none), so sound stays with its pictures.

It runs in a child process (``python -I -m qthumb.workers.media.stitching PLAN_JSON``, started by
``workers.tasks.stitched_source`` through ``workers.outputs.encoding.run``): a deadline or the
memory limit ends it alone. It prints ``out_time_us=…`` lines as the encoder does.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from qthumb.app.qencode.fields.values import ResizeMode, Sizing
from qthumb.workers.child_protocol import Progress, child_main
from qthumb.workers.failures import MediaError
from qthumb.workers.media.imaging import Fit, fit, render
from qthumb.workers.media.picture import Picture
from qthumb.workers.media.probe import limit_decoder, open_media

AUDIO_RATE = 48000
# AVColorSpace: how swscale names it
_REFORMAT_MATRIX = {1: "ITU709", 5: "ITU601", 6: "SMPTE170M"}
TIME_BASE = Fraction(1, 1000)  # milliseconds: each frame keeps its own time (VFR as it came)


@dataclass(frozen=True)
class PiecePlan:
    path: str
    start: float  # seconds from the piece's first frame
    length: float  # seconds of it, within its duration
    first: float  # its first frame's time in its own stream (MediaInfo.start_time)
    display_size: tuple[int, int]
    rotation: int = 0
    max_pixels: int | None = None


@dataclass(frozen=True)
class StitchPlan:
    out: str
    width: int  # even, the first piece's shown size
    height: int
    rate: float  # the first piece's frame rate, for x264's rate control
    audio: bool
    pieces: tuple[PiecePlan, ...]

    @property
    def duration(self) -> float:
        return sum(p.length for p in self.pieces)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> StitchPlan:
        raw = json.loads(text)
        pieces = tuple(
            PiecePlan(**{**p, "display_size": tuple(p["display_size"])}) for p in raw["pieces"]
        )
        return cls(**{**raw, "pieces": pieces})


class _Joined:
    """The output file: a video stream, and an audio one when the plan has audio."""

    def __init__(self, plan: StitchPlan, matrix: int) -> None:
        self.plan = plan
        self.out = av.open(plan.out, "w", format="matroska")
        rate = Fraction(plan.rate).limit_denominator(1001) if plan.rate > 0 else Fraction(25)
        video: av.VideoStream = self.out.add_stream("libx264", rate=rate)
        video.width, video.height, video.pix_fmt = plan.width, plan.height, "yuv420p"
        ctx = video.codec_context
        ctx.time_base = TIME_BASE
        ctx.gop_size = max(1, round(float(rate)))
        ctx.options = {"preset": "ultrafast", "crf": "1"}
        # the first piece's matrix when it is BT.709 or BT.601 (its frames are kept as they
        # are), else BT.709; limited range
        self.matrix = matrix if matrix in _REFORMAT_MATRIX else 1
        ctx.colorspace = self.matrix
        ctx.color_primaries = ctx.color_trc = 1 if self.matrix == 1 else 6
        ctx.color_range = 1
        ctx.thread_type = "AUTO"
        self.video = video
        self.last_pts = -1
        self.audio: av.AudioStream | None = None
        self.samples = 0
        if plan.audio:
            audio: av.AudioStream = self.out.add_stream("pcm_s16le", rate=AUDIO_RATE)
            audio.layout = "stereo"
            self.audio = audio

    def picture(self, frame: av.VideoFrame, piece: PiecePlan, at: float, seconds: float) -> None:
        """The frame at ``seconds`` of the timeline. One already in the file's terms (8-bit
        4:2:0, limited range, SDR, progressive, upright, the file's matrix) keeps its samples:
        as decoded at the file's size, else scaled and letterboxed in YUV (a flat picture stays
        exactly what it was). Any other is drawn as a thumbnail is (colours, rotation, fields,
        letterbox) and converted with the file's matrix."""
        plan = self.plan
        sizing = Sizing(width=plan.width, height=plan.height, mode=ResizeMode.PAD)
        kept = (
            frame.format.name == "yuv420p"
            and piece.rotation == 0
            and not frame.interlaced_frame
            and frame.color_range != 2  # full range
            and frame.color_trc not in (16, 18)  # PQ, HLG
            and (frame.colorspace or 2) in (self.matrix, 2)  # 2: unspecified, read as ours
        )
        if kept and (frame.width, frame.height) != (plan.width, plan.height):
            frame = _letterboxed(frame, fit(piece.display_size, sizing), plan)
        elif not kept:
            shown = Picture(frame, at, piece.display_size, piece.rotation)
            image = np.asarray(render(shown, sizing))
            frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(
                format="yuv420p", dst_colorspace=_REFORMAT_MATRIX[self.matrix]
            )
        self.last_pts = max(self.last_pts + 1, round(seconds / TIME_BASE))
        frame.pts, frame.time_base = self.last_pts, TIME_BASE
        self.out.mux(self.video.encode(frame))

    def sound(self, pcm: np.ndarray) -> None:
        """``pcm``: int16 samples, interleaved stereo, shape (1, 2 x samples)."""
        assert self.audio is not None
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="stereo")
        frame.sample_rate = AUDIO_RATE
        frame.pts, frame.time_base = self.samples, Fraction(1, AUDIO_RATE)
        self.samples += pcm.shape[1] // 2
        self.out.mux(self.audio.encode(frame))

    def close(self) -> None:
        self.out.mux(self.video.encode(None))
        if self.audio is not None:
            self.out.mux(self.audio.encode(None))
        self.out.close()


def _letterboxed(frame: av.VideoFrame, placed: Fit, plan: StitchPlan) -> av.VideoFrame:
    """A 4:2:0 frame scaled to ``placed`` and centred on black, in YUV (even sizes and
    offsets, so the chroma lines up)."""
    width, height = (max(2, side // 2 * 2) for side in placed.scaled)
    x, y = (max(0, v // 2 * 2) for v in placed.offset)
    scaled = frame.reformat(width=width, height=height, format="yuv420p", interpolation="AREA")
    planes = scaled.to_ndarray()  # Y rows, then U and V packed two rows to one
    canvas = np.empty((plan.height * 3 // 2, plan.width), dtype=np.uint8)
    canvas[: plan.height] = 16
    canvas[plan.height :] = 128
    canvas[y : y + height, x : x + width] = planes[:height]
    chroma = planes[height:].reshape(2, height // 2, width // 2)
    target = canvas[plan.height :].reshape(2, plan.height // 2, plan.width // 2)
    target[:, y // 2 : (y + height) // 2, x // 2 : (x + width) // 2] = chroma
    return av.VideoFrame.from_ndarray(canvas, format="yuv420p")


def _piece(joined: _Joined, piece: PiecePlan, offset: float, progress: Progress) -> None:
    container = open_media(Path(piece.path))
    try:
        video = container.streams.video[0]
        video.codec_context.thread_type = "AUTO"
        if piece.max_pixels is not None:
            limit_decoder(video.codec_context, piece.max_pixels)
        sound = container.streams.audio[0] if joined.audio and container.streams.audio else None
        resampler = av.AudioResampler(format="s16", layout="stereo", rate=AUDIO_RATE)
        fifo = av.AudioFifo()
        end = piece.start + piece.length
        if piece.start > 0:
            target = round((piece.first + piece.start) / float(video.time_base or TIME_BASE))
            container.seek(target, stream=video, backward=True)
        streams = [video] + ([sound] if sound is not None else [])
        for packet in container.demux(streams):
            for frame in packet.decode():
                if not isinstance(frame, av.VideoFrame | av.AudioFrame) or frame.time is None:
                    continue
                at = frame.time - piece.first
                if not piece.start - 1e-6 <= at < end - 1e-6:
                    continue
                if isinstance(frame, av.VideoFrame):
                    seconds = offset + at - piece.start
                    joined.picture(frame, piece, at, seconds)
                    progress(seconds)
                elif isinstance(frame, av.AudioFrame):
                    frame.pts = None
                    for made in resampler.resample(frame):
                        fifo.write(made)
        if joined.audio is not None:
            for made in resampler.resample(None) if sound is not None else ():
                fifo.write(made)
            _exact_length(joined, fifo, round(piece.length * AUDIO_RATE))
    except av.FFmpegError as exc:
        raise MediaError(f"{Path(piece.path).name} could not be decoded ({exc})") from None
    finally:
        container.close()


def _exact_length(joined: _Joined, fifo: av.AudioFifo, samples: int) -> None:
    """The piece's sound cut or filled with silence to ``samples``."""
    pcm = np.zeros((1, 2 * samples), dtype=np.int16)
    have = min(samples, fifo.samples)
    if have:
        read = fifo.read(have)
        if read is not None:
            pcm[0, : 2 * have] = read.to_ndarray().reshape(-1)[: 2 * have]
    step = AUDIO_RATE  # a second a frame
    for at in range(0, samples, step):
        joined.sound(pcm[:, 2 * at : 2 * min(samples, at + step)])


def join(plan: StitchPlan) -> None:
    """Make ``plan.out``; ``MediaError`` (or FFmpeg's own) says why not."""
    with open_media(Path(plan.pieces[0].path)) as first:  # its colour matrix (AVColorSpace)
        matrix = int(first.streams.video[0].codec_context.colorspace or 1)
    joined = _Joined(plan, matrix)
    progress = Progress()
    offset = 0.0
    try:
        for piece in plan.pieces:
            _piece(joined, piece, offset, progress)
            offset += piece.length
    finally:
        joined.close()


def main(argv: list[str] | None = None) -> int:
    return child_main(lambda plan: join(StitchPlan.from_json(plan)), argv)


if __name__ == "__main__":
    from qthumb.app.children.orphans import die_with_parent

    die_with_parent()
    sys.exit(main())
