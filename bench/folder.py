"""The folder benchmark (#13): 20 one-minute 720p clips, a 10-tile sprite and its WebVTT each.

``qthumb thumbnails DIR --sprite`` next to shell loops of vcsi and ffmpegthumbnailer on the same
ten times per clip, in the same run. The clips are realistic (film-like noise, x264's default
scene-cut GOP with B-frames, so most times fall between keyframes), each a different lavfi
pattern. qthumb's frames are exact; vcsi seeks to the asked time; ffmpegthumbnailer takes
whole seconds and no sheet or VTT is made for it (it is timed for the ten frames alone).

    python bench/folder.py     # writes its section of bench/RESULTS.md
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.load import write_section  # noqa: E402
from bench.tools import hms, timed  # noqa: E402

FOLDER = ROOT / "bench" / "work" / "folder20"
CLIPS = 20
SECONDS = 60
INTERVAL = 6  # ten tiles: 0, 6, …, 54 s
TILE_WIDTH = 160
PATTERNS = ("testsrc2", "smptehdbars", "testsrc", "rgbtestsrc", "mandelbrot")


def ensure_clips() -> list[Path]:
    FOLDER.mkdir(parents=True, exist_ok=True)
    clips = []
    for k in range(CLIPS):
        path = FOLDER / f"clip{k:02d}.mp4"
        clips.append(path)
        if path.exists():
            continue
        pattern = PATTERNS[k % len(PATTERNS)]
        # hue turns each clip a little, noise makes it costly to decode as film grain is
        print(f"generating {path.name} …", flush=True)
        subprocess.run(
            ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
             f"{pattern}=s=1280x720:r=30,trim=duration={SECONDS},hue=h={k * 17},"
             "noise=alls=14:allf=t+u,format=yuv420p",
             "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", str(path)],
            check=True,
        )  # fmt: skip
    return clips


def times() -> list[int]:
    return list(range(0, SECONDS, INTERVAL))


def qthumb_cmd(out: Path) -> list[str]:
    return [sys.executable, "-m", "app.cli", "thumbnails", str(FOLDER), "--interval",
            str(INTERVAL), "--sprite", "--columns", "10", "--width", str(TILE_WIDTH),
            "--format", "jpg", "-o", str(out)]  # fmt: skip


def vcsi_cmds(clips: list[Path], out: Path) -> list[list[str]]:
    vcsi = str(Path(sys.executable).parent / "vcsi")
    stamps = ",".join(hms(t) for t in times())
    return [[vcsi, str(c), "-m", stamps, "-g", "10x1", "-w", str(10 * TILE_WIDTH), "-o",
             str(out / f"{c.stem}.jpg")] for c in clips]  # fmt: skip


def ffmpegthumbnailer_cmds(clips: list[Path], out: Path) -> list[list[str]]:
    return [["ffmpegthumbnailer", "-i", str(c), "-o", str(out / f"{c.stem}-{t}.jpg"), "-t",
             hms(t), "-s", str(TILE_WIDTH), "-q", "8"] for c in clips for t in times()]  # fmt: skip


def main() -> None:
    clips = ensure_clips()
    work = ROOT / "bench" / "work" / "folder-out"
    rows: list[tuple[str, float, float]] = []
    for name, make in (
        ("qthumb thumbnails DIR --sprite (sheet + VTT, exact frames)", lambda o: [qthumb_cmd(o)]),
        ("vcsi in a shell loop (one sheet a clip, no VTT)", lambda o: vcsi_cmds(clips, o)),
        ("ffmpegthumbnailer in a shell loop (10 runs a clip, no sheet, no VTT)",
         lambda o: ffmpegthumbnailer_cmds(clips, o)),
    ):  # fmt: skip
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        seconds, rss = timed(make(work))
        rows.append((name, seconds, rss))
        print(f"{name}: {seconds:.2f} s, peak RSS {rss:.0f} MB", flush=True)
    shutil.rmtree(work, ignore_errors=True)
    ours = rows[0][1]
    fastest_other = min(r[1] for r in rows[1:])
    lines = [
        "## Folder: 20 one-minute 720p clips, a 10-tile sprite each (realistic sources)",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} by `bench/folder.py`, all rows in the same run. "
        "Each clip: lavfi pattern with film-like noise, x264 veryfast crf 23, default scene-cut "
        "GOP with B-frames, 30 fps; tiles at 0, 6, …, 54 s, 160 px wide. Peak RSS is the "
        "largest single process.",
        "",
        "| method | seconds | × qthumb | peak RSS MB |",
        "|---|---|---|---|",
    ]
    for name, seconds, rss in rows:
        lines.append(f"| {name} | {seconds:.2f} | {seconds / ours:.1f} | {rss:.0f} |")
    lines += [
        "",
        f"qthumb is **{fastest_other / ours:.1f}x** faster than the faster of the other two "
        "(goal ≥ 3x).",
        "",
        "<!-- end folder -->",
    ]
    write_section("\n".join(lines), lines[0], "<!-- end folder -->")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
