"""Which producer makes each kind of output (``app.qencode.formats``): one registry, so a new
output is one function and one ``PRODUCERS`` line, not another branch in the pipeline or the
limits. A producer gets its format and a
``Making`` (the source, what the probe found, a folder to write into, a progress callback) and
returns the files it made (``workers.outputs.products.Product``), raising ``FormatFailure`` when the
format cannot be made."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from qthumb.app.qencode.formats import (
    FormatSpec,
    GifSpec,
    MetadataSpec,
    SizedSpec,
    ThumbnailSpec,
    ThumbnailsSpec,
    VideoSpec,
)
from qthumb.app.settings import Settings
from qthumb.workers.failures import FormatFailure
from qthumb.workers.media.frames import VideoReader
from qthumb.workers.media.logos import Fetch, LoadedLogo, load_logos
from qthumb.workers.media.probe import MediaInfo
from qthumb.workers.outputs.gif import gif_frames, make_gif
from qthumb.workers.outputs.metadata import make_metadata
from qthumb.workers.outputs.products import Product
from qthumb.workers.outputs.series import frame_count, make_thumbnails
from qthumb.workers.outputs.thumbnail import make_thumbnail
from qthumb.workers.outputs.video import make_video


def _cannot_fetch(url: str, folder: Path) -> Path:
    raise FormatFailure(f"{url[:200]}: nothing here fetches logos or manifests")


@dataclass
class Making:
    source: Path
    info: MediaInfo | None  # None when only formats that need no video track run
    out_dir: Path
    progress: Callable[[float], None]  # fraction of this format done, 0..1
    settings: Settings
    reader: Callable[[], VideoReader]  # one reader shared by the task's single thumbnails
    fetch: Fetch = _cannot_fetch  # brings a logo's or a manifest's URL to a local file

    def logos(self, spec: SizedSpec) -> list[LoadedLogo]:
        """The format's logos, fetched and prepared (``FormatFailure`` if one cannot be)."""
        if not spec.logos:
            return []
        return load_logos(
            spec.logos, self.out_dir.parent / f"logos-{self.out_dir.name}", self.fetch
        )

    @property
    def media(self) -> MediaInfo:
        if self.info is None:  # the registry's needs_video keeps this from happening
            raise FormatFailure("this output needs the source's video track")
        return self.info


S = TypeVar("S", bound=FormatSpec)


@dataclass(frozen=True)
class Producer(Generic[S]):
    """How one kind of output (``app.qencode.formats``) is made, and what it will cost."""

    kind: type[S]
    make: Callable[[S, Making], list[Product]]
    # Frames it will decode, counted against the probed source before anything is made; None:
    # no frames of its own to count (a video streams through the encoder).
    frames: Callable[[S, MediaInfo], int] | None = None
    fewer: str = ""  # how to ask for fewer frames, for the limit's message
    needs_video: bool = True  # probe the source for frames (and check the limits) first

    def run(self, spec: FormatSpec, making: Making) -> list[Product]:
        if not isinstance(spec, self.kind):  # the registry is keyed by kind: cannot happen
            raise FormatFailure(f"output '{spec.output}' is not a {self.kind.__name__}")
        return self.make(spec, making)

    def count(self, spec: FormatSpec, info: MediaInfo) -> int:
        if self.frames is None or not isinstance(spec, self.kind):
            return 0
        return self.frames(spec, info)


def _thumbnail(spec: ThumbnailSpec, m: Making) -> list[Product]:
    return make_thumbnail(m.reader(), spec, m.out_dir, m.logos(spec))


def _thumbnails(spec: ThumbnailsSpec, m: Making) -> list[Product]:
    # At most one reader a core of this worker's share: more only adds containers (~20 MB
    # each for long files) and contention when decoding dominates (bench/RESULTS.md).
    readers = m.settings.decode_budget
    manifest = None
    if spec.manifest:  # fetched first: a manifest that cannot be had costs no decoding
        folder = m.out_dir.parent / f"manifest-{m.out_dir.name}"
        folder.mkdir(parents=True, exist_ok=True)
        fetched = m.fetch(spec.manifest, folder)
        try:
            manifest = fetched.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise FormatFailure(f"manifest {spec.manifest[:200]}: not UTF-8 text") from None
    return make_thumbnails(
        m.source,
        m.media,
        spec,
        m.out_dir,
        m.progress,
        readers,
        max_frames=m.settings.max_frames_per_task,
        max_pixels=m.settings.max_output_pixels,
        logos=m.logos(spec),
        manifest=manifest,
    )


def _video(spec: VideoSpec, m: Making) -> list[Product]:
    s = m.settings
    return make_video(
        m.source, m.media, spec, m.out_dir, m.progress, s.video_timeout, m.logos(spec)
    )


def _gif(spec: GifSpec, m: Making) -> list[Product]:
    s = m.settings
    return make_gif(m.source, m.media, spec, m.out_dir, m.progress, s.video_timeout, m.logos(spec))


def _metadata(spec: MetadataSpec, m: Making) -> list[Product]:
    return make_metadata(m.source, m.out_dir)


PRODUCERS: dict[type[FormatSpec], Producer[Any]] = {
    ThumbnailSpec: Producer(
        ThumbnailSpec, _thumbnail, frames=lambda spec, info: spec.frames_asked(info.duration)[0]
    ),
    ThumbnailsSpec: Producer(ThumbnailsSpec, _thumbnails, frame_count, "a longer interval"),
    VideoSpec: Producer(VideoSpec, _video),
    GifSpec: Producer(GifSpec, _gif, gif_frames, "a shorter or slower gif"),
    MetadataSpec: Producer(MetadataSpec, _metadata, needs_video=False),
}


def producer_for(spec: FormatSpec) -> Producer[Any]:
    found = PRODUCERS.get(type(spec))
    if found is None:
        raise FormatFailure(f"output '{spec.output}' is not supported yet")
    return found


def needs_video(spec: FormatSpec) -> bool:
    """Whether the source must be probed for frames before this output (unknown: yes)."""
    found = PRODUCERS.get(type(spec))
    return found is None or found.needs_video
