"""Video outputs: PyAV's encoder child against the ffmpeg program, in one run.

The mp4/webm/gif outputs are encoded by PyAV's own FFmpeg in a child process
(``workers/outputs/encoding/encode.py``) instead of the ffmpeg program. This times qthumb's
producers (``make_video``/``make_gif``, the child's start included) against Debian's ffmpeg with
the argv qthumb built before (the same codecs, presets, quality and filters; the GIF's palette in
one ``split`` + ``palettegen`` graph). Both sides are timed whole, process start-up included.

    python bench/encoders.py    # writes its section of bench/RESULTS.md
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.load import write_section  # noqa: E402
from bench.sources import WORK  # noqa: E402
from qthumb.app.qencode.query import parse_format  # noqa: E402
from qthumb.workers.media.probe import probe  # noqa: E402
from qthumb.workers.outputs.gif import make_gif  # noqa: E402
from qthumb.workers.outputs.video import make_video  # noqa: E402

START, END = "<!-- encoders:start -->", "<!-- encoders:end -->"
RUNS = 3
SOURCES = {
    "src720.mp4 (synthetic: testsrc2, noise audio)": (
        WORK / "src720.mp4",
        [
            "-f",
            "lavfi",
            "-i",
            "testsrc2=s=1280x720:r=30:d=20",
            "-f",
            "lavfi",
            "-i",
            "anoisesrc=d=20:a=0.1",
        ],
    ),
    "noise720.mp4 (realistic worst case: full-frame random noise)": (
        WORK / "noise720.mp4",
        [
            "-f",
            "lavfi",
            "-i",
            "nullsrc=s=1280x720:r=30:d=20,geq=random(1)*255:128:128",
            "-f",
            "lavfi",
            "-i",
            "anoisesrc=d=20:a=0.1",
        ],
    ),
}
VIDEO = {"width": 640, "height": 360}
GIF = {"output": "gif", "width": 320, "duration": 5, "framerate": 10}


def ensure_sources() -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    for path, inputs in SOURCES.values():
        if not path.exists():
            subprocess.run(
                [
                    "ffmpeg",
                    "-nostdin",
                    "-v",
                    "error",
                    "-y",
                    *inputs,
                    "-shortest",
                    "-c:v",
                    "libx264",
                    "-preset",
                    "veryfast",
                    "-crf",
                    "20",
                    "-c:a",
                    "aac",
                    "-pix_fmt",
                    "yuv420p",
                    str(path),
                ],
                check=True,
            )


def ffmpeg_argv(output: str, source: Path, out: Path) -> list[str]:
    """What qthumb ran for ``output`` before the encoder child (ffmpeg-python's argv)."""
    head = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(source)]
    if output == "gif":
        graph = (
            "[0:v]fps=fps=10,scale=320:-2:flags=lanczos,setsar=1,split[a][b];"
            "[a]palettegen=stats_mode=diff[p];[b][p]paletteuse=dither=bayer:bayer_scale=5"
        )
        return [*head, "-filter_complex", graph, "-t", "5", "-loop", "0", str(out)]
    video = [
        "-vf",
        f"scale={VIDEO['width']}:{VIDEO['height']},setsar=1",
        "-pix_fmt",
        "yuv420p",
        "-map_metadata",
        "-1",
    ]
    if output == "mp4":
        codec = [
            "-c:v",
            "libx264",
            "-crf",
            "23",
            "-preset",
            "veryfast",
            "-movflags",
            "+faststart",
            "-c:a",
            "aac",
            "-b:a",
            "128k",
        ]
    else:
        codec = [
            "-c:v",
            "libvpx-vp9",
            "-crf",
            "32",
            "-b:v",
            "0",
            "-deadline",
            "realtime",
            "-cpu-used",
            "8",
            "-row-mt",
            "1",
            "-c:a",
            "libopus",
            "-b:a",
            "128k",
        ]
    return [*head, *video, *codec, str(out)]


def qthumb_seconds(output: str, source: Path, out: Path) -> float:
    info = probe(source, 10**9)
    fields = GIF if output == "gif" else {"output": output, **VIDEO}
    spec = parse_format(dict(fields))
    start = time.perf_counter()
    if output == "gif":
        make_gif(source, info, spec, out, lambda _: None, 600)  # type: ignore[arg-type]
    else:
        make_video(source, info, spec, out, lambda _: None, 600)  # type: ignore[arg-type]
    return time.perf_counter() - start


def ffmpeg_seconds(output: str, source: Path, out: Path) -> float:
    start = time.perf_counter()
    subprocess.run(
        ffmpeg_argv(output, source, out / f"ffmpeg.{output}"), check=True, stdin=subprocess.DEVNULL
    )
    return time.perf_counter() - start


def median(measure: Callable[[str, Path, Path], float], output: str, source: Path) -> float:
    spent = []
    for _ in range(RUNS):
        with tempfile.TemporaryDirectory(dir=WORK) as out:
            spent.append(measure(output, source, Path(out)))
    return statistics.median(spent)


def main() -> None:
    ensure_sources()
    rows, ratios = [], []
    for label, (source, _) in SOURCES.items():
        for output in ("mp4", "webm", "gif"):
            ours = median(qthumb_seconds, output, source)
            theirs = median(ffmpeg_seconds, output, source)
            ratios.append(theirs / ours)
            rows.append(
                f"| {label} | {output} | {ours:.2f} s | {theirs:.2f} s | {theirs / ours:.2f}x |"
            )
            print(rows[-1], flush=True)
    ffmpeg = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True)
    encodes = [r for r, row in zip(ratios, rows, strict=True) if "| gif |" not in row]
    program = ffmpeg.stdout.split(" Copyright")[0]
    intro = (
        f"Measured {time.strftime('%Y-%m-%d', time.gmtime())} by `bench/encoders.py`, one "
        f"run, {os.cpu_count()} cores. The same settings both ways: qthumb's producer "
        "(`make_video` / `make_gif`, the encoder child's start included) against "
        f"{program} with the argv qthumb used to build (both timed whole, process start-up "
        "included). 20 s sources, 720p, output 640x360 (gif: 5 s at 10 fps, 320 px); median "
        f"of {RUNS} runs. Ratio > 1: qthumb is faster."
    )
    outro = (
        "The GIF is made in two passes (decode, palette; decode, map) where ffmpeg's `split` "
        "+ `palettegen` graph holds every frame until the palette is known (the memory bomb "
        "of issue #23); the two passes decode the window twice and hold none. mp4 and webm "
        f"encodes are {min(encodes):.2f}x to {max(encodes):.2f}x the program's speed here."
    )
    title = "## Video outputs: PyAV's encoder child against the ffmpeg program"
    table = ["| source | output | qthumb (PyAV child) | ffmpeg program | ratio |"]
    table += ["|---|---|---:|---:|---:|", *rows]
    section = "\n".join([START, title, "", intro, "", *table, "", outro, END])
    write_section(section, START, END)
    print(section)


if __name__ == "__main__":
    main()
