"""Scene cuts (``scenes: 1``, #38): qthumb's detector against PySceneDetect's ContentDetector
and ffmpeg's ``select='gt(scene,0.4)'``, for speed and accuracy, on the same files in one run.

- realistic: ``real_1080p_5min.mp4`` of ``bench/realistic.py`` (four patterns of 75 s in turn
  under film-like noise, x264's scene-cut GOP and B-frames): the true cuts are at 75, 150 and
  225 s;
- synthetic: 20 s of 720p, four clean lavfi patterns of 5 s (cuts at 5, 10 and 15 s).

A cut found counts as right within one frame of a true one; every other cut is false.

    python bench/scenes.py    # writes its section of bench/RESULTS.md
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.load import write_section  # noqa: E402
from bench.realistic import HD, ensure_sources  # noqa: E402
from bench.sources import WORK  # noqa: E402
from qthumb.app.qencode.window import Window  # noqa: E402
from qthumb.workers.media.probe import probe  # noqa: E402
from qthumb.workers.media.scenes import find_shots  # noqa: E402

START, END = "<!-- scenes:start -->", "<!-- scenes:end -->"
CLEAN = WORK / "scenes_720p_20s.mp4"


def ensure_clean() -> None:
    if CLEAN.exists():
        return
    inputs: list[str] = []
    for pattern in ("testsrc2", "smptehdbars", "rgbtestsrc", "mandelbrot"):
        source = f"{pattern}=s=1280x720:r=30" + (
            ",trim=duration=5" if pattern == "mandelbrot" else ":d=5"
        )
        inputs += ["-f", "lavfi", "-i", source]
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *inputs, "-filter_complex",
                    "[0][1][2][3]concat=n=4:v=1,format=yuv420p", "-c:v", "libx264",
                    "-preset", "veryfast", str(CLEAN)], check=True)  # fmt: skip


def qthumb_cuts(path: Path) -> list[float]:
    info = probe(path, 10**9)
    shots = find_shots(path, info, Window(0.0, info.duration), 0.5, 10**6)
    return [shot.start for shot in shots[1:]]


def pyscenedetect_cuts(path: Path) -> list[float]:
    from scenedetect import ContentDetector, detect

    scenes = detect(str(path), ContentDetector(), backend="pyav")
    return [start.get_seconds() for start, _ in scenes[1:]]


def ffmpeg_cuts(path: Path) -> list[float]:
    done = subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-i", str(path), "-vf",
                           "select='gt(scene,0.4)',showinfo", "-an", "-f", "null", "-"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return [float(t) for t in re.findall(r"pts_time:([0-9.]+)", done.stderr)]


def judged(found: list[float], truth: list[float], frame: float) -> tuple[int, int]:
    """(true cuts found within a frame, cuts found that are no true cut)."""
    right = {t for t in truth if any(abs(f - t) <= frame + 1e-6 for f in found)}
    false = [f for f in found if all(abs(f - t) > frame + 1e-6 for t in truth)]
    return len(right), len(false)


def main() -> None:
    ensure_sources()
    ensure_clean()
    methods: dict[str, Callable[[Path], list[float]]] = {
        "qthumb `scenes: 1` (its decode pass)": qthumb_cuts,
        "PySceneDetect ContentDetector (PyAV backend)": pyscenedetect_cuts,
        "`ffmpeg -vf \"select='gt(scene,0.4)'\"`": ffmpeg_cuts,
    }
    files = [("realistic: 5-min noisy 1080p, scene-cut GOP, B-frames", HD, [75.0, 150.0, 225.0]),
             ("synthetic: 20 s clean 720p", CLEAN, [5.0, 10.0, 15.0])]  # fmt: skip
    rows = []
    for label, path, truth in files:
        frame = 1 / (probe(path, 10**9).frame_rate or 30)
        for name, cuts_of in methods.items():
            start = time.perf_counter()
            found = cuts_of(path)
            seconds = time.perf_counter() - start
            right, false = judged(found, truth, frame)
            rows.append(f"| {label} | {name} | {seconds:.1f} | {right} of {len(truth)} | {false} |")
            print(rows[-1], flush=True)
    import scenedetect

    intro = (
        f"Measured {time.strftime('%Y-%m-%d', time.gmtime())} by `bench/scenes.py`, one run, "
        f"{os.cpu_count()} cores: each method timed whole on the same file (PySceneDetect "
        f"{scenedetect.__version__}, its default threshold; ffmpeg's scene score over 0.4). "
        "A cut is right within one frame of a true one; every other cut found is false."
    )
    table = ["| source | method | seconds | true cuts found | false cuts |",
             "|---|---|---:|---:|---:|", *rows]  # fmt: skip
    title = "## Scene cuts (#38): `scenes: 1` against PySceneDetect and ffmpeg"
    section = "\n".join([START, title, "", intro, "", *table, END])
    write_section(section, START, END)
    print(section)


if __name__ == "__main__":
    main()
