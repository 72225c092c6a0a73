"""The encoder of the ``mp4``, ``webm`` and ``gif`` outputs: PyAV's own FFmpeg (x264, libvpx,
AAC, Opus, GIF, libwebp ship in its wheel), so neither Debian's ffmpeg package nor a static
ffmpeg binary is needed (the container image is ~170 MB lighter for it).

What to make is an ``EncodePlan``, a value built by a pure function (``workers.outputs.video``,
``workers.outputs.gif``) and tested by equality. It runs in a child process of its own
(``python -I -m qthumb.workers.outputs.encoding.encode PLAN_JSON``, started by
``workers.outputs.encoding.run``) so that a
deadline or a memory ceiling ends it alone: it prints ``out_time_us=…`` progress lines on
stdout as ffmpeg's ``-progress`` does, and one line saying what failed on stderr.

The filter chain is the one ffmpeg's command line built: the display rotation (as ffmpeg's
autorotate), the format's ``rotate``, ``scale`` (to the ``aspect_ratio`` too), ``setsar=1``,
each ``logo`` (``overlay``), then ``fps``; a GIF is palette-optimised in two passes
(``palettegen`` reads the window once, ``paletteuse`` a second time), so no frame is held."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.filter
from PIL import Image

from qthumb.workers.child_protocol import Progress, child_main
from qthumb.workers.failures import MediaError
from qthumb.workers.media.colour import HLG, PQ, to_rgb
from qthumb.workers.media.probe import limit_decoder, open_media
from qthumb.workers.outputs.encoding.audio_track import AudioTrack
from qthumb.workers.outputs.encoding.plan import EncodePlan, LogoPlan


def _rotation_filters(rotation: int) -> list[tuple[str, str]]:
    """ffmpeg's autorotate: a counter-clockwise display rotation turned back upright."""
    return _turn_filters(-rotation)


def _turn_filters(clockwise: int) -> list[tuple[str, str]]:
    return {
        90: [("transpose", "clock")],
        180: [("hflip", ""), ("vflip", "")],
        270: [("transpose", "cclock")],
    }.get(clockwise % 360, [])


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
        # hdr_to_sdr on a PQ or HLG stream: each frame tone-mapped as thumbnails are
        # (``workers.media.colour``), at about the output's size, before the filters
        self.sdr_size = _sdr_size(plan, self.video) if plan.tone_map else None

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
                        yield frame if self.sdr_size is None else self._sdr(frame)
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

    def _sdr(self, frame: av.VideoFrame) -> av.VideoFrame:
        assert self.sdr_size is not None
        deinterlace = True if self.plan.deinterlace else None  # its top field, as stills
        image = to_rgb(frame, *self.sdr_size, deinterlace=deinterlace)
        import numpy as np  # only for HDR frames: the child starts without it

        made = av.VideoFrame.from_ndarray(np.asarray(image), format="rgb24")
        made.pts, made.time_base = frame.pts, frame.time_base
        return made


def _sdr_size(plan: EncodePlan, video: av.VideoStream) -> tuple[int, int] | None:
    """The size (stored orientation) HDR frames are tone-mapped at: the source's, made no
    larger than the output needs; None when the stream is not HDR."""
    ctx = video.codec_context
    if ctx.color_trc not in (PQ, HLG) or not ctx.width or not ctx.height:
        return None
    longest = max(plan.scaled or (plan.width, plan.height))
    factor = min(1.0, longest / max(ctx.width, ctx.height))
    return max(2, round(ctx.width * factor / 2) * 2), max(2, round(ctx.height * factor / 2) * 2)


def _link(graph: Any, node: Any, steps: list[tuple[str, str]]) -> Any:
    """``steps`` (filter name, arguments) linked one after another from ``node``; the last."""
    for name, args in steps:
        nxt = graph.add(name, args) if args else graph.add(name)
        node.link_to(nxt)
        node = nxt
    return node


def _video_graph(
    plan: EncodePlan, window: _Window, feeds: list[tuple[Any, Any]]
) -> tuple[Any, Any, Any]:
    """buffer → deinterlace → display rotation → rotate → scale → setsar → logos → fps: the
    graph, its source and its last node; ``feeds`` gets the logos' frames, for ``_end`` to
    push. Tone-mapped frames come in as RGB, their fields already taken apart."""
    graph = av.filter.Graph()
    if window.sdr_size is None:
        src = graph.add_buffer(template=window.video)
    else:
        width, height = window.sdr_size
        src = graph.add_buffer(
            width=width, height=height, format=av.VideoFormat("rgb24"), time_base=window.time_base
        )
    flags = f":flags={plan.scale_flags}" if plan.scale_flags else ""
    # bwdif (FFmpeg's best field interpolator) on every frame, flagged interlaced or not
    fields = plan.deinterlace and window.sdr_size is None
    chain = [
        *([("bwdif", "mode=send_frame:parity=auto:deint=all")] if fields else []),
        *_rotation_filters(plan.rotation),
        *_turn_filters(plan.turn),
        *plan.scale_steps(flags),
        ("setsar", "1"),
    ]
    node = _link(graph, src, chain)
    for logo in plan.logos:
        node = _overlay(graph, node, logo, feeds)
    if plan.fps:
        # round=up: output frame n (time n / fps) is the source frame shown at that time, the
        # last one to start at or before it, as a thumbnail at that time would be. FFmpeg's
        # default (near) took the next one up to half an output frame later.
        node = _link(graph, node, [("fps", f"fps={plan.fps}:round=up")])
    return graph, src, node


