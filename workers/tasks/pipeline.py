"""The pipeline as a library: a parsed query, run against its source and a storage, returns
typed results. No store, queue or HTTP here: the worker (``workers.tasks.task_run``), the offline
commands (``workers.commands.offline``) and tests call ``run_query`` alike.

fetch → probe (unless only metadata is asked) → check limits → leave out video outputs
larger than the source (``upscale``) → each format, by the producer
``workers.outputs.producers`` registers for its output → every file into each of the format's
destinations. While a format is made its entry is ``Running``. A format that fails is a
``FormatFailed`` entry; unless it has ``allow_soft_fail`` (or is an output qthumb does not
make) that ends the task (``OutputFailed``), else the others still count; a task that can make
nothing raises ``NothingMade``.
"""

from __future__ import annotations

import contextlib
import errno
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

from qthumb.app.memory import memory_failure
from qthumb.app.qencode.formats import FormatSpec
from qthumb.app.qencode.query import Destination, Query
from qthumb.app.redact import redact
from qthumb.app.settings import Settings
from qthumb.app.storage.files import Files
from qthumb.app.tasks.model import TaskStatus
from qthumb.app.tasks.results import FormatFailed, Notice, Results, Running, StoredFile
from qthumb.app.tasks.wire import failure_tag, format_tag
from qthumb.workers.failures import FormatFailure, NothingMade, OutputFailed
from qthumb.workers.media.frames import VideoReader
from qthumb.workers.media.logos import MAX_LOGO_BYTES
from qthumb.workers.media.probe import MediaInfo, probe
from qthumb.workers.outputs.producers import PRODUCERS, Making, needs_video, producer_for
from qthumb.workers.outputs.products import Product
from qthumb.workers.tasks.limits import check_format, check_task
from qthumb.workers.tasks.sources import FetchedSource, fetch_source
from qthumb.workers.tasks.stitched_source import stitched_source
from qthumb.workers.tasks.storage import Storage, StoredObject
from qthumb.workers.tasks.upscale import without_upscale

log = logging.getLogger("qthumb.pipeline")

StorageFor = Callable[[FormatSpec, Destination | None], Storage]


def _ignore(*_: object) -> None:
    return None


def _untimed(_: str) -> AbstractContextManager[object]:
    return contextlib.nullcontext()


@dataclass
class Hooks:
    """What a caller may watch or supply; each does nothing by default."""

    progress: Callable[[TaskStatus, float], None] = _ignore  # state and percent, 0..100
    probed: Callable[[MediaInfo, int], None] = _ignore  # what the source is, its size in bytes
    upload_owner: Callable[[str], str | None] = lambda _: None  # tus uploads: whose it is
    task_token: str = ""  # whose uploads this run may read (uploads are the server's only)
    # whom sources and destinations are reached for: the task's API key; OPERATOR (None) for
    # the offline commands, whose user is the operator (app.storage.s3.credentials)
    api_key: str | None = ""
    label: str = ""  # names the run in log lines
    # Measuring (the worker's Prometheus metrics): a context around each stage (download,
    # probe, encode, save), and the bytes stored in each kind of storage.
    stage: Callable[[str], AbstractContextManager[object]] = _untimed
    stored: Callable[[str, int], None] = _ignore
    # Why a format must fail before it is made (a fault a test asked for), or None.
    format_fault: Callable[[FormatSpec], str | None] = lambda _: None
    # The run's results as they grow (outputs being made), given once when it starts.
    live: Callable[[Results], None] = _ignore
    # Threads this run may decode with, asked when its decoding starts (None: the settings'
    # static budget, the cores shared among the worker processes)
    decode_threads: Callable[[], int | None] = lambda: None


def secrets_of(query: Query | None, settings: Settings) -> list[str]:
    """Values masked in every description a run records (``app.redact``): the configured S3
    credentials, and the query's own once it is parsed."""
    configured = [v for g in settings.s3_credentials.values() for v in (g.key, g.secret) if v]
    return configured + (query.secrets() if query is not None else [])


