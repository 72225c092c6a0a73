"""``qthumb thumbnail`` and ``qthumb thumbnails``: the pipeline over files, folders, globs and
URLs, with no server, key or polling. The same producers as the worker (so the same frames and
files), one source after another or ``--jobs`` at once; a line per source and a summary on
stderr, ``--json`` for a machine-readable one; exit 0 when every source succeeded, 1 when any
failed (each named with its reason), 2 on usage errors. Files appear under their final names
only when whole.
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
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.errors import QencodeError
from app.files import LocalFiles
from app.query import FormatSpec, Query, parse_query
from app.settings import Settings
from workers.failures import FormatFailure, TaskFailure
from workers.frames import VideoReader
from workers.limits import check_format, check_task
from workers.probe import probe
from workers.products import Product
from workers.series import make_thumbnails
from workers.sources import fetch_source
from workers.thumbnail import make_thumbnail

VIDEO_SUFFIXES = frozenset(
    {
        ".mp4",
        ".mov",
        ".m4v",
        ".mkv",
        ".webm",
        ".avi",
        ".ts",
        ".mts",
        ".m2ts",
        ".mpg",
        ".mpeg",
        ".flv",
        ".wmv",
        ".ogv",
        ".3gp",
        ".mxf",
    }
)
_SECONDS = re.compile(r"^(\d+(?:\.\d+)?)s$")


class UsageError(Exception):
    pass


@dataclass
class Outcome:
    source: str
    output: Path | None = None
    products: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0


def expand_sources(items: list[str], recursive: bool) -> list[str]:
    """Files as given, the videos inside folders, glob matches, and URLs as they are."""
    found: list[str] = []
    for item in items:
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", item) and not item.startswith("file://"):
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


def _format(args: argparse.Namespace) -> dict[str, Any]:
    fmt: dict[str, Any] = {"output": args.command}
    for name in ("width", "height", "quality"):
        if getattr(args, name, None) is not None:
            fmt[name] = getattr(args, name)
    if args.format:
        fmt["image_format"] = args.format
    if args.command == "thumbnail":
        seconds = _SECONDS.match(args.time or "")
        if seconds:  # an exact time: the window starts there and the frame is its first
            fmt.update(start_time=float(seconds.group(1)), time=0)
        elif args.time is not None:
            fmt["time"] = args.time
    else:
        fmt.update(interval=args.interval, sprite=1 if args.sprite else 0)
        if args.columns:
            fmt["columns"] = args.columns
        if args.keyframes_only:
            fmt["keyframes_only"] = 1
    return fmt


def _entry(product: Product, path: Path) -> dict[str, Any]:
    entry: dict[str, Any] = {"path": str(path), "type": product.kind, "size": product.size}
    if product.width:
        entry.update(width=product.width, height=product.height)
    if product.time is not None:
        entry["time"] = round(product.time, 6)
    return entry


def run_one(
    source: str,
    spec: FormatSpec,
    target: Path,
    settings: Settings,
    files: LocalFiles,
    readers: int,
) -> Outcome:
    """One source: fetch, probe, check limits, make, then move into place."""
    started = time.monotonic()
    outcome = Outcome(source=source, output=target)
    with tempfile.TemporaryDirectory(dir=settings.work_dir) as work_name:
        work = Path(work_name)
        try:
            fetched = fetch_source(
                source, work, settings, files, lambda _: None, lambda _: None, ""
            )
            info = probe(fetched.path)
            check_task(Query(source=source, formats=(spec,)), info, settings)
            check_format(spec, info, settings)
            out = work / "out"
            out.mkdir()
            if spec.output == "thumbnail":
                with VideoReader(fetched.path, info) as reader:
                    products = make_thumbnail(reader, spec, out)
            else:
                products = make_thumbnails(
                    fetched.path,
                    info,
                    spec,
                    out,
                    lambda _: None,
                    readers,
                    max_frames=settings.max_frames_per_task,
                    max_pixels=settings.max_output_pixels,
                )
            outcome.products = _place(products, target, spec.output == "thumbnail")
        except (TaskFailure, FormatFailure) as exc:
            outcome.error = exc.description
        except QencodeError as exc:
            outcome.error = exc.message
    outcome.seconds = time.monotonic() - started
    return outcome


def _place(products: list[Product], target: Path, single: bool) -> list[dict[str, Any]]:
    """Move finished files to their final names (a half-written file never has one)."""
    entries = []
    if single:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(products[0].path, target)
        return [_entry(products[0], target)]
    target.mkdir(parents=True, exist_ok=True)
    for product in products:
        final = target / product.name
        shutil.move(product.path, final)
        entries.append(_entry(product, final))
    return entries


def _targets(sources: list[str], args: argparse.Namespace, ext: str) -> list[Path]:
    out = Path(args.output)
    if args.command == "thumbnail" and len(sources) == 1 and not out.is_dir():
        return [out]
    names: dict[str, int] = {}
    targets = []
    for source in sources:
        base = stem(source)
        names[base] = names.get(base, 0) + 1
        name = base if names[base] == 1 else f"{base}-{names[base]}"
        targets.append(out / (f"{name}.{ext}" if args.command == "thumbnail" else name))
    return targets


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="qthumb", description="Thumbnails from files, no server.")
    sub = p.add_subparsers(dest="command", required=True)
    for name, text in (
        ("thumbnail", "one image a source, at --time"),
        (
            "thumbnails",
            "a frame every --interval seconds, or sprite sheets, and "
            "the WebVTT file, a folder a source",
        ),
    ):
        cmd = sub.add_parser(name, help=text, description=text)
        cmd.add_argument(
            "sources",
            nargs="+",
            metavar="SOURCE",
            help="files, folders (their videos), globs, or http(s)/s3 URLs",
        )
        cmd.add_argument(
            "-o",
            "--output",
            required=True,
            help="the file (one thumbnail source) or the folder to write into (required)",
        )
        cmd.add_argument(
            "--width",
            type=int,
            default=None,
            help="width in px (default: the source's, or what --height keeps in aspect)",
        )
        cmd.add_argument(
            "--height", type=int, default=None, help="height in px (default: follows --width)"
        )
        cmd.add_argument(
            "--format",
            choices=["png", "jpg", "webp"],
            default=None,
            help="image format (default: png)",
        )
        cmd.add_argument(
            "--quality",
            type=int,
            default=None,
            help="jpg/webp quality 1-100 (default: 85 jpg, 80 webp)",
        )
        cmd.add_argument(
            "--recursive",
            action="store_true",
            help="look into sub-folders of folder sources (default: no)",
        )
        cmd.add_argument(
            "--jobs",
            type=int,
            default=None,
            help="sources at once (default: one a core for thumbnail, one for "
            "thumbnails, whose decoding already uses every core)",
        )
        cmd.add_argument(
            "--json", action="store_true", help="print a JSON summary on stdout (default: no)"
        )
        if name == "thumbnail":
            cmd.add_argument(
                "--time",
                default=None,
                help="a fraction 0-1, a percent 1-100, or seconds as 12.5s (default: 0.5)",
            )
        else:
            cmd.add_argument(
                "--interval", type=float, required=True, help="seconds between frames (required)"
            )
            cmd.add_argument(
                "--sprite",
                action="store_true",
                help="sprite sheets instead of one file a frame (default: no)",
            )
            cmd.add_argument(
                "--columns", type=int, default=None, help="tiles a row on a sheet (default: 10)"
            )
            cmd.add_argument(
                "--keyframes-only",
                action="store_true",
                help="the keyframe before each time, not the exact frame; faster (default: exact)",
            )
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = Settings(
        data_dir=Path(tempfile.gettempdir()) / f"qthumb-offline-{os.getpid()}",
        local_source_dirs=["/"],  # local files are the user's own here
    )
    try:
        sources = expand_sources(args.sources, args.recursive)
        if not sources:
            raise UsageError("no video sources found")
        spec = parse_query({"source": sources[0], "format": [_format(args)]}).formats[0]
    except (UsageError, QencodeError) as exc:
        print(f"qthumb: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 2
    cores = os.cpu_count() or 1
    jobs = args.jobs or (cores if args.command == "thumbnail" else 1)
    readers = max(1, cores // jobs)
    targets = _targets(sources, args, spec.image_format.extension)
    started = time.monotonic()
    outcomes: list[Outcome] = []
    try:
        settings.work_dir.mkdir(parents=True, exist_ok=True)
        files = LocalFiles(settings)  # one for every source (tus uploads are the server's only)
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = [
                pool.submit(run_one, s, spec, t, settings, files, readers)
                for s, t in zip(sources, targets, strict=True)
            ]
            for n, future in enumerate(futures, start=1):
                outcome = future.result()
                outcomes.append(outcome)
                ok = outcome.error is None
                where = f"-> {outcome.output}" if ok else f"FAILED: {outcome.error}"
                print(
                    f"[{n}/{len(sources)}] {outcome.source} {where} ({outcome.seconds:.2f} s)",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        shutil.rmtree(settings.data_dir, ignore_errors=True)
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
        print(
            json.dumps(
                {
                    "sources": [
                        {
                            "source": o.source,
                            "output": str(o.output) if o.output else None,
                            "error": o.error,
                            "seconds": round(o.seconds, 3),
                            "files": o.products,
                        }
                        for o in outcomes
                    ]
                },
                indent=2,
            )
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
