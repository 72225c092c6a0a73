"""The offline commands' arguments: ``qthumb thumbnail``, ``qthumb thumbnails`` and
``qthumb run``, and the one format a ``thumbnail``/``thumbnails`` command line stands for."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from qthumb.app.qencode.fields.values import IMAGE_EXTENSIONS, ImageFormat

_SECONDS = re.compile(r"^(\d+(?:\.\d+)?)s$")
FORMATS = tuple(f.value for f in ImageFormat)
_OTHER_IMAGES = (".gif", ".bmp", ".tif", ".tiff", ".heic", ".heif", ".jxl", ".ico", ".jp2")


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def settle(args: argparse.Namespace, p: argparse.ArgumentParser) -> None:
    """``thumbnail -o x.jpg``: the file's suffix names the format when ``--format`` does not,
    and the two may not disagree (a PNG in ``x.jpg`` would surprise every viewer)."""
    if args.command != "thumbnail":
        return
    out = Path(args.output)
    suffix = out.suffix.lower()
    if out.is_dir() or not suffix:
        return
    if suffix in _OTHER_IMAGES:
        p.error(f"{out}: qthumb writes {', '.join(FORMATS)}, not {suffix[1:]}")
    named = IMAGE_EXTENSIONS.get(suffix[1:])
    if named is None:
        return
    if args.format is None:
        args.format = named.value
    elif args.format != named.value:
        p.error(f"--format {args.format} disagrees with the file name {out.name}")


def format_of(args: argparse.Namespace) -> dict[str, Any]:
    fmt: dict[str, Any] = {"output": args.command}
    for name in ("width", "height", "quality"):
        if getattr(args, name, None) is not None:
            fmt[name] = getattr(args, name)
    if args.format:
        fmt["image_format"] = args.format
    for name, field in (
        ("fit", "resize_mode"),
        ("pad_color", "pad_color"),
        ("rotate", "rotate"),
        ("placeholder", "placeholder"),
    ):
        if getattr(args, name, None) is not None:
            fmt[field] = getattr(args, name)
    if args.command == "thumbnail":
        seconds = _SECONDS.match(args.time or "")
        if seconds:  # an exact time: the window starts there and the frame is its first
            fmt.update(start_time=float(seconds.group(1)), time=0)
        elif args.time is not None:
            fmt["time"] = args.time
    else:
        fmt.update(interval=args.interval, sprite=1 if args.sprite else 0)
        if args.columns is not None:
            fmt["columns"] = args.columns
        if args.keyframes_only:
            fmt["keyframes_only"] = 1
        if args.placeholder is not None and args.sprite:
            fmt["storyboard"] = 1  # a tile's placeholder goes in the storyboard JSON
    if getattr(args, "smart", False):
        fmt["smart"] = 1
    return fmt


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
            choices=FORMATS,
            default=None,
            help="image format (default: the OUT file's suffix, else png)",
        )
        cmd.add_argument(
            "--quality",
            type=int,
            default=None,
            help="jpg/webp quality 1-100 (default: 85 jpg, 80 webp)",
        )
        cmd.add_argument(
            "--fit",
            choices=("scale", "crop", "pad"),
            default=None,
            help="with --width and --height: stretch (scale), fill and cut the centre (crop), "
            "or fit inside with borders of --pad-color (pad) (default: scale)",
        )
        cmd.add_argument(
            "--pad-color",
            default=None,
            help="--fit pad's border colour: #rrggbb, #rgb or a name (default: black)",
        )
        cmd.add_argument(
            "--rotate",
            type=int,
            choices=(90, 180, 270),
            default=None,
            help="turn the picture clockwise, after the source's own rotation (default: no)",
        )
        cmd.add_argument(
            "--placeholder",
            choices=("blurhash", "thumbhash"),
            default=None,
            help="also compute each image's placeholder string, shown by --json (default: no)",
        )
        cmd.add_argument(
            "--recursive",
            action="store_true",
            help="look into sub-folders of folder sources (default: no)",
        )
        cmd.add_argument(
            "--jobs",
            type=_at_least_one,
            default=None,
            help="sources at once (default: one a core; a single source gets every core "
            "as decoders)",
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
            cmd.add_argument(
                "--smart",
                action="store_true",
                help="the best frame near --time: not black, blurred or mid-fade (default: "
                "the exact frame)",
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
    run = sub.add_parser(
        "run",
        help="a whole start_encode2 query from a JSON file; prints its status object",
        description="Run a start_encode2 query (the JSON of its `query` field, wrapped in "
        '{"query": …} or bare) with no server: S3 destinations as given, results without a '
        "destination under DIR/<format index>/. Prints the status object Qencode would report.",
    )
    run.add_argument("query", metavar="QUERY.json", help="the query's JSON file, or - for stdin")
    run.add_argument(
        "-o",
        "--output",
        default=".",
        metavar="DIR",
        help="where results without a destination go (default: the current folder)",
    )
    return p