@dataclass
class _Run:
    query: Query
    settings: Settings
    files: Files
    storage_for: StorageFor
    hooks: Hooks
    results: Results = field(default_factory=Results)
    secrets: list[str] = field(init=False)
    formats: tuple[FormatSpec, ...] = field(init=False)  # those made (upscale: some left out)

    def __post_init__(self) -> None:
        self.secrets = secrets_of(self.query, self.settings)
        self.formats = self.query.formats

    def _running(self, spec: FormatSpec) -> Running | None:
        return next(
            (m for m in self.results.made if isinstance(m, Running) and m.index == spec.index), None
        )

    def _settle(self, spec: FormatSpec) -> None:
        """The format's ``Running`` entry removed: its files or its failure take its place."""
        entry = self._running(spec)
        if entry is not None:
            self.results.made.remove(entry)

    def failed(
        self, spec: FormatSpec, description: str, transient: bool = False, store_down: bool = False
    ) -> OutputFailed | None:
        """``spec`` failed: its entry, and a warning with ``allow_soft_fail`` (or for an
        output qthumb does not make); else the ``OutputFailed`` that ends the task, for the
        caller to raise outside its ``except`` (the failure being handled, and the frames its
        traceback holds, must not live on while the task is ended: under the memory limit
        they are what ran out)."""
        description = redact(description, self.secrets)
        item = FormatFailed(spec.index, spec.output, spec.user_tag, description)
        self._settle(spec)
        self.results.made.append(item)
        where = f"format {spec.index} ({spec.output})"
        log.warning("%s %s failed: %s", self.hooks.label, where, description)
        if not spec.soft_fail and type(spec) in PRODUCERS:
            # made but not stored: not in the task's results
            self.results.made = [m for m in self.results.made if not isinstance(m, Running)]
            return OutputFailed(f"{where}: {description}", self.results, transient, store_down)
        self.results.warnings.append(Notice(f"{where} failed", description, failure_tag(item)))
        return None

    def fetch_logo(self, url: str, folder: Path) -> Path:
        """A logo's URL as a local file: fetched as a source is, under a logo's size cap."""
        capped = self.settings.model_copy(
            update={"max_source_bytes": min(self.settings.max_source_bytes, MAX_LOGO_BYTES)}
        )
        hooks = self.hooks
        fetched = fetch_source(
            url,
            folder,
            capped,
            self.files,
            _ignore,
            hooks.upload_owner,
            hooks.task_token,
            hooks.api_key,
        )
        return fetched.path

    def make_all(
        self, source: Path, info: MediaInfo | None, work: Path
    ) -> list[tuple[FormatSpec, list[Product]]]:
        made: list[tuple[FormatSpec, list[Product]]] = []
        total = len(self.formats)
        threads = self.hooks.decode_threads()
        settings = self.settings
        if threads is not None:  # what the machine's load leaves this run, asked now
            settings = settings.model_copy(update={"decode_threads": threads})
        with contextlib.ExitStack() as stack:
            opened: list[VideoReader] = []

            def reader() -> VideoReader:
                if not opened:
                    assert info is not None
                    opened.append(
                        stack.enter_context(VideoReader(source, info, settings.decode_budget))
                    )
                return opened[0]

            for done, spec in enumerate(self.formats):
                out_dir = work / f"out{spec.index}"
                out_dir.mkdir()
                entry = Running(spec.index, spec.output, spec.user_tag)
                self.results.made.append(entry)

                def progress(fraction: float, done: int = done, entry: Running = entry) -> None:
                    entry.percent = 100.0 * min(1.0, max(0.0, fraction))
                    self.hooks.progress(TaskStatus.ENCODING, 100.0 * (done + fraction) / total)

                making = Making(source, info, out_dir, progress, settings, reader, self.fetch_logo)
                fault = self.hooks.format_fault(spec)
                fatal: OutputFailed | None = None
                if fault is not None:
                    if fatal := self.failed(spec, fault, transient=True):
                        raise fatal
                    continue
                try:
                    producer = producer_for(spec)
                    if producer.needs_video and info is not None:
                        check_format(spec, info, self.settings)
                    made.append((spec, producer.run(spec, making)))
                    entry.state, entry.percent = "saving", 100.0
                except FormatFailure as exc:
                    fatal = self.failed(spec, exc.description, exc.transient)
                except MemoryError:  # past QTHUMB_WORKER_MEMORY_LIMIT: this format alone
                    fatal = self.failed(spec, memory_failure(self.settings), transient=True)
                except BlockingIOError as exc:
                    # EAGAIN: a decoder or encoder thread could not start; under RLIMIT_DATA
                    # that is the same limit (each thread's heap arena counts against it)
                    if exc.errno != errno.EAGAIN:
                        raise
                    fatal = self.failed(spec, memory_failure(self.settings), transient=True)
                if fatal is not None:
                    raise fatal
                self.hooks.progress(TaskStatus.ENCODING, 100.0 * (done + 1) / total)
        return made

    def save(self, spec: FormatSpec, products: list[Product]) -> None:
        """The format's files into each destination (the same files in every one). A failed
        destination fails the format with its own entry; the others still count."""
        destinations: list[Destination | None] = [*spec.destinations] or [None]
        for destination in destinations:
            fatal: OutputFailed | None = None
            stored: list[StoredObject] | None = None
            storage: Storage | None = None
            try:
                storage = self.storage_for(spec, destination)
                # Entries only once every file is stored: a destination is whole or absent,
                # so what this attempt stored before a failure is removed again.
                stored = [storage.put(p.path, p.name, p.content_type) for p in products]
            except FormatFailure as exc:
                left = storage.discard() if storage is not None else []
                kept = f"; left behind (could not be removed): {', '.join(left)}" if left else ""
                fatal = self.failed(spec, exc.description + kept, exc.transient, exc.store_down)
            if fatal is not None:
                raise fatal
            if stored is None:
                continue
            self._settle(spec)
            kind = "temporary" if destination is None else "s3"
            self.hooks.stored(kind, sum(p.size for p in products))
            for product, obj in zip(products, stored, strict=True):
                self.results.made.append(
                    StoredFile(
                        index=spec.index,
                        output=spec.output,
                        user_tag=spec.user_tag,
                        location=obj.location,
                        storage=obj.storage,
                        kind=product.kind,
                        size=product.size,
                        width=product.width,
                        height=product.height,
                        time=product.time,
                        duration=product.duration,
                        meta=product.meta,
                        placeholder=product.placeholder,
                        score=product.score,
                    )
                )


