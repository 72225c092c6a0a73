"""The tools qthumb is measured against, each run on the same frames as a subprocess."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.sources import SOURCES, WORK, Scenario

# vcsi pins Pillow 11.2: it lives in a venv of its own, made by `make bench`.
VCSI = str(WORK / "vcsi-venv" / "bin" / "vcsi")
# qthumb's console script, started as users start it (the offline commands run in it).
QTHUMB = str(Path(sys.executable).parent / "qthumb")


@dataclass
class Row:
    method: str
    seconds: float | None
    rss_mb: float | None
    note: str = ""


def timed(cmds: list[list[str]]) -> tuple[float, float]:
    """Wall time of running ``cmds`` one after another, and the largest child peak RSS."""
    start = time.perf_counter()
    peak = 0.0
    for cmd in cmds:
        out = subprocess.run(
            ["/usr/bin/time", "-f", "%M", *cmd],
            capture_output=True, text=True, stdin=subprocess.DEVNULL, check=True,
        )  # fmt: skip
        peak = max(peak, float(out.stderr.strip().splitlines()[-1]) / 1024)
    return time.perf_counter() - start, peak


def ffmpeg_frame(source: Path | str, t: float, out: Path, width: int | None = None) -> list[str]:
    """One exact frame by the ffmpeg program: ``ffmpeg -ss T -i F -frames:v 1`` (scaled to
    ``width`` when given), the baseline of the exact rows."""
    scale = ["-vf", f"scale={width}:-2"] if width else []
    return ["ffmpeg", "-nostdin", "-v", "error", "-y", "-ss", f"{t:g}", "-i", str(source),
            "-frames:v", "1", *scale, str(out)]  # fmt: skip


def hms(t: float) -> str:
    """HH:MM:SS (whole seconds: ffmpegthumbnailer reads no fraction; the times here are whole)."""
    assert float(t).is_integer(), t
    s = int(t)
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def tool_row(tool: str, sc: Scenario, out: Path) -> Row:
    src = str(SOURCES[sc.source].path)
    times = sc.times()
    scale = f"scale={sc.width}:-2"
    if tool == "per_frame":
        cmds = [["ffmpeg", "-nostdin", "-v", "error", "-y", "-ss", f"{t:.3f}", "-i", src,
                 "-frames:v", "1", "-vf", scale, str(out / f"pf{k}.jpg")]
                for k, t in enumerate(times)]  # fmt: skip
        return Row("one `ffmpeg -ss T -frames:v 1` per frame", *timed(cmds))
    if tool == "ffmpegthumbnailer":
        cmds = [["ffmpegthumbnailer", "-i", src, "-o", str(out / f"ft{k}.jpg"), "-t", hms(t),
                 "-s", str(sc.width), "-q", "8"] for k, t in enumerate(times)]  # fmt: skip
        return Row("ffmpegthumbnailer, one run per frame", *timed(cmds))
    if tool == "vcsi":
        cols = 10
        rows = -(-len(times) // cols)
        stamps = ",".join(hms(t) for t in times)
        cmd = [
            VCSI,
            src,
            "-m",
            stamps,
            "-g",
            f"{cols}x{rows}",
            "-w",
            str(cols * sc.width),
            "-o",
            str(out / "vcsi.jpg"),
        ]
        return Row("vcsi (same timestamps, one sheet)", *timed([cmd]))
    if tool == "fps_filter":
        cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-ss", f"{sc.offset}", "-i", src, "-vf",
               f"fps=1/{sc.interval},{scale}", str(out / "fps%05d.jpg")]  # fmt: skip
        return Row(f"ffmpeg `fps=1/{sc.interval:g}` over the whole file", *timed([cmd]))
    if tool == "keyframe_floor":
        cmd = ["ffmpeg", "-nostdin", "-v", "error", "-skip_frame", "nokey", "-i", src, "-an",
               "-f", "null", "-"]  # fmt: skip
        return Row("floor: decode every keyframe, nothing else", *timed([cmd]))
    raise ValueError(tool)
