"""The audio track of an ``mp4``/``webm`` output (``workers.outputs.encoding.encode``): the window's
audio resampled for the codec and cut into the frames it takes, or, with ``audio_mute``, as
many samples of silence."""

from __future__ import annotations

from fractions import Fraction

import av

from qthumb.workers.outputs.encoding.plan import AudioPlan


class AudioTrack:
    """The window's audio, resampled for the codec and cut into the frames it takes."""

    def __init__(
        self,
        plan: AudioPlan,
        source: av.AudioStream,
        out: av.container.OutputContainer,
        mute: bool = False,
    ):
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
        self.mute = mute

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

    def _write(self, frames: list[av.AudioFrame]) -> None:
        for made in frames:
            if self.mute:  # the same samples, silent: the track keeps its length
                silent = av.AudioFrame(
                    format=made.format.name, layout=made.layout.name, samples=made.samples
                )
                silent.sample_rate = made.sample_rate
                for plane in silent.planes:
                    plane.update(bytes(plane.buffer_size))
                made = silent
            made.pts = None
            self.fifo.write(made)

    def push(self, frame: av.AudioFrame) -> None:
        frame.pts = None
        self._write(self.resampler.resample(frame))
        self._drain(final=False)

    def flush(self) -> None:
        self._write(self.resampler.resample(None))
        self._drain(final=True)
        self._encode(None)
