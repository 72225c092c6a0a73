"""The encoder of the ``mp4``, ``webm`` and ``gif`` outputs: PyAV's own FFmpeg (x264, libvpx,
AAC, Opus, GIF, libwebp ship in its wheel), so neither Debian's ffmpeg package nor a static
ffmpeg binary is needed (the container image is ~170 MB lighter for it).

What to make is an ``EncodePlan``, a value built by a pure function (``workers.outputs.video``,
``workers.outputs.gif``) and tested by equality. It runs in a child process of its own
(``python -I -m qthumb.workers.outputs.encode PLAN_JSON``, started by
``workers.outputs.encode_run``) so that a
deadline or a memory ceiling ends it alone: it prints ``out_time_us=…`` progress lines on
stdout as ffmpeg's ``-progress`` does, and one line saying what failed on stderr.

The filter chain is the one ffmpeg's command line built: the display rotation (as ffmpeg's
autorotate), ``scale``, ``setsar=1``, then ``fps``; a GIF is palette-optimised in two passes
(``palettegen`` reads the window once, ``paletteuse`` a second time), so no frame is held."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.filter

from qthumb.workers.media.probe import limit_decoder, open_media
from qthumb.workers.tasks.failures import MediaError


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

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> EncodePlan:
        raw: dict[str, Any] = json.loads(text)
        audio = raw.pop("audio", None)
        return cls(**raw, audio=AudioPlan(**audio) if audio else None)


def _rotation_filters(rotation: int) -> list[tuple[str, str]]:
    """ffmpeg's autorotate: a counter-clockwise display rotation turned back upright."""
    return {
        90: [("transpose", "cclock")],
        180: [("hflip", ""), ("vflip", "")],
        270: [("transpose", "clock")],
    }.get(rotation % 360, [])


class _Window:
    """The source's video (and audio) frames in [start, start + duration), their timestamps
    moved to start at zero, read with an exact seek (a keyframe before, then decoded up to)."""

    def __init__(self, plan: EncodePlan) -> None:
        self.plan = plan
        self.container = open_media(Path(plan.source))  # the decoder's own safe options
        if not self.container.streams.video:
            raise MediaError("the source has no video stream")
        self.video = self.container.streams.video[0]
        ctx = self.video.codec_context
        ctx.thread_type = "AUTO"
        if plan.max_pixels is not None:
            limit_decoder(ctx, plan.max_pixels)
        streams = self.container.streams
        self.audio = streams.audio[0] if plan.audio is not None and streams.audio else None
        tb = self.video.time_base or Fraction(1, 90000)
        self.time_base = Fraction(tb)
        first = self.video.start_time or 0
        self.origin = first + round(Fraction(plan.start) / self.time_base)  # pts of `start`
        self.end = self.origin + round(Fraction(plan.duration) / self.time_base)

    def close(self) -> None:
        self.container.close()

    def frames(self) -> Iterator[av.VideoFrame | av.AudioFrame]:
        if self.plan.start > 0:
            self.container.seek(self.origin, stream=self.video, backward=True)
        streams = [self.video] + ([self.audio] if self.audio is not None else [])
        video_done, audio_done = False, self.audio is None
        origin_s = float(self.origin * self.time_base)
        end_s = origin_s + self.plan.duration
        try:
            for packet in self.container.demux(streams):
                for frame in packet.decode():
                    if isinstance(frame, av.VideoFrame):
                        if frame.pts is None or frame.pts < self.origin:
                            continue
                        if frame.pts >= self.end:
                            video_done = True
                            continue
                        frame.pts -= self.origin
                        yield frame
                    elif isinstance(frame, av.AudioFrame) and frame.time is not None:
                        if frame.time < origin_s - 1e-6:
                            continue
                        if frame.time >= end_s:
                            audio_done = True
                            continue
                        yield frame
                if video_done and audio_done:
                    return
        except av.FFmpegError as exc:
            raise MediaError(f"the source could not be decoded ({exc})") from None


def _link(graph: Any, node: Any, steps: list[tuple[str, str]]) -> Any:
    """``steps`` (filter name, arguments) linked one after another from ``node``; the last."""
    for name, args in steps:
        nxt = graph.add(name, args) if args else graph.add(name)
        node.link_to(nxt)
        node = nxt
    return node


