"""``qthumb thumbnail``, ``qthumb thumbnails`` and ``qthumb run``: the pipeline
(``workers.tasks.pipeline.run_query``) over files, folders, globs and URLs, with no server, key or
polling, so the same frames and files as the API. Sources run one after another or ``--jobs``
at once, with bars on a terminal and a line a source otherwise (``workers.commands.progress``),
a summary on stderr and ``--json`` on stdout. Exit 0 when every source succeeded, 1 when any
failed (each named with its reason), 2 on usage errors, 130 on Ctrl-C. A file appears under its
final name only when whole, and Ctrl-C stops every source before its next step.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qthumb.app.errors import QencodeError
from qthumb.app.qencode.formats import FormatSpec, ImageSpec
from qthumb.app.qencode.query import (
    Destination,
    Query,
    decode_query,
    parse_query,
    url_scheme,
)
from qthumb.app.settings import Settings, settings_or_exit
from qthumb.app.storage.files import Files, open_files
from qthumb.app.storage.media_files import VIDEO_SUFFIXES
from qthumb.app.storage.s3 import OPERATOR
from qthumb.app.tasks.model import TaskRecord, TaskStatus
from qthumb.app.tasks.results import Results
from qthumb.app.tasks.wire import output_arrays, status_object
from qthumb.app.tokens import new_token
from qthumb.workers.commands.offline_args import format_of, parser, settle
from qthumb.workers.commands.progress import PlainProgress, progress_for
from qthumb.workers.failures import FormatFailure, NothingMade, TaskFailure
from qthumb.workers.media.probe import MediaInfo
from qthumb.workers.outputs.producers import PRODUCERS
from qthumb.workers.tasks.pipeline import Hooks, StorageFor, run_query
from qthumb.workers.tasks.s3 import destination_storage
from qthumb.workers.tasks.storage import Storage, folder_storage


class UsageError(Exception):
    pass


class Interrupted(Exception):
    """Ctrl-C: the run stops at its next progress report."""


@dataclass
class Outcome:
    source: str
    output: Path | None = None
    results: Results = field(default_factory=Results)
    error: str | None = None
    seconds: float = 0.0

    def line(self) -> str:
        where = f"-> {self.output}" if self.error is None else f"FAILED: {self.error}"
        return f"{self.source} {where} ({self.seconds:.2f} s)"

    def to_json(self) -> dict[str, Any]:
        arrays = output_arrays(self.results, None)
        return {
            "source": self.source,
            "output": str(self.output) if self.output else None,
            "error": self.error,
            "seconds": round(self.seconds, 3),
            "images": arrays["images"],
            "videos": arrays["videos"],
            "warnings": [w.to_json() for w in self.results.warnings],
        }


def _is_url(item: str) -> bool:
    """A URL fetched as it is (``file://`` is a local path)."""
    return bool(re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", item)) and not item.startswith("file://")


def expand_sources(items: list[str], recursive: bool) -> list[str]:
    """Files as given, the videos inside folders, glob matches, and URLs as they are."""
    found: list[str] = []
    for item in items:
        if _is_url(item):
            found.append(item)
            continue
        path = Path(item)
        if path.is_dir():
            pattern = "**/*" if recursive else "*"
            found += sorted(
                str(p)
                for p in path.glob(pattern)
                if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES
            )
        elif path.exists():
            found.append(str(path))
        else:
            matches = sorted(glob.glob(item, recursive=recursive))
            if not matches:
                raise UsageError(f"{item}: no such file, folder or match")
            found += [m for m in matches if Path(m).is_file()]
    return list(dict.fromkeys(found))


def stem(source: str) -> str:
    name = source.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0]
    return name.rsplit(".", 1)[0] if "." in name else (name or "source")


def located(source: str) -> str:
    """What the pipeline reads: URLs (and ``tus:``) as they are, paths made absolute."""
    return source if url_scheme(source) else str(Path(source).resolve())


@dataclass
class Batch:
    """What every source of one command shares."""

    settings: Settings
    files: Files
    display: PlainProgress
    cancel: threading.Event
    sources: dict[int, tuple[float, int]] = field(default_factory=dict)  # duration, bytes

    def hooks(self, key: int, spec: FormatSpec | None) -> Hooks:
        def progress(status: TaskStatus, percent: float) -> None:
            if self.cancel.is_set():
                raise Interrupted()
            if status is TaskStatus.ENCODING:
                self.display.advanced(key, percent)

        def probed(info: MediaInfo, size: int) -> None:
            self.sources[key] = (info.duration, size)
            producer = None if spec is None else PRODUCERS.get(type(spec))
            frames = 0 if spec is None or producer is None else producer.count(spec, info)
            if frames > 1:  # a bar in frames: a series (one frame is a bar in percent)
                self.display.sized(key, frames)

        return Hooks(progress=progress, probed=probed, api_key=OPERATOR)

    def run(
        self, key: int, query: Query, storage_for: StorageFor
    ) -> tuple[Results | None, str | None]:
        """Run one query; (results, None) or (None, why it failed)."""
        spec = query.formats[0] if len(query.formats) == 1 else None
        with tempfile.TemporaryDirectory(dir=self.settings.work_dir) as work:
            try:
                hooks = self.hooks(key, spec)
                made = run_query(query, self.settings, self.files, Path(work), storage_for, hooks)
            except NothingMade as exc:
                assert isinstance(exc.results, Results)
                return exc.results, exc.description
            except (TaskFailure, FormatFailure) as exc:
                return None, exc.description
            except QencodeError as exc:
                return None, exc.message
            except Interrupted:
                return None, "interrupted"
        return made, None


def run_one(batch: Batch, key: int, source: str, spec: FormatSpec, target: Path) -> Outcome:
    """One source of ``thumbnail``/``thumbnails``: its files straight into ``target``."""
    started = time.monotonic()
    batch.display.started(key, source)
    outcome = Outcome(source=source, output=target)
    # the kind's layout: one file takes the target's name, several go into it as a folder
    storage = folder_storage(target) if spec.folder else folder_storage(target, single=target)
    query = Query(source=located(source), formats=(spec,))
    results, outcome.error = batch.run(key, query, lambda spec, destination: storage)
    outcome.results = results or Results()
    outcome.seconds = time.monotonic() - started
    batch.display.ended(key, outcome.line())
    return outcome


def _targets(sources: list[str], args: argparse.Namespace, ext: str) -> list[Path]:
    out = Path(args.output)
    # one file named -o: one source named as such; a folder or a glob (even of one video), or
    # an -o that is or ends like a folder (posters/), is a folder of one file a source
    given = args.sources[0]
    pattern = not _is_url(given) and any(sign in given for sign in "*?[")
    one_file = len(args.sources) == 1 and not Path(given).is_dir() and not pattern
    folder = out.is_dir() or str(args.output).endswith(("/", os.sep))
    if args.command == "thumbnail" and one_file and not folder:
        return [out]
    names: dict[str, int] = {}
    targets = []
    for source in sources:
        base = stem(source)
        names[base] = names.get(base, 0) + 1
        name = base if names[base] == 1 else f"{base}-{names[base]}"
        targets.append(out / (f"{name}.{ext}" if args.command == "thumbnail" else name))
    return targets


def _settings(jobs: int) -> Settings:
    cores = os.cpu_count() or 1
    return settings_or_exit(
        data_dir=Path(tempfile.gettempdir()) / f"qthumb-offline-{os.getpid()}",
        local_source_dirs=["/"],  # local files are the user's own here
        storage_url="",  # and so is the temporary data dir, whatever the environment says
        decode_threads=max(1, cores // jobs),
    )


@contextmanager
def _batch(total: int, jobs: int) -> Iterator[Batch]:
    """A temporary data dir for one command, its display, and their cleaning up."""
    settings = _settings(jobs)
    try:
        settings.work_dir.mkdir(parents=True, exist_ok=True)
        with progress_for(total) as display:
            yield Batch(settings, open_files(settings), display, threading.Event())
    finally:
        shutil.rmtree(settings.data_dir, ignore_errors=True)


def thumbnails_command(args: argparse.Namespace) -> int:
    try:
        sources = expand_sources(args.sources, args.recursive)
        if not sources:
            raise UsageError("no video sources found")
        spec = parse_query({"source": located(sources[0]), "format": [format_of(args)]})
    except (UsageError, QencodeError) as exc:
        print(f"qthumb: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 2
    fmt = spec.formats[0]
    assert isinstance(fmt, ImageSpec)  # format_of asks for a thumbnail or thumbnails
    cores = os.cpu_count() or 1
    # Sources side by side, one a core: a folder of clips decodes faster so than with each
    # clip split between readers (each range would decode again from its keyframe). One
    # source alone gets every core as readers (bench/RESULTS.md, the folder benchmark).
    jobs = min(args.jobs or cores, len(sources))
    targets = _targets(sources, args, fmt.image_format.extension)
    started = time.monotonic()
    outcomes: list[Outcome] = []
    with _batch(len(sources), jobs) as batch, ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [
            pool.submit(run_one, batch, key, source, fmt, target)
            for key, (source, target) in enumerate(zip(sources, targets, strict=True))
        ]
        try:
            outcomes = [future.result() for future in futures]
        except KeyboardInterrupt:
            batch.cancel.set()
            pool.shutdown(wait=True, cancel_futures=True)
            print("qthumb: interrupted; files made so far are whole", file=sys.stderr)
            return 130
    failed = [o for o in outcomes if o.error]
    print(
        f"qthumb: {len(outcomes) - len(failed)} of {len(outcomes)} sources done"
        + (f", {len(failed)} failed" if failed else "")
        + f" in {time.monotonic() - started:.1f} s",
        file=sys.stderr,
    )
    for o in failed:
        print(f"  failed: {o.source}: {o.error}", file=sys.stderr)
    if args.json:
        print(json.dumps({"sources": [o.to_json() for o in outcomes]}, indent=2))
    return 1 if failed else 0


def run_command(args: argparse.Namespace) -> int:
    """``qthumb run QUERY.json``: the whole query, its status object on stdout."""
    try:
        text = sys.stdin.read() if args.query == "-" else Path(args.query).read_text()
        # as start_encode2 reads its query field, bare or wrapped (a file of one's own)
        query = parse_query(decode_query(text, wrapped=False))
    except (OSError, ValueError) as exc:  # ValueError: a file that is not text
        print(f"qthumb: {args.query}: {exc}", file=sys.stderr)
        return 2
    except QencodeError as exc:
        print(f"qthumb: {args.query}: {exc.message}", file=sys.stderr)
        return 2
    if query.callback_url:
        print("qthumb: callback_url is not called by qthumb run (no server)", file=sys.stderr)
    out = Path(args.output)
    task = TaskRecord(
        token=new_token(), api_key="", status=TaskStatus.COMPLETED, created_at=time.time()
    )
    query = Query(located(query.source), query.formats, query.callback_url)
    with _batch(1, 1) as batch:

        def storage_for(spec: FormatSpec, destination: Destination | None) -> Storage:
            if destination is None:
                return folder_storage(out / str(spec.index))
            return destination_storage(spec, destination, batch.settings, OPERATOR)

        batch.display.started(0, query.source)
        try:
            results, error = batch.run(0, query, storage_for)
        except KeyboardInterrupt:
            print("qthumb: interrupted", file=sys.stderr)
            return 130
        batch.display.ended(0, f"{query.source} {'FAILED: ' + error if error else 'done'}")
    task.results = results or Results()
    task.duration, task.source_size = batch.sources.get(0, (None, None))
    if error is not None:
        task.status, task.error_description = TaskStatus.ERROR, error
    print(json.dumps(status_object(task, None), indent=2))
    return 1 if error else 0


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    settle(args, p)
    if args.command == "run":
        return run_command(args)
    return thumbnails_command(args)


if __name__ == "__main__":
    sys.exit(main())
