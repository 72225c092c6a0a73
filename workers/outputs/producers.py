"""Which producer makes each ``output``: one registry, so a new output is one function and one
``@produces`` line, not another branch in the pipeline. A producer gets its format and a
``Making`` (the source, what the probe found, a folder to write into, a progress callback) and
returns the files it made (``workers.outputs.products.Product``), raising ``FormatFailure`` when the
format cannot be made."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from qthumb.app.qencode.query import FormatSpec
from qthumb.app.settings import Settings
from qthumb.workers.media.frames import VideoReader
from qthumb.workers.media.probe import MediaInfo
from qthumb.workers.outputs.gif import make_gif
from qthumb.workers.outputs.metadata import make_metadata
from qthumb.workers.outputs.products import Product
from qthumb.workers.outputs.series import make_thumbnails
from qthumb.workers.outputs.thumbnail import make_thumbnail
from qthumb.workers.outputs.video import make_video
from qthumb.workers.tasks.failures import FormatFailure


@dataclass
class Making:
    source: Path
    info: MediaInfo | None  # None when only formats that need no video track run
    out_dir: Path
    progress: Callable[[float], None]  # fraction of this format done, 0..1
    settings: Settings
    reader: Callable[[], VideoReader]  # one reader shared by the task's single thumbnails

    @property
    def media(self) -> MediaInfo:
        if self.info is None:  # the registry's needs_video keeps this from happening
            raise FormatFailure("this output needs the source's video track")
        return self.info


Make = Callable[[FormatSpec, Making], list[Product]]


@dataclass(frozen=True)
class Producer:
    make: Make
    needs_video: bool  # probe the source for frames (and check the frame limits) first


PRODUCERS: dict[str, Producer] = {}


def produces(*outputs: str, needs_video: bool = True) -> Callable[[Make], Make]:
    def register(make: Make) -> Make:
        for output in outputs:
            PRODUCERS[output] = Producer(make, needs_video)
        return make

    return register


def producer_for(output: str) -> Producer:
    found = PRODUCERS.get(output)
    if found is None:
        raise FormatFailure(f"output '{output}' is not supported yet")
    return found


def needs_video(output: str) -> bool:
    """Whether the source must be probed for frames before this output (unknown: yes)."""
    found = PRODUCERS.get(output)
    return found is None or found.needs_video


@produces("thumbnail")
def _thumbnail(spec: FormatSpec, m: Making) -> list[Product]:
    return make_thumbnail(m.reader(), spec, m.out_dir)


@produces("thumbnails")
def _thumbnails(spec: FormatSpec, m: Making) -> list[Product]:
    # One reader a core: more only adds containers (~20 MB each for long files) and
    # contention when decoding dominates (measured in bench/RESULTS.md).
    readers = m.settings.decode_threads or os.cpu_count() or 1
    return make_thumbnails(
        m.source,
        m.media,
        spec,
        m.out_dir,
        m.progress,
        readers,
        max_frames=m.settings.max_frames_per_task,
        max_pixels=m.settings.max_output_pixels,
    )


@produces("mp4", "webm")
def _video(spec: FormatSpec, m: Making) -> list[Product]:
    s = m.settings
    return make_video(m.source, m.media, spec, m.out_dir, m.progress, s.video_timeout)


@produces("gif")
def _gif(spec: FormatSpec, m: Making) -> list[Product]:
    s = m.settings
    return make_gif(m.source, m.media, spec, m.out_dir, m.progress, s.video_timeout)


@produces("metadata", needs_video=False)
def _metadata(spec: FormatSpec, m: Making) -> list[Product]:
    return make_metadata(m.source, m.out_dir)