def _video_graph(plan: EncodePlan, stream: av.VideoStream) -> tuple[Any, Any, Any]:
    """buffer → rotation → scale → setsar → fps: the graph, its source and its last node."""
    graph = av.filter.Graph()
    src = graph.add_buffer(template=stream)
    flags = f":flags={plan.scale_flags}" if plan.scale_flags else ""
    chain = [
        *_rotation_filters(plan.rotation),
        ("scale", f"{plan.width}:{plan.height}{flags}"),
        ("setsar", "1"),
    ]
    if plan.fps:
        chain.append(("fps", f"fps={plan.fps}"))
    return graph, src, _link(graph, src, chain)


def _end(graph: Any, node: Any, *tail: tuple[str, str]) -> None:
    """``tail`` filters after ``node``, then the sink; the graph configured."""
    _link(graph, node, [*tail, ("buffersink", "")])
    graph.configure()


def _pull(graph: Any) -> Iterator[av.VideoFrame]:
    while True:
        try:
            yield graph.vpull()
        except (av.BlockingIOError, av.EOFError):
            return


class _Progress:
    def __init__(self) -> None:
        self.last = -1.0

    def __call__(self, seconds: float) -> None:
        if seconds - self.last >= 0.2:
            self.last = seconds
            print(f"out_time_us={int(seconds * 1e6)}", flush=True)


def _palette(plan: EncodePlan) -> av.VideoFrame:
    """Pass one of a GIF: the window's colours, counted by palettegen (no frame is kept)."""
    window = _Window(plan)
    try:
        graph, src, node = _video_graph(plan, window.video)
        _end(graph, node, ("palettegen", "stats_mode=diff"))
        palettes: list[av.VideoFrame] = []
        for frame in window.frames():
            if isinstance(frame, av.VideoFrame):
                src.push(frame)
                palettes.extend(_pull(graph))
        src.push(None)
        palettes.extend(_pull(graph))
    finally:
        window.close()
    if not palettes:
        raise MediaError("the window holds no frame")
    palette: av.VideoFrame = palettes[-1]
    return palette


def _gif(plan: EncodePlan, out: av.container.OutputContainer, progress: _Progress) -> None:
    palette = _palette(plan)
    window = _Window(plan)
    try:
        graph, src, node = _video_graph(plan, window.video)
        pal = graph.add_buffer(width=palette.width, height=palette.height, format=palette.format,
                               time_base=window.time_base)  # fmt: skip
        use = graph.add("paletteuse", "dither=bayer:bayer_scale=5")
        node.link_to(use, 0, 0)
        pal.link_to(use, 0, 1)
        _end(graph, use)
        palette.pts = 0
        palette.time_base = window.time_base
        pal.push(palette)
        pal.push(None)
        stream = out.add_stream("gif", rate=Fraction(plan.fps or 10))
        stream.width, stream.height, stream.pix_fmt = plan.width, plan.height, "pal8"
        stream.codec_context.time_base = Fraction(1, 100)
        _encode_video(window, graph, src, stream, out, progress)
    finally:
        window.close()


def _encode_video(
    window: _Window,
    graph: Any,
    src: Any,
    stream: av.VideoStream,
    out: av.container.OutputContainer,
    progress: _Progress,
    audio: _Audio | None = None,
) -> None:
    plan = window.plan
    forced = 0

    def emit(frame: av.VideoFrame) -> None:
        nonlocal forced
        tb = frame.time_base
        seconds = float(frame.pts * tb) if frame.pts is not None and tb else 0.0
        frame.pts = round(seconds / stream.codec_context.time_base)
        frame.time_base = stream.codec_context.time_base
        if plan.keyframe_every and seconds + 1e-9 >= forced * plan.keyframe_every:
            frame.pict_type = av.video.frame.PictureType.I
            while seconds + 1e-9 >= forced * plan.keyframe_every:
                forced += 1
        else:
            frame.pict_type = av.video.frame.PictureType.NONE
        out.mux(stream.encode(frame))
        progress(seconds)

    for frame in window.frames():
        if isinstance(frame, av.AudioFrame):
            if audio is not None:
                audio.push(frame)
            continue
        src.push(frame)
        for made in _pull(graph):
            emit(made)
    src.push(None)
    for made in _pull(graph):
        emit(made)
    out.mux(stream.encode(None))
    if audio is not None:
        audio.flush()


