"""Thumbnails on demand: any frame of a task's source, by URL (``app.on_demand_routes``).

The API process makes these itself, in a thread: a repeated request is answered from memory in
well under 5 ms and a new one costs one seek and decode, which a queue round trip to a worker
would more than double. So this is the one module of ``workers`` the API imports.

Sources are fetched once per machine (as the worker would: local folders in place, URLs, S3
and tus uploads downloaded) into ``<data dir>/cache/sources`` and kept, least recently used
out, within ``QTHUMB_ON_DEMAND_SOURCE_CACHE_BYTES``. Encoded frames are kept in memory within
``QTHUMB_ON_DEMAND_RESULT_CACHE_BYTES``. Each replica keeps its own caches, so this works the
same on every backend: nothing here is shared between machines.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.files import Files
from app.query import MAX_SIDE, ImageFormat, ResizeMode, Sizing, url_scheme
from app.settings import Settings
from workers.frames import VideoReader
from workers.imaging import encode_bytes, render, target_size
from workers.probe import MediaInfo, probe
from workers.sources import fetch_source

# An on-demand image is for a page or a player: 4096x4096 at most (a 64-Mpx one, which a task
# may make, would cost ~200 MB of memory a request, asked for by anyone holding the token).
MAX_PIXELS = 4096 * 4096


class FrameRequestError(Exception):
    """The request cannot be answered; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message, self.status = message, status


@dataclass(frozen=True)
class FrameRequest:
    seconds: float | None  # `time=12.5`
    fraction: float | None  # `time=50%`, as 0.5
    width: int | None
    height: int | None
    fit: ResizeMode
    image_format: ImageFormat

    def key(self, token: str) -> str:
        return f"{token}|{self.seconds}|{self.fraction}|{self.width}|{self.height}|" + (
            f"{self.fit.value}|{self.image_format.value}"
        )


@dataclass(frozen=True)
class RenderedFrame:
    data: bytes
    content_type: str
    etag: str
    time: float  # the frame's own time in the source


def parse_time(value: str | None) -> tuple[float | None, float | None]:
    """``12.5`` seconds or ``50%``; none: the middle, as Mux's image API does."""
    if value is None or value == "":
        return None, 0.5
    text = value.strip()
    try:
        number = float(text[:-1] if text.endswith("%") else text)
    except ValueError:
        shown = value[:40]
        raise FrameRequestError(
            f"time must be seconds (12.5) or a percent (50%), not {shown!r}"
        ) from None
    if not 0 <= number < float("inf") or (text.endswith("%") and number > 100):
        raise FrameRequestError(f"time {value[:40]!r} is out of range")
    return (None, number / 100) if text.endswith("%") else (number, None)


def parse_side(value: str | None, name: str) -> int | None:
    if value is None or value == "":
        return None
    if not value.isdigit() or not 1 <= int(value) <= MAX_SIDE:
        raise FrameRequestError(f"{name} must be a whole number of pixels, 1 to {MAX_SIDE}")
    return int(value)


class _Lru:
    """Values kept most recently used last, dropped from the front past ``limit`` bytes."""

    def __init__(self, limit: int) -> None:
        self.limit, self.size = limit, 0
        self.items: OrderedDict[str, RenderedFrame] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: str) -> RenderedFrame | None:
        with self.lock:
            found = self.items.get(key)
            if found is not None:
                self.items.move_to_end(key)
            return found

    def put(self, key: str, value: RenderedFrame) -> None:
        if len(value.data) > self.limit:
            return
        with self.lock:
            old = self.items.pop(key, None)
            self.size -= len(old.data) if old else 0
            self.items[key] = value
            self.size += len(value.data)
            while self.size > self.limit:
                _, dropped = self.items.popitem(last=False)
                self.size -= len(dropped.data)


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

    def path(self, token: str, source: str, upload_owner: Callable[[str], str | None]) -> Path:
        if not url_scheme(source) or url_scheme(source) == "file":  # read in place
            return fetch_source(source, self.folder, self.settings, self.files, _quiet,
                                upload_owner, token).path  # fmt: skip
        target = self.folder / token
        with self._lock(token):
            if target.is_file():
                os.utime(target)  # most recently used
                return target
            self.folder.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=self.folder, prefix=".fetch-") as work:
                fetched = fetch_source(source, Path(work), self.settings, self.files, _quiet,
                                       upload_owner, token)  # fmt: skip
                os.replace(fetched.path, target)
            self._evict(keep=target)
            return target

    def info(self, path: Path) -> MediaInfo:
        with self._guard:
            found = self.infos.get(path)
        if found is None:
            found = probe(path)
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
        self.results = _Lru(settings.on_demand_result_cache_bytes)
        # Decodes at once in this process: one a core, the rest wait their turn.
        self.decodes = threading.BoundedSemaphore(os.cpu_count() or 1)

    def cached(self, token: str, request: FrameRequest) -> RenderedFrame | None:
        return self.results.get(request.key(token))

    def render(
        self,
        token: str,
        source: str,
        request: FrameRequest,
        upload_owner: Callable[[str], str | None],
    ) -> RenderedFrame:
        key = request.key(token)
        found = self.results.get(key)
        if found is not None:
            return found
        with self.decodes:
            return self._render(token, source, request, upload_owner, key)

    def _render(
        self,
        token: str,
        source: str,
        request: FrameRequest,
        upload_owner: Callable[[str], str | None],
        key: str,
    ) -> RenderedFrame:
        path = self.sources.path(token, source, upload_owner)
        info = self.sources.info(path)
        sizing = Sizing(width=request.width, height=request.height, mode=request.fit)
        width, height = target_size(info.display_size, sizing)
        limit = min(self.settings.max_output_pixels, MAX_PIXELS)
        if width * height > limit:
            raise FrameRequestError(f"{width}x{height} is over {limit} pixels, the most an "
                                    "on-demand thumbnail may have")  # fmt: skip
        seconds = request.seconds
        if seconds is None:
            seconds = (request.fraction or 0.0) * info.duration
        with VideoReader(path, info) as reader:
            picture = reader.frame_at(min(seconds, info.duration))
        image = render(picture, sizing)
        data = encode_bytes(image, request.image_format, None)
        etag = '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
        frame = RenderedFrame(data, request.image_format.content_type, etag, picture.time)
        self.results.put(key, frame)
        return frame
