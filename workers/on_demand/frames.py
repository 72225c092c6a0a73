"""Images on demand, the media side: any frame of a task's source (storyboards and animations:
``workers.on_demand.sequences``), made in the frame server (``workers.on_demand.frame_server``,
a child of each API process; ``app.on_demand.service`` says why).

Sources are fetched once per machine (as the worker would: local folders in place, URLs, S3
and tus uploads downloaded) into ``<data dir>/cache/sources`` and kept, least recently used
out, within ``QTHUMB_ON_DEMAND_SOURCE_CACHE_BYTES`` (encoded frames are kept by the API process,
``app.on_demand.service.ResultCache``). Each replica keeps its own caches, so this works the same on
every backend: nothing here is shared between machines.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from qthumb.app.on_demand.asks import (
    MAX_PIXELS,
    AnimatedRequest,
    FrameRequest,
    FrameRequestError,
    RenderedFrame,
    Request,
    Storyboard,
    StoryboardRequest,
)
from qthumb.app.qencode.query import Sizing, url_scheme
from qthumb.app.settings import Settings
from qthumb.app.storage.files import Files
from qthumb.workers.media.frames import VideoReader
from qthumb.workers.media.imaging import encode_bytes, render, target_size
from qthumb.workers.media.placeholders import placeholder
from qthumb.workers.media.probe import MediaInfo, probe
from qthumb.workers.on_demand.sequences import make_animated, make_storyboard
from qthumb.workers.tasks.sources import fetch_source


class SourceCache:
    """A local file for each task's source; fetched sources kept within ``limit`` bytes."""

    def __init__(self, folder: Path, limit: int, settings: Settings, files: Files) -> None:
        self.folder, self.limit, self.settings, self.files = folder, limit, settings, files
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self.infos: OrderedDict[Path, MediaInfo] = OrderedDict()

    def _lock(self, token: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(token, threading.Lock())

    def path(
        self, token: str, source: str, upload_owner: Callable[[str], str | None], api_key: str
    ) -> Path:
        if not url_scheme(source) or url_scheme(source) == "file":  # read in place
            return fetch_source(
                source, self.folder, self.settings, self.files, _quiet, upload_owner, token, api_key
            ).path
        target = self.folder / token
        with self._lock(token):
            if target.is_file():
                os.utime(target)  # most recently used
                return target
            self.folder.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=self.folder, prefix=".fetch-") as work:
                fetched = fetch_source(
                    source,
                    Path(work),
                    self.settings,
                    self.files,
                    _quiet,
                    upload_owner,
                    token,
                    api_key,
                )
                if not fetched.path.is_relative_to(work):
                    # Read in place (an upload in the data dir): the task still needs it there;
                    # moving it into the cache made the task's own run fail ("missing").
                    return fetched.path
                os.replace(fetched.path, target)
            self._evict(keep=target)
            return target

    def info(self, path: Path) -> MediaInfo:
        with self._guard:
            found = self.infos.get(path)
        if found is None:
            found = probe(path, self.settings.max_source_pixels)
            with self._guard:
                self.infos[path] = found
                while len(self.infos) > 256:
                    self.infos.popitem(last=False)
        return found

    def _evict(self, keep: Path) -> None:
        files = [p for p in self.folder.iterdir() if p.is_file()]
        files.sort(key=lambda p: p.stat().st_mtime)
        total = sum(p.stat().st_size for p in files)
        for old in files:
            if total <= self.limit:
                break
            if old != keep:
                total -= old.stat().st_size
                old.unlink(missing_ok=True)
                with self._guard:
                    self.infos.pop(old, None)


def _quiet(_: int) -> None:
    return None


class OnDemandFrames:
    def __init__(self, settings: Settings, files: Files) -> None:
        self.settings = settings
        folder = settings.data_dir / "cache" / "sources"
        for partial in folder.glob(".fetch-*"):  # downloads a stopped process left half done
            shutil.rmtree(partial, ignore_errors=True)
        self.sources = SourceCache(folder, settings.on_demand_source_cache_bytes, settings, files)
        # Decodes at once in this process: one a core, the rest wait their turn.
        self.decodes = threading.BoundedSemaphore(os.cpu_count() or 1)

    def render(
        self,
        token: str,
        source: str,
        request: Request,
        upload_owner: Callable[[str], str | None],
        api_key: str,
    ) -> RenderedFrame | Storyboard:
        with self.decodes:
            path = self.sources.path(token, source, upload_owner, api_key)
            info = self.sources.info(path)
            if isinstance(request, StoryboardRequest):
                return make_storyboard(path, info, request, token, self.settings)
            if isinstance(request, AnimatedRequest):
                return make_animated(path, info, request, self.settings)
            return self._frame(path, info, request)

    def _frame(self, path: Path, info: MediaInfo, request: FrameRequest) -> RenderedFrame:
        sizing = Sizing(
            width=request.width,
            height=request.height,
            mode=request.fit,
            rotate=request.rotate,
            pad_color=request.pad_color,
        )
        width, height = target_size(info.display_size, sizing)
        limit = min(self.settings.max_output_pixels, MAX_PIXELS)
        if width * height > limit:
            raise FrameRequestError(
                f"{width}x{height} is over {limit} pixels, the most an on-demand thumbnail may have"
            )
        seconds = request.seconds
        if seconds is None:
            seconds = (request.fraction or 0.0) * info.duration
        with VideoReader(path, info) as reader:
            picture = reader.frame_at(min(seconds, info.duration))
        image = render(picture, sizing)
        data = encode_bytes(image, request.image_format, None)
        hashed = placeholder(image, request.placeholder) if request.placeholder else None
        return RenderedFrame.of(
            data, request.image_format.content_type, time=picture.time, placeholder=hashed
        )