class _Audio:
    """The window's audio, resampled for the codec and cut into the frames it takes."""

    def __init__(self, plan: AudioPlan, source: av.AudioStream, out: av.container.OutputContainer):
        rate = source.rate or 48000
        codec = av.Codec(plan.codec, "w")
        rates = codec.audio_rates or ()
        if rates and rate not in rates:
            rate = 48000
        channels = source.codec_context.channels or 2
        layout = "mono" if channels == 1 else "stereo"
        self.stream: av.AudioStream = out.add_stream(plan.codec, rate=rate)  # type: ignore[assignment]
        self.stream.layout = layout
        self.stream.bit_rate = plan.bit_rate
        fmt = codec.audio_formats[0].name if codec.audio_formats else "fltp"
        self.stream.format = fmt
        self.out = out
        self.resampler = av.AudioResampler(format=fmt, layout=layout, rate=rate)
        self.fifo = av.AudioFifo()
        self.written = 0
        self.rate = rate

    def _encode(self, frame: av.AudioFrame | None) -> None:
        if frame is not None:
            frame.pts = self.written
            frame.time_base = Fraction(1, self.rate)
            self.written += frame.samples
        self.out.mux(self.stream.encode(frame))

    def _drain(self, final: bool) -> None:
        size = self.stream.codec_context.frame_size or 1024
        while self.fifo.samples >= size or (final and self.fifo.samples):
            chunk = self.fifo.read(min(size, self.fifo.samples))
            if chunk is None:
                return
            self._encode(chunk)

    def push(self, frame: av.AudioFrame) -> None:
        frame.pts = None
        for made in self.resampler.resample(frame):
            made.pts = None
            self.fifo.write(made)
        self._drain(final=False)

    def flush(self) -> None:
        for made in self.resampler.resample(None):
            made.pts = None
            self.fifo.write(made)
        self._drain(final=True)
        self._encode(None)


def _video(plan: EncodePlan, out: av.container.OutputContainer, progress: _Progress) -> None:
    window = _Window(plan)
    try:
        graph, src, node = _video_graph(plan, window.video)
        _end(graph, node, ("format", plan.pix_fmt))
        rate = Fraction(plan.fps) if plan.fps else Fraction(window.video.average_rate or 25)
        stream: av.VideoStream = out.add_stream(plan.codec, rate=rate)  # type: ignore[assignment]
        stream.width, stream.height, stream.pix_fmt = plan.width, plan.height, plan.pix_fmt
        ctx = stream.codec_context
        ctx.time_base = 1 / rate if plan.fps else window.time_base
        ctx.bit_rate = plan.bit_rate or 0
        if plan.gop:
            ctx.gop_size = plan.gop
        ctx.options = dict(plan.codec_options)
        ctx.thread_type = "AUTO"
        audio = None
        if plan.audio is not None and window.audio is not None:
            audio = _Audio(plan.audio, window.audio, out)
        _encode_video(window, graph, src, stream, out, progress, audio)
    finally:
        window.close()


def encode(plan: EncodePlan) -> None:
    """Make ``plan.out``; ``MediaError`` (or FFmpeg's own) says why not."""
    progress = _Progress()
    kind = "gif" if plan.codec == "gif" else ("webp" if plan.codec == "libwebp" else None)
    out = av.open(plan.out, "w", format=kind, options=dict(plan.container_options))
    try:
        if plan.palette:
            _gif(plan, out, progress)
        else:
            _video(plan, out, progress)
    finally:
        out.close()
    progress.last = -1.0
    progress(plan.duration)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        encode(EncodePlan.from_json(args[0]))
    except (MediaError, av.FFmpegError, ValueError, OSError) as exc:
        print(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    from qthumb.app.process.orphans import die_with_parent

    die_with_parent()
    sys.exit(main())
