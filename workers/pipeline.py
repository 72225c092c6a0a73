"""One task, start to end: claim → download → probe → each format → save → completed/error.

Every change goes through the store with the attempt number this worker claimed, so a worker
that was presumed dead cannot overwrite its successor. The task's files live in one temporary
folder removed whatever happens.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from app.callbacks import task_ended
from app.errors import QencodeError
from app.files import Files
from app.metrics import instruments
from app.model import Outputs, TaskStatus
from app.orphans import pid_alive
from app.outbox import CallbackOutbox
from app.query import VIDEO_OUTPUTS, Destination, FormatSpec, Query, parse_query
from app.queue import TaskQueue
from app.redact import redact
from app.settings import Settings
from app.store import TaskStore
from workers.entries import add_failed, add_stored
from workers.failures import FormatFailure, TaskFailure
from workers.frames import VideoReader
from workers.gif import make_gif
from workers.limits import check_format, check_task
from workers.metadata import make_metadata
from workers.probe import MediaInfo, probe
from workers.products import Product
from workers.s3 import S3Storage
from workers.series import make_thumbnails
from workers.sources import fetch_source
from workers.storage import Storage, TemporaryStorage
from workers.thumbnail import make_thumbnail
from workers.video import make_video

log = logging.getLogger("qthumb.worker")


class LostClaim(Exception):
    """Recovery gave this task to another worker: stop without writing anything."""


class Heartbeat:
    """Beats for a running task from a thread, so a long decode still looks alive."""

    def __init__(self, store: TaskStore, token: str, attempt: int, interval: float) -> None:
        self.store, self.token, self.attempt, self.interval = store, token, attempt, interval
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"beat-{token[:8]}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                if not self.store.heartbeat(self.token, self.attempt, time.time()):
                    self.lost = True
                    return
            except Exception:  # a locked database now must not stop the beats for good
                log.exception("task %s heartbeat failed", self.token)


class TaskRun:
    """The state of one attempt at one task; ``run_task`` drives it."""

    def __init__(
        self, settings: Settings, store: TaskStore, files: Files, token: str, attempt: int
    ) -> None:
        self.settings, self.store, self.token, self.attempt = settings, store, token, attempt
        self.files = files
        self.outputs = Outputs()
        self.beat: Heartbeat | None = None
        # Masked in every description this attempt records (app.redact).
        self.secrets: list[str] = [
            value for creds in settings.s3_credentials.values() for value in creds.values()
        ]
        self._last_percent_write = 0.0

    def advance(self, status: TaskStatus, percent: float, force: bool = False) -> None:
        if self.beat is not None and self.beat.lost:
            raise LostClaim()
        now = time.monotonic()
        if not force and now - self._last_percent_write < 0.5:
            return
        self._last_percent_write = now
        if not self.store.advance(self.token, self.attempt, status, round(percent, 4)):
            raise LostClaim()

    def run(self, work: Path) -> None:
        task = self.store.get(self.token)
        if task is None or task.query is None:
            raise TaskFailure("task has no query")
        try:
            query = parse_query(json.loads(task.query))
        except QencodeError as exc:
            raise TaskFailure(f"query: {exc.message}") from None
        self.secrets += query.secrets()
        stage = instruments().stage_seconds
        with stage.labels("download").time():
            fetched = fetch_source(
                query.source,
                work,
                self.settings,
                self.files,
                self._download_progress,
                self.store.upload_owner,
                self.token,
            )
        if all(spec.output == "metadata" for spec in query.formats):
            # A source's metadata needs no video track: described, not probed for frames.
            self.advance(TaskStatus.ENCODING, 0.0, force=True)
            made = []
            for spec in query.formats:
                (work / f"out{spec.index}").mkdir()
                made.append((spec, make_metadata(fetched.path, work / f"out{spec.index}")))
        else:
            with stage.labels("probe").time():
                info = self._probe(fetched.path, fetched.size)
            check_task(query, info, self.settings)
            self.advance(TaskStatus.ENCODING, 0.0, force=True)
            with stage.labels("encode").time():
                made = self._make_formats(query, fetched.path, info, work)
        self.advance(TaskStatus.SAVING, 100.0, force=True)
        log.info("task %s saving", self.token)
        with stage.labels("save").time():
            for spec, products in made:
                self._save(spec, products)
        made_any = any(
            not entry.get("error") for entry in [*self.outputs.images, *self.outputs.videos]
        )
        if not made_any:
            reasons = [w["details"] for w in self.outputs.warnings]
            if len(reasons) == 1:
                raise TaskFailure(reasons[0])
            raise TaskFailure(f"no format could be made: {'; '.join(reasons)}")

    def _probe(self, path: Path, size: int) -> MediaInfo:
        info = probe(path)
        self.store.set_source_info(self.token, self.attempt, info.duration, size)
        log.info(
            "task %s source %.3fs %dx%d %s",
            self.token,
            info.duration,
            info.coded_width,
            info.coded_height,
            info.codec,
        )
        if info.claimed_duration is not None:
            self.outputs.warnings.append(
                {
                    "message": "source is shorter than its header says",
                    "details": f"the header says {info.claimed_duration:.3f} s; its frames end "
                    f"at {info.duration:.3f} s, so outputs cover {info.duration:.3f} s",
                    "tag": "source",
                }
            )
        return info

    def _download_progress(self, done: int) -> None:
        self.advance(TaskStatus.DOWNLOADING, 0.0)

    def _make_formats(
        self, query: Query, source: Path, info: MediaInfo, work: Path
    ) -> list[tuple[FormatSpec, list[Product]]]:
        made: list[tuple[FormatSpec, list[Product]]] = []
        total = len(query.formats)
        with contextlib.ExitStack() as stack:
            opened: list[VideoReader] = []

            def reader() -> VideoReader:
                """One reader shared by the single thumbnails, opened when first needed."""
                if not opened:
                    opened.append(stack.enter_context(VideoReader(source, info)))
                return opened[0]

            for done, spec in enumerate(query.formats):
                out_dir = work / f"out{spec.index}"
                out_dir.mkdir()

                def progress(fraction: float, done: int = done) -> None:
                    self.advance(TaskStatus.ENCODING, 100.0 * (done + fraction) / total)

                try:
                    made.append(
                        (spec, self._make_one(spec, reader, source, info, out_dir, progress))
                    )
                except FormatFailure as exc:
                    self._format_failed(spec, exc.description)
                self.advance(TaskStatus.ENCODING, 100.0 * (done + 1) / total)
        return made

    def _make_one(
        self,
        spec: FormatSpec,
        reader: Callable[[], VideoReader],
        source: Path,
        info: MediaInfo,
        out_dir: Path,
        progress: Callable[[float], None],
    ) -> list[Product]:
        if spec.output == "metadata":
            return make_metadata(source, out_dir)
        check_format(spec, info, self.settings)
        if spec.output == "thumbnail":
            return make_thumbnail(reader(), spec, out_dir)
        if spec.output == "thumbnails":
            # One reader a core: more only adds containers (~20 MB each for long files) and
            # contention when decoding dominates (measured in bench/RESULTS.md).
            readers = self.settings.decode_threads or os.cpu_count() or 1
            return make_thumbnails(
                source,
                info,
                spec,
                out_dir,
                progress,
                readers,
                max_frames=self.settings.max_frames_per_task,
                max_pixels=self.settings.max_output_pixels,
            )
        if spec.output in VIDEO_OUTPUTS:
            timeout = self.settings.video_timeout
            return make_video(source, info, spec, out_dir, progress, timeout)
        if spec.output == "gif":
            return make_gif(source, info, spec, out_dir, progress, self.settings.video_timeout)
        raise FormatFailure(f"output '{spec.output}' is not supported yet")

    def _storage(self, spec: FormatSpec, destination: Destination | None) -> Storage:
        if destination is None:
            return TemporaryStorage(self.settings, self.files, self.token, spec.index)
        if destination.url.lower().startswith("s3://"):
            return S3Storage(destination, self.settings, folder=spec.output == "thumbnails")
        if "://" not in destination.url:
            raise FormatFailure(f"destination {destination.url[:200]!r} is not a URL")
        scheme = destination.url.split(":", 1)[0]
        raise FormatFailure(
            f"destination {destination.url}: {scheme}:// destinations are not supported; "
            "use s3:// (any S3-compatible store) or no destination"
        )

    def _save(self, spec: FormatSpec, products: list[Product]) -> None:
        """Put the format's files in each destination (the same files in every one). A failed
        destination fails the format with its own entry; the others still count."""
        destinations: list[Destination | None] = list(spec.destinations) or [None]
        for destination in destinations:
            try:
                self._put_all(spec, self._storage(spec, destination), products)
            except FormatFailure as exc:
                self._format_failed(spec, exc.description)

    def _put_all(self, spec: FormatSpec, storage: Storage, products: list[Product]) -> None:
        # Entries only once every file is stored: a destination is reported whole or not at all.
        stored = [storage.put(p.path, p.name, p.content_type) for p in products]
        kind = "temporary" if isinstance(storage, TemporaryStorage) else "s3"
        instruments().stored_bytes.labels(kind).inc(sum(p.size for p in products))
        add_stored(self.outputs, spec, products, stored)

    def _format_failed(self, spec: FormatSpec, description: str) -> None:
        description = redact(description, self.secrets)
        add_failed(self.outputs, spec, description)
        log.warning(
            "task %s format %d (%s) failed: %s", self.token, spec.index, spec.output, description
        )


def run_task(
    settings: Settings,
    store: TaskStore,
    queue: TaskQueue,
    outbox: CallbackOutbox,
    files: Files,
    token: str,
    worker_id: str,
) -> None:
    """Run one task if it can still be claimed. Never raises for a task's own failure."""
    attempt = store.claim(token, worker_id, time.time())
    if attempt is None:
        log.info("task %s not claimable (done, running elsewhere or unknown): skipped", token)
        return
    log.info("task %s downloading (attempt %d, %s)", token, attempt, worker_id)
    run = TaskRun(settings, store, files, token, attempt)
    settings.work_dir.mkdir(parents=True, exist_ok=True)
    work = work_folder(settings, token, attempt)
    for stale in settings.work_dir.glob(f"{token}-*"):  # left by a killed earlier attempt
        shutil.rmtree(stale, ignore_errors=True)
    metrics = instruments()
    metrics.workers_busy.inc()
    started, outcome = time.monotonic(), "interrupted"
    try:
        work.mkdir()
        with Heartbeat(store, token, attempt, settings.heartbeat_interval) as beat:
            run.beat = beat
            run.run(work)
        _end(store, outbox, run, TaskStatus.COMPLETED, None)
        outcome = "completed"
    except LostClaim:
        outcome = "lost"
        log.warning("task %s: claim lost to recovery; this attempt stops", token)
    except TaskFailure as exc:
        outcome = "error"
        _end(store, outbox, run, TaskStatus.ERROR, exc.description)
    except (KeyboardInterrupt, SystemExit):
        # Shut down mid-task: hand the task back rather than leave it to the heartbeat timeout.
        if store.requeue(token, attempt, time.time()):
            queue.enqueue(token)
            log.warning("task %s handed back to the queue at shutdown", token)
        raise
    except Exception as exc:
        outcome = "error"
        log.exception("task %s failed unexpectedly", token)
        _end(store, outbox, run, TaskStatus.ERROR, f"internal error: {type(exc).__name__}: {exc}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        metrics.workers_busy.dec()
        metrics.task_seconds.labels(outcome).observe(time.monotonic() - started)


def _end(
    store: TaskStore,
    outbox: CallbackOutbox,
    run: TaskRun,
    status: TaskStatus,
    description: str | None,
) -> None:
    if description is not None:
        description = redact(description, run.secrets)
    if store.finish(run.token, run.attempt, status, run.outputs, description, time.time()):
        log.info("task %s %s%s", run.token, status.value, f": {description}" if description else "")
        task_ended(store, outbox, run.token, time.time(), run.settings.status_url)
    else:
        log.warning(
            "task %s: result of attempt %d not recorded (claim lost)", run.token, run.attempt
        )


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def work_folder(settings: Settings, token: str, attempt: int) -> Path:
    """Where one attempt works, on this machine: ``<work dir>/<token>-<attempt>``."""
    return settings.work_dir / f"{token}-{attempt}"


def clear_stale_work(settings: Settings, store: TaskStore) -> None:
    """Remove work folders left by attempts that no live process on this machine runs (a
    SIGKILLed pool, a machine that rebooted). Folders of live attempts are kept, so several
    pools may share one data dir."""
    if not settings.work_dir.is_dir():
        return
    host = socket.gethostname()
    for folder in settings.work_dir.iterdir():
        token, _, attempt = folder.name.rpartition("-")
        task = store.get(token) if attempt.isdigit() else None
        owner = (task.worker_id or "") if task is not None else ""
        owner_host, _, owner_pid = owner.rpartition(":")
        alive = (
            task is not None
            and task.status.running
            and task.attempts == int(attempt)
            and owner_host == host
            and owner_pid.isdigit()
            and pid_alive(int(owner_pid))
        )
        if not alive:
            shutil.rmtree(folder, ignore_errors=True)