def run_query(
    query: Query,
    settings: Settings,
    files: Files,
    work: Path,
    storage_for: StorageFor,
    hooks: Hooks | None = None,
) -> Results:
    """Run ``query`` in the empty folder ``work`` (the caller removes it). Raises
    ``TaskFailure`` when the source cannot be used, ``NothingMade`` (with the results, every
    format's failure) when no format could be made."""
    hooks = hooks or Hooks()
    run = _Run(query, settings, files, storage_for, hooks)
    hooks.live(run.results)

    def fetch(url: str, folder: Path) -> FetchedSource:
        return fetch_source(
            url,
            folder,
            settings,
            files,
            lambda _: hooks.progress(TaskStatus.DOWNLOADING, 0.0),
            hooks.upload_owner,
            hooks.task_token,
            hooks.api_key,
        )

    with hooks.stage("download"):
        if query.stitch:
            fetched = stitched_source(
                query.stitch,
                work,
                settings,
                fetch,
                lambda part: hooks.progress(TaskStatus.DOWNLOADING, 100 * part),
            )
        else:
            fetched = fetch(query.source, work)
    info: MediaInfo | None = None
    if any(needs_video(spec) for spec in query.formats):
        with hooks.stage("probe"):
            info = probe(fetched.path, settings.max_source_pixels)
        hooks.probed(info, fetched.size)
        if info.claimed_duration is not None:
            run.results.warnings.append(
                Notice(
                    "source is shorter than its header says",
                    f"the header says {info.claimed_duration:.3f} s; its frames end at "
                    f"{info.duration:.3f} s, so outputs cover {info.duration:.3f} s",
                    format_tag(query.formats[0].output, 0),  # the whole task's: its first
                )
            )
        check_task(query, info, settings)
        run.formats, changed = without_upscale(query, info)
        run.results.warnings += changed
    hooks.progress(TaskStatus.ENCODING, 0.0)
    with hooks.stage("encode"):
        made = run.make_all(fetched.path, info, work)
    hooks.progress(TaskStatus.SAVING, 100.0)
    with hooks.stage("save"):
        for spec, products in made:
            run.save(spec, products)
    if not run.results.files:
        reasons = [f.description for f in run.results.failures]
        if len(reasons) == 1:
            raise NothingMade(reasons[0], run.results)
        raise NothingMade(f"no format could be made: {'; '.join(reasons)}", run.results)
    return run.results