def _overlay(graph: Any, node: Any, logo: LogoPlan, feeds: list[tuple[Any, Any]]) -> Any:
    """``node`` with ``logo`` drawn over it: its one frame (pushed by ``_end``, into
    ``feeds``) is repeated to the end, overlay's default."""
    import numpy as np  # only for logos: the child starts without it

    with Image.open(logo.path) as image:
        # from_ndarray: from_image would drop the alpha (it makes rgb24 of RGBA)
        frame = av.VideoFrame.from_ndarray(np.asarray(image.convert("RGBA")), format="rgba")
    frame.pts = 0
    frame.time_base = Fraction(1, 1000)
    buffer = graph.add_buffer(
        width=frame.width, height=frame.height, format="rgba", time_base=Fraction(1, 1000)
    )
    over = graph.add("overlay", logo.overlay_args())
    node.link_to(over, 0, 0)
    buffer.link_to(over, 0, 1)
    feeds.append((buffer, frame))
    return over


def _end(
    graph: Any, node: Any, *tail: tuple[str, str], feeds: list[tuple[Any, Any]] | None = None
) -> None:
    """``tail`` filters after ``node``, then the sink; the graph configured, and each of
    ``feeds`` (a still picture's buffer, its one frame) given its frame and ended."""
    _link(graph, node, [*tail, ("buffersink", "")])
    graph.configure()
    for buffer, frame in feeds or ():
        buffer.push(frame)
        buffer.push(None)


def _pull(graph: Any) -> Iterator[av.VideoFrame]:
    while True:
        try:
            yield graph.vpull()
        except (av.BlockingIOError, av.EOFError):
            return


def _palette(plan: EncodePlan) -> av.VideoFrame:
    """Pass one of a GIF: the window's colours, counted by palettegen (no frame is kept)."""
    window = _Window(plan)
    try:
        feeds: list[tuple[Any, Any]] = []
        graph, src, node = _video_graph(plan, window, feeds)
        _end(graph, node, ("palettegen", "stats_mode=diff"), feeds=feeds)
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


def _gif(plan: EncodePlan, out: av.container.OutputContainer, progress: Progress) -> None:
    palette = _palette(plan)
    window = _Window(plan)
    try:
        feeds: list[tuple[Any, Any]] = []
        graph, src, node = _video_graph(plan, window, feeds)
        pal = graph.add_buffer(
            width=palette.width,
            height=palette.height,
            format=palette.format,
            time_base=window.time_base,
        )
        use = graph.add("paletteuse", "dither=bayer:bayer_scale=5")
        node.link_to(use, 0, 0)
        pal.link_to(use, 0, 1)
        palette.pts = 0
        palette.time_base = window.time_base
        _end(graph, use, feeds=[*feeds, (pal, palette)])
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
    progress: Progress,
    audio: AudioTrack | None = None,
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


def _video(plan: EncodePlan, out: av.container.OutputContainer, progress: Progress) -> None:
    window = _Window(plan)
    try:
        feeds: list[tuple[Any, Any]] = []
        graph, src, node = _video_graph(plan, window, feeds)
        _end(graph, node, ("format", plan.pix_fmt), feeds=feeds)
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
        if window.sdr_size is not None:  # tone-mapped: say so, BT.709 as thumbnails are
            ctx.color_primaries = ctx.color_trc = ctx.colorspace = 1
        audio = None
        if plan.audio is not None and window.audio is not None:
            audio = AudioTrack(plan.audio, window.audio, out, plan.mute)
        _encode_video(window, graph, src, stream, out, progress, audio)
    finally:
        window.close()


def encode(plan: EncodePlan) -> None:
    """Make ``plan.out``; ``MediaError`` (or FFmpeg's own) says why not."""
    progress = Progress()
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
    return child_main(lambda plan: encode(EncodePlan.from_json(plan)), argv)


if __name__ == "__main__":
    from qthumb.app.children.orphans import die_with_parent

    die_with_parent()
    sys.exit(main())
